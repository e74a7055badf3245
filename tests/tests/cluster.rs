//! A job run as one coordinator and worker processes on 127.0.0.1: the same output as
//! embedded, a clear wait for missing slots, recovery from a worker killed with SIGKILL, a
//! throttled sink slowing the sources on other workers with bounded memory, checkpoint ids
//! continuing across a restore, and a restart deployed during its delay that starts its
//! tasks when the delay is over.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use weir_tests::cluster::{Coordinator, Worker};
use weir_tests::sorted;

const JOB: &str = env!("CARGO_BIN_EXE_cluster-job");

fn coordinator(args: &[&str]) -> (Coordinator, String) {
    Coordinator::start(Path::new(JOB), args)
}

fn worker(coordinator: &str, slots: u32, dir: &Path, index: usize) -> Worker {
    Worker::start(Path::new(JOB), coordinator, slots, dir, index)
}

#[test]
fn cluster_output_equals_embedded_output() {
    let job_args = ["-p", "3", "--events", "30000", "--keys", "50"];
    let embedded = Command::new(JOB).arg("run").args(job_args).output().unwrap();
    assert!(embedded.status.success(), "{}", String::from_utf8_lossy(&embedded.stderr));
    let expected =
        sorted(String::from_utf8(embedded.stdout).unwrap().lines().map(str::to_string).collect());
    assert_eq!(expected.len(), 30_000);

    let dir = tempfile::tempdir().unwrap();
    let (mut coordinator, address) = coordinator(&job_args);
    let mut workers: Vec<Worker> = (0..2).map(|i| worker(&address, 2, dir.path(), i)).collect();
    assert!(coordinator.wait(Duration::from_secs(60)).success(), "{}", coordinator.log());
    for worker in &mut workers {
        assert!(worker.wait().success(), "a worker exits 0 when the job finished");
    }
    let printed: Vec<String> = workers.iter().flat_map(Worker::lines).collect();
    assert!(workers.iter().all(|w| !w.lines().is_empty()), "both workers ran subtasks");
    assert_eq!(sorted(printed), expected, "the cluster printed what the embedded job printed");
}

#[test]
fn missing_slots_are_named_and_the_wait_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let (mut coordinator, address) =
        coordinator(&["--slot-timeout-secs", "2", "-p", "3", "--events", "10"]);
    let _worker = worker(&address, 1, dir.path(), 0);
    coordinator.wait_for("waiting for slots: 3 needed");
    let status = coordinator.wait(Duration::from_secs(30));
    assert!(!status.success());
    let log = coordinator.log();
    assert!(log.contains("needs 3 slots but 1 are offered by 1 workers"), "{log}");
}

#[test]
fn a_killed_worker_is_detected_and_the_job_restarts_on_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (events, keys) = (40_000, 100);
    let (mut coordinator, address) = coordinator(&[
        "-p",
        "2",
        "--heartbeat-timeout-secs",
        "3",
        "--set",
        "restart.strategy=fixed-delay",
        "--set",
        "restart.attempts=3",
        "--set",
        "restart.delay_ms=100",
        "--events",
        &events.to_string(),
        "--keys",
        &keys.to_string(),
        "--sink-rate",
        "5000",
    ]);
    let mut victim = worker(&address, 1, dir.path(), 0);
    let survivor = worker(&address, 1, dir.path(), 1);
    coordinator.wait_for("deployed");
    std::thread::sleep(Duration::from_millis(1500));
    victim.kill();
    coordinator.wait_for("worker lost");
    // The survivor alone has too few slots: the job waits for a new worker.
    coordinator.wait_for("waiting for slots: 2 needed, 1 offered");
    let replacement = worker(&address, 1, dir.path(), 2);
    let status = coordinator.wait(Duration::from_secs(90));
    let log = coordinator.log();
    assert!(status.success(), "{log}");
    assert!(log.contains("restart 1"), "{log}");
    assert!(log.contains("finished"), "{log}");
    // The second attempt ran everything again on the survivor and the replacement: every
    // key reached its full count there.
    let mut finals: HashMap<u64, u64> = HashMap::new();
    for line in survivor.lines().into_iter().chain(replacement.lines()) {
        // `N> "key count"`: the print sink prefixes the subtask, as Flink's does.
        let record = line.split_once("> ").unwrap().1.trim_matches('"');
        let fields: Vec<u64> = record.split(' ').map(|f| f.parse().unwrap()).collect();
        let entry = finals.entry(fields[0]).or_default();
        *entry = (*entry).max(fields[1]);
    }
    assert_eq!(finals.len(), keys as usize);
    assert!(finals.values().all(|&count| count == events / keys), "{finals:?}");
}

