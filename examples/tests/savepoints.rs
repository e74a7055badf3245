//! Savepoints: a job stopped with a savepoint and restored at another parallelism, or on
//! another state backend, commits exactly what an uninterrupted run commits.

use std::path::Path;
use std::time::Duration;

use weir::prelude::{GeneratorConfig, OperatorSettings};
use weir::{
    CheckpointConfig, DataStream, DataStreamSink, ExecutionConfig, RestartStrategy,
    SavepointFormat, SavepointOptions, StateBackendKind, StreamExecutionEnvironment,
};
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

/// Runs the job at `first`, stops it with a canonical savepoint part-way, restores at `then`
/// and runs it to the end; checks the committed lines.
fn stop_and_resume(first: (usize, StateBackendKind), then: (usize, StateBackendKind)) {
    let work = tempfile::tempdir().unwrap();
    let location = stop_part_way(work.path(), first, SavepointFormat::Canonical);
    resume(work.path(), location, then);
}

/// Runs the job at `first` and stops it with a savepoint in `format` part-way; its location.
fn stop_part_way(work: &Path, first: (usize, StateBackendKind), format: SavepointFormat) -> String {
    let spec = job(work);
    let mut env = StreamExecutionEnvironment::new(config(work, first.0, first.1, None));
    spec.build(&mut env).unwrap();
    let client = env.execute_async().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let location =
        client.savepoint(SavepointOptions { stop: true, format, ..Default::default() }).unwrap();
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
    location
}

/// Restores the savepoint at `location` at `then` and runs the job to the end; checks the
/// committed lines.
fn resume(work: &Path, location: String, then: (usize, StateBackendKind)) {
    let spec = job(work);
    let mut env = StreamExecutionEnvironment::new(config(work, then.0, then.1, Some(location)));
    spec.build(&mut env).unwrap();
    env.execute().unwrap();
    let (lines, expected) = (committed_lines(&spec.output).unwrap(), spec.expected_lines());
    assert_eq!(lines.len(), expected.len(), "restored at {then:?}");
    assert!(lines == expected, "restored at {then:?}: committed lines differ");
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

/// A native savepoint holds RocksDB's own files, none of the checkpoints': the job resumes
/// from it at parallelism 3 with the checkpoints deleted; a heap job cannot read it.
#[cfg(feature = "rocksdb")]
#[test]
fn a_native_rocksdb_savepoint_restores_rescaled_without_the_checkpoints() {
    let rocksdb = StateBackendKind::RocksDb;
    let work = tempfile::tempdir().unwrap();
    let location = stop_part_way(work.path(), (2, rocksdb), SavepointFormat::Native);
    let dir = Path::new(location.trim_start_matches("file://"));
    let files = walk(dir);
    assert!(files.iter().any(|file| file.ends_with(".sst")), "{files:?}");
    std::fs::remove_dir_all(work.path().join("checkpoints")).unwrap();

    let mut heap = config(work.path(), 2, StateBackendKind::Heap, Some(location.clone()));
    heap.restart = Some(RestartStrategy::None); // the restore fails the same way every time
    let mut env = StreamExecutionEnvironment::new(heap);
    job(work.path()).build(&mut env).unwrap();
    let error = env.execute().unwrap_err().to_string();
    assert!(error.contains("rocksdb"), "the heap backend refuses a native savepoint: {error}");

    resume(work.path(), location, (3, rocksdb));
}

/// The paths of the files under `dir`, as text.
#[cfg(feature = "rocksdb")]
fn walk(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path.display().to_string());
        }
    }
    files
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

/// A generator of `events` at 20 000 per second, through `stage`, into a discarding sink,
/// at parallelism 2, restored from `restore`; how many records the sink saw, and how the
/// stop-with-savepoint after 300 ms went, with `stop`.
fn run_generator(
    work: &Path,
    events: u64,
    restore: Option<String>,
    stop: bool,
    stage: impl FnOnce(DataStream<u64>) -> DataStreamSink,
) -> (u64, Result<String, String>) {
    let mut config = config(work, 2, StateBackendKind::Heap, restore);
    config.checkpointing.interval_ms = 0;
    let mut env = StreamExecutionEnvironment::new(config);
    let generator = GeneratorConfig::bounded(events).with_rate(20_000.0);
    stage(env.from_generator(generator, |i| i).uid("numbers"));
    let client = env.execute_async().unwrap();
    let stopped = if stop {
        std::thread::sleep(Duration::from_millis(300));
        client.stop_with_savepoint(None).map_err(|error| error.to_string())
    } else {
        Err("not stopped".to_string())
    };
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(client.wait()));
    let result = result.recv_timeout(Duration::from_secs(60)).expect("the job ends").unwrap();
    (result.operator("Discard").expect("the sink").records_in, stopped)
}

#[test]
fn nothing_is_processed_after_the_barrier_of_a_stop_with_savepoint() {
    let work = tempfile::tempdir().unwrap();
    let events = 40_000;
    let (before, savepoint) = run_generator(work.path(), events, None, true, |s| s.discard());
    let savepoint = savepoint.expect("the savepoint completes");
    assert!(before > 0 && before < events, "stopped part-way: {before} of {events}");
    let restore = Some(savepoint);
    let (after, _) = run_generator(work.path(), events, restore, false, |s| s.discard());
    // Records processed after the barrier would be read again by the restored job.
    assert_eq!(before + after, events, "{before} before the savepoint, {after} after");
}

/// A sum whose state cannot be written: every snapshot of it fails.
#[derive(Clone, Debug, serde::Deserialize)]
struct Unwritable(u64);

impl serde::Serialize for Unwritable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this state cannot be written"))
    }
}

#[test]
fn sources_resume_when_a_stop_with_savepoint_fails() {
    let work = tempfile::tempdir().unwrap();
    let events = 20_000;
    let (seen, stopped) = run_generator(work.path(), events, None, true, |numbers| {
        let sums = numbers.map(Unwritable).key_by(|n| n.0 % 4);
        sums.reduce(|a, b| Unwritable(a.0 + b.0)).discard()
    });
    let error = stopped.expect_err("the savepoint fails");
    assert!(error.contains("could not be encoded"), "{error}");
    assert_eq!(seen, events, "the job went on to the end");
}
