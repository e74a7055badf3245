//! Incremental checkpoints: RocksDB's SST files, and the heap's unchanged namespaces and
//! timers, written once to the job's `shared/` folder and referenced by later checkpoints,
//! unreferenced ones deleted, and restores from them.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weir::connectors::CollectHandle;
use weir::prelude::*;
use weir::{CheckpointConfig, ExecutionConfig, GeneratorConfig, RestartStrategy, StateBackendKind};
use weir_checkpoint::CheckpointMetadata;
use weir_tests::config;

#[cfg(feature = "rocksdb")]
const KEYS: u64 = 5_000;

/// `backend` with checkpoints every `interval_ms` into `dir`, two retained.
fn checkpointed(
    backend: StateBackendKind,
    parallelism: usize,
    interval_ms: u64,
    dir: &Path,
    incremental: bool,
) -> ExecutionConfig {
    ExecutionConfig {
        state_backend: backend,
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

/// RocksDB with checkpoints every `interval_ms` into `dir`, two retained.
#[cfg(feature = "rocksdb")]
fn rocksdb(parallelism: usize, interval_ms: u64, dir: &Path, incremental: bool) -> ExecutionConfig {
    checkpointed(StateBackendKind::RocksDb, parallelism, interval_ms, dir, incremental)
}

/// Sums `i` per key `i % KEYS` over `events` generated at `rate` per second, emitting the
/// running sum of each key; the map panics once, at event `fail_at`, if given.
#[cfg(feature = "rocksdb")]
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
#[cfg(feature = "rocksdb")]
fn last_sums(output: Vec<(u64, u64)>) -> Vec<u64> {
    let mut last = vec![0; KEYS as usize];
    for (key, sum) in output {
        last[key as usize] = last[key as usize].max(sum);
    }
    last
}

/// Each key's total over `events` events.
#[cfg(feature = "rocksdb")]
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

#[cfg(feature = "rocksdb")]
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

#[cfg(feature = "rocksdb")]
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

#[cfg(feature = "rocksdb")]
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

/// Keys of the windowed count.
const WINDOW_KEYS: u64 = 100;

/// Counts per key `i % WINDOW_KEYS` and 1 s event-time window (event time `i` ms) over
/// `events` generated at `rate` per second, with 10 s of out-of-orderness: about ten windows
/// wait for the watermark at any time, and all but the newest no longer change, so later
/// checkpoints find them as earlier ones wrote them. Emits (key, window, count); the map
/// panics once, at event `fail_at`, if given.
fn windowed_counts(
    env: &mut StreamExecutionEnvironment,
    events: u64,
    rate: f64,
    fail_at: Option<(u64, &'static AtomicBool)>,
) -> CollectHandle<(u64, u64, u64)> {
    env.from_generator(GeneratorConfig::bounded(events).with_rate(rate), |i| i)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(10))
                .with_timestamp_assigner(|i: &u64, _| *i as i64),
        )
        .map(move |i| {
            if let Some((at, failed)) = fail_at
                && i == at
                && !failed.swap(true, Ordering::SeqCst)
            {
                panic!("injected failure at event {i}");
            }
            (i % WINDOW_KEYS, i / 1000, 1u64)
        })
        .key_by(|(key, _, _): &(u64, u64, u64)| *key)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce(|a, b| (a.0, a.1, a.2 + b.2))
        .collect()
}

/// Every (key, window, count) of [`windowed_counts`] over `events` events (a multiple of
/// 1000): ten events of each key in each window.
fn window_totals(events: u64) -> BTreeSet<(u64, u64, u64)> {
    (0..events / 1000)
        .flat_map(|window| (0..WINDOW_KEYS).map(move |key| (key, window, 10)))
        .collect()
}

/// A heap job named "windows" with checkpoints every 100 ms into `dir`, two retained.
fn heap_job(parallelism: usize, dir: &Path, incremental: bool) -> StreamExecutionEnvironment {
    let config = checkpointed(StateBackendKind::Heap, parallelism, 100, dir, incremental);
    let mut env = StreamExecutionEnvironment::new(config);
    env.set_job_name("windows");
    env
}

/// The checkpoint that wrote the shared heap file `name` (`{operator}-{subtask}-{id}-{random}.state`).
fn written_by(name: &str) -> u64 {
    let mut parts = name.rsplit('-');
    parts.next();
    parts
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint id in {name}"))
}

#[test]
fn heap_checkpoints_write_what_changed_and_refer_to_earlier_files_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = heap_job(2, dir.path(), true);
    let output = windowed_counts(&mut env, 60_000, 30_000.0, None);
    let result = env.execute().unwrap();
    let output: Vec<_> = output.take();
    assert_eq!(output.len(), window_totals(60_000).len(), "one count per key and window");
    assert!(output.into_iter().collect::<BTreeSet<_>>() == window_totals(60_000), "wrong counts");

    let completed: Vec<_> = result.checkpoints.iter().filter(|c| c.failure.is_none()).collect();
    assert!(completed.len() >= 5, "{:?}", result.checkpoints);
    let incremental = (completed.iter().skip(1))
        .filter(|c| c.state_size > 0 && 2 * c.incremental_size < c.state_size);
    assert!(
        incremental.count() >= 2,
        "later checkpoints write a fraction of their state: {completed:#?}"
    );
    let job = dir.path().join("windows");
    let (referenced, stored) = shared_files(&job);
    assert_eq!(stored, referenced, "shared/ holds exactly what retained checkpoints reference");
    let oldest_retained = (std::fs::read_dir(&job).unwrap())
        .filter_map(|e| {
            e.unwrap().file_name().into_string().ok()?.strip_prefix("chk-")?.parse().ok()
        })
        .min()
        .expect("retained checkpoints");
    assert!(
        referenced.iter().any(|name| written_by(name) < oldest_retained),
        "a retained checkpoint refers to a file of a deleted one: {referenced:?}"
    );
}

#[test]
fn full_heap_checkpoints_write_everything_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = heap_job(1, dir.path(), false);
    let output = windowed_counts(&mut env, 20_000, 40_000.0, None);
    let result = env.execute().unwrap();
    assert!(output.take().into_iter().collect::<BTreeSet<_>>() == window_totals(20_000));
    let completed: Vec<_> = result.checkpoints.iter().filter(|c| c.failure.is_none()).collect();
    assert!(completed.len() >= 2, "{:?}", result.checkpoints);
    assert!(completed.iter().all(|c| c.incremental_size >= c.state_size), "{completed:#?}");
    let (referenced, stored) = shared_files(&dir.path().join("windows"));
    assert!(referenced.is_empty() && stored.is_empty(), "{referenced:?} {stored:?}");
}

#[test]
fn a_job_restarts_from_an_incremental_heap_checkpoint_exactly_once() {
    static FAILED: AtomicBool = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let mut env = heap_job(2, dir.path(), true);
    let output = windowed_counts(&mut env, 60_000, 30_000.0, Some((45_000, &FAILED)));
    let result = env.execute().unwrap();
    assert_eq!(result.restarts, 1);
    let restored_from = result.checkpoints.iter().filter(|c| c.failure.is_none()).count();
    assert!(restored_from >= 3, "{:?}", result.checkpoints);
    // Windows that fired between the restored checkpoint and the failure fire again, with
    // the same count when the restored state is right.
    let distinct: BTreeSet<_> = output.take().into_iter().collect();
    assert!(distinct == window_totals(60_000), "wrong counts after the restart");
}
