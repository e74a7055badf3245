//! Timers of a keyed operator: event-time timers fire when the watermark passes them,
//! processing-time timers when the wall clock does. One timer per (key, namespace,
//! timestamp): registering it again changes nothing.
//!
//! A snapshot shares each time's registered set (see [`Shareable`]) and encodes it per key
//! group later, off the task's thread (see [`crate::timer_snapshot`]): the task pays for the
//! times that change while the snapshot holds them, not for every timer. A checkpoint takes
//! only the times new or changed since the one before (see `weir_state::Cohorts`), listed as
//! they change; a savepoint takes every time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hash;

use hashbrown::{DefaultHashBuilder, HashMap};
use indexmap::IndexMap;
use weir_state::{
    Changes, Cohorts, Handle, KeyedRestore, KeyedSnapshot, Shareable, Sharing, decode_entries,
};
use weir_types::{Key, KeyGroup, KeyGroupRange, Timestamp, Watermark};

use crate::TimeDomain;
use crate::timer_snapshot::{FreshTime, FrozenTimers};

/// Timers of one time domain, ordered by time. Timers are kept per time, each time with its
/// own set, so the per-record duplicate check touches only the timers of one time: for
/// windows, those of the window's end, which the keys of a window share and which are all
/// fired and dropped together.
#[derive(Debug)]
struct TimerQueue<K, N> {
    slots: HashMap<Timestamp, Slot<K, N>>,
    /// The times of `slots`, each once, earliest on top.
    times: BinaryHeap<Reverse<Timestamp>>,
    len: usize,
    /// The times new or changed since the last checkpoint took them, and the handles of
    /// those it took that changed or fired since.
    changes: Changes<Timestamp>,
    /// What checkpoints took (from the first one on).
    cohorts: Option<Cohorts<FreshTime<K, N>>>,
}

/// The timers of one time: each `(key, namespace)` once, with its key's group, in a dense
/// vector (popped from its end, deleted by swapping the last one in) behind a hash index.
pub(crate) type Registered<K, N> = IndexMap<(K, N), KeyGroup, DefaultHashBuilder>;

/// The timers of one time, shared with the snapshots taken since they last changed.
#[derive(Debug)]
struct Slot<K, N> {
    registered: Shareable<Registered<K, N>>,
    /// Whether the timers are in key-group order, as they fire: firing a time's timers
    /// group by group reaches each group's state once instead of once per key.
    ordered: bool,
    /// Its handle in the cohort of the checkpoint that took it, while unchanged since.
    handle: Option<Handle>,
}

impl<K: Hash + Eq + Clone, N: Hash + Eq + Clone> Slot<K, N> {
    /// The timers of `time` to change: a checkpoint that took them no longer holds them as
    /// they are.
    #[inline]
    fn to_mut(
        &mut self,
        time: Timestamp,
        changes: &mut Changes<Timestamp>,
    ) -> &mut Registered<K, N> {
        changes.changing(&mut self.handle, time);
        self.registered.to_mut()
    }
}

/// A timer that fired: its time, its key with the key's group, and its namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FiredTimer<K, N> {
    /// When it was due.
    pub time: Timestamp,
    /// The key it was registered for.
    pub key: K,
    /// The key group of `key`.
    pub group: KeyGroup,
    /// The namespace it was registered in (the window, for window operators).
    pub namespace: N,
}

/// A borrowed timer, to look up `(K, N)` without cloning them.
struct TimerRef<'a, K, N>(&'a K, &'a N);

impl<K: Hash, N: Hash> Hash for TimerRef<'_, K, N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As the tuple `(K, N)` hashes.
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl<K: Eq, N: Eq> hashbrown::Equivalent<(K, N)> for TimerRef<'_, K, N> {
    fn equivalent(&self, (key, namespace): &(K, N)) -> bool {
        self.0 == key && self.1 == namespace
    }
}

impl<K, N> Default for Slot<K, N> {
    fn default() -> Self {
        Slot { registered: Shareable::default(), ordered: false, handle: None }
    }
}

impl<K, N> Default for TimerQueue<K, N> {
    fn default() -> Self {
        TimerQueue {
            slots: HashMap::new(),
            times: BinaryHeap::new(),
            len: 0,
            changes: Changes::default(),
            cohorts: None,
        }
    }
}

