//! `weir jobs` against the REST API of a running job: list, status, savepoint, cancel, and
//! an unknown job.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use weir::{CheckpointConfig, ExecutionConfig, GeneratorConfig, StreamExecutionEnvironment};

const JOB: &str = "cli-job";

/// Runs `weir jobs --url URL ARGS`.
fn weir(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["jobs", "--url", url])
        .args(args)
        .output()
        .expect("weir runs")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn list_status_savepoint_and_cancel_a_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let config = ExecutionConfig {
        parallelism: 2,
        progress_interval_ms: 0,
        checkpointing: CheckpointConfig {
            interval_ms: 100,
            dir: dir.path().join("checkpoints").display().to_string(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut env = StreamExecutionEnvironment::new(config);
    env.set_job_name(JOB);
    env.from_generator(GeneratorConfig::unbounded().with_rate(2_000.0), |i| (i % 7, i))
        .key_by(|(key, _): &(u64, u64)| *key)
        .reduce(|(key, a), (_, b)| (key, a + b))
        .discard();
    let client = env.execute_async().unwrap();
    let server =
        weir_rest::serve(weir_rest::bind("127.0.0.1:0").unwrap(), (&client).into()).unwrap();
    let url = format!("http://{}", server.local_addr());

    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let listed = stdout(&weir(&url, &["list"]));
        if listed.contains("running") || Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(listed.starts_with("JOB") && listed.contains(JOB), "{listed}");
    assert!(listed.lines().nth(1).unwrap().contains("running"), "{listed}");

    let status = stdout(&weir(&url, &["status", JOB]));
    assert!(status.starts_with(&format!("{JOB}: running")), "{status}");
    assert!(status.contains("Source: Data Generator") && status.contains("checkpoints:"));

    let savepoints = dir.path().join("savepoints").display().to_string();
    let location = stdout(&weir(&url, &["savepoint", JOB, &savepoints]));
    let metadata = location.trim().trim_start_matches("file://").to_string() + "/_metadata";
    assert!(std::path::Path::new(&metadata).exists(), "{location}");
    // Flink's `--type`, in either case (a heap backend writes its native format canonically).
    let native = stdout(&weir(&url, &["savepoint", JOB, &savepoints, "--type", "NATIVE"]));
    assert!(native.contains("/savepoints/") && native != location, "{native}");
    let bad = weir(&url, &["savepoint", JOB, "--type", "fast"]);
    let error = String::from_utf8_lossy(&bad.stderr);
    assert!(error.contains("unknown savepoint format \"fast\""), "{error}");

    let unknown = weir(&url, &["status", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    let error = String::from_utf8_lossy(&unknown.stderr);
    assert!(error.starts_with("error: no job named 'nope' (404"), "{error}");

    assert_eq!(stdout(&weir(&url, &["cancel", JOB])), format!("cancelling {JOB}\n"));
    assert!(client.wait().is_err(), "a cancelled job ends with an error");
}

#[test]
fn an_unreachable_api_is_named() {
    let output = weir("http://127.0.0.1:9", &["list"]);
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("cannot reach http://127.0.0.1:9/jobs"), "{error}");
}
