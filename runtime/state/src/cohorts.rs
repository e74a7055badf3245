//! Values that checkpoints hand over in cohorts, so that a checkpoint costs what changed since
//! the one before, not the size of the state, on the task's thread and on the one writing it.
//!
//! At each checkpoint the task hands over only the values (a namespace's entries, a time's
//! timers) that are new or changed since the checkpoint before: one cohort, shared as they
//! are, and the handles of the values handed before that ended or changed since. The writing
//! side encodes each value of the new cohort once, when the checkpoint's writing starts, one
//! value after the other (each read once, while its entries are at hand), appending each of
//! its parts (its entries in one key group) to its group's bytes for that cohort, and lets go
//! of the value. Per key group it keeps each cohort's parts with where they were written. A
//! checkpoint copies the new cohort's bytes of each group, one stretch of memory, and refers
//! to the runs of earlier cohorts' parts that are still live where an earlier file holds them
//! (see [`crate::pieces`]): a window that sits unchanged until it fires is encoded once, and
//! after that costs a bit in a run.
//!
//! A cohort keeps its bytes until every one of its parts is in a file that may be referred
//! to (that of a complete checkpoint; later complete ones refer to it while any part is live),
//! so that a checkpoint that did not complete is written again by the next one: until the
//! checkpoint that wrote them completes (see [`Completion`]), or else until a later pass over
//! the key groups finds them all in such files. Cohorts are applied in the order they were
//! handed; a snapshot's encoding that finds a later one applied already (an aborted checkpoint
//! still encoding) fails.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use weir_types::{KeyGroup, KeyGroupRange};

use crate::grouped::GroupSink;
use crate::pieces::{GroupEntries, Spot, Stored};
use crate::snapshot::{FrozenTable, append_runs_header};
use crate::{Error, Result};

/// A value a checkpoint hands over, as the writing side encodes it.
pub trait Handed: Send + 'static {
    /// Encodes its entries split by key group into `sink` (see [`crate::encode_split`]):
    /// each group's as runs (see [`crate::append_run`]), without the section's header.
    fn encode(&self, sink: &mut dyn GroupSink) -> Result<()>;
    /// The one key group of its entries and how many there are, if it is to be encoded into
    /// that group's block as the group is written, not when the checkpoint's writing starts:
    /// a large share of one group, whose encoding would otherwise sit in memory beside the
    /// file (the value is kept instead, as its bytes would be).
    fn deferred(&self) -> Option<(KeyGroup, usize)> {
        None
    }
}

/// A buffer of parts' bytes this large is kept for the next cohort however little of it the
/// last one used.
const SMALL_BYTES: usize = 64 * 1024;

/// Which cohort a handed value is in, and where: the task gives it back when the value
/// changes or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    cohort: u64,
    index: u32,
}

/// What changed in a table since the last checkpoint took its values, as the task lists it:
/// the values new or changed since, by an id of the table's (some listed twice, or gone
/// since: the table checks each when the next checkpoint takes them; listed from the first
/// checkpoint on, before which every value is new), and the handles of those a checkpoint
/// took that changed or ended since.
#[derive(Debug)]
pub struct Changes<I> {
    changed: Option<Vec<I>>,
    ended: Vec<Handle>,
}

impl<I> Default for Changes<I> {
    fn default() -> Self {
        Changes { changed: None, ended: Vec::new() }
    }
}

impl<I: Copy> Changes<I> {
    /// Value `id` is new.
    pub fn created(&mut self, id: I) {
        if let Some(changed) = &mut self.changed {
            changed.push(id);
        }
    }

    /// Value `id`, taken by the checkpoint that gave it `handle` if any, is about to change:
    /// that checkpoint no longer holds it as it is.
    #[inline]
    pub fn changing(&mut self, handle: &mut Option<Handle>, id: I) {
        if let Some(handle) = handle.take() {
            self.ended.push(handle);
            self.created(id);
        }
    }

    /// For the checkpoint being taken: moves the handles of values that changed or ended to
    /// `ended`, and returns the values listed as new or changed (`None` at the first
    /// checkpoint: every value is new); lists the changes from now on.
    pub fn take(&mut self, ended: &mut Vec<Handle>) -> Option<Vec<I>> {
        ended.append(&mut self.ended);
        self.changed.replace(Vec::new())
    }
}

/// The task's side: what the next checkpoint hands over.
pub struct Cohorts<H> {
    shared: Arc<Shared<H>>,
    /// The number of the next cohort.
    next: u64,
}

impl<H> std::fmt::Debug for Cohorts<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cohorts").field("next", &self.next).finish_non_exhaustive()
    }
}

/// The values of the cohort being gathered for a checkpoint.
pub struct Fresh<H> {
    cohort: u64,
    values: Vec<H>,
}

impl<H> Fresh<H> {
    /// Adds `value` to the cohort; returns its handle.
    pub fn add(&mut self, value: H) -> Handle {
        let index = u32::try_from(self.values.len()).expect("fewer than 2^32 values per cohort");
        self.values.push(value);
        Handle { cohort: self.cohort, index }
    }
}