impl<K: Hash + Eq + Clone, N: Hash + Eq + Clone> TimerQueue<K, N> {
    fn register(&mut self, key: &K, group: KeyGroup, namespace: &N, time: Timestamp) {
        let slot = match self.slots.get_mut(&time) {
            Some(slot) => slot,
            None => {
                self.times.push(Reverse(time));
                self.changes.created(time);
                self.slots.entry(time).or_default()
            }
        };
        if slot.registered.contains_key(&TimerRef(key, namespace)) {
            return;
        }
        slot.to_mut(time, &mut self.changes).insert((key.clone(), namespace.clone()), group);
        slot.ordered = false;
        self.len += 1;
    }

    /// Deletes the timer, if it is registered.
    fn delete(&mut self, key: &K, namespace: &N, time: Timestamp) {
        let Some(slot) = self.slots.get_mut(&time) else { return };
        let timer = TimerRef(key, namespace);
        // Looked up first: a snapshot may hold the set, and only a change copies it.
        if slot.registered.contains_key(&timer) {
            slot.to_mut(time, &mut self.changes).swap_remove(&timer);
            slot.ordered = false;
            self.len -= 1;
        }
    }

    /// A timer at or before `until` (the earliest time first; within one time, in key-group
    /// order, as Flink's per-key-group timer queues fire), removed.
    fn pop_due(&mut self, until: Timestamp) -> Option<FiredTimer<K, N>> {
        loop {
            let &Reverse(time) = self.times.peek()?;
            if time > until {
                return None;
            }
            let slot = self.slots.get_mut(&time).expect("every queued time has a slot");
            let popped = (!slot.registered.is_empty()).then(|| {
                let ordered = std::mem::replace(&mut slot.ordered, true);
                let registered = slot.to_mut(time, &mut self.changes);
                if !ordered {
                    // Popped from the end: the highest group first.
                    registered.sort_unstable_by(|_, a, _, b| a.cmp(b));
                }
                registered.pop().expect("not empty")
            });
            if slot.registered.is_empty() {
                self.slots.remove(&time);
                self.times.pop();
            }
            if let Some(((key, namespace), group)) = popped {
                self.len -= 1;
                return Some(FiredTimer { time, key, group, namespace });
            }
        }
    }

