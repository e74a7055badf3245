//! Timers as a snapshot holds them, encoded per key group when the snapshot is written.
//!
//! A time's timers are encoded split by key group (see [`weir_state::encode_split`]). A
//! checkpoint takes only the times new or changed since the one before ([`FreshTime`], a
//! cohort: see `weir_state::Cohorts`), encodes each time once, appending each key group's
//! part to the checkpoint's bytes for that group, and refers to earlier checkpoints' files for
//! the rest. Windows register one time per window end and
//! leave it alone until it fires, so a checkpoint encodes and visits the timers of the
//! windows opened since the one before, not every timer. A savepoint takes every time
//! ([`FrozenTimers`]); each time's encoding, split by key group, stays with the time's shared
//! set (see [`Frozen::encoding`]), so a later savepoint that finds the time unchanged copies
//! those bytes instead of encoding its timers again.

use std::cell::OnceCell;
use std::sync::Arc;

use weir_state::{
    Frozen, FrozenTable, GroupEntries, GroupLayout, GroupSink, Handed, append_run,
    append_runs_header, encode_by_group, encode_split,
};
use weir_types::{Key, KeyGroup, Timestamp};

use crate::timers::Registered;

/// One time's registered timers as a snapshot holds them.
pub(crate) type FrozenSlot<K, N> = (Timestamp, Arc<Frozen<Registered<K, N>>>);

/// The registered timers of one time domain as they were at a savepoint, shared with the
/// queue until it changes them; encoded per key group on first use.
pub(crate) struct FrozenTimers<K, N> {
    slots: Vec<FrozenSlot<K, N>>,
    /// Where each key group's timers are, once the first was asked for.
    layout: OnceCell<GroupLayout>,
}

/// One time's timers as a checkpoint takes them.
pub(crate) struct FreshTime<K, N> {
    time: Timestamp,
    registered: Arc<Frozen<Registered<K, N>>>,
}

impl<K: Key, N: Key> FreshTime<K, N> {
    /// The timers `registered` at `time`.
    pub(crate) fn new(time: Timestamp, registered: Arc<Frozen<Registered<K, N>>>) -> Self {
        FreshTime { time, registered }
    }
}

impl<K: Key, N: Key> Handed for FreshTime<K, N> {
    fn encode(&self, sink: &mut dyn GroupSink) -> weir_state::Result<()> {
        split_time(self.time, &self.registered, sink)
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

impl<K: Key, N: Key> FrozenTimers<K, N> {
    pub(crate) fn new(slots: Vec<FrozenSlot<K, N>>) -> Self {
        FrozenTimers { slots, layout: OnceCell::new() }
    }

    /// The encoding of slot `slot`'s timers, computed once per time.
    fn encoding(&self, slot: usize) -> weir_state::Result<&[u8]> {
        let (time, registered) = &self.slots[slot];
        registered.encoding(|timers| encode_time(*time, timers))
    }
}

/// The timers of `time` encoded split by key group into `sink` (see [`encode_split`]), each
/// group's as runs ([`append_timers`]).
fn split_time<K: Key, N: Key>(
    time: Timestamp,
    registered: &Registered<K, N>,
    sink: &mut dyn GroupSink,
) -> weir_state::Result<()> {
    let append = |run: &[u32], out: &mut Vec<u8>| append_timers(time, registered, run, out);
    encode_split(registered.len(), |index| registered[index], append, sink)
}

/// The timers of `time` encoded split by key group, with a header per group (see
/// [`encode_by_group`]).
fn encode_time<K: Key, N: Key>(
    time: Timestamp,
    registered: &Registered<K, N>,
) -> weir_state::Result<Vec<u8>> {
    encode_by_group(|sink| split_time(time, registered, sink))
}

impl<K: Key, N: Key> FrozenTable for FrozenTimers<K, N> {
    fn encode_group<'a>(
        &'a self,
        group: KeyGroup,
        out: &mut GroupEntries<'a>,
    ) -> weir_state::Result<bool> {
        if self.layout.get().is_none() {
            let _ =
                self.layout.set(GroupLayout::of(0..self.slots.len(), |slot| self.encoding(slot))?);
        }
        let layout = self.layout.get().expect("set just above");
        let count = layout.count(group);
        if count == 0 {
            return Ok(false);
        }
        append_runs_header(out.bytes(), count)?;
        layout.append_group(group, |slot| self.encoding(slot), out.bytes())?;
        Ok(true)
    }

    fn is_empty(&self) -> bool {
        self.slots.iter().all(|(_, registered)| registered.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each key group's entries as a value appends them: (group, count, bytes).
    #[derive(Default)]
    struct Groups(Vec<(KeyGroup, usize, Vec<u8>)>);

    impl GroupSink for Groups {
        fn group(&mut self, group: KeyGroup) -> &mut Vec<u8> {
            self.0.push((group, 0, Vec::new()));
            &mut self.0.last_mut().expect("pushed").2
        }

        fn appended(&mut self, count: usize) {
            self.0.last_mut().expect("a group was asked for").1 = count;
        }
    }

    #[test]
    fn a_time_encodes_the_same_entries_whole_and_group_by_group() {
        let mut registered = Registered::<u64, u32>::default();
        for key in 0..100u64 {
            registered.insert((key, (key % 3) as u32), (key % 5) as KeyGroup);
        }
        let fresh = FreshTime::new(42, weir_state::Shareable::Owned(registered.clone()).share());
        let whole = encode_time(42, &registered).unwrap();
        let layout = GroupLayout::of([0], |_| Ok(&whole[..])).unwrap();
        let mut groups = Groups::default();
        fresh.encode(&mut groups).unwrap();
        assert_eq!(groups.0.iter().map(|(group, ..)| *group).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        for (group, count, entries) in groups.0 {
            assert_eq!(count, 20);
            assert_eq!(layout.count(group), count);
            let mut part = Vec::new();
            layout.append_group(group, |_| Ok(&whole[..]), &mut part).unwrap();
            assert_eq!(part, entries, "group {group}");
        }
    }
}
