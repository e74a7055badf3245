//! Crash tests of the `exactly-once` job: killed with SIGKILL or panicking at many points, on
//! the heap and the RocksDB backend, with checkpoints on local disk or in S3 (a real
//! S3-compatible server the test starts), restored each time at a random parallelism, its
//! committed output equals that of a run without failures, line for line.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_examples::exactly_once::{ExactlyOnceJob, committed_lines, difference};

const EVENTS: u64 = 20_000;
const KEYS: u64 = 7;
/// Events per second: a run without failures takes about a second.
const RATE: u64 = 20_000;

/// The job the tests run, as the binary's arguments describe it.
fn spec(output: &Path) -> ExactlyOnceJob {
    ExactlyOnceJob {
        events: EVENTS,
        keys: KEYS,
        rate: Some(RATE as f64),
        output: output.to_path_buf(),
        fail_at: Default::default(),
    }
}

/// The lines a run without failures commits, sorted.
fn expected() -> Vec<String> {
    spec(Path::new("")).expected_lines()
}

/// The lines of the committed (visible) files in `dir`, sorted.
fn committed(dir: &Path) -> Vec<String> {
    committed_lines(dir).expect("the output directory is readable")
}

/// The job on `backend`, writing to `work/out` with checkpoints in `work/chk`, resuming
/// from the latest checkpoint if there is one.
fn job(work: &Path, backend: &str, parallelism: usize, extra: &[&str]) -> Command {
    let checkpoints = work.join("chk").display().to_string();
    job_with_checkpoints(work, &checkpoints, backend, parallelism, extra)
}

