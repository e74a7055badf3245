//! Checkpoints of embedded jobs: taken periodically, retained by count, laid out as the
//! metadata says, and the base of a restart after a failure.

use std::path::Path;

use weir::connectors::CollectHandle;
use weir::{CheckpointConfig, ExecutionConfig, GeneratorConfig, StreamExecutionEnvironment};
use weir_tests::config;

/// `config(parallelism)` with checkpoints every `interval_ms` into `dir`.
fn checkpointed(parallelism: usize, interval_ms: u64, dir: &Path) -> ExecutionConfig {
    ExecutionConfig {
        checkpointing: CheckpointConfig {
            interval_ms,
            dir: dir.display().to_string(),
            retained: 2,
            ..Default::default()
        },
        ..config(parallelism)
    }
}

/// Counts the records of each key (`i % keys`) and emits `(key, count)` for every record.
fn keyed_counts(
    env: &mut StreamExecutionEnvironment,
    events: u64,
    keys: u64,
    rate: f64,
) -> CollectHandle<(u64, u64)> {
    env.from_generator(GeneratorConfig::bounded(events).with_rate(rate), move |i| (i % keys, 1))
        .key_by(|(key, _): &(u64, u64)| *key)
        .reduce(|(key, a), (_, b)| (key, a + b))
        .collect()
}

#[test]
fn periodic_checkpoints_complete_and_only_the_retained_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = StreamExecutionEnvironment::new(checkpointed(2, 100, dir.path()));
    env.set_job_name("counting");
    let output = keyed_counts(&mut env, 40_000, 10, 40_000.0);
    let result = env.execute().unwrap();
    assert_eq!(output.take().len(), 40_000);
    let completed: Vec<_> = result.checkpoints.iter().filter(|c| c.failure.is_none()).collect();
    assert!(completed.len() >= 4, "a 1 s job checkpoints every 100 ms: {:?}", result.checkpoints);
    assert!(result.checkpoints.iter().all(|c| c.failure.is_none()), "{:?}", result.checkpoints);
    let ids: Vec<u64> = completed.iter().map(|c| c.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let job_dir = dir.path().join("counting");
    let mut left: Vec<u64> = std::fs::read_dir(&job_dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
        .collect();
    left.sort();
    let last = ids.last().unwrap();
    assert_eq!(left, [last - 1, *last], "retained: 2");
    let metadata = std::fs::read_to_string(job_dir.join(format!("chk-{last}/_metadata"))).unwrap();
    assert!(metadata.contains("\"key_groups\""), "keyed state recorded per key group");
}
