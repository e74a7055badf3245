//! Tests of the file sink on the local file system (S3 is tested against a real server in
//! `weir-tests`).

use std::path::Path;
use std::time::Duration;

use weir_operators::builtin::TwoPhaseCommitSinkOperator;
use weir_operators::{Collector, OneInputOperator, OperatorSnapshot, StateRestore};
use weir_types::{CheckpointBarrier, Record};

use super::*;
use crate::test_util::info;

type Operator<T> = TwoPhaseCommitSinkOperator<T, FileSink<T>>;

/// A sink operator for subtask 0 of 1, started from `snapshot` if given.
fn start<T: Send>(sink: FileSink<T>, snapshot: Option<&OperatorSnapshot>) -> Operator<T> {
    let mut restore = StateRestore::default();
    if let Some(snapshot) = snapshot {
        restore.operator.mark_restored();
        for list in &snapshot.lists {
            restore.operator.add(&list.name, list.elements.clone());
        }
    }
    let info = SubtaskInfo { checkpoint_interval: Some(Duration::from_secs(1)), ..info(0, 1) };
    let mut operator = TwoPhaseCommitSinkOperator::new(sink);
    operator.initialize_state(&info, restore).unwrap();
    operator.open(&info).unwrap();
    operator
}

fn write<T: Send>(operator: &mut Operator<T>, records: impl IntoIterator<Item = Record<T>>) {
    let mut batch: Vec<_> = records.into_iter().collect();
    operator.process_batch(&mut batch, &mut Collector::default()).unwrap();
}

fn lines(operator: &mut Operator<String>, lines: &[&str]) {
    write(operator, lines.iter().map(|line| Record::new(line.to_string())));
}

fn checkpoint<T: Send>(operator: &mut Operator<T>, id: u64) -> OperatorSnapshot {
    operator.snapshot_state(CheckpointBarrier::checkpoint(id, 0)).unwrap()
}

/// Every file under `dir` as `bucket/name`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(current) = dirs.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// The visible part files under `dir` (none hidden), each as its sorted lines.
fn visible(dir: &Path) -> Vec<(String, Vec<String>)> {
    files(dir)
        .into_iter()
        .filter(|file| !file.split('/').any(|part| part.starts_with('.')))
        .map(|file| {
            let text = std::fs::read_to_string(dir.join(&file)).unwrap();
            let bucket = file.rsplit_once('/').map_or("", |(bucket, _)| bucket).to_string();
            (bucket, text.lines().map(str::to_string).collect())
        })
        .collect()
}

fn all_lines(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = visible(dir).into_iter().flat_map(|(_, lines)| lines).collect();
    lines.sort();
    lines
}

#[test]
fn parts_roll_past_the_size_limit_and_show_only_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    // Lines of 5 bytes with the newline: a part rolls once it holds more than 12 bytes.
    let sink = FileSink::text_lines(dir.path())
        .with_rolling_policy(RollingPolicy::default().with_max_part_size(12));
    let mut operator = start(sink, None);
    lines(&mut operator, &["l-00", "l-01", "l-02", "l-03", "l-04", "l-05", "l-06"]);
    let listed = files(dir.path());
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed.iter().filter(|f| f.ends_with(".pending")).count(), 2, "{listed:?}");
    assert!(listed.iter().all(|f| f.starts_with(".part-")), "{listed:?}");

    checkpoint(&mut operator, 1);
    lines(&mut operator, &["l-07"]);
    assert!(visible(dir.path()).is_empty(), "nothing is visible before the commit");
    operator.notify_checkpoint_complete(1).unwrap();
    let mut parts: Vec<Vec<String>> = visible(dir.path()).into_iter().map(|(_, l)| l).collect();
    parts.sort();
    assert_eq!(parts, [vec!["l-00", "l-01", "l-02"], vec!["l-03", "l-04", "l-05"], vec!["l-06"]]);
    // Names as Flink's FileSink: part-{run}-{subtask}-{n}, n counting the subtask's parts.
    let mut numbers: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| !f.starts_with('.'))
        .map(|f| {
            assert!(f.starts_with("part-"), "{f}");
            let (rest, n) = f.rsplit_once('-').unwrap();
            assert!(rest.ends_with("-0"), "subtask 0: {f}");
            n.to_string()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, ["0", "1", "2"]);
}

#[test]
fn parts_roll_after_the_rollover_and_inactivity_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::text_lines(dir.path())
        .with_bucket_assigner(BucketAssigner::by_key(|line: &String| line[..1].to_string()))
        .with_rolling_policy(
            RollingPolicy::default()
                .with_rollover_interval(Duration::from_millis(300))
                .with_inactivity_interval(Duration::from_millis(150)),
        )
        .with_bucket_check_interval(Duration::ZERO);
    let mut operator = start(sink, None);
    // Bucket a is written every 50 ms for 400 ms: it rolls on the rollover interval only.
    // Bucket b is written once, then idles: it rolls on inactivity.
    lines(&mut operator, &["b0"]);
    for i in 0..8 {
        lines(&mut operator, &[&format!("a{i}")]);
        std::thread::sleep(Duration::from_millis(50));
    }
    checkpoint(&mut operator, 1);
    operator.notify_checkpoint_complete(1).unwrap();
    let parts = visible(dir.path());
    let b: Vec<_> = parts.iter().filter(|(bucket, _)| bucket == "b").collect();
    assert_eq!(b.len(), 1, "{parts:?}");
    let a: Vec<_> = parts.iter().filter(|(bucket, _)| bucket == "a").collect();
    // One rollover in 400 ms of writes (a slow machine may stretch a pause into another).
    assert!((2..=3).contains(&a.len()), "{parts:?}");
    assert_eq!(all_lines(dir.path()).len(), 9);
}

