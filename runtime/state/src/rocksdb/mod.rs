//! The RocksDB state backend: keyed state on local disk, for state larger than memory.
//!
//! Each [`crate::KeyedState`] (one operator subtask) owns one RocksDB instance in a unique
//! subdirectory of [`RocksDbSettings::working_dir`], removed when the state is dropped. Every
//! registered state is one column family; keys are laid out by key group (see `keys`), so a
//! key group is one contiguous key range. Writes skip the write-ahead log: state is made
//! durable by checkpoints, as in Flink. Besides the canonical snapshot (per key group,
//! backend-independent), the instance takes native incremental checkpoints and native
//! savepoints (see `native`).

mod instance;
mod keys;
mod native;
mod table;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use weir_types::{Data, Key, KeyGroup, KeyGroupRange};

use crate::{KeyedSnapshot, Result, StateTable};
use instance::Instance;
pub(crate) use native::FileSharing;
use table::RocksDbTable;

/// Where and with how much memory the RocksDB backend runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RocksDbSettings {
    /// Root of the local working directories; each keyed state (operator subtask) opens its
    /// instance in a unique subdirectory, removed when the state is dropped.
    pub working_dir: PathBuf,
    /// Capacity of the instance's block cache (uncompressed data blocks), in bytes.
    pub block_cache_bytes: usize,
    /// Memtable budget of the instance, in bytes: a column family's memtable is flushed at
    /// this size, and all memtables together are kept near it.
    pub write_buffer_bytes: usize,
    /// Checkpoints are incremental: RocksDB's own checkpoint, whose SST files are stored once
    /// and shared by later checkpoints, instead of a scan of every entry. Savepoints are
    /// full either way: canonical, or native (RocksDB's files, none shared) on request.
    pub incremental: bool,
}

impl Default for RocksDbSettings {
    /// `{temp dir}/weir-rocksdb`, a 64 MiB block cache, a 32 MiB write buffer, incremental
    /// checkpoints.
    fn default() -> Self {
        RocksDbSettings {
            working_dir: std::env::temp_dir().join("weir-rocksdb"),
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
            incremental: true,
        }
    }
}

/// The RocksDB backend of one keyed state. The instance opens when first needed (first
/// registered state, native checkpoint, restore), so creating keyed state cannot fail.
pub(crate) struct RocksDbBackend {
    pub(crate) settings: RocksDbSettings,
    range: KeyGroupRange,
    instance: OnceLock<Arc<Instance>>,
}

impl RocksDbBackend {
    pub(crate) fn new(settings: RocksDbSettings, range: KeyGroupRange) -> Self {
        RocksDbBackend { settings, range, instance: OnceLock::new() }
    }

    /// The instance, opened (empty) on first use.
    fn instance(&self) -> Result<&Arc<Instance>> {
        if let Some(instance) = self.instance.get() {
            return Ok(instance);
        }
        let opened = Arc::new(Instance::open(&self.settings, self.range, None)?);
        Ok(self.instance.get_or_init(|| opened))
    }

    /// The table of state `name`: its column family, created unless it exists (restored).
    pub(crate) fn create_table<K: Key, N: Key, V: Data>(
        &self,
        name: &str,
    ) -> Result<Box<dyn StateTable<K, N, V>>> {
        Ok(Box::new(RocksDbTable::new(Arc::clone(self.instance()?), name)?))
    }

    /// Names of the states with a column family, registered or only restored.
    pub(crate) fn stored_states(&self) -> Vec<String> {
        self.instance.get().map(|instance| instance.states()).unwrap_or_default()
    }

    /// Adds the canonical entries in `group` of the states `names` to `snapshot`, whatever
    /// their types (see [`StateTable::snapshot_group`]).
    pub(crate) fn snapshot_stored(
        &self,
        names: &[String],
        group: KeyGroup,
        snapshot: &mut KeyedSnapshot,
    ) -> Result<()> {
        for name in names {
            let mut entries = Vec::new();
            if self.instance()?.snapshot_group(name, group, &mut entries)? {
                snapshot.add(group, name, entries);
            }
        }
        Ok(())
    }
}