/// After a worker is lost, the next attempt is deployed as soon as the slots are there, within
/// the restart delay (its workers read their state meanwhile), and its tasks start only when
/// the delay is over: no record reaches a sink sooner.
#[test]
fn a_restart_is_deployed_within_its_delay_and_starts_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let delay = Duration::from_millis(4000);
    let (mut coordinator, address) = coordinator(&[
        "-p",
        "2",
        "--set",
        "restart.strategy=fixed-delay",
        "--set",
        "restart.attempts=3",
        "--set",
        &format!("restart.delay_ms={}", delay.as_millis()),
        "--events",
        "40000",
        "--keys",
        "100",
        "--sink-rate",
        "5000",
    ]);
    let mut victim = worker(&address, 1, dir.path(), 0);
    let survivor = worker(&address, 1, dir.path(), 1);
    coordinator.wait_for("deployed");
    std::thread::sleep(Duration::from_millis(1000));
    victim.kill();
    // Logged once the failed attempt's tasks ended, with what is left of the delay, which
    // counts from the failure.
    let restart = coordinator.wait_for("restart 1 in");
    let decided = Instant::now();
    let left = field(&restart, "restart 1 in ").map(Duration::from_millis);
    let left = left.unwrap_or_else(|| panic!("no delay left in '{restart}'"));
    let log = coordinator.log();
    assert!(left > Duration::from_millis(1000), "{left:?} of the {delay:?} delay left:\n{log}");
    let printed_before = survivor.lines().len();
    let replacement = worker(&address, 1, dir.path(), 2);
    let deployed = coordinator.wait_for("attempt=2 workers=");
    let start_delay_ms = field(&deployed, "start_delay_ms=")
        .unwrap_or_else(|| panic!("no start delay in '{deployed}'"));
    assert!(start_delay_ms > 500, "deployed {start_delay_ms} ms before the delay ended");
    let printed = || survivor.lines().len() > printed_before || !replacement.lines().is_empty();
    while !printed() {
        assert!(decided.elapsed() < Duration::from_secs(60), "{}", coordinator.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Less the time the log line took to reach this test.
    let quiet = decided.elapsed();
    assert!(
        quiet + Duration::from_millis(200) >= left,
        "the restarted tasks printed {quiet:?} after the restart was decided, {left:?} before \
         the delay was over"
    );
    let status = coordinator.wait(Duration::from_secs(90));
    assert!(status.success(), "{}", coordinator.log());
}

/// The number after `prefix` in `line`.
fn field(line: &str, prefix: &str) -> Option<u64> {
    let (_, rest) = line.split_once(prefix)?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// A coordinator killed and started again with `--restore latest` numbers its checkpoints
/// after the one it restored: starting again at 1 overwrote older checkpoints and left a
/// stale one with the highest id for the next restore of `latest` (whose sink then
/// committed the same records again).
#[test]
fn a_restored_cluster_job_numbers_its_checkpoints_after_the_restored_one() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("chk").display().to_string();
    let args = [
        "--checkpoint-dir",
        &checkpoints,
        "--checkpoint-interval-ms",
        "100",
        "--restore",
        "latest",
        "--sink-rate",
        "5000",
    ];
    {
        let (mut first, address) = coordinator(&args);
        let _worker = worker(&address, 2, dir.path(), 0);
        first.wait_for("/chk-3 ");
    } // both killed
    let (mut second, address) = coordinator(&args);
    let _worker = worker(&address, 2, dir.path(), 1);
    let deployed = second.wait_for(" deployed ");
    let restored: u64 = deployed
        .split("/chk-")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("restored from a checkpoint: {deployed}"));
    assert!(restored >= 3, "{deployed}");
    let first_checkpoint = second.wait_for("checkpoint complete at ");
    let next = format!("/chk-{} ", restored + 1);
    assert!(first_checkpoint.contains(&next), "after chk-{restored}: {first_checkpoint}");
}

