//! `recovery-bench --quick` runs its recovery and rescale scenarios end to end: a subtask's
//! 5 MB of state travels to the coordinator in a checkpoint, a killed worker's job restores
//! from it, and a stopped job restarts from its savepoint at another parallelism.

use std::process::Command;

#[test]
fn the_quick_recovery_and_rescale_runs_print_their_rows() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_recovery-bench")).arg("--quick").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<&str> = stdout.lines().filter(|line| line.starts_with("heap ")).collect();
    assert_eq!(rows.len(), 2, "a recovery row and a rescale row:\n{stdout}");
}
