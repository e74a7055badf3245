//! Unit tests of keyed and operator state.

use std::collections::HashMap;

use weir_types::{KeyGroupRange, key_group_for_key};

use crate::{
    AggregateFunction, AggregatingStateDescriptor, Error, KeyedState, ListStateDescriptor,
    MapStateDescriptor, OperatorStateStore, ReducingStateDescriptor, StateBackendKind,
    ValueStateDescriptor,
};

const MAX_PARALLELISM: usize = 128;

/// Keyed state owning every key group.
fn all_groups() -> KeyedState<String> {
    KeyedState::new(StateBackendKind::Heap, MAX_PARALLELISM, KeyGroupRange::for_subtask(128, 1, 0))
}

/// Number of entries, over all keys, in the table registered `index`-th (needs a current key).
fn entries_in<V: weir_types::Data>(state: &KeyedState<String>, index: usize) -> usize {
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

#[test]
fn value_state_is_isolated_per_key_and_clears() {
    let mut state = all_groups();
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

#[test]
fn list_state_adds_updates_and_clears_per_key() {
    let mut state = all_groups();
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

#[test]
fn list_update_with_empty_vec_removes_the_entry() {
    let mut state = all_groups();
    let list = state.list_state(&ListStateDescriptor::<u32>::new("l")).unwrap();
    state.set_current_key(key("a")).unwrap();
    list.update(&mut state, vec![1, 2]).unwrap();
    assert_eq!(entries_in::<Vec<u32>>(&state, 0), 1);
    list.update(&mut state, vec![]).unwrap();
    assert_eq!(entries_in::<Vec<u32>>(&state, 0), 0, "empty update must remove, not store []");
}

#[test]
fn map_state_puts_gets_removes_and_clears_per_key() {
    let mut state = all_groups();
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

#[test]
fn map_remove_of_last_entry_removes_the_map() {
    let mut state = all_groups();
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

#[test]
fn reducing_state_reduces_accumulator_then_new_value_in_order() {
    let mut state = all_groups();
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

#[test]
fn aggregating_state_averages_per_key() {
    let mut state = all_groups();
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

#[test]
fn registering_same_descriptor_twice_shares_the_state() {
    let mut state = all_groups();
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

#[test]
fn same_name_with_other_type_or_kind_conflicts() {
    let mut state = all_groups();
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

#[test]
fn access_without_current_key_names_the_state() {
    let mut state = all_groups();
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

#[test]
fn key_outside_subtask_range_is_rejected() {
    let range = KeyGroupRange::for_subtask(128, 4, 1);
    assert_eq!((range.start(), range.end()), (32, 63));
    let mut state = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, range);
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

#[test]
fn ten_thousand_keys_in_a_subtask_read_back() {
    let range = KeyGroupRange::for_subtask(128, 4, 2);
    let mut state = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, range);
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