/// What the task and the writing side share: cohorts handed over and not applied yet, and
/// the writing side's layout.
struct Shared<H> {
    handed: Mutex<Vec<Delta<H>>>,
    layout: Mutex<Layout>,
}

/// One checkpoint's hand-over: its new cohort, and the values of earlier ones that ended or
/// changed since the checkpoint before.
struct Delta<H> {
    cohort: u64,
    values: Vec<H>,
    ended: Vec<Handle>,
}

/// The writing side's view of the cohorts.
struct Layout {
    range: KeyGroupRange,
    /// The latest cohort applied.
    applied: Option<u64>,
    cohorts: BTreeMap<u64, Cohort>,
    /// Each key group's parts, by cohort (indexed by the group's offset in `range`).
    groups: Vec<Vec<GroupCohort>>,
    /// The pass over the key groups under way.
    pass: Option<Pass>,
    /// The cohort of the latest pass that wrote incrementally and went over every key group:
    /// once its checkpoint completes, every live part is in a file that may be referred to.
    passed: Option<u64>,
    /// Where each part of the group cohort at hand was written (scratch, reused).
    spots: Vec<Option<Spot>>,
    /// Emptied buffers of parts' bytes let go of since the latest hand-over was applied, for
    /// the next one (one checkpoint's worth at most: those the next does not use are freed).
    spare_bytes: Vec<Vec<u8>>,
}

/// The encoding of one snapshot's key groups.
struct Pass {
    /// The snapshot's cohort.
    cohort: u64,
    /// Whether it writes incrementally (refers to earlier files).
    incremental: bool,
    /// The cohorts it found not all in files that may be referred to (they keep their bytes).
    unconfirmed: HashSet<u64>,
}

/// A cohort's values: live or not.
struct Cohort {
    live: Vec<bool>,
    live_count: usize,
    /// Whether its groups keep the bytes of its parts: until every part is in a file that may
    /// be referred to.
    kept: bool,
}

/// One cohort's parts in one key group, written one after the other.
struct GroupCohort {
    cohort: u64,
    parts: Vec<Part>,
    /// The parts' encodings, one after the other, while the cohort is applied.
    bytes: Vec<u8>,
    /// The same once it is applied (emptied when the cohort lets go of them), shared with the
    /// entries of a group being written, which the writer copies into the file.
    encoded: Bytes,
    /// Where each part was last written (part `i` of this `Stored` is `parts[i]`).
    stored: Arc<Stored>,
    /// Its live parts as a pass found them, while no value of its cohort ended since: a
    /// group cohort that sits unchanged costs a pass its runs, not a visit to every part.
    found: Option<Found>,
}

/// A group cohort's live parts as a pass found them.
struct Found {
    /// Its cohort's live count then; values only end, so the same count means the same
    /// live parts.
    live_count: usize,
    /// How many live parts, and their entries.
    parts: usize,
    entries: usize,
    /// Where they are, joined into runs, once one file holds them all (empty until a pass
    /// finds that; emptied when they are written again).
    runs: Vec<Spot>,
}

/// A value's part in one key group.
struct Part {
    value: u32,
    entries: u32,
    encoding: PartEncoding,
}

