//! Unit tests of keyed and operator state.

use std::collections::HashMap;

use weir_types::{KeyGroupRange, key_group_for_key};

use crate::{
    AggregateFunction, AggregatingStateDescriptor, Error, KeyedRestore, KeyedSnapshot, KeyedState,
    ListStateDescriptor, MapStateDescriptor, OperatorStateStore, ReducingStateDescriptor,
    StateBackend, StateBackendKind, ValueStateDescriptor,
};

pub(crate) const MAX_PARALLELISM: usize = 128;

/// Runs each listed test, a `fn(StateBackendKind)`, once per backend: as `heap::name` and,
/// with the `rocksdb` feature, as `rocksdb::name`.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod heap {
            $(#[test]
            fn $test() {
                super::$test(crate::StateBackendKind::Heap);
            })*
        }
        #[cfg(feature = "rocksdb")]
        mod rocksdb {
            $(#[test]
            fn $test() {
                super::$test(crate::StateBackendKind::RocksDb);
            })*
        }
    };
}

on_every_backend!(
    value_state_is_isolated_per_key_and_clears,
    list_state_adds_updates_and_clears_per_key,
    list_update_with_empty_vec_removes_the_entry,
    map_state_puts_gets_removes_and_clears_per_key,
    map_remove_of_last_entry_removes_the_map,
    reducing_state_reduces_accumulator_then_new_value_in_order,
    aggregating_state_averages_per_key,
    registering_same_descriptor_twice_shares_the_state,
    same_name_with_other_type_or_kind_conflicts,
    access_without_current_key_names_the_state,
    key_outside_subtask_range_is_rejected,
    ten_thousand_keys_in_a_subtask_read_back,
    namespaces_separate_entries_of_one_key,
    snapshot_restores_into_a_narrower_range,
    restored_state_not_registered_is_snapshotted_again,
);

/// Keyed state owning every key group.
pub(crate) fn all_groups(backend: StateBackendKind) -> KeyedState<String> {
    KeyedState::new(backend, MAX_PARALLELISM, KeyGroupRange::for_subtask(128, 1, 0))
}

/// Number of entries, over all keys, in the table registered `index`-th (needs a current key).
pub(crate) fn entries_in<V: weir_types::Data>(state: &KeyedState<String>, index: usize) -> usize {
    state.table::<(), V>(crate::handles::StateId(index)).unwrap().0.len()
}

fn key(s: &str) -> String {
    s.to_string()
}

/// Average of `i64` inputs; the accumulator is `(sum, count)`.
struct Average;

