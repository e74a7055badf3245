//! A failing operator stops the whole job promptly, with an error naming operator and subtask.

use std::process::Command;
use std::time::{Duration, Instant};

use weir::prelude::*;
use weir_tests::config;

fn run_fixture(args: &[&str]) -> (std::process::ExitStatus, String, Duration) {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_fail-on-record"))
        .args(["run", "--parallelism", "2"])
        .args(args)
        .output()
        .expect("fixture runs");
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned(), start.elapsed())
}

#[test]
fn panicking_map_fails_the_job_with_operator_and_subtask() {
    let (status, stderr, elapsed) = run_fixture(&["--panic-at", "3000"]);
    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("operator 'Poison Check' (subtask ")
            && stderr.contains("/2) failed: panicked: record 3000 is poison"),
        "stderr:\n{stderr}"
    );
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[test]
fn erroring_map_fails_the_job_with_its_message() {
    let (status, stderr, _) = run_fixture(&["--error-at", "10"]);
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains("operator 'Validate' (subtask 1/2) failed: cannot handle record 10"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn a_clean_run_exits_zero_with_a_summary() {
    let (status, stderr, _) = run_fixture(&[]);
    assert!(status.success(), "stderr:\n{stderr}");
    assert!(stderr.contains("finished in"), "stderr:\n{stderr}");
    assert!(stderr.contains("1000000"), "summary counts every record:\n{stderr}");
}

#[test]
fn unbounded_job_is_cancelled_when_one_subtask_fails() {
    let mut env = StreamExecutionEnvironment::new(config(3));
    env.from_generator(GeneratorConfig::unbounded(), |i| i)
        .map(|i| i * 2)
        .key_by(|i| i % 7)
        .process(FailAfter { seen: 0 })
        .discard();
    let start = Instant::now();
    let error = env.execute().expect_err("the job must fail").to_string();
    assert!(error.contains("operator 'KeyedProcess' (subtask "), "{error}");
    assert!(error.contains("failed: seen enough"), "{error}");
    assert!(start.elapsed() < Duration::from_secs(10), "cancellation took {:?}", start.elapsed());
}

#[derive(Clone)]
struct FailAfter {
    seen: u64,
}

impl KeyedProcessFunction<u64, u64, u64> for FailAfter {
    fn process_element(
        &mut self,
        value: u64,
        _ctx: &mut KeyedContext<'_, u64>,
        out: &mut Collector<u64>,
    ) -> FnResult {
        self.seen += 1;
        if self.seen > 10_000 {
            return Err("seen enough".into());
        }
        out.collect(value);
        Ok(())
    }
}

#[test]
fn invalid_graphs_are_rejected_before_running() {
    let mut env = StreamExecutionEnvironment::new(config(2));
    env.from_collection(vec![1, 2, 3]).set_parallelism(2);
    let error = env.execute().unwrap_err().to_string();
    assert!(error.contains("not parallel; its parallelism must be 1, not 2"), "{error}");

    let mut env = StreamExecutionEnvironment::new(config(2));
    let numbers = env.from_sequence(1, 10).set_parallelism(2);
    numbers.forward().map(|x| x).set_parallelism(3).discard();
    let error = env.execute().unwrap_err().to_string();
    assert!(error.contains("forward partitioning from 'Sequence Source' needs equal"), "{error}");

    let mut env = StreamExecutionEnvironment::new(config(200));
    env.from_sequence(1, 10).discard();
    let error = env.execute().unwrap_err().to_string();
    assert!(error.contains("exceeds the max parallelism 128"), "{error}");
}

#[test]
fn a_record_that_always_fails_ends_the_job_after_the_bounded_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = weir::ExecutionConfig {
        checkpointing: weir::CheckpointConfig {
            interval_ms: 50,
            dir: dir.path().display().to_string(),
            ..Default::default()
        },
        restart: Some(weir::RestartStrategy::FixedDelay { attempts: 3, delay_ms: 10 }),
        ..config(2)
    };
    let mut env = StreamExecutionEnvironment::new(config);
    env.from_sequence(0, 1_000)
        .try_map(|x| if x == 700 { Err(format!("cannot handle record {x}")) } else { Ok(x) })
        .name("Validate")
        .discard();
    let start = Instant::now();
    let error = env.execute().unwrap_err().to_string();
    assert!(
        error.contains("after 3 restarts")
            && error.contains("operator 'Validate' (subtask ")
            && error.contains("failed: cannot handle record 700"),
        "{error}"
    );
    assert!(start.elapsed() < Duration::from_secs(20), "no endless restart loop");
}