/// Where a part's encoding is.
enum PartEncoding {
    /// In its group cohort's bytes, up to here (from where the part before ends).
    Until(usize),
    /// Still to be encoded from the value (see [`Handed::deferred`]), while it is kept.
    Deferred(Option<Box<dyn Handed>>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<H: Handed> Cohorts<H> {
    /// No cohort yet, for a table owning `range`.
    pub fn new(range: KeyGroupRange) -> Self {
        let layout = Layout {
            range,
            applied: None,
            cohorts: BTreeMap::new(),
            groups: (0..range.len()).map(|_| Vec::new()).collect(),
            pass: None,
            passed: None,
            spots: Vec::new(),
            spare_bytes: Vec::new(),
        };
        let shared = Shared { handed: Mutex::new(Vec::new()), layout: Mutex::new(layout) };
        Cohorts { shared: Arc::new(shared), next: 0 }
    }

    /// An empty cohort for the next checkpoint.
    pub fn fresh(&self) -> Fresh<H> {
        Fresh { cohort: self.next, values: Vec::new() }
    }

    /// Hands `fresh` over, with the handles of values handed before that `ended` (or
    /// changed) since; returns the table as the checkpoint writes it (`empty`: no entry).
    pub fn hand(&mut self, fresh: Fresh<H>, ended: Vec<Handle>, empty: bool) -> FrozenCohorts<H> {
        assert_eq!(fresh.cohort, self.next, "cohorts are handed in order");
        self.next += 1;
        let delta = Delta { cohort: fresh.cohort, values: fresh.values, ended };
        lock(&self.shared.handed).push(delta);
        FrozenCohorts { cohort: fresh.cohort, shared: Arc::clone(&self.shared), empty }
    }
}

/// A table as one checkpoint writes it: the cohorts handed up to its own.
pub struct FrozenCohorts<H> {
    cohort: u64,
    shared: Arc<Shared<H>>,
    empty: bool,
}

impl<H: Handed> FrozenTable for FrozenCohorts<H> {
    fn encode_group<'a>(&'a self, group: KeyGroup, out: &mut GroupEntries<'a>) -> Result<bool> {
        let mut layout = lock(&self.shared.layout);
        if layout.applied.is_none_or(|applied| applied < self.cohort) {
            let handed: Vec<Delta<H>> = {
                let mut handed = lock(&self.shared.handed);
                let upto = handed.partition_point(|delta| delta.cohort <= self.cohort);
                handed.drain(..upto).collect()
            };
            for delta in handed {
                layout.apply(delta)?;
            }
        } else if layout.applied != Some(self.cohort) {
            return Err(Error::Incremental {
                cohort: self.cohort,
                reason: "a later checkpoint's changes were applied already",
            });
        }
        if layout.pass.as_ref().is_none_or(|pass| pass.cohort != self.cohort) {
            let incremental = out.is_incremental();
            layout.pass =
                Some(Pass { cohort: self.cohort, incremental, unconfirmed: HashSet::new() });
        }
        let written = layout.encode_group(group, out)?;
        if group == layout.range.end() {
            layout.end_pass();
        }
        Ok(written)
    }

    fn is_empty(&self) -> bool {
        self.empty
    }

    fn completion(&self) -> Option<Box<dyn Completion>> {
        Some(Box::new(CohortCompletion { cohort: self.cohort, shared: Arc::clone(&self.shared) }))
    }
}

/// What a checkpoint's snapshot is told when the checkpoint completes.
pub trait Completion: Send {
    /// The checkpoint completed, and every encoding of a later snapshot of the same state
    /// that started meanwhile may refer to its files: what it wrote never has to be written
    /// again from the values, so the values it was the last to write are let go of.
    fn completed(&self);
}

/// A cohort's checkpoint, to be told when it completes.
struct CohortCompletion<H> {
    cohort: u64,
    shared: Arc<Shared<H>>,
}

impl<H: Handed> Completion for CohortCompletion<H> {
    fn completed(&self) {
        lock(&self.shared.layout).completed(self.cohort);
    }
}

impl Layout {
    /// Applies a hand-over: ends values, and encodes the new cohort's parts into their
    /// groups' bytes.
    fn apply<H: Handed>(&mut self, delta: Delta<H>) -> Result<()> {
        for handle in delta.ended {
            let Some(cohort) = self.cohorts.get_mut(&handle.cohort) else { continue };
            let index = handle.index as usize;
            if std::mem::replace(&mut cohort.live[index], false) {
                cohort.live_count -= 1;
            }
            if cohort.live_count == 0 {
                self.cohorts.remove(&handle.cohort);
            }
        }
        self.applied = Some(delta.cohort);
        if delta.values.is_empty() {
            return Ok(());
        }
        let count = delta.values.len();
        for (value, handed) in delta.values.into_iter().enumerate() {
            let value = u32::try_from(value).expect("fewer than 2^32 values per cohort");
            if let Some((group, entries)) = handed.deferred() {
                self.defer(delta.cohort, value, group, entries, Box::new(handed))?;
                continue;
            }
            let mut sink = CohortSink {
                layout: self,
                cohort: delta.cohort,
                value,
                current: None,
                outside: None,
                discarded: Vec::new(),
            };
            handed.encode(&mut sink)?;
            if let Some(group) = sink.outside {
                return Err(self.outside(delta.cohort, group));
            }
        }
        for group_cohort in self.groups.iter_mut().filter_map(|parts| parts.last_mut()) {
            if group_cohort.cohort == delta.cohort {
                group_cohort.encoded = Bytes::from(std::mem::take(&mut group_cohort.bytes));
            }
        }
        self.spare_bytes.clear();
        let cohort = Cohort { live: vec![true; count], live_count: count, kept: true };
        self.cohorts.insert(delta.cohort, cohort);
        Ok(())
    }

    /// The error of a value of `cohort` with entries in `group`, outside the table's range.
    fn outside(&self, cohort: u64, group: KeyGroup) -> Error {
        let (start, end) = (self.range.start(), self.range.end());
        Error::KeyGroupOutOfRange {
            key: format!("(a value of cohort {cohort})"),
            group,
            start,
            end,
        }
    }

    /// Adds value `value` of `cohort`, `entries` entries all in `group`, to be encoded when
    /// the group is written (see [`Handed::deferred`]).
    fn defer(
        &mut self,
        cohort: u64,
        value: u32,
        group: KeyGroup,
        entries: usize,
        handed: Box<dyn Handed>,
    ) -> Result<()> {
        if !self.range.contains(group) {
            return Err(self.outside(cohort, group));
        }
        let parts = &mut self.groups[self.range.offset(group)];
        if parts.last().is_none_or(|last| last.cohort != cohort) {
            let bytes = self.spare_bytes.pop().unwrap_or_default();
            parts.push(GroupCohort::new(cohort, bytes));
        }
        let entries = u32::try_from(entries).expect("fewer than 2^32 entries per part");
        let encoding = PartEncoding::Deferred(Some(handed));
        parts.last_mut().expect("pushed above").parts.push(Part { value, entries, encoding });
        Ok(())
    }

