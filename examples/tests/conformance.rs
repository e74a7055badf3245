//! Runs the `conformance` binary over Flink's recorded event-time cases (when the shared case
//! folder is next to the repository) and compares its output with Flink's, as
//! `../shared/conformance/check` does.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases_dir() -> Option<PathBuf> {
    let dir = Path::new(&weir_tests::manifest_dir()).join("../../shared/conformance/cases");
    dir.is_dir().then_some(dir)
}

fn compared_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| ["window,", "late,", "timer,", "join,"].iter().any(|p| l.starts_with(p)))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn every_recorded_case_matches_flink() {
    let Some(dir) = cases_dir() else {
        eprintln!("no shared conformance cases next to the repository; nothing to compare");
        return;
    };
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    let mut failed = Vec::new();
    for case in &cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_conformance"));
        command.arg(case.join("case.properties")).arg(case.join("events.csv"));
        if case.join("right.csv").exists() {
            command.arg(case.join("right.csv"));
        }
        let output = command.output().unwrap();
        let got = compared_lines(&String::from_utf8_lossy(&output.stdout));
        let want = compared_lines(&std::fs::read_to_string(case.join("expected.txt")).unwrap());
        if got != want {
            failed.push(format!(
                "{}: {} lines, Flink {}; stderr: {}",
                case.display(),
                got.len(),
                want.len(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(!cases.is_empty());
    assert!(
        failed.is_empty(),
        "{} of {} cases differ:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}
