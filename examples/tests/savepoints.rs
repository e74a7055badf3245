//! Savepoints: a job stopped with a savepoint and restored at another parallelism, or on
//! another state backend, commits exactly what an uninterrupted run commits.

use std::path::Path;
use std::time::Duration;

use weir::prelude::OperatorSettings;
use weir::{CheckpointConfig, ExecutionConfig, StateBackendKind, StreamExecutionEnvironment};
use weir_examples::exactly_once::{ExactlyOnceJob, committed_lines};

/// 20 000 events at 10 000 per second: the job runs about two seconds.
fn job(work: &Path) -> ExactlyOnceJob {
    ExactlyOnceJob {
        events: 20_000,
        keys: 7,
        rate: Some(10_000.0),
        output: work.join("out"),
        fail_at: Default::default(),
    }
}

fn config(
    work: &Path,
    parallelism: usize,
    state_backend: StateBackendKind,
    restore: Option<String>,
) -> ExecutionConfig {
    ExecutionConfig {
        parallelism,
        state_backend,
        progress_interval_ms: 0,
        checkpointing: CheckpointConfig {
            interval_ms: 200,
            dir: work.join("checkpoints").display().to_string(),
            savepoint_dir: Some(work.join("savepoints").display().to_string()),
            restore,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Runs the job at `first`, stops it with a savepoint part-way, restores at `then` and runs
/// it to the end; checks the committed lines.
fn stop_and_resume(first: (usize, StateBackendKind), then: (usize, StateBackendKind)) {
    let work = tempfile::tempdir().unwrap();
    let spec = job(work.path());
    let mut env = StreamExecutionEnvironment::new(config(work.path(), first.0, first.1, None));
    spec.build(&mut env).unwrap();
    let client = env.execute_async().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let location = client.stop_with_savepoint(None).unwrap();
    let stopped = client.wait().unwrap();
    assert_eq!(stopped.savepoint.as_deref(), Some(location.as_str()));
    assert!(location.contains("savepoint-exactly-once-"), "{location}");
    let partial = committed_lines(&spec.output).unwrap();
    let expected = spec.expected_lines();
    assert!(
        !partial.is_empty() && partial.len() < expected.len(),
        "stopped part-way: {} of {} lines committed",
        partial.len(),
        expected.len()
    );

    let restore = Some(location);
    let mut env = StreamExecutionEnvironment::new(config(work.path(), then.0, then.1, restore));
    spec.build(&mut env).unwrap();
    env.execute().unwrap();
    let lines = committed_lines(&spec.output).unwrap();
    assert_eq!(lines.len(), expected.len(), "{first:?} -> {then:?}");
    assert!(lines == expected, "{first:?} -> {then:?}: committed lines differ");
}

#[test]
fn a_savepoint_taken_at_parallelism_2_restores_at_3() {
    stop_and_resume((2, StateBackendKind::Heap), (3, StateBackendKind::Heap));
}

#[test]
fn a_savepoint_taken_at_parallelism_2_restores_at_1() {
    stop_and_resume((2, StateBackendKind::Heap), (1, StateBackendKind::Heap));
}

#[cfg(feature = "rocksdb")]
#[test]
fn a_savepoint_taken_on_heap_restores_on_rocksdb_and_back() {
    stop_and_resume((2, StateBackendKind::Heap), (3, StateBackendKind::RocksDb));
    stop_and_resume((3, StateBackendKind::RocksDb), (2, StateBackendKind::Heap));
}

#[test]
fn a_restore_from_a_missing_savepoint_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("no-such-savepoint").display().to_string();
    let mut env = StreamExecutionEnvironment::new(config(
        work.path(),
        1,
        StateBackendKind::Heap,
        Some(missing.clone()),
    ));
    job(work.path()).build(&mut env).unwrap();
    let error = env.execute().unwrap_err().to_string();
    assert!(error.contains("no-such-savepoint") && error.contains("no savepoint"), "{error}");
}

#[test]
fn state_of_operators_the_job_no_longer_has_needs_an_explicit_allowance() {
    let work = tempfile::tempdir().unwrap();
    let spec = job(work.path());
    let mut env =
        StreamExecutionEnvironment::new(config(work.path(), 2, StateBackendKind::Heap, None));
    spec.build(&mut env).unwrap();
    let client = env.execute_async().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let location = client.stop_with_savepoint(None).unwrap();
    client.wait().unwrap();

    let changed_job = |allow: bool| {
        let mut config = config(work.path(), 1, StateBackendKind::Heap, Some(location.clone()));
        config.checkpointing.allow_non_restored_state = allow;
        let mut env = StreamExecutionEnvironment::new(config);
        env.from_sequence(0, 10).uid("events").discard();
        env.execute()
    };
    let error = changed_job(false).unwrap_err().to_string();
    assert!(
        error.contains("uid count-and-sum") && error.contains("allow_non_restored_state"),
        "{error}"
    );
    changed_job(true).expect("with the allowance the job runs without that state");
}