    /// Appends `group`'s live entries: a header of runs, then each cohort's parts, referred to
    /// where an earlier file that may be referred to holds all of that cohort's, else encoded.
    fn encode_group<'a>(&mut self, group: KeyGroup, out: &mut GroupEntries<'a>) -> Result<bool> {
        let offset = self.range.offset(group);
        let cohorts = &self.cohorts;
        // Group cohorts with no live part left go; the others' live entries are counted.
        let mut count = 0;
        self.groups[offset].retain_mut(|group_cohort| {
            let Some(cohort) = cohorts.get(&group_cohort.cohort) else { return false };
            let found = group_cohort.found(cohort);
            count += found.entries;
            found.parts > 0
        });
        if count == 0 {
            return Ok(false);
        }
        append_runs_header(out.bytes(), count)?;
        let (pass, spots) = (&mut self.pass, &mut self.spots);
        let unconfirmed = &mut pass.as_mut().expect("a pass is set before encoding").unconfirmed;
        for group_cohort in &mut self.groups[offset] {
            let cohort = &cohorts[&group_cohort.cohort];
            if group_cohort.refer(cohort, spots, out) {
                continue;
            }
            unconfirmed.insert(group_cohort.cohort);
            if let Some(found) = &mut group_cohort.found {
                found.runs.clear(); // written again below, elsewhere
            }
            let number = group_cohort.cohort;
            let GroupCohort { parts, encoded, stored, .. } = group_cohort;
            let mut start = 0;
            for (index, part) in parts.iter_mut().enumerate() {
                let live = cohort.live[part.value as usize];
                match &mut part.encoding {
                    PartEncoding::Until(end) => {
                        let range = start..*end;
                        start = *end;
                        if live && !cohort.kept {
                            return Err(let_go_of(number));
                        } else if live {
                            out.stored_encoded(stored, index, encoded.slice(range));
                        }
                    }
                    PartEncoding::Deferred(value) if !live => *value = None,
                    PartEncoding::Deferred(value) => {
                        let value = value.as_ref().ok_or_else(|| let_go_of(number))?;
                        out.stored(stored, index, |out| value.encode(&mut OneGroup(out)))?;
                    }
                }
            }
        }
        Ok(true)
    }

    /// The pass over every group is over: cohorts it found all in files that may be referred
    /// to let go of their bytes.
    fn end_pass(&mut self) {
        let Some(pass) = self.pass.take() else { return };
        self.let_go(|number| !pass.unconfirmed.contains(&number));
        if pass.incremental {
            self.passed = Some(pass.cohort);
        }
    }

    /// Cohorts `which` picks let go of their bytes.
    fn let_go(&mut self, which: impl Fn(u64) -> bool) {
        for (number, cohort) in &mut self.cohorts {
            if which(*number) {
                cohort.kept = false;
            }
        }
        for group_cohort in self.groups.iter_mut().flatten() {
            if which(group_cohort.cohort) {
                for part in &mut group_cohort.parts {
                    if let PartEncoding::Deferred(value) = &mut part.encoding {
                        *value = None;
                    }
                }
                let encoded = std::mem::take(&mut group_cohort.encoded);
                // Kept if no group's entries hold it still, and small or well used: one that
                // grew for a large cohort goes after holding a small one.
                let Ok(encoded) = encoded.try_into_mut() else { continue };
                let (used, mut bytes) = (encoded.len(), Vec::from(encoded));
                let room = bytes.capacity();
                if room > 0 && room <= (2 * used).max(SMALL_BYTES) {
                    bytes.clear();
                    self.spare_bytes.push(bytes);
                }
            }
        }
    }

    /// The checkpoint of `cohort` completed (see [`Completion::completed`]): if its pass was
    /// the last, every live part is in its files or in those it referred to, which may be
    /// referred to from now on, so no cohort needs its bytes any more.
    fn completed(&mut self, cohort: u64) {
        if self.passed == Some(cohort) && self.applied == Some(cohort) && self.pass.is_none() {
            self.let_go(|_| true);
        }
    }
}

/// The error of a live part that no earlier file holds and that its cohort let go of.
fn let_go_of(cohort: u64) -> Error {
    Error::Incremental { cohort, reason: "a part no earlier file holds was let go of" }
}

/// Where a deferred value appends its entries: the one group's entries being written.
struct OneGroup<'a>(&'a mut Vec<u8>);

impl GroupSink for OneGroup<'_> {
    fn group(&mut self, _group: KeyGroup) -> &mut Vec<u8> {
        self.0
    }

    fn appended(&mut self, _count: usize) {}
}

/// Where a value of the cohort being applied appends its parts: its groups' bytes.
struct CohortSink<'a> {
    layout: &'a mut Layout,
    cohort: u64,
    value: u32,
    /// The offset of the group last asked for, in the table's range.
    current: Option<usize>,
    /// A key group outside the table's range that the value has entries in.
    outside: Option<KeyGroup>,
    /// Where the entries of such a group go (dropped).
    discarded: Vec<u8>,
}

