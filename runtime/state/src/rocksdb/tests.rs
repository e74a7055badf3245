//! Tests of the RocksDB backend: column families, working directories, volume, canonical
//! snapshots shared with the heap backend, native checkpoints; and a micro-benchmark.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use weir_types::{KeyGroup, KeyGroupRange, SavepointFormat, SnapshotType};

use super::RocksDbSettings;
use crate::tests::{MAX_PARALLELISM, keys_with_groups, reread};
use crate::{
    Error, KeyedRestore, KeyedSnapshot, KeyedState, LocalDir, NamespacedValueState,
    NativeCheckpoint, NativeRestore, StateBackend, StateBackendKind, ValueState,
    ValueStateDescriptor, decode_entries,
};

fn rocksdb_in(root: &Path) -> StateBackend {
    StateBackend::RocksDb(RocksDbSettings { working_dir: root.to_path_buf(), ..Default::default() })
}

/// RocksDB whose checkpoints are full (canonical), not incremental.
fn full_rocksdb_in(root: &Path) -> StateBackend {
    let settings = RocksDbSettings {
        working_dir: root.to_path_buf(),
        incremental: false,
        ..Default::default()
    };
    StateBackend::RocksDb(settings)
}

fn full_range() -> KeyGroupRange {
    KeyGroupRange::for_subtask(MAX_PARALLELISM, 1, 0)
}

/// The instance directories under a working root.
fn instance_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    entries.map(|entry| entry.unwrap().path()).collect()
}

/// A value state `v: u64` and a namespaced state `w: (u32) -> String` over `keys`.
struct Filled {
    value: ValueState<u64>,
    windows: NamespacedValueState<u32, String>,
}

fn fill(state: &mut KeyedState<u64>, keys: &[(u64, KeyGroup)]) -> Filled {
    let value = state.value_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    let windows = state.namespaced_value_state::<u32, String>("w").unwrap();
    for &(k, _) in keys {
        state.set_current_key(k).unwrap();
        value.update(state, k * 3).unwrap();
        windows.put(state, &(k as u32 % 3), format!("w{k}")).unwrap();
    }
    Filled { value, windows }
}

/// Checks that `state` holds what [`fill`] wrote for exactly the keys of its range.
fn assert_filled(state: &mut KeyedState<u64>, keys: &[(u64, KeyGroup)]) {
    let range = state.key_group_range();
    let Filled { value, windows } = fill(state, &[]);
    let mine: Vec<u64> = keys.iter().filter(|(_, g)| range.contains(*g)).map(|(k, _)| *k).collect();
    for &k in &mine {
        state.set_current_key(k).unwrap();
        assert_eq!(value.value(state).unwrap(), Some(k * 3), "key {k}");
        assert_eq!(windows.get(state, &(k as u32 % 3)).unwrap(), Some(format!("w{k}")));
    }
    let len = state.table::<(), u64>(crate::handles::StateId(0)).unwrap().0.len();
    assert_eq!(len, mine.len(), "no entry outside the range");
}

/// Every entry of state `name` in a snapshot, decoded, with its key group.
fn entries_of(snapshot: &KeyedSnapshot, name: &str) -> BTreeSet<(KeyGroup, u64, u32, String)> {
    let mut entries = BTreeSet::new();
    for (group, block) in reread(snapshot).take(name) {
        decode_entries(&block, |k: u64, n: u32, v: String| {
            entries.insert((group, k, n, v));
        })
        .unwrap();
    }
    entries
}

#[test]
fn each_state_is_a_column_family() {
    let root = tempfile::tempdir().unwrap();
    let mut state = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    fill(&mut state, &keys_with_groups(10));
    state.list_state(&crate::ListStateDescriptor::<u8>::new("default")).unwrap();
    let [dir] = instance_dirs(root.path()).try_into().unwrap();
    let families: BTreeSet<String> =
        ::rocksdb::DB::list_cf(&::rocksdb::Options::default(), &dir).unwrap().into_iter().collect();
    let expected = ["default", "state:default", "state:v", "state:w"];
    assert_eq!(families, expected.into_iter().map(String::from).collect());
}

#[test]
fn working_directory_opens_on_first_use_and_is_removed_on_drop() {
    let root = tempfile::tempdir().unwrap();
    let unused = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    assert!(instance_dirs(root.path()).is_empty(), "nothing opened before a state registers");
    let mut first = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    let mut second = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    fill(&mut first, &keys_with_groups(100));
    fill(&mut second, &keys_with_groups(100));
    assert_eq!(instance_dirs(root.path()).len(), 2, "one instance per keyed state");
    drop(first);
    assert_eq!(instance_dirs(root.path()).len(), 1);
    drop((second, unused));
    assert!(instance_dirs(root.path()).is_empty());
}

