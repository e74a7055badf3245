//! Timers as a snapshot holds them, encoded per key group when the snapshot is written.
//!
//! Each time's timers are encoded once, split by key group, and the encoding stays with the
//! time's shared set (see [`Frozen::encoding`]): a later snapshot that finds the time
//! unchanged copies those bytes instead of encoding its timers again. A checkpoint takes
//! only the times new or changed since the one before ([`FreshTime`], a cohort: see
//! `weir_state::Cohorts`), writes each key group's part of them, and refers to earlier
//! checkpoints' files for the rest. Windows register one time per window end and leave it
//! alone until it fires, so a checkpoint encodes and visits the timers of the windows opened
//! since the one before, not every timer. A savepoint takes every time ([`FrozenTimers`]).

use std::cell::OnceCell;
use std::ops::Range;
use std::sync::Arc;

use weir_state::{Frozen, FrozenTable, GroupEntries, Handed, append_count, append_entries};
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
    pub(crate) time: Timestamp,
    pub(crate) registered: Arc<Frozen<Registered<K, N>>>,
}

impl<K: Key, N: Key> FreshTime<K, N> {
    /// The time's timers encoded by key group, computed once.
    fn encoding(&self) -> weir_state::Result<&[u8]> {
        self.registered.encoding(|timers| encode_time(self.time, timers))
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
/// for each group in order, then each group's entries `(key, namespace, time)` as blocks hold
/// them. The headers come together, so laying out a snapshot reads them in one stretch, and
/// each says where its group's entries start, so any one group's are found at once.
fn encode_time<K: Key, N: Key>(
    time: Timestamp,
    registered: &Registered<K, N>,
) -> weir_state::Result<Vec<u8>> {
    let mut timers: Vec<(KeyGroup, &K, &N)> =
        registered.iter().map(|((key, namespace), group)| (*group, key, namespace)).collect();
    timers.sort_unstable_by_key(|(group, _, _)| *group);
    let groups = timers.chunk_by(|a, b| a.0 == b.0).count();
    let mut out = Vec::with_capacity(GROUPS + groups * HEADER + 16 * timers.len());
    out.extend_from_slice(&to_u32(groups).to_le_bytes());
    out.resize(GROUPS + groups * HEADER, 0);
    for (index, run) in timers.chunk_by(|a, b| a.0 == b.0).enumerate() {
        let start = out.len();
        let count = append_entries(
            run.iter().map(|(_, key, namespace)| (*key, *namespace, &time)),
            &mut out,
        )?;
        let fields = [
            &run[0].0.to_le_bytes()[..],
            &to_u32(count).to_le_bytes(),
            &to_u32(start).to_le_bytes(),
        ];
        let header = GROUPS + index * HEADER;
        out[header..header + HEADER].copy_from_slice(&fields.concat());
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
        append_count(out.bytes(), timers.count)?;
        for TimerPart { slot, range } in &timers.parts {
            out.bytes().extend_from_slice(&self.encoding(*slot)?[range.clone()]);
        }
        Ok(true)
    }

    fn is_empty(&self) -> bool {
        self.slots.iter().all(|(_, registered)| registered.is_empty())
    }
}
