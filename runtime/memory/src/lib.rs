//! Weir's memory model: how a process's memory (a pod's memory limit) is divided into
//! runtime overhead, network buffers, managed memory (RocksDB block cache and write buffers)
//! and task memory, after Flink's TaskManager model without the JVM.
//!
//! One pure function, [`breakdown`], turns a [`MemoryConfig`] (the process size and optional
//! fractions, bounds and explicit sizes) into a [`MemoryBreakdown`] whose components add up
//! to the process size, or into the [`MemoryError`] of the first rule the configuration
//! breaks, with computed fixes. The runtime sizes its buffer pool and RocksDB caches from
//! the breakdown; the Kubernetes operator calls the same function to size pods and reject
//! impossible settings. Modules: `size` (the [`ByteSize`] unit), `config` (inputs and
//! defaults), `derive` (the rules), `breakdown` (the result and its table), `error`, `fix`
//! and `setting` (what errors suggest, by setting), `suggest` (how fixes are computed).
//!
//! ```
//! use weir_memory::{ByteSize, MemoryConfig, breakdown};
//!
//! let config = MemoryConfig { process_size: "2g".parse()?, ..Default::default() };
//! let memory = breakdown(&config)?;
//! assert_eq!(memory.runtime_overhead.size, ByteSize::gib(2).times(0.1));
//! let sum = [&memory.runtime_overhead, &memory.network, &memory.managed, &memory.task]
//!     .iter()
//!     .map(|component| component.size.bytes())
//!     .sum::<u64>();
//! assert_eq!(sum, memory.process.bytes());
//! println!("{memory}");
//!
//! let too_small = MemoryConfig { process_size: ByteSize::mib(128), ..Default::default() };
//! let error = breakdown(&too_small).unwrap_err();
//! assert!(error.to_string().ends_with("fix: raise process_size to at least 224 MiB"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod breakdown;
mod config;
mod derive;
mod error;
mod fix;
mod setting;
mod size;
mod suggest;

pub use breakdown::{Base, Clamp, Component, MemoryBreakdown, Rule};
pub use config::{
    DEFAULT_BUFFER_SIZE, DEFAULT_CHANNELS_PER_SLOT, DEFAULT_MANAGED_FRACTION,
    DEFAULT_NETWORK_FRACTION, DEFAULT_NETWORK_MAX, DEFAULT_NETWORK_MIN, DEFAULT_OVERHEAD_FRACTION,
    DEFAULT_OVERHEAD_MAX, DEFAULT_OVERHEAD_MIN, DEFAULT_SLOTS, MIN_TASK_MEMORY, ManagedConfig,
    MemoryConfig, NetworkConfig, OverheadConfig, TaskConfig,
};
pub use derive::breakdown;
pub use error::{MemoryError, Result, Terms};
pub use fix::{Fix, Fixes, Target};
pub use setting::{CountSetting, FractionSetting, Setting, SizeSetting};
pub use size::{ByteSize, ParseSizeError};