#[test]
fn many_keys_and_large_values_survive_flushes_and_compactions() {
    let root = tempfile::tempdir().unwrap();
    let settings = RocksDbSettings {
        working_dir: root.path().to_path_buf(),
        write_buffer_bytes: 1 << 20,
        block_cache_bytes: 1 << 20,
        incremental: true,
    };
    let mut state =
        KeyedState::<u64>::new(StateBackend::RocksDb(settings), MAX_PARALLELISM, full_range());
    let small = state.value_state(&ValueStateDescriptor::<u64>::new("small")).unwrap();
    let large = state.value_state(&ValueStateDescriptor::<Vec<u8>>::new("large")).unwrap();
    let large_value = |k: u64| vec![k as u8; 1 << 20];
    for k in 0..100_000u64 {
        state.set_current_key(k).unwrap();
        small.update(&mut state, k ^ 0x5555).unwrap();
        if k % 1_000 == 0 {
            large.update(&mut state, large_value(k)).unwrap();
        }
    }
    for k in (0..100_000u64).rev() {
        state.set_current_key(k).unwrap();
        assert_eq!(small.value(&state).unwrap(), Some(k ^ 0x5555), "key {k}");
        let expected = (k % 1_000 == 0).then(|| large_value(k));
        assert_eq!(large.value(&state).unwrap(), expected, "key {k}");
    }
    assert_eq!(state.table::<(), u64>(crate::handles::StateId(0)).unwrap().0.len(), 100_000);
}

#[test]
fn canonical_snapshots_move_between_heap_and_rocksdb() {
    let root = tempfile::tempdir().unwrap();
    let keys = keys_with_groups(300);
    let mut heap = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, full_range());
    fill(&mut heap, &keys);
    let from_heap = heap.snapshot().unwrap();

    let mut rocks = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    rocks.restore(reread(&from_heap)).unwrap();
    assert_filled(&mut rocks, &keys);
    let from_rocks = rocks.snapshot().unwrap();
    assert_eq!(entries_of(&from_rocks, "w"), entries_of(&from_heap, "w"));

    // The heap writes its sections in runs, RocksDB its stored bytes listed: the layouts
    // differ, the entries do not.
    let layouts = |snapshot: &KeyedSnapshot| {
        let mut restore = reread(snapshot);
        let in_runs = |(_, block): &(KeyGroup, bytes::Bytes)| block[0] == 0;
        restore.take("v").iter().map(in_runs).collect::<BTreeSet<bool>>()
    };
    assert_eq!(layouts(&from_heap), BTreeSet::from([true]), "in runs");
    assert_eq!(layouts(&from_rocks), BTreeSet::from([false]), "listed");
    let values = |snapshot: &KeyedSnapshot| {
        let mut values = BTreeSet::new();
        for (group, block) in reread(snapshot).take("v") {
            decode_entries(&block, |k: u64, (): (), v: u64| {
                values.insert((group, k, v));
            })
            .unwrap();
        }
        values
    };
    assert_eq!(values(&from_rocks), values(&from_heap));
    assert_eq!(values(&from_heap).len(), keys.len());

    // RocksDB writes entries in key order: its snapshots are deterministic.
    let mut again = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    again.restore(reread(&from_rocks)).unwrap();
    fill(&mut again, &[]);
    let blocks = |snapshot: &KeyedSnapshot| snapshot.encode_groups().unwrap();
    assert_eq!(blocks(&again.snapshot().unwrap()), blocks(&from_rocks));

    let mut back = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, full_range());
    back.restore(reread(&from_rocks)).unwrap();
    assert_filled(&mut back, &keys);
}

/// Shared ids and sizes of a checkpoint's shared files.
fn shared(checkpoint: &NativeCheckpoint) -> BTreeSet<(String, u64)> {
    checkpoint.shared_files().map(|(file, id)| (id.to_string(), file.size)).collect()
}

/// What a restore of `checkpoint` gets: a copy of its files in a directory of its own (as a
/// download gives) and their shared ids.
fn download(checkpoint: &NativeCheckpoint) -> NativeRestore {
    let dir = tempfile::tempdir().unwrap().keep();
    for file in &checkpoint.files {
        std::fs::copy(checkpoint.dir.path().join(&file.name), dir.join(&file.name)).unwrap();
    }
    let shared_ids =
        checkpoint.shared_files().map(|(file, id)| (file.name.clone(), id.to_string())).collect();
    NativeRestore {
        dir: LocalDir::adopt(dir),
        key_group_range: checkpoint.key_group_range,
        shared_ids,
    }
}

/// A restore of the native checkpoints `natives`.
fn restore_of(natives: &[&NativeCheckpoint]) -> KeyedRestore {
    let mut restore = KeyedRestore::default();
    natives.iter().for_each(|native| restore.add_native(download(native)));
    restore
}

