//! Timers as a snapshot holds them, encoded per key group when the snapshot is written.
//!
//! A time's timers are encoded split by key group ([`encode_time`]; put in key-group order by
//! counting, see [`ByGroup`]). A checkpoint takes only the times new or changed since the one
//! before ([`FreshTime`], a cohort: see `weir_state::Cohorts`), encodes each time as it takes
//! its parts (while it reads the whole set anyway: encoding a part later would reach each
//! timer again from memory), copies each key group's part into the group's entries, and
//! refers to earlier checkpoints' files for the rest. Windows register one time per window end and
//! leave it alone until it fires, so a checkpoint encodes and visits the timers of the
//! windows opened since the one before, not every timer. A savepoint takes every time
//! ([`FrozenTimers`]); each time's encoding, split by key group, stays with the time's shared
//! set (see [`Frozen::encoding`]), so a later savepoint that finds the time unchanged copies
//! those bytes instead of encoding its timers again.

use std::cell::OnceCell;
use std::ops::Range;
use std::sync::Arc;

use weir_state::{Frozen, FrozenTable, GroupEntries, Handed, append_run, append_runs_header};
use weir_types::{Key, KeyGroup, Timestamp};

use crate::timers::Registered;

/// One time's registered timers as a snapshot holds them.
pub(crate) type FrozenSlot<K, N> = (Timestamp, Arc<Frozen<Registered<K, N>>>);

/// The registered timers of one time domain as they were at a savepoint, shared with the
/// queue until it changes them; encoded per key group on first use.
pub(crate) struct FrozenTimers<K, N> {
    slots: Vec<FrozenSlot<K, N>>,
    /// Where each key group's timers are (indexed by group), once the first was asked for.
    layout: OnceCell<Vec<GroupTimers>>,
}

/// One key group's timers: how many, and their parts of the times' encodings.
#[derive(Default)]
struct GroupTimers {
    count: usize,
    parts: Vec<TimerPart>,
}

/// One key group's timers of one time: the time's slot, and the part's bytes in its encoding.
struct TimerPart {
    slot: usize,
    range: Range<usize>,
}

/// One time's timers as a checkpoint takes them.
pub(crate) struct FreshTime<K, N> {
    time: Timestamp,
    registered: Arc<Frozen<Registered<K, N>>>,
    /// The timers encoded by key group ([`encode_time`]), once the writing side asked for
    /// their parts: encoded while it reads the whole set anyway, and kept for as long as the
    /// cohort keeps the time.
    encoding: OnceCell<Vec<u8>>,
}

impl<K: Key, N: Key> FreshTime<K, N> {
    /// The timers `registered` at `time`.
    pub(crate) fn new(time: Timestamp, registered: Arc<Frozen<Registered<K, N>>>) -> Self {
        FreshTime { time, registered, encoding: OnceCell::new() }
    }

    fn encoding(&self) -> weir_state::Result<&[u8]> {
        if let Some(encoding) = self.encoding.get() {
            return Ok(encoding);
        }
        let encoding = encode_time(self.time, &self.registered)?;
        Ok(self.encoding.get_or_init(|| encoding))
    }
}

impl<K: Key, N: Key> Handed for FreshTime<K, N> {
    fn parts(&self, part: &mut dyn FnMut(KeyGroup, usize)) -> weir_state::Result<()> {
        parts(self.encoding()?).for_each(|(group, count, _)| part(group, count));
        Ok(())
    }

    fn encode_part(&self, part: usize, out: &mut Vec<u8>) -> weir_state::Result<()> {
        out.extend_from_slice(nth_part(self.encoding()?, part).2);
        Ok(())
    }
}

/// A time's timers in key-group order: their indices in the time's set, and where each key
/// group's run of them ends.
struct ByGroup {
    order: Vec<u32>,
    /// Each key group with timers, in order, with the end of its run in `order`.
    ends: Vec<(KeyGroup, u32)>,
}

impl ByGroup {
    /// Orders `registered` by key group: by counting when the groups span not much more than
    /// there are timers (a window's timers: one per key), else by sorting.
    fn of<K, N>(registered: &Registered<K, N>) -> Self {
        let groups = || registered.values().copied();
        let (Some(min), Some(max)) = (groups().min(), groups().max()) else {
            return ByGroup { order: Vec::new(), ends: Vec::new() };
        };
        let span = usize::from(max - min) + 1;
        let mut order: Vec<u32> = (0..to_u32(registered.len())).collect();
        if span > 2 * registered.len() + 64 {
            order.sort_unstable_by_key(|&index| registered[index as usize]);
        } else {
            let mut next = vec![0u32; span];
            groups().for_each(|group| next[usize::from(group - min)] += 1);
            let mut end = 0;
            for slot in &mut next {
                (*slot, end) = (end, end + *slot); // where each group's run starts
            }
            for (index, group) in groups().enumerate() {
                let at = &mut next[usize::from(group - min)];
                order[*at as usize] = to_u32(index);
                *at += 1;
            }
        }
        let group_of = |at: usize| registered[order[at] as usize];
        let ends = (0..order.len())
            .filter(|&at| at + 1 == order.len() || group_of(at + 1) != group_of(at))
            .map(|at| (group_of(at), to_u32(at + 1)))
            .collect();
        ByGroup { order, ends }
    }