#[test]
fn inactive_parts_roll_while_other_buckets_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::text_lines(dir.path())
        .with_bucket_assigner(BucketAssigner::by_key(|line: &String| line[..1].to_string()))
        .with_rolling_policy(
            RollingPolicy::default().with_inactivity_interval(Duration::from_millis(100)),
        )
        .with_bucket_check_interval(Duration::ZERO);
    let mut operator = start(sink, None);
    lines(&mut operator, &["b0"]);
    std::thread::sleep(Duration::from_millis(150));
    lines(&mut operator, &["a0"]);
    let listed = files(dir.path());
    assert!(
        listed.iter().any(|f| f.starts_with("b/.part-") && f.ends_with(".pending")),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|f| f.starts_with("a/.part-") && f.ends_with(".inprogress")),
        "{listed:?}"
    );
}

#[test]
fn json_lines_in_event_time_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let buckets = BucketAssigner::date_time_with("yyyy-MM-dd--HH", BucketClock::EventTime).unwrap();
    let sink = FileSink::json_lines(dir.path()).with_bucket_assigner(buckets);
    let mut operator = start(sink, None);
    // 2024-01-01T00:59:59.999Z and 01:00:00.000Z.
    write(
        &mut operator,
        [
            Record::with_timestamp(("x".to_string(), 1), 1_704_070_799_999),
            Record::with_timestamp(("y".to_string(), 2), 1_704_070_800_000),
        ],
    );
    checkpoint(&mut operator, 1);
    operator.notify_checkpoint_complete(1).unwrap();
    assert_eq!(
        visible(dir.path()),
        [
            ("2024-01-01--00".to_string(), vec![r#"["x",1]"#.to_string()]),
            ("2024-01-01--01".to_string(), vec![r#"["y",2]"#.to_string()]),
        ]
    );
}

#[test]
fn restore_commits_checkpointed_parts_and_deletes_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sink = || {
        FileSink::text_lines(dir.path())
            .with_rolling_policy(RollingPolicy::default().with_max_part_size(4))
    };
    let mut operator = start(sink(), None);
    lines(&mut operator, &["a1", "a2", "a3"]);
    let snapshot = checkpoint(&mut operator, 1);
    // After the checkpoint: parts rolled (pending) and one in progress, then a crash before
    // checkpoint 1's completion reaches the sink.
    lines(&mut operator, &["b1", "b2", "b3"]);
    drop(operator);
    assert!(visible(dir.path()).is_empty());

    let mut operator = start(sink(), Some(&snapshot));
    assert_eq!(all_lines(dir.path()), ["a1", "a2", "a3"]);
    let listed = files(dir.path());
    assert!(!listed.iter().any(|f| f.starts_with('.')), "later parts are deleted: {listed:?}");
    // The source replays what followed checkpoint 1.
    lines(&mut operator, &["b1", "b2", "b3"]);
    checkpoint(&mut operator, 2);
    operator.notify_checkpoint_complete(2).unwrap();
    assert_eq!(all_lines(dir.path()), ["a1", "a2", "a3", "b1", "b2", "b3"]);

    // Restored from checkpoint 1 again, already committed: nothing changes.
    start(sink(), Some(&snapshot));
    assert_eq!(all_lines(dir.path()), ["a1", "a2", "a3", "b1", "b2", "b3"]);
}

#[test]
fn without_checkpointing_the_end_of_input_commits() {
    let dir = tempfile::tempdir().unwrap();
    let info = info(0, 1);
    let mut operator = TwoPhaseCommitSinkOperator::new(FileSink::text_lines(dir.path()));
    operator.initialize_state(&info, StateRestore::default()).unwrap();
    operator.open(&info).unwrap();
    lines(&mut operator, &["a"]);
    operator.finish(&mut Collector::default()).unwrap();
    assert_eq!(all_lines(dir.path()), ["a"]);
}

#[test]
fn bad_locations_and_buckets_fail_clearly_and_keep_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let info = info(0, 1);
    for (location, expected) in [
        ("ftp://host/dir", "unsupported location 'ftp://host/dir'"),
        ("file://relative", "not a file URL with an absolute path"),
        ("s3://bucket/out", "no S3 endpoint or credentials"),
    ] {
        let mut sink = FileSink::<String>::text_lines(location);
        let error = TwoPhaseCommitSink::open(&mut sink, &info).unwrap_err().to_string();
        assert!(error.contains(expected), "{location}: {error}");
    }
    let url = format!("file://{}", dir.path().display());
    let sink = FileSink::text_lines(url)
        .with_bucket_assigner(BucketAssigner::by_key(|line: &String| line.clone()));
    let mut operator = start(sink, None);
    lines(&mut operator, &["ok"]);
    let mut batch = vec![Record::new("../escape".to_string())];
    let error = operator.process_batch(&mut batch, &mut Collector::default()).unwrap_err();
    assert!(error.to_string().contains("invalid bucket '../escape'"), "{error}");
    checkpoint(&mut operator, 1);
    operator.notify_checkpoint_complete(1).unwrap();
    assert_eq!(visible(dir.path()), [("ok".to_string(), vec!["ok".to_string()])]);
}
