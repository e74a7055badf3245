//! State in cluster mode: workers write their tasks' checkpoint state to checkpoint storage
//! themselves and the coordinator only collects handles, so a checkpoint holds more state
//! than any message may carry; RocksDB checkpoints are incremental across workers, and a
//! stop-with-savepoint and a checkpoint written by workers both restore at another
//! parallelism.

use std::path::Path;
use std::time::Duration;

use weir_checkpoint::CheckpointMetadata;
use weir_tests::cluster::{Coordinator, Worker};

const JOB: &str = env!("CARGO_BIN_EXE_cluster-job");

/// The coordinator refuses larger messages from workers (see `MAX_MESSAGE_BYTES`).
const MAX_MESSAGE_BYTES: u64 = 8 << 20;

fn worker(coordinator: &str, dir: &Path, index: usize) -> Worker {
    Worker::start(Path::new(JOB), coordinator, 1, dir, index)
}

/// The metadata of the snapshot at `url` (a `file://` URL).
fn metadata(url: &str) -> CheckpointMetadata {
    let path = Path::new(url.strip_prefix("file://").expect("a file URL")).join("_metadata");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The location of each "checkpoint complete at …" line of `log`, with its `bytes` and
/// `written` fields.
fn completed(log: &str) -> Vec<(String, u64, u64)> {
    let field = |line: &str, name: &str| -> u64 {
        let value = line.split(&format!("{name}=")).nth(1).expect(name);
        value.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    log.lines()
        .filter_map(|line| {
            let url = line.split("checkpoint complete at ").nth(1)?.split_whitespace().next()?;
            Some((url.to_string(), field(line, "bytes"), field(line, "written")))
        })
        .collect()
}

#[test]
fn a_cluster_checkpoint_holds_more_state_than_a_message_may_carry() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("chk").display().to_string();
    let keys = "3000000";
    let (mut coordinator, address) = Coordinator::start(
        Path::new(JOB),
        &[
            "-p",
            "1",
            "--events",
            keys,
            "--keys",
            keys,
            "--checkpoint-dir",
            &checkpoints,
            "--checkpoint-interval-ms",
            "1000",
        ],
    );
    let _worker = worker(&address, dir.path(), 0);
    let status = coordinator.wait(Duration::from_secs(120));
    let log = coordinator.log();
    assert!(status.success(), "{log}");
    let (url, bytes, _) = completed(&log).pop().expect("a final checkpoint");
    let metadata = metadata(&url);
    let subtasks = metadata.operators.iter().flat_map(|operator| &operator.subtasks);
    let largest = subtasks.map(|subtask| subtask.size()).max().unwrap();
    // Sent to the coordinator, this subtask's state would have broken its worker's session.
    assert!(largest > MAX_MESSAGE_BYTES, "{largest} bytes in one subtask, {bytes} in all");
    for operator in &metadata.operators {
        for subtask in &operator.subtasks {
            let file = Path::new(url.strip_prefix("file://").unwrap()).join(&subtask.file);
            assert!(file.exists(), "{} was written", file.display());
        }
    }
}

/// Runs the cluster job from `restore` at parallelism 3 on two workers until its 1 M events
/// are counted; returns the final count of each key it printed.
#[cfg(feature = "rocksdb")]
fn finish_rescaled(dir: &Path, restore: &str, run: usize) -> std::collections::HashMap<u64, u64> {
    let checkpoints = dir.join(format!("chk-run-{run}")).display().to_string();
    let (mut coordinator, address) = Coordinator::start(
        Path::new(JOB),
        &[
            "-p",
            "3",
            "--events",
            "1000000",
            "--keys",
            "100000",
            "--state-backend",
            "rocksdb",
            "--checkpoint-dir",
            &checkpoints,
            "--restore",
            restore,
        ],
    );
    let workers = [
        Worker::start(Path::new(JOB), &address, 2, dir, 10 * run),
        Worker::start(Path::new(JOB), &address, 1, dir, 10 * run + 1),
    ];
    let status = coordinator.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", coordinator.log());
    let mut finals = std::collections::HashMap::new();
    for line in workers.iter().flat_map(Worker::lines) {
        let record = line.split_once("> ").unwrap().1.trim_matches('"');
        let (key, count) = record.split_once(' ').unwrap();
        let entry = finals.entry(key.parse().unwrap()).or_default();
        *entry = count.parse::<u64>().unwrap().max(*entry);
    }
    finals
}

#[cfg(feature = "rocksdb")]
#[test]
fn cluster_rocksdb_checkpoints_write_only_new_files_and_restore_rescaled() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("chk").display().to_string();
    let savepoints = dir.path().join("savepoints").display().to_string();
    let (mut coordinator, address) = Coordinator::start(
        Path::new(JOB),
        &[
            "-p",
            "2",
            "--events",
            "1000000",
            "--keys",
            "100000",
            "--sink-rate",
            "20000",
            "--state-backend",
            "rocksdb",
            "--checkpoint-dir",
            &checkpoints,
            "--checkpoint-interval-ms",
            "500",
        ],
    );
    let rest = coordinator.wait_for("web UI: http://");
    let rest = rest[rest.find("http://").unwrap()..].trim_end_matches('/').to_string();
    let _workers: Vec<Worker> = (0..2).map(|i| worker(&address, dir.path(), i)).collect();
    coordinator.wait_for("/chk-5 ");
    let jobs: serde_json::Value =
        reqwest::blocking::get(format!("{rest}/jobs")).unwrap().json().unwrap();
    let name = jobs["jobs"][0]["name"].as_str().expect("one job").to_string();
    let body = serde_json::json!({ "dir": savepoints, "stop": true });
    let client = reqwest::blocking::Client::new();
    let reply = client.post(format!("{rest}/jobs/{name}/savepoints")).json(&body).send().unwrap();
    assert!(reply.status().is_success(), "{:?}", reply.text());
    let savepoint: serde_json::Value = reply.json().unwrap();
    let savepoint = savepoint["location"].as_str().expect("a location").to_string();
    assert!(coordinator.wait(Duration::from_secs(60)).success(), "{}", coordinator.log());

    let log = coordinator.log();
    let checkpoints: Vec<_> =
        completed(&log).into_iter().filter(|(url, ..)| url.contains("/chk-")).collect();
    let (latest, ..) = checkpoints.last().cloned().expect("checkpoints");
    let keyed = metadata(&latest).operators.into_iter().find(|op| op.name.contains("Keyed"));
    let keyed = keyed.expect("the counting operator has state");
    assert!(
        keyed.subtasks.iter().all(|subtask| subtask.native.is_some()),
        "cluster checkpoints are RocksDB's native ones: {keyed:?}"
    );
    // After the first, a checkpoint writes the SST files flushed since the one before: a
    // fraction of the state it references.
    let later = &checkpoints[1..];
    let smallest = later.iter().map(|(_, bytes, written)| *written as f64 / *bytes as f64);
    let smallest = smallest.fold(f64::INFINITY, f64::min);
    assert!(smallest < 0.5, "every later checkpoint wrote over half its state: {checkpoints:?}");

    for (run, restore) in [(1, &savepoint), (2, &latest)] {
        let finals = finish_rescaled(dir.path(), restore, run);
        assert_eq!(finals.len(), 100_000, "every key counted after restoring {restore}");
        assert!(finals.values().all(|&count| count == 10), "counts after restoring {restore}");
    }
}