impl AggregateFunction<i64, (i64, u64), f64> for Average {
    fn create_accumulator(&self) -> (i64, u64) {
        (0, 0)
    }
    fn add(&self, value: i64, acc: &mut (i64, u64)) {
        acc.0 += value;
        acc.1 += 1;
    }
    fn get_result(&self, acc: &(i64, u64)) -> f64 {
        acc.0 as f64 / acc.1 as f64
    }
    fn merge(&self, a: (i64, u64), b: (i64, u64)) -> (i64, u64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

fn value_state_is_isolated_per_key_and_clears(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let count = state.value_state(&ValueStateDescriptor::<u64>::new("count")).unwrap();
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        state.set_current_key(key(k)).unwrap();
        assert_eq!(count.value(&state).unwrap(), None);
        count.update(&mut state, i as u64 * 10).unwrap();
    }
    state.set_current_key(key("b")).unwrap();
    assert_eq!(state.current_key(), Some(&key("b")));
    assert_eq!(count.value(&state).unwrap(), Some(10));
    count.update(&mut state, 11).unwrap();
    assert_eq!(count.value(&state).unwrap(), Some(11));
    count.clear(&mut state).unwrap();
    assert_eq!(count.value(&state).unwrap(), None);
    count.clear(&mut state).unwrap(); // clearing an absent value is fine
    state.set_current_key(key("a")).unwrap();
    assert_eq!(count.value(&state).unwrap(), Some(0));
    state.set_current_key(key("c")).unwrap();
    assert_eq!(count.value(&state).unwrap(), Some(20));
}

fn list_state_adds_updates_and_clears_per_key(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let list = state.list_state(&ListStateDescriptor::<String>::new("names")).unwrap();
    state.set_current_key(key("a")).unwrap();
    assert_eq!(list.get(&state).unwrap(), Vec::<String>::new());
    list.add(&mut state, key("x")).unwrap();
    list.add(&mut state, key("y")).unwrap();
    state.set_current_key(key("b")).unwrap();
    list.add(&mut state, key("z")).unwrap();
    state.set_current_key(key("a")).unwrap();
    assert_eq!(list.get(&state).unwrap(), vec![key("x"), key("y")]);
    list.update(&mut state, vec![key("p"), key("q"), key("r")]).unwrap();
    list.add(&mut state, key("s")).unwrap();
    assert_eq!(list.get(&state).unwrap(), vec![key("p"), key("q"), key("r"), key("s")]);
    list.update(&mut state, Vec::new()).unwrap();
    assert_eq!(list.get(&state).unwrap(), Vec::<String>::new());
    list.add(&mut state, key("again")).unwrap();
    assert_eq!(list.get(&state).unwrap(), vec![key("again")]);
    list.clear(&mut state).unwrap();
    assert!(list.get(&state).unwrap().is_empty());
    state.set_current_key(key("b")).unwrap();
    assert_eq!(list.get(&state).unwrap(), vec![key("z")]);
}

fn list_update_with_empty_vec_removes_the_entry(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let list = state.list_state(&ListStateDescriptor::<u32>::new("l")).unwrap();
    state.set_current_key(key("a")).unwrap();
    list.update(&mut state, vec![1, 2]).unwrap();
    assert_eq!(entries_in::<Vec<u32>>(&state, 0), 1);
    list.update(&mut state, vec![]).unwrap();
    assert_eq!(entries_in::<Vec<u32>>(&state, 0), 0, "empty update must remove, not store []");
}

fn map_state_puts_gets_removes_and_clears_per_key(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let map = state.map_state(&MapStateDescriptor::<String, i32>::new("m")).unwrap();
    state.set_current_key(key("a")).unwrap();
    assert_eq!(map.get(&state, &key("x")).unwrap(), None);
    assert!(map.entries(&state).unwrap().is_empty());
    map.put(&mut state, key("x"), 1).unwrap();
    map.put(&mut state, key("y"), 2).unwrap();
    map.put(&mut state, key("x"), 3).unwrap();
    state.set_current_key(key("b")).unwrap();
    assert_eq!(map.get(&state, &key("x")).unwrap(), None);
    map.put(&mut state, key("x"), 100).unwrap();
    state.set_current_key(key("a")).unwrap();
    assert_eq!(map.get(&state, &key("x")).unwrap(), Some(3));
    let mut entries = map.entries(&state).unwrap();
    entries.sort();
    assert_eq!(entries, vec![(key("x"), 3), (key("y"), 2)]);
    map.remove(&mut state, &key("x")).unwrap();
    map.remove(&mut state, &key("absent")).unwrap();
    assert_eq!(map.get(&state, &key("x")).unwrap(), None);
    assert_eq!(map.entries(&state).unwrap(), vec![(key("y"), 2)]);
    map.clear(&mut state).unwrap();
    assert!(map.entries(&state).unwrap().is_empty());
    state.set_current_key(key("b")).unwrap();
    assert_eq!(map.entries(&state).unwrap(), vec![(key("x"), 100)]);
}

fn map_remove_of_last_entry_removes_the_map(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let map = state.map_state(&MapStateDescriptor::<u8, u8>::new("m")).unwrap();
    state.set_current_key(key("a")).unwrap();
    map.put(&mut state, 1, 10).unwrap();
    map.put(&mut state, 2, 20).unwrap();
    map.remove(&mut state, &1).unwrap();
    assert_eq!(entries_in::<HashMap<u8, u8>>(&state, 0), 1);
    map.remove(&mut state, &2).unwrap();
    assert_eq!(entries_in::<HashMap<u8, u8>>(&state, 0), 0, "empty map must be removed");
    map.put(&mut state, 3, 30).unwrap();
    assert_eq!(map.entries(&state).unwrap(), vec![(3, 30)]);
}

fn reducing_state_reduces_accumulator_then_new_value_in_order(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let concat =
        ReducingStateDescriptor::new("concat", |acc: &String, new: &String| format!("{acc}{new}"));
    let reducing = state.reducing_state(&concat).unwrap();
    state.set_current_key(key("k1")).unwrap();
    assert_eq!(reducing.get(&state).unwrap(), None);
    for s in ["a", "b", "c"] {
        reducing.add(&mut state, key(s)).unwrap();
    }
    state.set_current_key(key("k2")).unwrap();
    reducing.add(&mut state, key("z")).unwrap();
    reducing.add(&mut state, key("y")).unwrap();
    state.set_current_key(key("k1")).unwrap();
    assert_eq!(reducing.get(&state).unwrap(), Some(key("abc")));
    reducing.clear(&mut state).unwrap();
    assert_eq!(reducing.get(&state).unwrap(), None);
    reducing.add(&mut state, key("d")).unwrap();
    assert_eq!(reducing.get(&state).unwrap(), Some(key("d")));
    state.set_current_key(key("k2")).unwrap();
    assert_eq!(reducing.get(&state).unwrap(), Some(key("zy")));
}

fn aggregating_state_averages_per_key(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let avg = state.aggregating_state(&AggregatingStateDescriptor::new("avg", Average)).unwrap();
    state.set_current_key(key("a")).unwrap();
    assert_eq!(avg.get(&state).unwrap(), None);
    for v in [1, 2, 3, 6] {
        avg.add(&mut state, v).unwrap();
    }
    state.set_current_key(key("b")).unwrap();
    avg.add(&mut state, -5).unwrap();
    state.set_current_key(key("a")).unwrap();
    assert_eq!(avg.get(&state).unwrap(), Some(3.0));
    avg.clear(&mut state).unwrap();
    assert_eq!(avg.get(&state).unwrap(), None);
    avg.add(&mut state, 7).unwrap();
    assert_eq!(avg.get(&state).unwrap(), Some(7.0));
    state.set_current_key(key("b")).unwrap();
    assert_eq!(avg.get(&state).unwrap(), Some(-5.0));
}

fn registering_same_descriptor_twice_shares_the_state(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let descriptor = ValueStateDescriptor::<u64>::new("count");
    let first = state.value_state(&descriptor).unwrap();
    let second = state.value_state(&descriptor).unwrap();
    state.set_current_key(key("a")).unwrap();
    first.update(&mut state, 5).unwrap();
    assert_eq!(second.value(&state).unwrap(), Some(5));
    second.update(&mut state, 6).unwrap();
    assert_eq!(first.value(&state).unwrap(), Some(6));
    let list = state.list_state(&ListStateDescriptor::<u8>::new("list")).unwrap();
    list.add(&mut state, 1).unwrap();
    let again = state.list_state(&ListStateDescriptor::<u8>::new("list")).unwrap();
    assert_eq!(again.get(&state).unwrap(), vec![1]);
}

fn same_name_with_other_type_or_kind_conflicts(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    state.value_state(&ValueStateDescriptor::<u64>::new("s")).unwrap();
    let conflict = |r: Result<(), Error>| matches!(r, Err(Error::ConflictingRegistration { name }) if name == "s");
    assert!(conflict(state.value_state(&ValueStateDescriptor::<String>::new("s")).map(drop)));
    assert!(conflict(state.list_state(&ListStateDescriptor::<u64>::new("s")).map(drop)));
    assert!(conflict(state.map_state(&MapStateDescriptor::<u64, u64>::new("s")).map(drop)));
    let sum = ReducingStateDescriptor::new("s", |a: &u64, b: &u64| a + b);
    assert!(conflict(state.reducing_state(&sum).map(drop)));
    let avg = AggregatingStateDescriptor::new("s", Average);
    assert!(conflict(state.aggregating_state(&avg).map(drop)));
    state.list_state(&ListStateDescriptor::<u64>::new("other")).unwrap();
    assert!(state.value_state(&ValueStateDescriptor::<u64>::new("s")).is_ok());
}

fn access_without_current_key_names_the_state(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let count = state.value_state(&ValueStateDescriptor::<u64>::new("count")).unwrap();
    let list = state.list_state(&ListStateDescriptor::<u64>::new("items")).unwrap();
    let named = |r: Result<(), Error>| match r {
        Err(Error::NoCurrentKey { state }) => state,
        other => panic!("expected NoCurrentKey, got {other:?}"),
    };
    assert_eq!(named(count.value(&state).map(drop)), "count");
    assert_eq!(named(count.update(&mut state, 1)), "count");
    assert_eq!(named(list.get(&state).map(drop)), "items");
    assert_eq!(named(list.add(&mut state, 1)), "items");
}

fn key_outside_subtask_range_is_rejected(backend: StateBackendKind) {
    let range = KeyGroupRange::for_subtask(128, 4, 1);
    assert_eq!((range.start(), range.end()), (32, 63));
    let mut state = KeyedState::<u64>::new(backend, MAX_PARALLELISM, range);
    assert_eq!(state.key_group_range(), range);
    let group = |k: u64| key_group_for_key(&k, MAX_PARALLELISM).unwrap();
    let inside = (0u64..).find(|&k| range.contains(group(k))).unwrap();
    state.set_current_key(inside).unwrap();
    for other in [0, 2, 3] {
        let foreign = KeyGroupRange::for_subtask(128, 4, other);
        let outside = (0u64..).find(|&k| foreign.contains(group(k))).unwrap();
        match state.set_current_key(outside) {
            Err(Error::KeyGroupOutOfRange { key, group: g, start, end }) => {
                assert_eq!(key, outside.to_string());
                assert_eq!(g, group(outside));
                assert_eq!((start, end), (32, 63));
            }
            other => panic!("expected KeyGroupOutOfRange, got {other:?}"),
        }
    }
}

fn ten_thousand_keys_in_a_subtask_read_back(backend: StateBackendKind) {
    let range = KeyGroupRange::for_subtask(128, 4, 2);
    let mut state = KeyedState::<u64>::new(backend, MAX_PARALLELISM, range);
    let value = state.value_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    let list = state.list_state(&ListStateDescriptor::<u64>::new("l")).unwrap();
    let keys: Vec<u64> = (0u64..)
        .filter(|k| range.contains(key_group_for_key(k, MAX_PARALLELISM).unwrap()))
        .take(10_000)
        .collect();
    for &k in &keys {
        state.set_current_key(k).unwrap();
        value.update(&mut state, k * 3 + 1).unwrap();
        list.add(&mut state, k).unwrap();
        list.add(&mut state, k + 1).unwrap();
    }
    for &k in keys.iter().rev() {
        state.set_current_key(k).unwrap();
        assert_eq!(value.value(&state).unwrap(), Some(k * 3 + 1), "key {k}");
        assert_eq!(list.get(&state).unwrap(), vec![k, k + 1], "key {k}");
    }
    let mut groups: Vec<_> =
        keys.iter().map(|k| key_group_for_key(k, MAX_PARALLELISM).unwrap()).collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), range.len(), "keys should cover every group of the range");
}