    /// Each key group with timers, in order, with the indices of its timers.
    fn runs(&self) -> impl Iterator<Item = (KeyGroup, &[u32])> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(_, end)| end));
        (self.ends.iter().zip(starts))
            .map(|(&(group, end), start)| (group, &self.order[start as usize..end as usize]))
    }
}

/// Appends the timers at `indices` of `registered`, all at `time`, as runs (see
/// [`weir_state::append_run`]): each run's namespace is a timer's namespace and the time,
/// its entries the keys with no value, so a window's timers cost one key each. Returns how
/// many timers it wrote.
fn append_timers<K: Key, N: Key>(
    time: Timestamp,
    registered: &Registered<K, N>,
    indices: &[u32],
    out: &mut Vec<u8>,
) -> weir_state::Result<usize> {
    let timer = |index: u32| registered.get_index(index as usize).expect("in the set").0;
    let mut written = 0;
    for run in indices.chunk_by(|&a, &b| timer(a).1 == timer(b).1) {
        let namespace = (timer(run[0]).1.clone(), time);
        written += append_run(&namespace, run.iter().map(|&index| (&timer(index).0, &())), out)?;
    }
    Ok(written)
}

/// A key group's header in a time's encoding: the group (u16), the number of entries (u32)
/// and where they start in the encoding (u32), little-endian.
const HEADER: usize = 10;

/// The number of key groups (u32, little-endian) that starts a time's encoding.
const GROUPS: usize = 4;

impl<K: Key, N: Key> FrozenTimers<K, N> {
    pub(crate) fn new(slots: Vec<FrozenSlot<K, N>>) -> Self {
        FrozenTimers { slots, layout: OnceCell::new() }
    }

    /// The encoding of slot `slot`'s timers, computed once per time.
    fn encoding(&self, slot: usize) -> weir_state::Result<&[u8]> {
        let (time, registered) = &self.slots[slot];
        registered.encoding(|timers| encode_time(*time, timers))
    }

    /// Where every key group's timers are in the times' encodings, by group.
    fn layout(&self) -> weir_state::Result<Vec<GroupTimers>> {
        let mut layout: Vec<GroupTimers> = Vec::new();
        for slot in 0..self.slots.len() {
            let encoding = self.encoding(slot)?;
            for (group, count, entries) in parts(encoding) {
                let start = entries.as_ptr() as usize - encoding.as_ptr() as usize;
                let group = usize::from(group);
                if layout.len() <= group {
                    layout.resize_with(group + 1, GroupTimers::default);
                }
                let timers = &mut layout[group];
                timers.count += count;
                timers.parts.push(TimerPart { slot, range: start..start + entries.len() });
            }
        }
        Ok(layout)
    }
}

/// The timers of `time` encoded by key group: the number of groups ([`GROUPS`]), a [`HEADER`]
/// for each group in order, then each group's timers as runs ([`append_timers`]), as blocks
/// hold them. The headers come together, so laying out a snapshot reads them in one stretch, and
/// each says where its group's entries start, so any one group's are found at once.
fn encode_time<K: Key, N: Key>(
    time: Timestamp,
    registered: &Registered<K, N>,
) -> weir_state::Result<Vec<u8>> {
    let by_group = ByGroup::of(registered);
    let groups = by_group.ends.len();
    let mut out = Vec::with_capacity(GROUPS + groups * HEADER + 16 * registered.len());
    out.extend_from_slice(&to_u32(groups).to_le_bytes());
    out.resize(GROUPS + groups * HEADER, 0);
    for (index, (group, run)) in by_group.runs().enumerate() {
        let start = out.len();
        let count = append_timers(time, registered, run, &mut out)?;
        let header = GROUPS + index * HEADER;
        out[header..header + 2].copy_from_slice(&group.to_le_bytes());
        out[header + 2..header + 6].copy_from_slice(&to_u32(count).to_le_bytes());
        out[header + 6..header + HEADER].copy_from_slice(&to_u32(start).to_le_bytes());
    }
    Ok(out)
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).expect("one time's timers of one key group encode to under 4 GiB")
}