/// [`job`] with checkpoints under the URL `checkpoints`.
fn job_with_checkpoints(
    work: &Path,
    checkpoints: &str,
    backend: &str,
    parallelism: usize,
    extra: &[&str],
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_exactly-once"));
    command
        .arg("run")
        .args(["--parallelism", &parallelism.to_string()])
        .args(["--events", &EVENTS.to_string(), "--keys", &KEYS.to_string()])
        .args(["--rate", &RATE.to_string()])
        .arg("--output")
        .arg(work.join("out"))
        .args(["--checkpoint-dir", checkpoints])
        .args(["--checkpoint-interval-ms", "100", "--state-backend", backend])
        .args(["--restore", "latest"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file(work));
    command
}

/// The log every run in `work` appends its standard error to (a file, so that a chatty
/// job never blocks on a full pipe).
fn log_file(work: &Path) -> std::fs::File {
    let path = work.join("job.log");
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap()
}

/// Waits for `child`, whose runs log into `work`, to end by itself; fails the test with the
/// log after a minute.
fn finish(mut child: Child, work: &Path, context: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = || std::fs::read_to_string(work.join("job.log")).unwrap_or_default();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{context}: the job failed ({status}):\n{}", log());
            return;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{context}: the job did not finish within a minute:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the job twice per scenario at random points (start-up, mid-stream, around the
/// final checkpoint), each run at a random parallelism, then lets it finish.
fn survives_kills(backend: &str, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let want = expected();
    for scenario in 0..10 {
        let work = tempfile::tempdir().unwrap();
        let mut kills = Vec::new();
        for _ in 0..2 {
            let parallelism = rng.usize(1..=3);
            let after = Duration::from_millis(rng.u64(20..1_100));
            let mut child = job(work.path(), backend, parallelism, &[]).spawn().unwrap();
            std::thread::sleep(after);
            child.kill().unwrap();
            child.wait().unwrap();
            kills.push((parallelism, after.as_millis()));
        }
        let parallelism = rng.usize(1..=3);
        let context = format!("{backend} scenario {scenario}: killed at (p, ms) {kills:?}");
        finish(job(work.path(), backend, parallelism, &[]).spawn().unwrap(), work.path(), &context);
        let got = committed(&work.path().join("out"));
        assert!(got == want, "{context}, finished at p={parallelism}: {}", difference(&got, &want));
    }
}

/// Panics at several events inside one process: the job restarts from its latest
/// checkpoint each time.
fn survives_panics(backend: &str) {
    let work = tempfile::tempdir().unwrap();
    let restart = [
        "--set",
        "restart.strategy=fixed-delay",
        "--set",
        "restart.attempts=10",
        "--set",
        "restart.delay_ms=10",
    ];
    let mut args = vec!["--fail-at", "1,2500,7000,11111,15000,19999"];
    args.extend(restart);
    let child = job(work.path(), backend, 2, &args).spawn().unwrap();
    finish(child, work.path(), &format!("{backend} panics"));
    let got = committed(&work.path().join("out"));
    let want = expected();
    assert!(got == want, "{backend} panics: {}", difference(&got, &want));
}

/// Checkpoints in S3 on `backend`: the job is killed twice and resumes from the latest
/// checkpoint in the bucket each time.
fn s3_checkpoints_survive_kills(backend: &str) {
    let s3 = weir_tests::services::S3Server::start().expect("the S3 test server starts");
    let options = s3.options();
    let credentials = [
        ("AWS_ENDPOINT", options.endpoint.clone().unwrap_or_default()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ];
    let work = tempfile::tempdir().unwrap();
    let checkpoints = s3.url("crash-test");
    for (parallelism, after) in [(2, 600), (3, 500)] {
        let mut command =
            job_with_checkpoints(work.path(), &checkpoints, backend, parallelism, &[]);
        let mut child = command.envs(credentials.clone()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(after));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut command = job_with_checkpoints(work.path(), &checkpoints, backend, 1, &[]);
    let context = format!("s3 checkpoints on {backend}");
    finish(command.envs(credentials).spawn().unwrap(), work.path(), &context);
    let (got, want) = (committed(&work.path().join("out")), expected());
    assert!(got == want, "{context}: {}", difference(&got, &want));
}

#[test]
fn s3_checkpoints_survive_kills_on_heap() {
    s3_checkpoints_survive_kills("heap");
}

#[cfg(feature = "rocksdb")]
#[test]
fn s3_incremental_rocksdb_checkpoints_survive_kills() {
    s3_checkpoints_survive_kills("rocksdb");
}

#[test]
fn heap_state_is_exactly_once_across_kills_and_rescaling() {
    survives_kills("heap", 1);
}

#[test]
fn heap_state_is_exactly_once_across_panics() {
    survives_panics("heap");
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_state_is_exactly_once_across_kills_and_rescaling() {
    survives_kills("rocksdb", 2);
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_state_is_exactly_once_across_panics() {
    survives_panics("rocksdb");
}

/// The job as `role` (`coordinator …` or `worker …`) of a cluster, logging into `work`.
fn cluster_process(work: &Path, role: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_exactly-once"));
    command.args(role).env("RUST_LOG", "info").stdout(Stdio::null()).stderr(log_file(work));
    command
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the job as a coordinator and two one-slot workers, kills one worker with SIGKILL at
/// a random point and starts a new one: the coordinator notices, restores the job from its
/// latest checkpoint on the survivor and the newcomer, and the committed output equals a
/// run without failures.
fn survives_worker_kills(backend: &str, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let want = expected();
    for scenario in 0..3 {
        let work = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        // A quarter of the usual rate: the run takes about 4 s, so the kill lands mid-run.
        let (events, keys, rate) = (EVENTS.to_string(), KEYS.to_string(), (RATE / 4).to_string());
        let output = work.path().join("out").display().to_string();
        let checkpoints = work.path().join("chk").display().to_string();
        let coordinator = cluster_process(
            work.path(),
            &[
                "coordinator",
                "--bind",
                &address,
                "--parallelism",
                "2",
                "--heartbeat-timeout-secs",
                "3",
                "--events",
                &events,
                "--keys",
                &keys,
                "--rate",
                &rate,
                "--output",
                &output,
                "--checkpoint-dir",
                &checkpoints,
                "--checkpoint-interval-ms",
                "100",
                "--state-backend",
                backend,
            ],
        )
        .spawn()
        .unwrap();
        let worker = ["worker", "--coordinator", &address, "--slots", "1"];
        let mut workers: Vec<Child> =
            (0..2).map(|_| cluster_process(work.path(), &worker).spawn().unwrap()).collect();
        let after = Duration::from_millis(rng.u64(300..2_500));
        std::thread::sleep(after);
        let victim = rng.usize(0..2);
        workers[victim].kill().unwrap();
        workers[victim].wait().unwrap();
        workers.push(cluster_process(work.path(), &worker).spawn().unwrap());
        let context = format!("{backend} cluster scenario {scenario}: worker killed at {after:?}");
        finish(coordinator, work.path(), &context);
        for mut worker in workers {
            let _ = worker.kill();
            let _ = worker.wait();
        }
        let log = std::fs::read_to_string(work.path().join("job.log")).unwrap();
        assert!(log.contains("worker lost"), "{context}: the kill went unnoticed:\n{log}");
        let got = committed(&work.path().join("out"));
        assert!(got == want, "{context}: {}", difference(&got, &want));
    }
}

#[test]
fn heap_state_is_exactly_once_across_worker_kills_in_a_cluster() {
    survives_worker_kills("heap", 3);
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_state_is_exactly_once_across_worker_kills_in_a_cluster() {
    survives_worker_kills("rocksdb", 4);
}