#[test]
fn operator_list_state_keeps_values_and_rejects_other_types() {
    let mut store = OperatorStateStore::new();
    let offsets = store.list_state::<u64>("offsets").unwrap();
    let names = store.list_state::<String>("names").unwrap();
    assert!(offsets.get(&store).is_empty());
    offsets.add(&mut store, 1);
    names.add(&mut store, key("n"));
    offsets.add(&mut store, 2);
    assert_eq!(offsets.get(&store), &[1, 2]);
    assert_eq!(names.get(&store), &[key("n")]);
    let again = store.list_state::<u64>("offsets").unwrap();
    again.update(&mut store, vec![7, 8, 9]);
    assert_eq!(offsets.get(&store), &[7, 8, 9]);
    assert!(matches!(
        store.list_state::<String>("offsets"),
        Err(Error::ConflictingRegistration { name }) if name == "offsets"
    ));
    offsets.clear(&mut store);
    assert!(again.get(&store).is_empty());
    assert_eq!(names.get(&store), &[key("n")]);
}

fn namespaces_separate_entries_of_one_key(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let windows = state.namespaced_value_state::<i64, String>("windows").unwrap();
    state.set_current_key(key("k")).unwrap();
    windows.put(&mut state, &10, key("ten")).unwrap();
    windows.put(&mut state, &20, key("twenty")).unwrap();
    assert!(windows.modify(&mut state, &10, |v| v.make_ascii_uppercase()).unwrap());
    assert!(!windows.modify(&mut state, &30, |v| v.clear()).unwrap());
    assert_eq!(windows.get(&state, &10).unwrap(), Some(key("TEN")));
    assert_eq!(windows.remove(&mut state, &10).unwrap(), Some(key("TEN")));
    assert_eq!(windows.remove(&mut state, &10).unwrap(), None);
    assert_eq!(windows.get(&state, &20).unwrap(), Some(key("twenty")));
    state.set_current_key(key("other")).unwrap();
    assert_eq!(windows.get(&state, &20).unwrap(), None);
}

