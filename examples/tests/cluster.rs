//! The example jobs run as one coordinator and two worker processes on 127.0.0.1 give what
//! they give embedded: word count prints the same lines, window-count's operators count the
//! same records.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use weir_tests::cluster::{Coordinator, Worker};
use weir_tests::sorted;

/// Runs `job` with `args` as a coordinator and two workers of two slots each; returns the
/// coordinator's standard error and the lines the job printed on the workers.
fn in_cluster(job: &str, args: &[&str]) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let job = Path::new(job);
    let (mut coordinator, address) = Coordinator::start(job, args);
    let mut workers: Vec<Worker> =
        (0..2).map(|i| Worker::start(job, &address, 2, dir.path(), i)).collect();
    let status = coordinator.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", coordinator.log());
    for worker in &mut workers {
        assert!(worker.wait().success(), "a worker exits 0 when the job finished");
    }
    (coordinator.log(), workers.iter().flat_map(Worker::lines).collect())
}

/// Runs `job run ARGS` embedded; returns its standard error and printed lines.
fn embedded(job: &str, args: &[&str]) -> (String, Vec<String>) {
    let output = Command::new(job).arg("run").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    (stderr, String::from_utf8(output.stdout).unwrap().lines().map(str::to_string).collect())
}

/// The rows `name parallelism records_in records_out` of the summary a job prints at the end.
fn operator_rows(summary: &str) -> Vec<String> {
    let rows: Vec<String> = summary
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("operator"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(!rows.is_empty(), "no operator summary in:\n{summary}");
    rows
}

#[test]
fn word_count_prints_the_same_lines_in_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("words.txt");
    let text: String =
        (0..2000).map(|i| format!("word{} to be or not to be, line {}\n", i % 23, i % 7)).collect();
    std::fs::write(&input, text).unwrap();
    let input = input.display().to_string();
    let args = ["-p", "4", "--input", &input];
    let (_, expected) = embedded(env!("CARGO_BIN_EXE_wordcount"), &args);
    assert_eq!(expected.len(), 2000 * 9, "one rolling count per word");
    let (_, printed) = in_cluster(env!("CARGO_BIN_EXE_wordcount"), &args);
    assert_eq!(sorted(printed), sorted(expected));
}

#[test]
fn window_count_counts_the_same_records_in_a_cluster() {
    let args = ["-p", "4", "--events", "400000", "--keys", "100"];
    let (summary, _) = embedded(env!("CARGO_BIN_EXE_window-count"), &args);
    let expected = operator_rows(&summary);
    // 400 000 events at 1 ms apart: 40 windows of 10 s for each of the 100 keys.
    assert!(expected.iter().any(|row| row.ends_with(" 400000 4000")), "{expected:?}");
    let (log, _) = in_cluster(env!("CARGO_BIN_EXE_window-count"), &args);
    assert_eq!(operator_rows(&log), expected);
}
