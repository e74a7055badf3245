//! Incremental RocksDB checkpoints: SST files written once to the job's `shared/` folder and
//! referenced by later checkpoints, unreferenced ones deleted, and restores from them.
#![cfg(feature = "rocksdb")]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use weir::connectors::CollectHandle;
use weir::{
    CheckpointConfig, ExecutionConfig, GeneratorConfig, RestartStrategy, StateBackendKind,
    StreamExecutionEnvironment,
};
use weir_checkpoint::CheckpointMetadata;
use weir_tests::config;

const KEYS: u64 = 5_000;

/// RocksDB with checkpoints every `interval_ms` into `dir`, two retained.
fn rocksdb(parallelism: usize, interval_ms: u64, dir: &Path, incremental: bool) -> ExecutionConfig {
    ExecutionConfig {
        state_backend: StateBackendKind::RocksDb,
        checkpointing: CheckpointConfig {
            interval_ms,
            dir: dir.display().to_string(),
            retained: 2,
            incremental,
            ..Default::default()
        },
        restart: Some(RestartStrategy::FixedDelay { attempts: 3, delay_ms: 10 }),
        ..config(parallelism)
    }
}

/// Sums `i` per key `i % KEYS` over `events` generated at `rate` per second, emitting the
/// running sum of each key; the map panics once, at event `fail_at`, if given.
fn keyed_sums(
    env: &mut StreamExecutionEnvironment,
    events: u64,
    rate: f64,
    fail_at: Option<(u64, &'static AtomicBool)>,
) -> CollectHandle<(u64, u64)> {
    env.from_generator(GeneratorConfig::bounded(events).with_rate(rate), |i| i)
        .map(move |i| {
            if let Some((at, failed)) = fail_at
                && i == at
                && !failed.swap(true, Ordering::SeqCst)
            {
                panic!("injected failure at event {i}");
            }
            (i % KEYS, i)
        })
        .key_by(|(key, _): &(u64, u64)| *key)
        .reduce(|(key, a), (_, b)| (key, a + b))
        .collect()
}

/// The last sum of each key in `output`: the total of its events when the state is right,
/// whatever order the two source subtasks' records met in and however often records after a
/// restored checkpoint were emitted again.
fn last_sums(output: Vec<(u64, u64)>) -> Vec<u64> {
    let mut last = vec![0; KEYS as usize];
    for (key, sum) in output {
        last[key as usize] = last[key as usize].max(sum);
    }
    last
}

/// Each key's total over `events` events.
fn totals(events: u64) -> Vec<u64> {
    let mut totals = vec![0; KEYS as usize];
    (0..events).for_each(|i| totals[(i % KEYS) as usize] += i);
    totals
}

/// The shared files the retained checkpoints under `job_dir` reference, and the files the
/// `shared/` folder holds.
fn shared_files(job_dir: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut referenced = BTreeSet::new();
    for entry in std::fs::read_dir(job_dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(json) = std::fs::read_to_string(path.join("_metadata")) else { continue };
        let metadata: CheckpointMetadata = serde_json::from_str(&json).unwrap();
        let subtasks = metadata.operators.into_iter().flat_map(|operator| operator.subtasks);
        referenced.extend(subtasks.flat_map(|subtask| subtask.shared_files));
    }
    let stored = match std::fs::read_dir(job_dir.join("shared")) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect(),
        Err(_) => BTreeSet::new(),
    };
    (referenced, stored)
}

#[test]
fn rocksdb_checkpoints_write_sst_files_once_and_delete_unreferenced_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = StreamExecutionEnvironment::new(rocksdb(2, 100, dir.path(), true));
    env.set_job_name("sums");
    let output = keyed_sums(&mut env, 60_000, 40_000.0, None);
    let result = env.execute().unwrap();
    let output = output.take();
    assert_eq!(output.len(), 60_000);
    assert!(last_sums(output) == totals(60_000), "wrong sums");

    let completed: Vec<_> = result.checkpoints.iter().filter(|c| c.failure.is_none()).collect();
    assert!(completed.len() >= 5, "{:?}", result.checkpoints);
    let incremental = completed.iter().skip(1).filter(|c| 2 * c.incremental_size < c.state_size);
    assert!(
        incremental.count() >= 2,
        "later checkpoints write a fraction of their state: {completed:#?}"
    );
    let (referenced, stored) = shared_files(&dir.path().join("sums"));
    assert!(!referenced.is_empty(), "the retained checkpoints reference shared SST files");
    assert_eq!(stored, referenced, "shared/ holds exactly what retained checkpoints reference");
}

#[test]
fn full_rocksdb_checkpoints_write_everything_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = StreamExecutionEnvironment::new(rocksdb(1, 100, dir.path(), false));
    env.set_job_name("sums");
    let output = keyed_sums(&mut env, 20_000, 40_000.0, None);
    let result = env.execute().unwrap();
    assert!(last_sums(output.take()) == totals(20_000), "wrong sums");
    let completed: Vec<_> = result.checkpoints.iter().filter(|c| c.failure.is_none()).collect();
    assert!(completed.len() >= 2, "{:?}", result.checkpoints);
    assert!(completed.iter().all(|c| c.incremental_size == c.state_size), "{completed:#?}");
    let (referenced, stored) = shared_files(&dir.path().join("sums"));
    assert!(referenced.is_empty() && stored.is_empty(), "{referenced:?} {stored:?}");
}

#[test]
fn a_job_restarts_from_an_incremental_checkpoint_exactly_once() {
    static FAILED: AtomicBool = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let mut env = StreamExecutionEnvironment::new(rocksdb(2, 100, dir.path(), true));
    env.set_job_name("sums");
    let output = keyed_sums(&mut env, 60_000, 40_000.0, Some((45_000, &FAILED)));
    let result = env.execute().unwrap();
    assert_eq!(result.restarts, 1);
    let restored_from = result.checkpoints.iter().filter(|c| c.failure.is_none()).count();
    assert!(restored_from >= 2, "{:?}", result.checkpoints);
    // The collect sink is not transactional: records between the restored checkpoint and the
    // failure are emitted twice. The state is exactly once: each key's last sum is its total.
    assert!(last_sums(output.take()) == totals(60_000), "wrong sums after the restart");
}