/// Keys `0..count` with their key groups.
pub(crate) fn keys_with_groups(count: u64) -> Vec<(u64, u16)> {
    (0..count).map(|k| (k, key_group_for_key(&k, MAX_PARALLELISM).unwrap())).collect()
}

/// A snapshot's key-group blocks, read back for a restore.
pub(crate) fn reread(snapshot: &KeyedSnapshot) -> KeyedRestore {
    let blocks = snapshot.encode_groups().unwrap();
    KeyedRestore::decode(blocks.into_iter().map(|(group, block)| (group, block.into()))).unwrap()
}

fn snapshot_restores_into_a_narrower_range(backend: StateBackendKind) {
    let all = KeyGroupRange::for_subtask(MAX_PARALLELISM, 1, 0);
    let mut state = KeyedState::<u64>::new(backend, MAX_PARALLELISM, all);
    let value = state.value_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    let windows = state.namespaced_value_state::<u32, String>("w").unwrap();
    let keys = keys_with_groups(2_000);
    for &(k, _) in &keys {
        state.set_current_key(k).unwrap();
        value.update(&mut state, k * 7).unwrap();
        windows.put(&mut state, &1, k.to_string()).unwrap();
        windows.put(&mut state, &2, "two".to_string()).unwrap();
    }
    let snapshot = state.snapshot().unwrap();

    let half = KeyGroupRange::for_subtask(MAX_PARALLELISM, 2, 1);
    let mut restored = KeyedState::<u64>::new(backend, MAX_PARALLELISM, half);
    restored.restore(reread(&snapshot)).unwrap();
    let value = restored.value_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    let windows = restored.namespaced_value_state::<u32, String>("w").unwrap();
    let mine: Vec<u64> = keys.iter().filter(|(_, g)| half.contains(*g)).map(|(k, _)| *k).collect();
    assert!(!mine.is_empty() && mine.len() < keys.len());
    for &k in &mine {
        restored.set_current_key(k).unwrap();
        assert_eq!(value.value(&restored).unwrap(), Some(k * 7));
        assert_eq!(windows.get(&restored, &1).unwrap(), Some(k.to_string()));
        assert_eq!(windows.get(&restored, &2).unwrap(), Some("two".to_string()));
    }
    let table_len =
        |index| restored.table::<(), u64>(crate::handles::StateId(index)).map(|t| t.0.len());
    assert_eq!(table_len(0).unwrap(), mine.len(), "groups outside the range are dropped");
}