    fn next_time(&self) -> Option<Timestamp> {
        self.times.peek().map(|&Reverse(time)| time)
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl<K: Key, N: Key> TimerQueue<K, N> {
    /// Adds the registered timers to `snapshot` under `name`, to be encoded per key group of
    /// their key (within `range`) when the snapshot's blocks are asked for: those new or
    /// changed since the checkpoint before, or all of them, as `sharing` says.
    fn snapshot(
        &mut self,
        name: &str,
        range: KeyGroupRange,
        snapshot: &mut KeyedSnapshot,
        sharing: Sharing,
    ) {
        if sharing == Sharing::Everything {
            let slots = self.slots.iter_mut().map(|(time, slot)| (*time, slot.registered.share()));
            let frozen = FrozenTimers::new(slots.collect());
            snapshot.defer(name, range, Box::new(frozen));
            return;
        }
        let cohorts = self.cohorts.get_or_insert_with(|| Cohorts::new(range));
        let mut fresh = cohorts.fresh();
        let mut ended = Vec::new();
        let changed = self.changes.take(&mut ended);
        for time in changed.unwrap_or_else(|| self.slots.keys().copied().collect()) {
            let Some(slot) = self.slots.get_mut(&time) else { continue }; // fired since
            if slot.handle.is_none() && !slot.registered.is_empty() {
                let registered = slot.registered.share();
                slot.handle = Some(fresh.add(FreshTime::new(time, registered)));
            }
        }
        let frozen = cohorts.hand(fresh, ended, self.len == 0);
        snapshot.defer(name, range, Box::new(frozen));
    }

    /// Registers the timers stored under `name` in `restore`: entries of a key, a namespace
    /// and its time and no value (the bytes of `(key, namespace, time)` in a listed section).
    fn restore(&mut self, name: &str, restore: &mut KeyedRestore) -> weir_state::Result<()> {
        for (group, bytes) in restore.take(name) {
            decode_entries(&bytes, |key: K, (namespace, time): (N, Timestamp), (): ()| {
                self.register(&key, group, &namespace, time)
            })?;
        }
        Ok(())
    }
}

/// Names under which timers are stored in keyed snapshots.
const EVENT_TIMERS: &str = "_timers/event";
const PROCESSING_TIMERS: &str = "_timers/processing";

impl<K: Key, N: Key> TimerService<K, N> {
    /// Adds every registered timer to `snapshot`, in the key group of its key (encoded when
    /// the snapshot's blocks are asked for; a checkpoint takes what changed since the one
    /// before and refers to earlier ones for the rest, as `sharing` says).
    pub fn snapshot(
        &mut self,
        range: KeyGroupRange,
        snapshot: &mut KeyedSnapshot,
        sharing: Sharing,
    ) {
        self.event.snapshot(EVENT_TIMERS, range, snapshot, sharing);
        self.processing.snapshot(PROCESSING_TIMERS, range, snapshot, sharing);
    }

    /// Registers the timers a snapshot held (the watermark starts again from its minimum;
    /// processing-time timers already due fire at once).
    pub fn restore(&mut self, restore: &mut KeyedRestore) -> weir_state::Result<()> {
        self.event.restore(EVENT_TIMERS, restore)?;
        self.processing.restore(PROCESSING_TIMERS, restore)
    }
}

/// The event-time and processing-time timers of one keyed operator subtask, and the current
/// watermark.
#[derive(Debug)]
pub struct TimerService<K, N = ()> {
    event: TimerQueue<K, N>,
    processing: TimerQueue<K, N>,
    watermark: Watermark,
}

impl<K, N> Default for TimerService<K, N> {
    fn default() -> Self {
        TimerService {
            event: TimerQueue::default(),
            processing: TimerQueue::default(),
            watermark: Watermark::MIN,
        }
    }
}

impl<K: Hash + Eq + Clone, N: Hash + Eq + Clone> TimerService<K, N> {
    /// No timers, watermark at its minimum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a timer for `key` (of key group `group`) and `namespace` at `time` in
    /// `domain`.
    pub fn register(
        &mut self,
        domain: TimeDomain,
        (key, group): (&K, KeyGroup),
        namespace: &N,
        time: Timestamp,
    ) {
        self.queue(domain).register(key, group, namespace, time);
    }

    /// Deletes the timer for `key` and `namespace` at `time` in `domain`, if there is one.
    pub fn delete(&mut self, domain: TimeDomain, key: &K, namespace: &N, time: Timestamp) {
        self.queue(domain).delete(key, namespace, time);
    }

    fn queue(&mut self, domain: TimeDomain) -> &mut TimerQueue<K, N> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Records the new watermark; event-time timers up to it become due.
    pub fn advance_watermark(&mut self, watermark: Watermark) {
        self.watermark = self.watermark.max(watermark);
    }

    /// The current watermark.
    pub fn watermark(&self) -> Watermark {
        self.watermark
    }

    /// The next event-time timer at or before the watermark, removed.
    pub fn pop_event_timer(&mut self) -> Option<FiredTimer<K, N>> {
        self.event.pop_due(self.watermark.timestamp())
    }

    /// The next processing-time timer at or before `now`, removed.
    pub fn pop_processing_timer(&mut self, now: Timestamp) -> Option<FiredTimer<K, N>> {
        self.processing.pop_due(now)
    }

    /// When the earliest processing-time timer is due.
    pub fn next_processing_time(&self) -> Option<Timestamp> {
        self.processing.next_time()
    }

    /// Number of registered timers in `domain`.
    pub fn len(&self, domain: TimeDomain) -> usize {
        match domain {
            TimeDomain::EventTime => self.event.len(),
            TimeDomain::ProcessingTime => self.processing.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_types::key_group_for_key;

    use super::*;

    /// `key` with its key group among 128.
    fn scoped<K: serde::Serialize + std::fmt::Debug + 'static>(key: &K) -> (&K, KeyGroup) {
        (key, key_group_for_key(key, 128).unwrap())
    }

    /// The timers the watermark fires, in time order, each time's sorted by key.
    fn fire<K: Hash + Eq + Clone + Ord>(
        timers: &mut TimerService<K>,
        watermark: i64,
    ) -> Vec<(i64, K)> {
        timers.advance_watermark(Watermark(watermark));
        let mut fired: Vec<_> =
            std::iter::from_fn(|| timers.pop_event_timer()).map(|f| (f.time, f.key)).collect();
        fired.sort();
        fired
    }

    #[test]
    fn event_timers_fire_in_time_order_once_per_key_and_time() {
        let mut timers = TimerService::new();
        timers.register(TimeDomain::EventTime, scoped(&"b"), &(), 20);
        timers.register(TimeDomain::EventTime, scoped(&"a"), &(), 10);
        timers.register(TimeDomain::EventTime, scoped(&"a"), &(), 10);
        timers.register(TimeDomain::EventTime, scoped(&"c"), &(), 10);
        assert_eq!(timers.len(TimeDomain::EventTime), 3);
        assert_eq!(fire(&mut timers, 9), vec![]);
        assert_eq!(fire(&mut timers, 15), vec![(10, "a"), (10, "c")]);
        assert_eq!(fire(&mut timers, 15), vec![], "fired timers are gone");
        assert_eq!(fire(&mut timers, 20), vec![(20, "b")]);
    }

    #[test]
    fn the_timers_of_one_time_fire_group_by_group() {
        let mut timers: TimerService<u64> = TimerService::new();
        for key in 0..500 {
            timers.register(TimeDomain::EventTime, scoped(&key), &(), 10);
        }
        timers.delete(TimeDomain::EventTime, &7, &(), 10);
        timers.register(TimeDomain::EventTime, scoped(&1000), &(), 10);
        timers.advance_watermark(Watermark(10));
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_event_timer()).collect();
        let groups: Vec<_> = fired.iter().map(|timer| timer.group).collect();
        assert!(groups.windows(2).all(|pair| pair[0] >= pair[1]), "{groups:?}");
        let mut keys: Vec<_> = fired.iter().map(|timer| timer.key).collect();
        keys.sort();
        let expected: Vec<u64> = (0..500).filter(|&key| key != 7).chain([1000]).collect();
        assert_eq!(keys, expected);
        assert!(fired.iter().all(|timer| scoped(&timer.key).1 == timer.group));
    }

    #[test]
    fn deleted_timers_do_not_fire_and_can_be_registered_again() {
        let mut timers = TimerService::new();
        timers.register(TimeDomain::EventTime, scoped(&"a"), &(), 10);
        timers.delete(TimeDomain::EventTime, &"a", &(), 10);
        assert_eq!(fire(&mut timers, 100), vec![]);
        timers.register(TimeDomain::EventTime, scoped(&"a"), &(), 50);
        timers.delete(TimeDomain::EventTime, &"a", &(), 50);
        timers.register(TimeDomain::EventTime, scoped(&"a"), &(), 50);
        assert_eq!(fire(&mut timers, 100), vec![(50, "a")]);
    }

    #[test]
    fn processing_timers_are_separate_and_report_their_deadline() {
        let mut timers: TimerService<&str> = TimerService::new();
        timers.register(TimeDomain::ProcessingTime, scoped(&"a"), &(), 1_000);
        timers.register(TimeDomain::EventTime, scoped(&"a"), &(), 5);
        assert_eq!(timers.next_processing_time(), Some(1_000));
        assert_eq!(timers.pop_processing_timer(999), None);
        assert_eq!(timers.pop_processing_timer(1_000).map(|f| (f.time, f.key)), Some((1_000, "a")));
        assert_eq!(timers.next_processing_time(), None);
        assert_eq!(fire(&mut timers, 5), vec![(5, "a")]);
    }

    #[test]
    fn timers_survive_a_snapshot_and_restore() {
        let mut timers: TimerService<String, i64> = TimerService::new();
        timers.register(TimeDomain::EventTime, scoped(&"a".to_string()), &1, 10);
        timers.register(TimeDomain::EventTime, scoped(&"b".to_string()), &2, 20);
        timers.register(TimeDomain::ProcessingTime, scoped(&"a".to_string()), &3, 30);
        let mut snapshot = KeyedSnapshot::new();
        timers.snapshot(KeyGroupRange::for_subtask(128, 1, 0), &mut snapshot, Sharing::Everything);
        let blocks = snapshot.encode_groups().unwrap();
        let mut restore =
            KeyedRestore::decode(blocks.into_iter().map(|(g, b)| (g, b.into()))).unwrap();
        let mut restored: TimerService<String, i64> = TimerService::new();
        restored.restore(&mut restore).unwrap();
        assert!(restore.is_empty());
        assert_eq!(restored.len(TimeDomain::EventTime), 2);
        assert_eq!(
            restored.pop_processing_timer(30).map(|f| (f.time, f.key, f.namespace)),
            Some((30, "a".into(), 3))
        );
        restored.advance_watermark(Watermark(25));
        let fired: Vec<_> = std::iter::from_fn(|| restored.pop_event_timer())
            .map(|f| (f.time, f.key, f.namespace))
            .collect();
        assert_eq!(fired, vec![(10, "a".into(), 1), (20, "b".into(), 2)]);
    }

    #[test]
    fn a_snapshot_keeps_the_timers_of_its_moment_while_the_queue_changes() {
        let mut timers: TimerService<u32, ()> = TimerService::new();
        for key in 0..50 {
            timers.register(TimeDomain::EventTime, scoped(&key), &(), 10);
            timers.register(TimeDomain::EventTime, scoped(&key), &(), 20);
        }
        let mut snapshot = KeyedSnapshot::new();
        timers.snapshot(KeyGroupRange::for_subtask(128, 1, 0), &mut snapshot, Sharing::Everything);
        // After the snapshot: time 10 fires, a time-20 timer is deleted, new ones come.
        timers.advance_watermark(Watermark(10));
        assert_eq!(std::iter::from_fn(|| timers.pop_event_timer()).count(), 50);
        timers.delete(TimeDomain::EventTime, &7, &(), 20);
        timers.register(TimeDomain::EventTime, scoped(&100), &(), 30);
        let in_snapshot = std::thread::spawn(move || held(snapshot)).join().unwrap();
        let mut expected: Vec<_> = (0..50).flat_map(|key| [(10, key), (20, key)]).collect();
        expected.sort();
        assert_eq!(in_snapshot, expected);
        assert_eq!(timers.len(TimeDomain::EventTime), 50, "49 at 20 and one at 30 live on");
    }

    /// The event timers `snapshot` holds, sorted.
    fn held(snapshot: KeyedSnapshot) -> Vec<(Timestamp, u32)> {
        let blocks = snapshot.encode_groups().unwrap();
        let mut restore =
            KeyedRestore::decode(blocks.into_iter().map(|(g, b)| (g, b.into()))).unwrap();
        let mut restored: TimerService<u32, ()> = TimerService::new();
        restored.restore(&mut restore).unwrap();
        fire(&mut restored, Watermark::MAX.0)
    }

    #[test]
    fn each_snapshot_holds_its_moment_though_unchanged_times_keep_their_encoding() {
        let mut timers: TimerService<u32, ()> = TimerService::new();
        let mut expected = Vec::new();
        let range = KeyGroupRange::for_subtask(128, 1, 0);
        let take = |timers: &mut TimerService<u32, ()>| {
            let mut snapshot = KeyedSnapshot::new();
            timers.snapshot(range, &mut snapshot, Sharing::Everything);
            snapshot
        };
        for key in 0..300 {
            for time in [10, 20, 30] {
                timers.register(TimeDomain::EventTime, scoped(&key), &(), time);
                expected.push((time, key));
            }
        }
        expected.sort();
        let first = take(&mut timers);
        assert_eq!(held(first), expected);
        // Time 20 changes while the next snapshot is held, time 30 after it was released.
        let second = take(&mut timers);
        timers.register(TimeDomain::EventTime, scoped(&1000), &(), 20);
        assert_eq!(held(second), expected, "held before the change");
        timers.delete(TimeDomain::EventTime, &5, &(), 30);
        expected.retain(|&timer| timer != (30, 5));
        expected.push((20, 1000));
        expected.sort();
        assert_eq!(held(take(&mut timers)), expected);
        assert_eq!(held(take(&mut timers)), expected, "again, from kept encodings");
    }

    /// Every timer in `blocks` of the event-time state, sorted.
    fn event_timers_in(blocks: Vec<(KeyGroup, Vec<u8>)>) -> Vec<(KeyGroup, u64, u32, i64)> {
        let blocks = blocks.into_iter().map(|(group, block)| (group, block.into()));
        let mut restore = KeyedRestore::decode(blocks).unwrap();
        let mut timers = Vec::new();
        for (group, bytes) in restore.take(EVENT_TIMERS) {
            decode_entries(&bytes, |key: u64, (namespace, time): (u32, i64), (): ()| {
                timers.push((group, key, namespace, time))
            })
            .unwrap();
        }
        timers.sort_unstable();
        timers
    }

    #[test]
    fn checkpoints_of_changed_times_refer_to_earlier_ones_for_the_rest() {
        let range = KeyGroupRange::for_subtask(128, 1, 0);
        let mut timers: TimerService<u64, u32> = TimerService::new();
        let mut files: std::collections::HashMap<String, Vec<u8>> = Default::default();
        let mut confirmed: Vec<String> = Vec::new();
        for key in 0..5000u64 {
            timers.register(TimeDomain::EventTime, scoped(&key), &0, 100_000 + (key % 5) as i64);
        }
        for round in 0..10i64 {
            for key in 0..200u64 {
                // A few new times each round, one old time changed, and one fired.
                let time = round * 10 + (key % 3) as i64;
                timers.register(TimeDomain::EventTime, scoped(&key), &(key as u32 % 2), time);
            }
            timers.delete(TimeDomain::EventTime, &7, &1, (round - 3) * 10 + 1);
            timers.advance_watermark(Watermark(round * 10 - 40));
            while timers.pop_event_timer().is_some() {}
            let mut snapshot = KeyedSnapshot::new();
            timers.snapshot(range, &mut snapshot, Sharing::Changes);
            let name = format!("chk-{round}");
            let reusable = |file: &str| confirmed.iter().any(|confirmed| confirmed == file);
            let mut writer = weir_state::BlockWriter::incremental(&name, &reusable);
            let placed = snapshot.encode_groups_into(&mut writer, &|| false).unwrap().unwrap();
            let (bytes, referenced) = writer.finish();
            files.insert(name.clone(), bytes.into_vec());
            let blocks = placed.iter().map(|block| {
                let piece = |piece: &weir_state::Piece| {
                    let file = &files[&referenced[piece.file]];
                    file[piece.offset as usize..(piece.offset + piece.len) as usize].to_vec()
                };
                (block.group, block.pieces.iter().flat_map(piece).collect())
            });
            let incremental = event_timers_in(blocks.collect());
            let mut full = KeyedSnapshot::new();
            timers.snapshot(range, &mut full, Sharing::Everything);
            let full = full.encode_groups().unwrap();
            let full_len: usize = full.iter().map(|(_, block)| block.len()).sum();
            let full = event_timers_in(full);
            assert_eq!(incremental, full, "round {round}");
            assert_eq!(full.len(), timers.len(TimeDomain::EventTime));
            let written = files[&name].len();
            if round > 0 && round != 7 {
                assert!(written < full_len / 4, "round {round} wrote {written} of {full_len}");
            }
            if round != 6 {
                confirmed = referenced; // every round but one completes
                snapshot.completions().iter().for_each(|completion| completion.completed());
            }
        }
    }

    #[test]
    fn the_watermark_never_goes_back() {
        let mut timers: TimerService<&str> = TimerService::new();
        timers.advance_watermark(Watermark(10));
        timers.advance_watermark(Watermark(3));
        assert_eq!(timers.watermark(), Watermark(10));
    }
}

#[cfg(test)]
mod fuzz {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn timer_queue_matches_a_plain_set_under_random_operations() {
        for seed in 0..300u64 {
            let mut state: u64 = seed * 2_654_435_761 + 1;
            let mut next = |bound: u64| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 33) % bound
            };
            let mut queue = TimerQueue::<u64, u64>::default();
            let mut model: BTreeSet<(Timestamp, u64, u64)> = BTreeSet::new();
            let mut floor = 0;
            for _ in 0..3000 {
                let (key, ns) = (next(5), next(3));
                let time = floor + next(8) as Timestamp;
                match next(3) {
                    0 => {
                        queue.register(&key, (key % 3) as KeyGroup, &ns, time);
                        model.insert((time, key, ns));
                    }
                    1 => {
                        queue.delete(&key, &ns, time);
                        model.remove(&(time, key, ns));
                    }
                    _ => {
                        let until = floor + next(4) as Timestamp;
                        let mut popped = BTreeSet::new();
                        while let Some(FiredTimer { time: t, key: k, namespace: n, .. }) =
                            queue.pop_due(until)
                        {
                            assert!(popped.insert((t, k, n)), "seed {seed}: fired twice");
                        }
                        let due: BTreeSet<_> =
                            model.iter().filter(|(t, _, _)| *t <= until).copied().collect();
                        assert_eq!(popped, due, "seed {seed}");
                        model.retain(|(t, _, _)| *t > until);
                        floor = until;
                    }
                }
                assert_eq!(queue.len(), model.len(), "seed {seed}");
            }
        }
    }
}
