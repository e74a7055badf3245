//! `MemoryConfig`: the inputs of the memory model, and the defaults that fill what is unset.

use serde::{Deserialize, Serialize};

use crate::ByteSize;

/// Runtime overhead's default fraction of the process size: Flink's `jvm-overhead.fraction`.
pub const DEFAULT_OVERHEAD_FRACTION: f64 = 0.1;
/// Runtime overhead's default minimum: the binary's code, the allocator's fragmentation and
/// arenas, one stack per task thread, and the buffers of tokio, tonic and RocksDB outside its
/// block cache. A third of Flink's JVM minimum (192 MiB): there is no JIT, GC or metaspace.
pub const DEFAULT_OVERHEAD_MIN: ByteSize = ByteSize::mib(64);
/// Runtime overhead's default maximum: Flink's `jvm-overhead.max`.
pub const DEFAULT_OVERHEAD_MAX: ByteSize = ByteSize::gib(1);
/// Network memory's default fraction of process − overhead: Flink's `network.fraction`.
pub const DEFAULT_NETWORK_FRACTION: f64 = 0.1;
/// Network memory's default minimum: 1024 buffers of 32 KiB. Half of Flink's 64 MiB, so that a
/// 256 MiB process keeps 64 MiB of task memory.
pub const DEFAULT_NETWORK_MIN: ByteSize = ByteSize::mib(32);
/// Network memory's default maximum: Flink's `network.max`.
pub const DEFAULT_NETWORK_MAX: ByteSize = ByteSize::gib(1);
/// The default size of one network buffer: Flink's `memory.segment-size`.
pub const DEFAULT_BUFFER_SIZE: ByteSize = ByteSize::kib(32);
/// Default number of exchange channels a slot needs a buffer for: one (a slot reading or
/// writing one channel). The runtime or operator sets it from the job's graph, e.g. `2 × p`
/// for a slot with a keyed exchange at parallelism `p` in and out.
pub const DEFAULT_CHANNELS_PER_SLOT: u32 = 1;
/// Managed memory's default fraction of process − overhead: Flink's `managed.fraction`.
/// Set `managed.size` to 0 when no operator uses RocksDB, to give it to task memory.
pub const DEFAULT_MANAGED_FRACTION: f64 = 0.4;
/// Default number of slots per process.
pub const DEFAULT_SLOTS: u32 = 1;
/// The least task memory a process can run with: user code, heap state and the record
/// batches in flight between chained operators. Not configurable.
pub const MIN_TASK_MEMORY: ByteSize = ByteSize::mib(64);

/// How much memory a process has and how it is divided; everything but the process size is
/// optional, and unset values take the `DEFAULT_*` constants of this crate.
///
/// `Default` leaves the process size at 0 bytes, which [`breakdown`](crate::breakdown)
/// rejects: set it, and use `..Default::default()` for the rest. In a resource the field
/// names are camelCase (`processSize`, `runtimeOverhead`, `bufferSize`), sizes are numbers
/// of bytes or strings such as `"2g"`, and unknown fields are rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryConfig {
    /// The memory of the whole process: a pod's memory limit.
    pub process_size: ByteSize,
    /// Slots in the process: each runs one subtask of every task (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
    /// Memory the runtime itself uses outside the accounted pools.
    #[serde(default)]
    pub runtime_overhead: OverheadConfig,
    /// Buffers of the exchanges between tasks.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Managed memory: RocksDB block cache and write buffers, shared by the process's slots.
    #[serde(default)]
    pub managed: ManagedConfig,
    /// Task memory: user code and heap state.
    #[serde(default)]
    pub task: TaskConfig,
}

/// Runtime overhead: a fraction of the process size, clamped to `[min, max]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverheadConfig {
    /// Fraction of the process size, in [0, 1) (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Lower bound (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<ByteSize>,
    /// Upper bound (default 1 GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<ByteSize>,
}

/// Network memory: a fraction of process − overhead clamped to `[min, max]`, or an explicit
/// size (not both); divided into buffers of `buffer_size` shared evenly by the slots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkConfig {
    /// Fraction of process − overhead, in [0, 1) (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Lower bound (default 32 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<ByteSize>,
    /// Upper bound (default 1 GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<ByteSize>,
    /// Explicit size, instead of fraction, min and max.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// Size of one buffer (default 32 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_size: Option<ByteSize>,
    /// Channels each slot needs at least one buffer for (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels_per_slot: Option<u32>,
}

/// Managed memory: a fraction of process − overhead, or an explicit size (not both).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedConfig {
    /// Fraction of process − overhead, in [0, 1) (default 0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Explicit size, instead of the fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
}

/// Task memory: the rest, or an explicit size (then network memory, or with an explicit
/// network size the runtime overhead, becomes the rest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskConfig {
    /// Explicit size, at least [`MIN_TASK_MEMORY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
}