fn restored_state_not_registered_is_snapshotted_again(backend: StateBackendKind) {
    let mut state = all_groups(backend);
    let kept = state.value_state(&ValueStateDescriptor::<u32>::new("kept")).unwrap();
    let dropped = state.list_state(&ListStateDescriptor::<u32>::new("dropped")).unwrap();
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        state.set_current_key(key(k)).unwrap();
        kept.update(&mut state, i as u32).unwrap();
        dropped.add(&mut state, i as u32).unwrap();
    }
    let snapshot = state.snapshot().unwrap();
    let mut restored = all_groups(backend);
    restored.restore(reread(&snapshot)).unwrap();
    restored.value_state(&ValueStateDescriptor::<u32>::new("kept")).unwrap();
    let mut again = reread(&restored.snapshot().unwrap());
    let mut before = reread(&snapshot);
    assert_eq!(again.take("dropped"), before.take("dropped"));
    assert!(!again.take("kept").is_empty());
}

#[test]
fn backend_kinds_parse_and_display() {
    assert_eq!("heap".parse::<StateBackendKind>().unwrap(), StateBackendKind::Heap);
    assert_eq!("HEAP".parse::<StateBackendKind>().unwrap().to_string(), "heap");
    assert_eq!(StateBackend::from(StateBackendKind::Heap), StateBackend::Heap);
    let unknown = "mem".parse::<StateBackendKind>().unwrap_err().to_string();
    assert!(unknown.contains("'mem'") && unknown.contains("heap"), "{unknown}");
    let rocksdb = "rocksdb".parse::<StateBackendKind>();
    #[cfg(feature = "rocksdb")]
    {
        assert_eq!(rocksdb.unwrap().to_string(), "rocksdb");
        assert_eq!("RocksDB".parse::<StateBackendKind>().unwrap(), StateBackendKind::RocksDb);
        assert_eq!(StateBackend::from(StateBackendKind::RocksDb).kind(), StateBackendKind::RocksDb);
        assert!(unknown.contains("heap, rocksdb"), "{unknown}");
    }
    #[cfg(not(feature = "rocksdb"))]
    {
        let message = rocksdb.unwrap_err().to_string();
        assert!(message.contains("without the `rocksdb` feature"), "{message}");
    }
}