#[test]
fn native_checkpoints_share_sst_files_and_restore_into_any_range() {
    let root = tempfile::tempdir().unwrap();
    let keys = keys_with_groups(5_000);
    let (first_keys, later_keys) = keys.split_at(2_500);
    let mut state = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    fill(&mut state, first_keys);
    let first = state.native_checkpoint(1).unwrap().expect("RocksDB checkpoints natively");
    fill(&mut state, later_keys);
    let second = state.native_checkpoint(2).unwrap().unwrap();

    assert!(!shared(&first).is_empty());
    assert!(shared(&first).is_subset(&shared(&second)), "unchanged SST files are shared");
    assert!(shared(&second).len() > shared(&first).len(), "new writes are new SST files");
    let private: Vec<_> = second.private_files().map(|file| file.name.as_str()).collect();
    assert!(private.contains(&"CURRENT"), "{private:?}");
    assert!(private.iter().any(|name| name.starts_with("MANIFEST-")), "{private:?}");
    assert!(private.iter().any(|name| name.starts_with("OPTIONS-")), "{private:?}");
    assert_eq!(second.key_group_range, full_range());
    let first_dir = first.dir.path().to_path_buf();
    drop(first);
    assert!(!first_dir.exists(), "a dropped checkpoint's directory is removed");

    // Same range: the checkpoint becomes the instance, and its files keep their shared ids.
    let mut same = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    same.restore(restore_of(&[&second])).unwrap();
    let blocks = |state: &mut KeyedState<u64>| state.snapshot().unwrap().encode_groups().unwrap();
    assert_eq!(blocks(&mut same), blocks(&mut state));
    assert_filled(&mut same, &keys);
    assert_eq!(shared(&same.native_checkpoint(3).unwrap().unwrap()), shared(&second));

    // Scale out: a narrower range opens the checkpoint and deletes the key groups outside it
    // (assert_filled counts every entry), so its files keep their shared ids.
    let half = KeyGroupRange::for_subtask(MAX_PARALLELISM, 2, 1);
    let mut narrow = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, half);
    narrow.restore(restore_of(&[&second])).unwrap();
    assert_filled(&mut narrow, &keys);
    let clipped = shared(&narrow.native_checkpoint(3).unwrap().unwrap());
    assert!(shared(&second).is_subset(&clipped), "{clipped:?}");

    // Scale in: two halves into one full range (the first becomes the instance, the second
    // is copied in); a later native checkpoint holds both.
    let halves: Vec<NativeCheckpoint> = (0..2)
        .map(|subtask| {
            let range = KeyGroupRange::for_subtask(MAX_PARALLELISM, 2, subtask);
            let mut part = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, range);
            part.restore(restore_of(&[&second])).unwrap();
            part.native_checkpoint(3).unwrap().unwrap()
        })
        .collect();
    let mut merged = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    merged.restore(restore_of(&[&halves[0], &halves[1]])).unwrap();
    assert_filled(&mut merged, &keys);
    let third = merged.native_checkpoint(4).unwrap().unwrap();
    let mut reopened =
        KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    reopened.restore(restore_of(&[&third])).unwrap();
    assert_filled(&mut reopened, &keys);
}

#[test]
fn native_savepoints_own_their_files_and_rescale_from_the_largest_overlap() {
    let root = tempfile::tempdir().unwrap();
    let keys = keys_with_groups(3_000);
    let mut state =
        KeyedState::<u64>::new(full_rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    fill(&mut state, &keys);
    let native_savepoint = SnapshotType::Savepoint(SavepointFormat::Native);
    let (canonical, savepoint) = state.snapshot_for(1, native_savepoint).unwrap();
    let savepoint = savepoint.expect("RocksDB takes native savepoints, incremental or not");
    assert!(canonical.is_empty(), "every state is in RocksDB's files");
    assert!(savepoint.files.iter().any(|file| file.name.ends_with(".sst")));
    assert_eq!(shared(&savepoint).len(), 0, "a savepoint shares no file with checkpoints");

    // Scale out 1 -> 2, then 2 -> 3: each subtask opens the savepoint that holds most of its
    // range, deletes the key groups outside it and copies in those of the others.
    let halves: Vec<NativeCheckpoint> = (0..2)
        .map(|subtask| {
            let range = KeyGroupRange::for_subtask(MAX_PARALLELISM, 2, subtask);
            let mut half = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, range);
            half.restore(restore_of(&[&savepoint])).unwrap();
            assert_filled(&mut half, &keys);
            half.native_checkpoint(2).unwrap().unwrap()
        })
        .collect();
    for subtask in 0..3 {
        let range = KeyGroupRange::for_subtask(MAX_PARALLELISM, 3, subtask);
        let mut third = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, range);
        third.restore(restore_of(&[&halves[0], &halves[1]])).unwrap();
        assert_filled(&mut third, &keys);
        if subtask == 1 {
            // Key groups 43..=85: 21 in the first half, 22 in the second.
            let files = shared(&third.native_checkpoint(3).unwrap().unwrap());
            assert!(!files.is_disjoint(&shared(&halves[1])), "opened the larger overlap");
            assert!(files.is_disjoint(&shared(&halves[0])), "copied the smaller one");
        }
    }

    let mut heap = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, full_range());
    let (canonical, none) = heap.snapshot_for(1, native_savepoint).unwrap();
    assert!(none.is_none() && canonical.is_empty(), "the heap's native format is canonical");
}

