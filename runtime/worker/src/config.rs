//! Execution settings, passed down from the entry point.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use weir_memory::{MemoryBreakdown, MemoryConfig, MemoryError, breakdown};
use weir_state::{StateBackend, StateBackendKind};

use crate::RestartStrategy;
use crate::checkpoint::CheckpointConfig;

/// How a job executes. Defaults suit a laptop; every field can come from the config file or
/// `WEIR__…` environment variables through the entry point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// Default parallelism of operators that set none (Flink's `parallelism.default`).
    pub parallelism: usize,
    /// Number of key groups; the upper bound of any operator's parallelism.
    pub max_parallelism: usize,
    /// Most records per batch handed between tasks (and polled from a source at once).
    pub batch_size: usize,
    /// Most bytes per batch, counting each record as the larger of its in-memory size
    /// (`size_of`) and its encoded size, measured on the batch's first record (sources, which
    /// have no record yet when they poll, count `size_of` only): batches of small records hold
    /// more of them, as Flink's fixed-size network buffers do. The smaller limit applies.
    pub batch_bytes: usize,
    /// Batches each channel buffers before its producer blocks (backpressure).
    pub channel_capacity: usize,
    /// Longest time, in milliseconds, a record may wait in a partly filled batch before it is
    /// sent (Flink's `execution.buffer-timeout`).
    pub buffer_timeout_ms: u64,
    /// How often periodic watermark generators emit, in milliseconds (Flink's
    /// `pipeline.auto-watermark-interval`; 0 turns periodic emission off).
    pub auto_watermark_interval_ms: u64,
    /// Whether operators are chained into tasks (Flink's `pipeline.operator-chaining`).
    pub chaining: bool,
    /// How often progress is reported while the job runs, in milliseconds (0 = never).
    pub progress_interval_ms: u64,
    /// Where keyed state lives: `heap` or `rocksdb` (Flink's `state.backend.type`).
    pub state_backend: StateBackendKind,
    /// Checkpoints: when, how, where, and what to restore from.
    pub checkpointing: CheckpointConfig,
    /// What happens when a task fails (default: none without checkpoints, bounded
    /// exponential delay with them).
    pub restart: Option<RestartStrategy>,
    /// The process's memory and how it is split (see `weir memory`); when set, RocksDB's
    /// block cache and write buffers of each subtask share the managed memory of a slot.
    /// Slots default to the parallelism (each slot holds one subtask of every operator).
    pub memory: Option<MemoryConfig>,
    /// The job's REST API, served by the entry point.
    pub rest: RestConfig,
}

/// Where the job's REST API is served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestConfig {
    /// `host:port` to serve the REST API on (port 0 picks a free one); `None`, the default,
    /// serves none.
    pub bind: Option<String>,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            parallelism: 1,
            max_parallelism: 128,
            batch_size: 8192,
            batch_bytes: 256 * 1024,
            channel_capacity: 4,
            buffer_timeout_ms: 100,
            auto_watermark_interval_ms: 200,
            chaining: true,
            progress_interval_ms: 5_000,
            state_backend: StateBackendKind::Heap,
            checkpointing: CheckpointConfig::default(),
            restart: None,
            memory: None,
            rest: RestConfig::default(),
        }
    }
}

impl ExecutionConfig {
    /// The keyed state backend with its settings: RocksDB checkpoints incrementally when
    /// `checkpointing.incremental` is set, and with `memory` its block cache and write buffers
    /// take half of a slot's managed memory each.
    pub fn state_backend(&self) -> StateBackend {
        match self.state_backend {
            StateBackendKind::Heap => StateBackend::Heap,
            #[cfg(feature = "rocksdb")]
            StateBackendKind::RocksDb => {
                let defaults = weir_state::RocksDbSettings::default();
                let managed =
                    self.memory_breakdown().ok().flatten().map(|memory| {
                        usize::try_from(memory.managed_per_slot.0).unwrap_or(usize::MAX)
                    });
                StateBackend::RocksDb(weir_state::RocksDbSettings {
                    incremental: self.checkpointing.incremental,
                    block_cache_bytes: managed.map_or(defaults.block_cache_bytes, |m| m / 2),
                    write_buffer_bytes: managed.map_or(defaults.write_buffer_bytes, |m| m / 2),
                    ..defaults
                })
            }
        }
    }