/// A value that counts its serializations on each thread, and fails to serialize when it
/// is negative.
#[derive(Clone, Debug, serde::Deserialize)]
struct Counted(i64);

thread_local! {
    static SERIALIZED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many [`Counted`] values this thread serialized so far.
fn serialized() -> usize {
    SERIALIZED.get()
}

impl serde::Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 < 0 {
            return Err(serde::ser::Error::custom(format!("{} does not serialize", self.0)));
        }
        SERIALIZED.set(SERIALIZED.get() + 1);
        serializer.serialize_i64(self.0)
    }
}

#[test]
fn heap_snapshots_copy_the_state_and_encode_it_only_when_the_blocks_are_asked_for() {
    let all = KeyGroupRange::for_subtask(MAX_PARALLELISM, 1, 0);
    let mut state = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, all);
    let value = state.value_state(&ValueStateDescriptor::<Counted>::new("counted")).unwrap();
    for k in 0..100 {
        state.set_current_key(k).unwrap();
        value.update(&mut state, Counted(k as i64)).unwrap();
    }
    let before = serialized();
    let snapshot = state.snapshot().unwrap();
    assert_eq!(serialized(), before, "nothing encoded yet");
    assert!(!snapshot.is_empty());
    // Changes after the snapshot (updates, removals, new keys) are not in it, while it is
    // encoded on another thread and after.
    let encoding = std::thread::spawn(move || reread(&snapshot));
    for k in 0..100 {
        state.set_current_key(k).unwrap();
        value.update(&mut state, Counted(1_000)).unwrap();
    }
    for k in 0..10 {
        state.set_current_key(k).unwrap();
        value.clear(&mut state).unwrap();
    }
    for k in 100..110 {
        state.set_current_key(k).unwrap();
        value.update(&mut state, Counted(k as i64)).unwrap();
    }
    let mut restored = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, all);
    restored.restore(encoding.join().unwrap()).unwrap();
    let restored_value =
        restored.value_state(&ValueStateDescriptor::<Counted>::new("counted")).unwrap();
    for k in 0..110 {
        restored.set_current_key(k).unwrap();
        let expected = (k < 100).then_some(k as i64);
        assert_eq!(restored_value.value(&restored).unwrap().map(|c| c.0), expected, "key {k}");
    }
    // The live state kept its own changes.
    state.set_current_key(50).unwrap();
    assert_eq!(value.value(&state).unwrap().map(|c| c.0), Some(1_000));
    state.set_current_key(5).unwrap();
    assert!(value.value(&state).unwrap().is_none());
}

#[test]
fn heap_snapshots_reuse_the_encoding_of_unchanged_namespaces() {
    let all = KeyGroupRange::for_subtask(MAX_PARALLELISM, 1, 0);
    let mut state = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, all);
    let windows = state.namespaced_value_state::<u32, Counted>("windows").unwrap();
    let keys = 0..50;
    for k in keys.clone() {
        state.set_current_key(k).unwrap();
        windows.put(&mut state, &1, Counted(k as i64)).unwrap();
        windows.put(&mut state, &2, Counted(100 + k as i64)).unwrap();
    }
    let serializations = |state: &mut KeyedState<u64>| {
        let before = serialized();
        let restore = reread(&state.snapshot().unwrap());
        (serialized() - before, restore)
    };
    assert_eq!(serializations(&mut state).0, 100, "the first snapshot encodes everything");
    assert_eq!(serializations(&mut state).0, 0, "unchanged: the kept encodings");
    state.set_current_key(7).unwrap();
    windows.put(&mut state, &2, Counted(-1)).unwrap();
    windows.put(&mut state, &2, Counted(1_007)).unwrap();
    state.set_current_key(8).unwrap();
    windows.put(&mut state, &3, Counted(3)).unwrap();
    let (count, restore) = serializations(&mut state);
    // Window 2 again (a small namespace spans key groups), and the new window 3 (key 8 alone).
    assert_eq!(count, keys.clone().count() + 1, "only what changed");
    assert_eq!(serializations(&mut state).0, 0, "changed ones were kept too");
    let mut restored = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, all);
    restored.restore(restore).unwrap();
    let windows = restored.namespaced_value_state::<u32, Counted>("windows").unwrap();
    for k in keys {
        restored.set_current_key(k).unwrap();
        let value = |window| windows.get(&restored, &window).unwrap().map(|c| c.0);
        assert_eq!(value(1), Some(k as i64), "key {k}");
        let second = if k == 7 { 1_007 } else { 100 + k as i64 };
        assert_eq!(value(2), Some(second), "key {k}");
        assert_eq!(value(3), (k == 8).then_some(3), "key {k}");
    }
}

