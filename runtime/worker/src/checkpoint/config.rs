//! Checkpointing and restart settings (Flink's `execution.checkpointing.*` and
//! `restart-strategy.*`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a checkpoint guarantees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointingMode {
    /// Barriers are aligned: a task snapshots only when the barrier arrived on every input,
    /// holding back inputs that delivered it (or, with `unaligned`, snapshots at the first
    /// barrier and stores the records still in flight). State reflects every record exactly
    /// once.
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
    /// Take exactly-once checkpoints unaligned: a task with several input channels snapshots
    /// at the first barrier and passes it on at once; the records still in flight on the
    /// channels that have not delivered it are stored with the snapshot. Savepoints always
    /// align.
    pub unaligned: bool,
    /// With `unaligned`, start aligned and switch to unaligned at a task whose alignment
    /// takes longer than this many milliseconds (0: unaligned from the start).
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
        if self.unaligned && self.mode == CheckpointingMode::AtLeastOnce {
            return Err("checkpointing.unaligned = true needs checkpointing.mode = exactly-once: \
                        at-least-once checkpoints never align, so there is nothing to unalign; \
                        set one of the two differently"
                .into());
        }
        if self.alignment_timeout_ms > 0 && !self.unaligned {
            return Err("checkpointing.alignment_timeout_ms only applies with \
                        checkpointing.unaligned = true: set both, or leave the timeout at 0"
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
        let at_least_once = CheckpointConfig {
            unaligned: true,
            mode: CheckpointingMode::AtLeastOnce,
            ..Default::default()
        };
        refused(at_least_once.clone(), "checkpointing.unaligned");
        refused(at_least_once, "checkpointing.mode");
        let timeout_alone = CheckpointConfig { alignment_timeout_ms: 10, ..Default::default() };
        refused(timeout_alone.clone(), "checkpointing.alignment_timeout_ms");
        refused(timeout_alone, "checkpointing.unaligned");
    }

    #[test]
    fn unaligned_exactly_once_with_or_without_a_timeout_is_accepted() {
        let unaligned = CheckpointConfig { unaligned: true, ..Default::default() };
        assert!(unaligned.validate().is_ok());
        let with_timeout = CheckpointConfig { alignment_timeout_ms: 30, ..unaligned };
        assert!(with_timeout.validate().is_ok());
    }
}
