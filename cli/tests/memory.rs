//! Runs `weir memory` as a process: the table, JSON, and settings that cannot work.

use std::process::{Command, Output};

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir")).args(args).output().expect("run weir")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn prints_the_table() {
    let output = weir(&["memory", "--process-size", "2g", "--slots", "2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(table.starts_with("component"), "{table}");
    assert!(table.contains("runtime overhead    204.8 MiB   10.0%  fraction 0.10 of process\n"));
    assert!(table.contains("process                 2 GiB  100.0%  given\n"), "{table}");
    assert!(table.contains("per slot (2 slots): managed 368.6 MiB"), "{table}");
}

#[test]
fn prints_json() {
    let output = weir(&["memory", "--process-size", "256m", "--managed-size", "0", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["process"], 256 << 20);
    assert_eq!(json["task"]["size"], 160 << 20);
    assert_eq!(json["task"]["rule"]["kind"], "rest");
    assert_eq!(json["managed"]["rule"]["kind"], "explicit");
}

#[test]
fn settings_that_cannot_work_exit_2_with_the_error_and_a_fix() {
    let output =
        weir(&["memory", "--process-size", "2g", "--managed-size", "1g", "--task-size", "1g"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    let error = stderr(&output);
    assert!(error.starts_with("error: runtime overhead (fraction 0.10 of process)"), "{error}");
    assert!(error.contains("exceed process_size 2 GiB"), "{error}");
    assert!(error.contains("; fix: raise process_size to at least 2312 MiB"), "{error}");
}

#[test]
fn unreadable_sizes_exit_2() {
    let output = weir(&["memory", "--process-size", "2 parsecs"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("invalid size '2 parsecs'"), "{}", stderr(&output));
}