#[test]
fn a_value_that_does_not_serialize_fails_the_encoding_with_its_message() {
    let all = KeyGroupRange::for_subtask(MAX_PARALLELISM, 1, 0);
    let mut state = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, all);
    let value = state.value_state(&ValueStateDescriptor::<Counted>::new("counted")).unwrap();
    state.set_current_key(7).unwrap();
    value.update(&mut state, Counted(-3)).unwrap();
    let snapshot = state.snapshot().unwrap();
    // Postcard keeps no custom message; the error names the state and its types.
    let error = snapshot.encode_groups().unwrap_err().to_string();
    assert!(error.contains("could not be encoded") && error.contains("Counted"), "{error}");
    assert!(error.contains("state 'counted'"), "{error}");
}

#[test]
fn a_large_namespace_is_split_so_that_a_change_encodes_its_key_group_again() {
    let all = KeyGroupRange::for_subtask(MAX_PARALLELISM, 1, 0);
    let mut state = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, all);
    let value = state.value_state(&ValueStateDescriptor::<Counted>::new("counted")).unwrap();
    // The one namespace of a state without namespaces, over 1000 keys in every key group.
    let keys = 0..(MAX_PARALLELISM as u64 * 1500);
    for k in keys.clone() {
        state.set_current_key(k).unwrap();
        value.update(&mut state, Counted(k as i64)).unwrap();
    }
    let serializations = |state: &mut KeyedState<u64>, sharing| {
        let before = serialized();
        let restore = reread(&state.snapshot_sharing(sharing).unwrap());
        (serialized() - before, restore)
    };
    let all_keys = keys.clone().count();
    let savepoint =
        |state: &mut KeyedState<u64>| serializations(state, crate::Sharing::Everything).0;
    assert_eq!(savepoint(&mut state), all_keys, "a savepoint encodes every entry");
    assert_eq!(savepoint(&mut state), all_keys, "and keeps no encoding of a large share");
    // Incremental checkpoints, each complete before the next.
    let (mut files, mut confirmed) = (HashMap::new(), Vec::new());
    let mut checkpoint = |state: &mut KeyedState<u64>, name: &str| {
        let before = serialized();
        let snapshot = state.snapshot_sharing(crate::Sharing::Changes).unwrap();
        let (restore, referenced) = write_incrementally(&snapshot, name, &mut files, &confirmed);
        snapshot.completions().iter().for_each(|completion| completion.completed());
        confirmed = referenced;
        (serialized() - before, restore)
    };
    assert_eq!(checkpoint(&mut state, "one").0, all_keys, "the first checkpoint: every entry");
    assert_eq!(checkpoint(&mut state, "two").0, 0, "nothing changed: referred to");
    state.set_current_key(7).unwrap();
    value.update(&mut state, Counted(1_000_007)).unwrap();
    let group = |k: &u64| key_group_for_key(k, MAX_PARALLELISM).unwrap();
    let in_group_of_7 = keys.clone().filter(|k| group(k) == group(&7)).count();
    let (count, mut restore) = checkpoint(&mut state, "three");
    assert_eq!(count, in_group_of_7, "changed: the entries of its group");
    let restored = entries_of_counted(&mut restore, "counted");
    assert_eq!(restored.len(), all_keys);
    assert_eq!(restored.get(&7), Some(&1_000_007));
    assert_eq!(restored.get(&8), Some(&8));
}

