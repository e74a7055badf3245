//! `weir memory`: the memory model's breakdown of a process size, as a table or JSON.

use std::io::Write;

use clap::Args;
use weir_memory::{
    ByteSize, ManagedConfig, MemoryConfig, NetworkConfig, OverheadConfig, TaskConfig, breakdown,
};

/// The settings of the memory model (see docs/memory.md); unset ones take their defaults.
/// Sizes are written as in Flink: 2g, 512m, 1024mb, 1.5GiB, all binary.
#[derive(Args)]
pub struct MemoryArgs {
    /// The process's memory, e.g. a pod's memory limit.
    #[arg(long, value_name = "SIZE")]
    process_size: ByteSize,
    /// Slots in the process [default: 1].
    #[arg(long, value_name = "N")]
    slots: Option<u32>,
    /// Managed memory's fraction of process - overhead [default: 0.4].
    #[arg(long, value_name = "F")]
    managed_fraction: Option<f64>,
    /// Managed memory's explicit size, instead of the fraction.
    #[arg(long, value_name = "SIZE")]
    managed_size: Option<ByteSize>,
    /// Network memory's fraction of process - overhead [default: 0.1].
    #[arg(long, value_name = "F")]
    network_fraction: Option<f64>,
    /// Network memory's minimum [default: 32m].
    #[arg(long, value_name = "SIZE")]
    network_min: Option<ByteSize>,
    /// Network memory's maximum [default: 1g].
    #[arg(long, value_name = "SIZE")]
    network_max: Option<ByteSize>,
    /// Network memory's explicit size, instead of fraction, min and max.
    #[arg(long, value_name = "SIZE")]
    network_size: Option<ByteSize>,
    /// Size of one network buffer [default: 32k].
    #[arg(long, value_name = "SIZE")]
    network_buffer_size: Option<ByteSize>,
    /// Channels each slot needs a buffer for [default: 1].
    #[arg(long, value_name = "N")]
    network_channels_per_slot: Option<u32>,
    /// Runtime overhead's fraction of the process size [default: 0.1].
    #[arg(long, value_name = "F")]
    overhead_fraction: Option<f64>,
    /// Runtime overhead's minimum [default: 64m].
    #[arg(long, value_name = "SIZE")]
    overhead_min: Option<ByteSize>,
    /// Runtime overhead's maximum [default: 1g].
    #[arg(long, value_name = "SIZE")]
    overhead_max: Option<ByteSize>,
    /// Task memory's explicit size; network memory then is the rest.
    #[arg(long, value_name = "SIZE")]
    task_size: Option<ByteSize>,
    /// Print the breakdown as JSON (sizes in bytes) instead of a table.
    #[arg(long)]
    json: bool,
}

impl MemoryArgs {
    fn config(&self) -> MemoryConfig {
        MemoryConfig {
            process_size: self.process_size,
            slots: self.slots,
            runtime_overhead: OverheadConfig {
                fraction: self.overhead_fraction,
                min: self.overhead_min,
                max: self.overhead_max,
            },
            network: NetworkConfig {
                fraction: self.network_fraction,
                min: self.network_min,
                max: self.network_max,
                size: self.network_size,
                buffer_size: self.network_buffer_size,
                channels_per_slot: self.network_channels_per_slot,
            },
            managed: ManagedConfig { fraction: self.managed_fraction, size: self.managed_size },
            task: TaskConfig { size: self.task_size },
        }
    }

    /// Prints the breakdown, or fails with the model's error.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let memory = breakdown(&self.config())?;
        if self.json {
            serde_json::to_writer_pretty(&mut *out, &memory)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{memory}")?;
        }
        Ok(())
    }
}