#[test]
fn a_throttled_sink_slows_sources_on_other_workers_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // No --rest-bind: a coordinator serves its REST API beside its gRPC port (both 0: any).
    let (mut coordinator, address) =
        coordinator(&["-p", "2", "--keys", "1000", "--payload", "1000", "--sink-rate", "2000"]);
    let rest = coordinator.wait_for("web UI: http://");
    let rest = rest[rest.find("http://").unwrap()..].trim_end_matches('/').to_string();
    // The first worker sizes its memory itself; the second has no memory settings.
    let sized = ["--set", "memory.processSize=1g"];
    let workers = [
        Worker::start_with(Path::new(JOB), &address, 1, dir.path(), 0, &sized),
        worker(&address, 1, dir.path(), 1),
    ];
    coordinator.wait_for("deployed");
    let listed: serde_json::Value =
        reqwest::blocking::get(format!("{rest}/workers")).unwrap().json().unwrap();
    let mut processes: Vec<serde_json::Value> = listed["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["memory"]["process"].clone())
        .collect();
    processes.sort_by_key(|p| p.as_u64());
    assert_eq!(processes, [serde_json::Value::Null, serde_json::json!(1u64 << 30)], "{listed}");
    std::thread::sleep(Duration::from_secs(3));
    let early: Vec<u64> = workers.iter().map(Worker::rss).collect();
    std::thread::sleep(Duration::from_secs(6));
    let late: Vec<u64> = workers.iter().map(Worker::rss).collect();
    let counts = records_per_operator(&rest);
    let produced = counts["Source: Data Generator"].1;
    let sunk = counts["KeyedProcess"].1;
    // In flight at most, per channel: the producer's queue and the consumer's
    // (`channel_capacity` batches each, a batch holding `batch_bytes` of ~1 KB records) and
    // 4 MiB of credit (~4000 records of 1 KB): 4 channels.
    let config = weir::ExecutionConfig::default();
    let per_batch = config.batch_bytes / 1000;
    let bound = 4 * (2 * config.channel_capacity * per_batch + 4_200) as u64;
    assert!(sunk > 10_000, "the sinks ran: {counts:?}");
    assert!(produced <= sunk + bound, "sources ran {} records ahead of the sinks", produced - sunk);
    for (before, after) in early.iter().zip(&late) {
        let growth = after.saturating_sub(*before);
        assert!(growth < 64 << 20, "a worker grew by {} MiB in 6 s", growth >> 20);
    }
    eprintln!(
        "worker RSS after 3 s {early:?}, after 9 s {late:?}; produced {produced}, sunk {sunk}"
    );
}

/// (records in, records out) per operator, from the coordinator's REST API.
fn records_per_operator(rest: &str) -> BTreeMap<String, (u64, u64)> {
    let jobs: serde_json::Value =
        reqwest::blocking::get(format!("{rest}/jobs")).unwrap().json().unwrap();
    let name = jobs["jobs"][0]["name"].as_str().expect("one job").to_string();
    let job: serde_json::Value =
        reqwest::blocking::get(format!("{rest}/jobs/{name}")).unwrap().json().unwrap();
    job["vertices"]
        .as_array()
        .expect("vertices")
        .iter()
        .map(|v| {
            let count = |field: &str| v[field].as_u64().expect("a count");
            (v["name"].as_str().unwrap().to_string(), (count("records_in"), count("records_out")))
        })
        .collect()
}