/// Every entry of a state of [`Counted`] values in `restore`, by key; each in its key's group.
fn entries_of_counted(restore: &mut KeyedRestore, name: &str) -> HashMap<u64, i64> {
    let mut entries = HashMap::new();
    for (group, bytes) in restore.take(name) {
        crate::decode_entries(&bytes, |key: u64, (): (), value: Counted| {
            assert_eq!(key_group_for_key(&key, MAX_PARALLELISM).unwrap(), group, "key {key}");
            entries.insert(key, value.0);
        })
        .unwrap();
    }
    entries
}

/// Every entry of state `name` in `restore`, sorted.
fn entries_of_state(restore: &mut KeyedRestore, name: &str) -> Vec<(u16, u64, u32, u64)> {
    let mut entries = Vec::new();
    for (group, bytes) in restore.take(name) {
        crate::decode_entries(&bytes, |key: u64, namespace: u32, value: u64| {
            entries.push((group, key, namespace, value))
        })
        .unwrap();
    }
    entries.sort_unstable();
    entries
}

/// Writes `snapshot` incrementally into file `name` of `files`, referring to the files
/// `confirmed` names; returns what it holds, read back, and the files it refers to.
fn write_incrementally(
    snapshot: &KeyedSnapshot,
    name: &str,
    files: &mut HashMap<String, Vec<u8>>,
    confirmed: &[String],
) -> (KeyedRestore, Vec<String>) {
    let reusable = |file: &str| confirmed.iter().any(|confirmed| confirmed == file);
    let mut writer = crate::BlockWriter::incremental(name, &reusable);
    let placed = snapshot.encode_groups_into(&mut writer, &|| false).unwrap().unwrap();
    let (bytes, referenced) = writer.finish();
    files.insert(name.to_string(), bytes.into_vec());
    let blocks = placed.iter().map(|block| {
        let piece = |piece: &crate::Piece| {
            let file = &files[&referenced[piece.file]];
            file[piece.offset as usize..(piece.offset + piece.len) as usize].to_vec()
        };
        (block.group, block.pieces.iter().flat_map(piece).collect::<Vec<u8>>().into())
    });
    (KeyedRestore::decode(blocks).unwrap(), referenced)
}

#[test]
fn incremental_checkpoints_of_changes_hold_what_a_full_snapshot_holds() {
    let mut state = KeyedState::<u64>::new(
        StateBackendKind::Heap,
        MAX_PARALLELISM,
        KeyGroupRange::for_subtask(MAX_PARALLELISM, 1, 0),
    );
    let windows = state.namespaced_value_state::<u32, u64>("w").unwrap();
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut confirmed: Vec<String> = Vec::new();
    let mut random: u64 = 7;
    let mut next = |bound: u64| {
        random =
            random.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (random >> 33) % bound
    };
    for round in 0..16 {
        for step in 0..if round == 0 { 3000 } else { 60 } {
            let (key, window) = (next(300), next(400) as u32 + round / 3);
            state.set_current_key(key).unwrap();
            match next(5) {
                0 => drop(windows.remove(&mut state, &window).unwrap()),
                1 => drop(windows.modify(&mut state, &window, |v| *v += 1).unwrap()),
                _ => windows.put(&mut state, &window, u64::from(round) * 1000 + step).unwrap(),
            }
        }
        if round % 5 == 4 {
            drop(state.snapshot().unwrap()); // a savepoint in between takes everything
        }
        let snapshot = state.snapshot_sharing(crate::Sharing::Changes).unwrap();
        let name = format!("chk-{round}");
        let (mut incremental, referenced) =
            write_incrementally(&snapshot, &name, &mut files, &confirmed);
        let full_blocks = state.snapshot().unwrap().encode_groups().unwrap();
        let full_len: usize = full_blocks.iter().map(|(_, block)| block.len()).sum();
        let mut full = KeyedRestore::decode(
            full_blocks.into_iter().map(|(group, block)| (group, block.into())),
        )
        .unwrap();
        assert_eq!(
            entries_of_state(&mut incremental, "w"),
            entries_of_state(&mut full, "w"),
            "round {round}"
        );
        if round % 4 != 2 {
            confirmed = referenced; // complete; every fourth one never does
            snapshot.completions().iter().for_each(|completion| completion.completed());
        }
        let written = files[&name].len();
        if round > 0 && round % 4 != 3 {
            // What changed, and the blocks' headers (the one after an incomplete one also
            // writes again what that one wrote).
            assert!(written < full_len / 3, "round {round} wrote {written} of {full_len} bytes");
        }
    }
}