/// The key groups of an [`encode_time`] encoding: (group, number of entries, entries).
fn parts(encoded: &[u8]) -> impl Iterator<Item = (KeyGroup, usize, &[u8])> {
    (0..group_count(encoded)).map(|part| nth_part(encoded, part))
}

/// The number of key groups in an [`encode_time`] encoding.
fn group_count(encoded: &[u8]) -> usize {
    let groups = encoded.first_chunk::<GROUPS>().expect("a time's encoding");
    u32::from_le_bytes(*groups) as usize
}

/// Key group `part` of an [`encode_time`] encoding: (group, number of entries, entries).
fn nth_part(encoded: &[u8], part: usize) -> (KeyGroup, usize, &[u8]) {
    let field = |header: &[u8], at: usize| {
        u32::from_le_bytes(header[at..at + 4].try_into().expect("four bytes")) as usize
    };
    let header = &encoded[GROUPS + part * HEADER..GROUPS + (part + 1) * HEADER];
    let start = field(header, 6);
    let end = match part + 1 < group_count(encoded) {
        true => field(&encoded[GROUPS + (part + 1) * HEADER..], 6),
        false => encoded.len(),
    };
    (KeyGroup::from_le_bytes([header[0], header[1]]), field(header, 2), &encoded[start..end])
}

impl<K: Key, N: Key> FrozenTable for FrozenTimers<K, N> {
    fn encode_group<'a>(
        &'a self,
        group: KeyGroup,
        out: &mut GroupEntries<'a>,
    ) -> weir_state::Result<bool> {
        if self.layout.get().is_none() {
            let _ = self.layout.set(self.layout()?);
        }
        let layout = self.layout.get().map_or(&[][..], Vec::as_slice);
        let Some(timers) = layout.get(usize::from(group)).filter(|timers| timers.count > 0) else {
            return Ok(false);
        };
        append_runs_header(out.bytes(), timers.count)?;
        for TimerPart { slot, range } in &timers.parts {
            out.bytes().extend_from_slice(&self.encoding(*slot)?[range.clone()]);
        }
        Ok(true)
    }

    fn is_empty(&self) -> bool {
        self.slots.iter().all(|(_, registered)| registered.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `by_group` lists every timer of `registered` once, in runs of one key group
    /// each, in group order.
    fn check(registered: &Registered<u64, u32>, by_group: &ByGroup) {
        let mut seen = vec![false; registered.len()];
        let mut last = None;
        for (group, run) in by_group.runs() {
            assert!(!run.is_empty() && last < Some(group), "runs in group order");
            last = Some(group);
            for &index in run {
                assert_eq!(registered[index as usize], group);
                assert!(!std::mem::replace(&mut seen[index as usize], true), "listed once");
            }
        }
        assert!(seen.into_iter().all(|seen| seen), "every timer listed");
    }

    #[test]
    fn timers_are_put_in_key_group_order_by_counting_or_by_sorting() {
        let mut registered = Registered::<u64, u32>::default();
        assert_eq!(ByGroup::of(&registered).runs().count(), 0);
        for key in 0..500u64 {
            registered.insert((key, 0), (key * 7 % 64) as KeyGroup + 10); // counted
        }
        let by_group = ByGroup::of(&registered);
        assert_eq!(by_group.runs().count(), 64);
        check(&registered, &by_group);
        for key in 500..520u64 {
            registered.insert((key, 1), 30_000 - key as KeyGroup); // a wide span: sorted
        }
        let by_group = ByGroup::of(&registered);
        assert_eq!(by_group.runs().count(), 84);
        check(&registered, &by_group);
    }

    #[test]
    fn a_time_encodes_the_same_entries_whole_and_by_part() {
        let mut registered = Registered::<u64, u32>::default();
        for key in 0..100u64 {
            registered.insert((key, (key % 3) as u32), (key % 5) as KeyGroup);
        }
        let fresh = FreshTime::new(42, weir_state::Shareable::Owned(registered.clone()).share());
        let whole = encode_time(42, &registered).unwrap();
        let mut index = 0;
        fresh
            .parts(&mut |group, count| {
                let (whole_group, whole_count, entries) = nth_part(&whole, index);
                assert_eq!((group, count), (whole_group, whole_count));
                let mut part = Vec::new();
                fresh.encode_part(index, &mut part).unwrap();
                assert_eq!(part, entries);
                index += 1;
            })
            .unwrap();
        assert_eq!(index, 5);
    }
}
