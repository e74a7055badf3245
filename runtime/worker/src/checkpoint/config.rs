//! Checkpointing and restart settings (Flink's `execution.checkpointing.*` and
//! `restart-strategy.*`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a checkpoint guarantees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointingMode {
    /// Barriers are aligned: a task snapshots only when the barrier arrived on every input,
    /// holding back inputs that delivered it. State reflects every record exactly once.
    #[default]
    ExactlyOnce,
    /// No alignment: inputs keep flowing; after a restore some records may be counted twice.
    AtLeastOnce,
}

/// When and how checkpoints are taken and kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Time between checkpoints in milliseconds; 0 turns checkpointing off.
    pub interval_ms: u64,
    /// Exactly-once (aligned) or at-least-once.
    pub mode: CheckpointingMode,
    /// Take exactly-once checkpoints unaligned: barriers do not wait for each other, records
    /// in flight on the inputs are stored with the snapshot.
    pub unaligned: bool,
    /// With `unaligned`, start aligned and switch to unaligned when alignment takes longer
    /// than this many milliseconds (0: unaligned from the start).
    pub alignment_timeout_ms: u64,
    /// A checkpoint not complete after this many milliseconds is aborted.
    pub timeout_ms: u64,
    /// Least time between the end of one checkpoint and the start of the next.
    pub min_pause_ms: u64,
    /// Checkpoints in progress at the same time.
    pub max_concurrent: usize,
    /// Failed checkpoints in a row the job tolerates before it fails.
    pub tolerable_failures: u32,
    /// Complete checkpoints kept; older ones are deleted.
    pub retained: usize,
    /// Where checkpoints go: a path, `file://` or `s3://` URL.
    pub dir: String,
    /// Where savepoints go unless a request names a place.
    pub savepoint_dir: Option<String>,
    /// Start from this savepoint or checkpoint: a path or URL of its directory, or `latest`
    /// for the latest complete checkpoint of this job under `dir` (a fresh start if none).
    pub restore: Option<String>,
    /// Allow a restore to skip state of operators the job no longer has.
    pub allow_non_restored_state: bool,
    /// RocksDB checkpoints are incremental: RocksDB's own checkpoint, whose SST files are
    /// written once to the job's `shared/` folder and referenced by later checkpoints, instead
    /// of a full copy of the state each time. Savepoints are always full.
    pub incremental: bool,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            interval_ms: 0,
            mode: CheckpointingMode::ExactlyOnce,
            unaligned: false,
            alignment_timeout_ms: 0,
            timeout_ms: 600_000,
            min_pause_ms: 0,
            max_concurrent: 1,
            tolerable_failures: 0,
            retained: 1,
            dir: "weir-checkpoints".to_string(),
            savepoint_dir: None,
            restore: None,
            allow_non_restored_state: false,
            incremental: true,
        }
    }
}

impl CheckpointConfig {
    /// The interval, or `None` when periodic checkpoints are off.
    pub fn interval(&self) -> Option<Duration> {
        (self.interval_ms > 0).then(|| Duration::from_millis(self.interval_ms))
    }

    /// The checkpoint timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The least pause between checkpoints.
    pub fn min_pause(&self) -> Duration {
        Duration::from_millis(self.min_pause_ms)
    }

    /// Checks settings that must be positive.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent == 0 {
            return Err("checkpointing.max_concurrent must be at least 1".into());
        }
        if self.retained == 0 {
            return Err("checkpointing.retained must be at least 1".into());
        }
        if self.timeout_ms == 0 {
            return Err("checkpointing.timeout_ms must be positive".into());
        }
        if self.unaligned || self.alignment_timeout_ms > 0 {
            return Err("unaligned checkpoints (checkpointing.unaligned, \
                        checkpointing.alignment_timeout_ms) are not available yet: use aligned \
                        exactly-once or at-least-once checkpoints"
                .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_work_are_refused_by_name() {
        assert!(CheckpointConfig::default().validate().is_ok());
        let refused = |config: CheckpointConfig, name: &str| {
            let error = config.validate().unwrap_err();
            assert!(error.contains(name), "{error}");
        };
        refused(CheckpointConfig { max_concurrent: 0, ..Default::default() }, "max_concurrent");
        refused(CheckpointConfig { retained: 0, ..Default::default() }, "retained");
        refused(CheckpointConfig { unaligned: true, ..Default::default() }, "unaligned");
        refused(
            CheckpointConfig { alignment_timeout_ms: 10, ..Default::default() },
            "alignment_timeout_ms",
        );
    }
}