    /// How `memory` splits the process, with slots defaulting to the parallelism; `None`
    /// without a memory configuration.
    pub fn memory_breakdown(&self) -> Result<Option<MemoryBreakdown>, MemoryError> {
        let Some(memory) = &self.memory else { return Ok(None) };
        let slots = memory.slots.or(u32::try_from(self.parallelism).ok());
        breakdown(&MemoryConfig { slots, ..memory.clone() }).map(Some)
    }

    /// The configured restart strategy, or the default: none without checkpoints (as in
    /// Flink), bounded exponential delay with them.
    pub fn restart_strategy(&self) -> RestartStrategy {
        match (&self.restart, self.checkpointing.interval()) {
            (Some(strategy), _) => strategy.clone(),
            (None, None) => RestartStrategy::None,
            (None, Some(_)) => RestartStrategy::default_with_checkpointing(),
        }
    }

    /// The periodic watermark interval, or `None` when periodic emission is off.
    pub fn auto_watermark_interval(&self) -> Option<Duration> {
        (self.auto_watermark_interval_ms > 0)
            .then(|| Duration::from_millis(self.auto_watermark_interval_ms))
    }

    /// The buffer timeout as a duration.
    pub fn buffer_timeout(&self) -> Duration {
        Duration::from_millis(self.buffer_timeout_ms)
    }

    /// Checks the settings that must be positive.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("parallelism", self.parallelism),
            ("batch_size", self.batch_size),
            ("batch_bytes", self.batch_bytes),
            ("channel_capacity", self.channel_capacity),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        self.memory_breakdown().map_err(|error| format!("memory: {error}"))?;
        Ok(())
    }

    /// The progress interval, or `None` when reporting is off.
    pub fn progress_interval(&self) -> Option<Duration> {
        (self.progress_interval_ms > 0).then(|| Duration::from_millis(self.progress_interval_ms))
    }
}

/// Records per batch: at most `batch_size`, at most `batch_bytes` of them at `record_bytes`
/// each, and at least one.
pub(crate) fn records_per_batch(
    batch_size: usize,
    batch_bytes: usize,
    record_bytes: usize,
) -> usize {
    batch_size.min(batch_bytes / record_bytes.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use weir_memory::ByteSize;

    use super::*;

    #[test]
    fn batches_hold_the_records_that_fit_in_their_bytes_up_to_their_size() {
        let ExecutionConfig { batch_size, batch_bytes, .. } = ExecutionConfig::default();
        assert_eq!(records_per_batch(batch_size, batch_bytes, 1000), 262);
        assert_eq!(records_per_batch(batch_size, batch_bytes, 32), batch_size, "capped by count");
        assert_eq!(records_per_batch(batch_size, 10, 1000), 1, "a big record still makes one");
        assert_eq!(records_per_batch(batch_size, batch_bytes, 0), batch_size);
    }

    fn with_memory(process_size: ByteSize, parallelism: usize) -> ExecutionConfig {
        let memory = MemoryConfig { process_size, ..MemoryConfig::default() };
        ExecutionConfig { parallelism, memory: Some(memory), ..ExecutionConfig::default() }
    }

    #[test]
    fn memory_that_cannot_work_is_refused_with_the_model_s_reason() {
        let error = with_memory(ByteSize::mib(128), 1).validate().unwrap_err();
        assert!(error.starts_with("memory: process_size 128 MiB"), "{error}");
        assert!(error.contains("fix: raise process_size"), "{error}");
        with_memory(ByteSize::mib(256), 1).validate().unwrap();
    }

    #[test]
    fn slots_default_to_the_parallelism() {
        let memory = with_memory(ByteSize::gib(2), 4).memory_breakdown().unwrap().unwrap();
        assert_eq!(memory.slots, 4);
        assert_eq!(memory.managed_per_slot.bytes(), memory.managed.size.bytes() / 4);
    }

    #[cfg(feature = "rocksdb")]
    #[test]
    fn rocksdb_shares_a_slot_s_managed_memory_between_cache_and_write_buffers() {
        let config = ExecutionConfig {
            state_backend: StateBackendKind::RocksDb,
            ..with_memory(ByteSize::gib(2), 2)
        };
        let managed = config.memory_breakdown().unwrap().unwrap().managed_per_slot.bytes();
        let StateBackend::RocksDb(settings) = config.state_backend() else { panic!("rocksdb") };
        assert_eq!(settings.block_cache_bytes as u64, managed / 2);
        assert_eq!(settings.write_buffer_bytes as u64, managed / 2);
        assert!(settings.incremental);
    }
}
