//! The file sink on a real S3 API (a moto server): parts roll by size and time, nothing is
//! visible before the commit, and a restart after a failure neither loses nor duplicates
//! lines. The sink is driven checkpoint by checkpoint, as its operator runs it in a job.

use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::aws::AmazonS3;
use weir_checkpoint::s3_client;
use weir_connectors::sink::{FileSink, RollingPolicy};
use weir_operators::builtin::TwoPhaseCommitSinkOperator;
use weir_operators::{Collector, OneInputOperator, OperatorSnapshot, StateRestore, SubtaskInfo};
use weir_tests::services::S3Server;
use weir_types::{CheckpointBarrier, Record};

type Operator = TwoPhaseCommitSinkOperator<String, FileSink<String>>;

/// A sink operator on `url` of `s3`, subtask 0 of 1, started from `snapshot` if given.
fn start(
    s3: &S3Server,
    url: &str,
    policy: RollingPolicy,
    snapshot: Option<&OperatorSnapshot>,
) -> Operator {
    let sink = FileSink::text_lines(url)
        .with_storage_options(s3.options())
        .with_rolling_policy(policy)
        .with_bucket_check_interval(Duration::ZERO);
    let mut restore = StateRestore::default();
    if let Some(snapshot) = snapshot {
        restore.operator.mark_restored();
        for list in &snapshot.lists {
            restore.operator.add(&list.name, list.elements.clone());
        }
    }
    let info = SubtaskInfo {
        checkpoint_interval: Some(Duration::from_secs(1)),
        ..SubtaskInfo::new("sink", 0, 1, 128)
    };
    let mut operator = TwoPhaseCommitSinkOperator::new(sink);
    operator.initialize_state(&info, restore).unwrap();
    operator.open(&info).unwrap();
    operator
}

fn write(operator: &mut Operator, lines: &[&str]) {
    let mut batch = lines.iter().map(|line| Record::new(line.to_string())).collect();
    operator.process_batch(&mut batch, &mut Collector::default()).unwrap();
}

fn commit(operator: &mut Operator, checkpoint: u64) -> OperatorSnapshot {
    let snapshot = operator.snapshot_state(CheckpointBarrier::checkpoint(checkpoint, 0)).unwrap();
    operator.notify_checkpoint_complete(checkpoint).unwrap();
    snapshot
}

/// Reads the objects under a prefix of the test bucket.
struct Objects {
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
}

impl Objects {
    fn new(s3: &S3Server) -> Self {
        let (store, _) = s3_client(&s3.url(""), &s3.options()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Objects { store, runtime }
    }

    /// The content of each object under `prefix`, by name, sorted.
    fn under(&self, prefix: &str) -> Vec<(String, String)> {
        self.runtime.block_on(async {
            let prefix = object_store::path::Path::from(prefix);
            let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.unwrap();
            let mut objects = Vec::new();
            for meta in listed {
                let bytes = self.store.get(&meta.location).await.unwrap().bytes().await.unwrap();
                let name = meta.location.filename().unwrap().to_string();
                objects.push((name, String::from_utf8(bytes.to_vec()).unwrap()));
            }
            objects.sort();
            objects
        })
    }

    fn lines(&self, prefix: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .under(prefix)
            .into_iter()
            .flat_map(|(_, text)| text.lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        lines.sort();
        lines
    }
}

#[test]
fn file_sink_s3_rolls_by_size_and_time_and_shows_nothing_before_commit() {
    let s3 = S3Server::start().expect("the S3 test server starts");
    let objects = Objects::new(&s3);
    // Lines of 5 bytes: a part rolls once it holds more than 12 bytes.
    let by_size = RollingPolicy::default().with_max_part_size(12);
    let mut operator = start(&s3, &s3.url("size"), by_size, None);
    write(&mut operator, &["l-00", "l-01", "l-02", "l-03", "l-04", "l-05", "l-06"]);
    operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
    assert!(objects.under("size").is_empty(), "nothing is visible before the commit");
    operator.notify_checkpoint_complete(1).unwrap();
    let parts: Vec<String> = objects.under("size").into_iter().map(|(_, text)| text).collect();
    assert_eq!(parts, ["l-00\nl-01\nl-02\n", "l-03\nl-04\nl-05\n", "l-06\n"], "by part number");
    assert!(objects.under("size").iter().all(|(name, _)| name.starts_with("part-")));

    let by_time = RollingPolicy::default().with_rollover_interval(Duration::from_millis(200));
    let mut operator = start(&s3, &s3.url("time"), by_time, None);
    write(&mut operator, &["t-0", "t-1"]);
    std::thread::sleep(Duration::from_millis(300));
    write(&mut operator, &["t-2"]);
    commit(&mut operator, 1);
    let parts: Vec<String> = objects.under("time").into_iter().map(|(_, text)| text).collect();
    assert_eq!(parts, ["t-0\nt-1\n", "t-2\n"]);
}

#[test]
fn file_sink_s3_uploads_large_parts_in_pieces() {
    let s3 = S3Server::start().expect("the S3 test server starts");
    let objects = Objects::new(&s3);
    let mut operator = start(&s3, &s3.url("large"), RollingPolicy::default(), None);
    // 9.4 MB in one part: uploaded as an 8 MiB piece and the rest.
    let lines: Vec<String> = (0..9_000).map(|i| format!("{i:05}-{}", "x".repeat(1038))).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    write(&mut operator, &refs);
    commit(&mut operator, 1);
    let parts = objects.under("large");
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].1.len(), 9_000 * 1045);
    assert_eq!(parts[0].1.lines().collect::<Vec<_>>(), refs, "pieces in order");
}

#[test]
fn file_sink_s3_restart_after_failure_neither_loses_nor_duplicates_lines() {
    let s3 = S3Server::start().expect("the S3 test server starts");
    let objects = Objects::new(&s3);
    let url = s3.url("restart");
    let policy = RollingPolicy::default().with_max_part_size(4);
    let mut operator = start(&s3, &url, policy, None);
    write(&mut operator, &["a1", "a2", "a3"]);
    let snapshot = operator.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
    // Parts rolled and open after the checkpoint, then a crash before checkpoint 1's
    // completion reaches the sink.
    write(&mut operator, &["b1", "b2", "b3"]);
    drop(operator);
    assert!(objects.under("restart").is_empty());

    let mut operator = start(&s3, &url, policy, Some(&snapshot));
    assert_eq!(objects.lines("restart"), ["a1", "a2", "a3"], "checkpointed parts commit");
    // The source replays what followed checkpoint 1.
    write(&mut operator, &["b1", "b2", "b3"]);
    commit(&mut operator, 2);
    let all = ["a1", "a2", "a3", "b1", "b2", "b3"];
    assert_eq!(objects.lines("restart"), all);

    // Restored from checkpoint 1 again: its uploads are complete already, nothing changes.
    start(&s3, &url, policy, Some(&snapshot));
    assert_eq!(objects.lines("restart"), all);
}