impl GroupSink for CohortSink<'_> {
    fn group(&mut self, group: KeyGroup) -> &mut Vec<u8> {
        if !self.layout.range.contains(group) {
            self.outside = Some(group);
            self.discarded.clear();
            return &mut self.discarded;
        }
        let offset = self.layout.range.offset(group);
        let parts = &mut self.layout.groups[offset];
        if parts.last().is_none_or(|last| last.cohort != self.cohort) {
            let bytes = self.layout.spare_bytes.pop().unwrap_or_default();
            parts.push(GroupCohort::new(self.cohort, bytes));
        }
        self.current = Some(offset);
        &mut parts.last_mut().expect("pushed above").bytes
    }

    fn appended(&mut self, count: usize) {
        let Some(offset) = self.current.take() else { return };
        let group_cohort = self.layout.groups[offset]
            .last_mut()
            .expect("the group asked for has the cohort's parts");
        let entries = u32::try_from(count).expect("fewer than 2^32 entries per part");
        let encoding = PartEncoding::Until(group_cohort.bytes.len());
        group_cohort.parts.push(Part { value: self.value, entries, encoding });
    }
}

impl GroupCohort {
    /// No part yet of `cohort`, its bytes to go into `bytes` (empty).
    fn new(cohort: u64, bytes: Vec<u8>) -> Self {
        let stored = Arc::new(Stored::default());
        let encoded = Bytes::new();
        GroupCohort { cohort, parts: Vec::new(), bytes, encoded, stored, found: None }
    }

    /// Its live parts, found again if a value of its cohort ended since the last pass.
    fn found(&mut self, cohort: &Cohort) -> &Found {
        let live_count = cohort.live_count;
        if self.found.as_ref().is_none_or(|found| found.live_count != live_count) {
            let live = self.parts.iter().filter(|part| cohort.live[part.value as usize]);
            let (parts, entries) = live.fold((0, 0), |(parts, entries), part| {
                (parts + 1, entries + part.entries as usize)
            });
            self.found = Some(Found { live_count, parts, entries, runs: Vec::new() });
        }
        self.found.as_ref().expect("found just above")
    }

    /// Refers to its live parts in runs, if an earlier file that may be referred to holds
    /// every one of them; returns whether it did. Needs [`Self::found`] first.
    fn refer(
        &mut self,
        cohort: &Cohort,
        spots: &mut Vec<Option<Spot>>,
        out: &mut GroupEntries<'_>,
    ) -> bool {
        let found = self.found.as_mut().expect("found when the entries were counted");
        if found.runs.is_empty() {
            spots.clear();
            spots.resize(self.parts.len(), None);
            self.stored.each_spot(|part, spot| spots[part] = Some(spot));
            found.runs = live_runs(&self.parts, cohort, spots).unwrap_or_default();
        }
        let Some(&first) = found.runs.first() else { return false };
        if !out.may_refer(first, &self.stored) {
            return false;
        }
        for run in &found.runs {
            out.refer_to(*run, &self.stored);
        }
        true
    }
}