#[test]
fn incremental_checkpoints_carry_restored_state_that_is_not_registered() {
    let root = tempfile::tempdir().unwrap();
    let mut heap = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, full_range());
    fill(&mut heap, &keys_with_groups(50));
    let mut state = KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    state.restore(reread(&heap.snapshot().unwrap())).unwrap();
    state.value_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    let (canonical, native) = state.snapshot_for(1, SnapshotType::Checkpoint).unwrap();
    assert!(native.is_some(), "checkpoints of RocksDB are incremental by default");
    assert_eq!(entries_of(&canonical, "w"), entries_of(&heap.snapshot().unwrap(), "w"));
    assert!(entries_of(&canonical, "v").is_empty(), "registered state is in RocksDB");

    let (savepoint, native) =
        state.snapshot_for(2, SnapshotType::Savepoint(SavepointFormat::Canonical)).unwrap();
    assert!(native.is_none(), "savepoints are canonical");
    assert_eq!(entries_of(&savepoint, "w"), entries_of(&heap.snapshot().unwrap(), "w"));
    let groups_of_v = |snapshot: &KeyedSnapshot| reread(snapshot).take("v").len();
    assert_eq!(groups_of_v(&savepoint), groups_of_v(&heap.snapshot().unwrap()));
}

#[test]
fn heap_and_full_rocksdb_take_no_native_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let mut rocks =
        KeyedState::<u64>::new(full_rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    fill(&mut rocks, &keys_with_groups(10));
    assert!(rocks.native_checkpoint(1).unwrap().is_none());
    let (canonical, native) = rocks.snapshot_for(1, SnapshotType::Checkpoint).unwrap();
    assert!(native.is_none() && !canonical.is_empty());

    let mut incremental =
        KeyedState::<u64>::new(rocksdb_in(root.path()), MAX_PARALLELISM, full_range());
    fill(&mut incremental, &keys_with_groups(10));
    let native = incremental.native_checkpoint(1).unwrap().unwrap();
    let mut heap = KeyedState::<u64>::new(StateBackendKind::Heap, MAX_PARALLELISM, full_range());
    assert!(heap.native_checkpoint(1).unwrap().is_none());
    let error = heap.restore(restore_of(&[&native])).unwrap_err();
    assert!(matches!(error, Error::UnsupportedByBackend { actual: "heap", .. }), "{error}");
}

/// Average nanoseconds per call of `op` over `keys`.
fn ns_per_op(keys: &[u64], mut op: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for &k in keys {
        op(k);
    }
    start.elapsed().as_nanos() as f64 / keys.len() as f64
}

/// Put and get of a `u64` value state over 1M `u64` keys (set_current_key included), heap
/// against RocksDB: `cargo test --release -p weir-state --features rocksdb -- --ignored
/// --nocapture micro_benchmark`.
#[test]
#[ignore = "benchmark; run explicitly"]
fn put_get_micro_benchmark() {
    const KEYS: u64 = 1_000_000;
    let root = tempfile::tempdir().unwrap();
    let mut shuffled: Vec<u64> = (0..KEYS).collect();
    shuffle(&mut shuffled);
    for backend in [StateBackendKind::Heap.into(), rocksdb_in(root.path())] {
        let kind = backend.kind();
        let mut state = KeyedState::<u64>::new(backend, MAX_PARALLELISM, full_range());
        let value = state.value_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
        let keys: Vec<u64> = (0..KEYS).collect();
        let put = ns_per_op(&keys, |k| {
            state.set_current_key(k).unwrap();
            value.update(&mut state, k).unwrap();
        });
        let get = ns_per_op(&shuffled, |k| {
            state.set_current_key(k).unwrap();
            assert_eq!(value.value(&state).unwrap(), Some(k));
        });
        let update = ns_per_op(&shuffled, |k| {
            state.set_current_key(k).unwrap();
            value.fold(&mut state, 1, |v, one| *v += one).unwrap();
        });
        println!(
            "{kind:>7}: put {put:6.0} ns/op, random get {get:6.0} ns/op, \
             random read-modify-write {update:6.0} ns/op ({KEYS} keys)"
        );
    }
}

/// A deterministic shuffle (xorshift), so the benchmark needs no extra dependency.
fn shuffle(values: &mut [u64]) {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..values.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        values.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}