/// Where the live parts among `parts` are, joined into runs, if one file holds them all
/// (`spots`: where each part was last written, in the one file a value is remembered in).
fn live_runs(parts: &[Part], cohort: &Cohort, spots: &[Option<Spot>]) -> Option<Vec<Spot>> {
    let live = (parts.iter().zip(spots))
        .filter(|(part, _)| cohort.live[part.value as usize])
        .map(|(_, spot)| *spot);
    let mut runs: Vec<Spot> = Vec::new();
    for spot in live {
        let spot = spot?; // written nowhere, or not in the file it was last written into
        match runs.last_mut().and_then(|run| run.joined(spot).map(|joined| (run, joined))) {
            Some((run, joined)) => *run = joined,
            None => runs.push(spot),
        }
    }
    Some(runs)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::pieces::{BlockWriter, Piece, PlacedBlock};

    thread_local! {
        static ENCODED: Cell<usize> = const { Cell::new(0) };
    }

    /// A value with one entry in each of its groups, encoded as its name and the part.
    struct Value {
        name: u8,
        groups: Vec<KeyGroup>,
        /// Counts the cohorts and tests holding it.
        _token: Arc<()>,
        /// Encoded as its one group is written (see [`Handed::deferred`]).
        deferred: bool,
    }

    impl Handed for Value {
        fn encode(&self, sink: &mut dyn GroupSink) -> Result<()> {
            for (part, group) in self.groups.iter().enumerate() {
                ENCODED.with(|encoded| encoded.set(encoded.get() + 1));
                sink.group(*group).extend_from_slice(&[self.name, part as u8]);
                sink.appended(1);
            }
            Ok(())
        }

        fn deferred(&self) -> Option<(KeyGroup, usize)> {
            self.deferred.then(|| (self.groups[0], 1))
        }
    }

    fn value(name: u8, groups: &[KeyGroup]) -> (Value, Arc<()>) {
        let token = Arc::new(());
        let groups = groups.to_vec();
        (Value { name, groups, _token: Arc::clone(&token), deferred: false }, token)
    }

    const RANGE: fn() -> KeyGroupRange = || KeyGroupRange::for_subtask(4, 1, 0);

    /// What [`write`] wrote: the blocks, the file's bytes, the files the blocks refer to, and
    /// how many parts it wrote into its own file.
    type Written = (Vec<PlacedBlock>, Vec<u8>, Vec<String>, usize);

    /// The bytes of parts the cohorts keep.
    fn kept(cohorts: &Cohorts<Value>) -> usize {
        let layout = lock(&cohorts.shared.layout);
        layout.groups.iter().flatten().map(|group_cohort| group_cohort.encoded.len()).sum()
    }

    /// How many parts were encoded from values during the last [`write`].
    fn encoded() -> usize {
        ENCODED.with(Cell::get)
    }

    /// Writes every group of `frozen` into file `file` (`None`: a full snapshot), referring to
    /// the files `reusable` names.
    fn write(
        frozen: &FrozenCohorts<Value>,
        file: Option<&str>,
        reusable: &[&str],
    ) -> Result<Written> {
        ENCODED.with(|encoded| encoded.set(0));
        let reusable = |name: &str| reusable.contains(&name);
        let mut writer = match file {
            Some(file) => BlockWriter::incremental(file, &reusable),
            None => BlockWriter::full(),
        };
        let mut blocks = Vec::new();
        for group in RANGE().iter() {
            let mut entries = writer.group_entries();
            if frozen.encode_group(group, &mut entries)? {
                writer.entries(&entries);
                blocks.push(writer.finish_block(group));
            }
        }
        let (bytes, files) = writer.finish();
        // A block's header takes two bytes of its file, and so does each part written there.
        let written = (bytes.len() - 2 * blocks.len()) / 2;
        Ok((blocks, bytes.into_vec(), files, written))
    }

    /// Each block's bytes, from the files (by name) its pieces refer to.
    fn contents(
        blocks: &[PlacedBlock],
        names: &[String],
        files: &[(&str, &[u8])],
    ) -> Vec<(KeyGroup, Vec<u8>)> {
        let file = |index: usize| files.iter().find(|(name, _)| *name == names[index]).unwrap().1;
        let bytes = |piece: &Piece| {
            file(piece.file)[piece.offset as usize..(piece.offset + piece.len) as usize].to_vec()
        };
        blocks
            .iter()
            .map(|block| (block.group, block.pieces.iter().flat_map(bytes).collect()))
            .collect()
    }

    #[test]
    fn a_checkpoint_encodes_its_own_cohort_and_refers_to_earlier_ones() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let ((a, _), (b, b_token)) = (value(b'a', &[0, 1]), value(b'b', &[1]));
        let mut fresh = cohorts.fresh();
        let handle_a = fresh.add(a);
        fresh.add(b);
        let first = cohorts.hand(fresh, Vec::new(), false);
        let (blocks, one, names, written) = write(&first, Some("one"), &[]).unwrap();
        assert_eq!((written, encoded()), (3, 3));
        let files = [("one", one.as_slice())];
        let expected = [(0, b"\x00\x01a\x00".to_vec()), (1, b"\x00\x02a\x01b\x00".to_vec())];
        assert_eq!(contents(&blocks, &names, &files), expected);
        drop(first);
        assert_eq!(Arc::strong_count(&b_token), 1, "let go of once encoded");
        assert_eq!(kept(&cohorts), 6, "its bytes kept until its file may be referred to");

        // a ended, c is new: only c is encoded, b is referred to.
        let (c, _) = value(b'c', &[0]);
        let mut fresh = cohorts.fresh();
        fresh.add(c);
        let second = cohorts.hand(fresh, vec![handle_a], false);
        let (blocks, two, names, written) = write(&second, Some("two"), &["one"]).unwrap();
        assert_eq!((written, encoded()), (1, 1));
        assert_eq!(two, b"\x00\x01c\x00\x00\x01", "the headers and c");
        let files = [("one", one.as_slice()), ("two", two.as_slice())];
        let expected = [(0, b"\x00\x01c\x00".to_vec()), (1, b"\x00\x01b\x00".to_vec())];
        assert_eq!(contents(&blocks, &names, &files), expected);
        assert_eq!(kept(&cohorts), 2, "c's bytes; a's and b's let go of once referred to");
    }

    #[test]
    fn unchanged_parts_are_referred_to_as_found_and_found_again_once_a_value_ends() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let mut fresh = cohorts.fresh();
        let handles: Vec<Handle> =
            [b'a', b'b', b'c'].iter().map(|name| fresh.add(value(*name, &[1]).0)).collect();
        let first = cohorts.hand(fresh, Vec::new(), false);
        let (_, one, _, written) = write(&first, Some("one"), &[]).unwrap();
        assert_eq!(written, 3);
        // Each block's bytes, from file one and the file written.
        let read = |written: &Written, file: &str| {
            contents(&written.0, &written.2, &[("one", &one), (file, &written.1)])
        };
        // Found unchanged twice: referred to as one run both times.
        for file in ["two", "three"] {
            let frozen = cohorts.hand(cohorts.fresh(), Vec::new(), false);
            let written = write(&frozen, Some(file), &["one"]).unwrap();
            assert_eq!(written.3, 0, "{file} writes no part");
            assert_eq!(written.0[0].pieces.len(), 2, "{file}: its header and one run");
            assert_eq!(read(&written, file), [(1, b"\x00\x03a\x00b\x00c\x00".to_vec())]);
        }
        // b ended: the parts are found again, a and c referred to as two runs.
        let frozen = cohorts.hand(cohorts.fresh(), vec![handles[1]], false);
        let written = write(&frozen, Some("four"), &["one"]).unwrap();
        assert_eq!(written.3, 0);
        assert_eq!(written.0[0].pieces.len(), 3);
        assert_eq!(read(&written, "four"), [(1, b"\x00\x02a\x00c\x00".to_vec())]);
        // a and c ended too: the group has nothing left.
        let frozen = cohorts.hand(cohorts.fresh(), vec![handles[0], handles[2]], false);
        let written = write(&frozen, Some("five"), &["one"]).unwrap();
        assert!(written.0.is_empty(), "no block for an empty group");
    }

    #[test]
    fn live_parts_are_encoded_and_remembered_where_written_and_ended_ones_are_not() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let count = 37;
        let names: Vec<u8> = (0..count).map(|i| b'A' + i as u8).collect();
        let mut fresh = cohorts.fresh();
        let handles: Vec<Handle> =
            names.iter().map(|&name| fresh.add(value(name, &[1]).0)).collect();
        let first = cohorts.hand(fresh, Vec::new(), false);
        assert_eq!(write(&first, Some("one"), &[]).unwrap().3, count);
        // Every third value ends; the others are live.
        let ended: Vec<Handle> = handles.iter().step_by(3).copied().collect();
        let live: Vec<Option<u8>> = (0..count).map(|i| (i % 3 != 0).then_some(names[i])).collect();
        let mut expected = vec![0, (count - ended.len()) as u8];
        live.iter().flatten().for_each(|name| expected.extend([*name, 0]));
        let expected = [(1, expected)];
        // Written again (the first file may not be referred to), then referred to there.
        let frozen = cohorts.hand(cohorts.fresh(), ended, false);
        let again = write(&frozen, Some("again"), &[]).unwrap();
        assert_eq!(again.3, count - count.div_ceil(3), "ended parts are not written");
        assert_eq!(encoded(), 0, "from the bytes kept, not from the values");
        let frozen = cohorts.hand(cohorts.fresh(), Vec::new(), false);
        let referred = write(&frozen, Some("referred"), &["again"]).unwrap();
        assert_eq!(referred.3, 0, "every live part is where the pass before wrote it");
        let files = [("again", again.1.as_slice()), ("referred", referred.1.as_slice())];
        assert_eq!(contents(&again.0, &again.2, &files), expected);
        assert_eq!(contents(&referred.0, &referred.2, &files), expected);
    }

    #[test]
    fn a_checkpoint_that_did_not_complete_is_written_again_by_the_next() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'a', &[2]).0);
        let first = cohorts.hand(fresh, Vec::new(), false);
        let (_, one, _, _) = write(&first, Some("one"), &[]).unwrap();
        // The second checkpoint writes b but never completes.
        let mut fresh = cohorts.fresh();
        let (b, b_token) = value(b'b', &[2, 3]);
        let handle_b = fresh.add(b);
        let second = cohorts.hand(fresh, Vec::new(), false);
        let (_, two, _, written) = write(&second, Some("two"), &["one"]).unwrap();
        assert_eq!((written, two.len()), (2, 8));
        let third = cohorts.hand(cohorts.fresh(), Vec::new(), false);
        let (blocks, three, names, written) = write(&third, Some("three"), &["one"]).unwrap();
        assert_eq!((written, encoded()), (2, 0), "b again, from the bytes its cohort kept");
        let files = [("one", &one[..]), ("three", &three[..])];
        let expected = [(2, b"\x00\x02a\x00b\x00".to_vec()), (3, b"\x00\x01b\x01".to_vec())];
        assert_eq!(contents(&blocks, &names, &files), expected);
        assert_eq!(Arc::strong_count(&b_token), 1, "the value was let go of once encoded");
        assert_eq!(kept(&cohorts), 4, "b's bytes: three is not complete yet");
        let fourth = cohorts.hand(cohorts.fresh(), vec![handle_b], false);
        let (blocks, four, names, written) =
            write(&fourth, Some("four"), &["one", "three"]).unwrap();
        assert_eq!(written, 0);
        assert_eq!(kept(&cohorts), 0, "the bytes of an ended value are let go of");
        let files = [("one", &one[..]), ("four", &four[..])];
        assert_eq!(contents(&blocks, &names, &files), [(2, b"\x00\x01a\x00".to_vec())]);
    }

    #[test]
    fn a_completed_checkpoint_lets_go_of_the_values_it_wrote() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'a', &[0, 2]).0);
        let first = cohorts.hand(fresh, Vec::new(), false);
        let (_, one, _, _) = write(&first, Some("one"), &[]).unwrap();
        let completion = first.completion().expect("cohorts are told of completions");
        drop(first);
        assert_eq!(kept(&cohorts), 4, "kept while one may not complete");
        // Where each group's bytes of cohort `number` are.
        let buffers = |cohorts: &Cohorts<Value>, number: u64| -> Vec<*const u8> {
            let layout = lock(&cohorts.shared.layout);
            let of_cohort = layout.groups.iter().flatten().filter(|group| group.cohort == number);
            of_cohort.map(|group_cohort| group_cohort.encoded.as_ptr()).collect()
        };
        let first_buffers = buffers(&cohorts, 0);
        completion.completed();
        assert_eq!(kept(&cohorts), 0, "let go of once one completed");
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'b', &[0]).0);
        let second = cohorts.hand(fresh, Vec::new(), false);
        let (blocks, two, names, written) = write(&second, Some("two"), &["one"]).unwrap();
        assert_eq!(written, 1, "a referred to in one, b written");
        let reused = buffers(&cohorts, 1);
        assert!(first_buffers.contains(&reused[0]), "b's bytes went where a's were");
        let files = [("one", &one[..]), ("two", &two[..])];
        let expected = [(0, b"\x00\x02a\x00b\x00".to_vec()), (2, b"\x00\x01a\x01".to_vec())];
        assert_eq!(contents(&blocks, &names, &files), expected);
    }

    #[test]
    fn a_completion_lets_go_of_nothing_a_later_pass_or_a_full_one_may_write_again() {
        // A later checkpoint's changes were applied before the first one completed.
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'a', &[1]).0);
        let first = cohorts.hand(fresh, Vec::new(), false);
        write(&first, Some("one"), &[]).unwrap();
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'b', &[1]).0);
        let second = cohorts.hand(fresh, Vec::new(), false);
        write(&second, Some("two"), &[]).unwrap(); // "one" not complete when it started
        first.completion().unwrap().completed();
        assert_eq!(kept(&cohorts), 4, "two holds a (and b) in its own file");
        // Full checkpoints write every value each time.
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'c', &[1]).0);
        let first = cohorts.hand(fresh, Vec::new(), false);
        write(&first, None, &[]).unwrap();
        first.completion().unwrap().completed();
        assert_eq!(kept(&cohorts), 2, "the next full checkpoint writes c again");
    }

    #[test]
    fn a_full_writer_encodes_every_live_value_and_keeps_them() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'a', &[1]).0);
        let first = cohorts.hand(fresh, Vec::new(), false);
        write(&first, None, &[]).unwrap();
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'b', &[1]).0);
        let second = cohorts.hand(fresh, Vec::new(), false);
        let (blocks, bytes, _, written) = write(&second, None, &[]).unwrap();
        assert_eq!((written, encoded()), (2, 1), "a from its bytes, b encoded");
        assert_eq!(blocks.len(), 1);
        assert_eq!(bytes, b"\x00\x02a\x00b\x00");
        assert_eq!(kept(&cohorts), 4, "a full snapshot may need them again");
    }

    #[test]
    fn a_snapshot_older_than_the_changes_applied_is_refused() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'a', &[0]).0);
        let first = cohorts.hand(fresh, Vec::new(), false);
        let second = cohorts.hand(cohorts.fresh(), Vec::new(), false);
        write(&second, Some("two"), &[]).unwrap();
        assert!(matches!(
            write(&first, Some("one"), &[]),
            Err(Error::Incremental { cohort: 0, .. })
        ));
    }

    #[test]
    fn parts_outside_the_range_are_an_error() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let mut fresh = cohorts.fresh();
        fresh.add(value(b'a', &[9]).0);
        let frozen = cohorts.hand(fresh, Vec::new(), false);
        assert!(matches!(write(&frozen, Some("one"), &[]), Err(Error::KeyGroupOutOfRange { .. })));
    }

    #[test]
    fn a_deferred_value_is_encoded_as_its_group_is_written_and_kept_until_referred_to() {
        let mut cohorts = Cohorts::<Value>::new(RANGE());
        let (mut a, a_token) = value(b'a', &[2]);
        a.deferred = true;
        let mut fresh = cohorts.fresh();
        let handle = fresh.add(a);
        let first = cohorts.hand(fresh, Vec::new(), false);
        let (blocks, one, names, written) = write(&first, Some("one"), &[]).unwrap();
        assert_eq!((written, encoded()), (1, 1));
        assert_eq!(
            contents(&blocks, &names, &[("one", &one[..])]),
            [(2, b"\x00\x01a\x00".to_vec())]
        );
        assert_eq!(Arc::strong_count(&a_token), 2, "kept: one may not complete");
        // One never completes: two encodes a again, from the value kept.
        let second = cohorts.hand(cohorts.fresh(), Vec::new(), false);
        let (_, _, _, written) = write(&second, Some("two"), &[]).unwrap();
        assert_eq!((written, encoded()), (1, 1));
        second.completion().unwrap().completed();
        assert_eq!(Arc::strong_count(&a_token), 1, "let go of once two completed");
        let third = cohorts.hand(cohorts.fresh(), Vec::new(), false);
        assert_eq!(write(&third, Some("three"), &["two"]).unwrap().3, 0, "referred to in two");
        let fourth = cohorts.hand(cohorts.fresh(), vec![handle], false);
        assert!(write(&fourth, Some("four"), &[]).unwrap().0.is_empty(), "ended");
    }
}
