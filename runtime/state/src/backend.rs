//! The backend contract: typed tables of `(key, namespace) → value`, partitioned by key group.

use std::fmt;
use std::str::FromStr;

use weir_types::{Data, Key, KeyGroup, KeyGroupRange};

use crate::heap::HeapTable;
#[cfg(feature = "rocksdb")]
use crate::rocksdb::{RocksDbBackend, RocksDbSettings};
use crate::snapshot::{FrozenTable, Sharing};
use crate::{Error, KeyedSnapshot, Result};

/// Which backend stores keyed state; parsed from and displayed as `heap` / `rocksdb` (also
/// in configuration files).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StateBackendKind {
    /// Objects in hash maps per key group: fastest, bounded by memory.
    #[default]
    Heap,
    /// Serialized entries in a local RocksDB instance: bounded by disk, incremental
    /// checkpoints. Runs with [`RocksDbSettings::default`] unless given a [`StateBackend`].
    #[cfg(feature = "rocksdb")]
    RocksDb,
}

/// The backend names this binary accepts, for error messages.
const ACCEPTED: &str = if cfg!(feature = "rocksdb") { "heap, rocksdb" } else { "heap" };

impl StateBackendKind {
    /// The name it is configured with.
    pub fn name(self) -> &'static str {
        match self {
            StateBackendKind::Heap => "heap",
            #[cfg(feature = "rocksdb")]
            StateBackendKind::RocksDb => "rocksdb",
        }
    }
}

impl fmt::Display for StateBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for StateBackendKind {
    type Err = Error;

    /// `heap` or `rocksdb`, ignoring ASCII case.
    fn from_str(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "heap" => Ok(StateBackendKind::Heap),
            #[cfg(feature = "rocksdb")]
            "rocksdb" => Ok(StateBackendKind::RocksDb),
            #[cfg(not(feature = "rocksdb"))]
            "rocksdb" => Err(Error::BackendNotBuilt {
                name: name.to_string(),
                feature: "rocksdb",
                accepted: ACCEPTED,
            }),
            _ => Err(Error::UnknownBackend { name: name.to_string(), accepted: ACCEPTED }),
        }
    }
}

impl TryFrom<String> for StateBackendKind {
    type Error = Error;
    fn try_from(name: String) -> Result<Self> {
        name.parse()
    }
}

impl From<StateBackendKind> for String {
    fn from(kind: StateBackendKind) -> String {
        kind.name().to_string()
    }
}

/// A backend with its settings: what [`crate::KeyedState::new`] takes (a
/// [`StateBackendKind`] converts into it, with default settings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StateBackend {
    /// See [`StateBackendKind::Heap`].
    #[default]
    Heap,
    /// See [`StateBackendKind::RocksDb`].
    #[cfg(feature = "rocksdb")]
    RocksDb(RocksDbSettings),
}

impl StateBackend {
    /// Which backend this is.
    pub fn kind(&self) -> StateBackendKind {
        match self {
            StateBackend::Heap => StateBackendKind::Heap,
            #[cfg(feature = "rocksdb")]
            StateBackend::RocksDb(_) => StateBackendKind::RocksDb,
        }
    }
}

impl From<StateBackendKind> for StateBackend {
    fn from(kind: StateBackendKind) -> Self {
        match kind {
            StateBackendKind::Heap => StateBackend::Heap,
            #[cfg(feature = "rocksdb")]
            StateBackendKind::RocksDb => StateBackend::RocksDb(RocksDbSettings::default()),
        }
    }
}

/// The backend of one keyed state, ready to create its tables.
pub(crate) enum OpenBackend {
    Heap {
        range: KeyGroupRange,
        max_parallelism: usize,
    },
    #[cfg(feature = "rocksdb")]
    RocksDb(RocksDbBackend),
}

impl OpenBackend {
    /// The backend for a subtask that owns `range` of `max_parallelism` key groups; RocksDB
    /// opens its instance on first use.
    pub(crate) fn new(backend: StateBackend, range: KeyGroupRange, max_parallelism: usize) -> Self {
        match backend {
            StateBackend::Heap => OpenBackend::Heap { range, max_parallelism },
            #[cfg(feature = "rocksdb")]
            StateBackend::RocksDb(settings) => {
                OpenBackend::RocksDb(RocksDbBackend::new(settings, range))
            }
        }
    }

    /// A new table for state `name` (empty, unless the backend restored it natively).
    #[cfg_attr(
        not(feature = "rocksdb"),
        expect(unused_variables, reason = "heap tables are unnamed")
    )]
    pub(crate) fn create_table<K: Key, N: Key, V: Data>(
        &self,
        name: &str,
    ) -> Result<Box<dyn StateTable<K, N, V>>> {
        match self {
            OpenBackend::Heap { range, max_parallelism } => {
                Ok(Box::new(HeapTable::new(*range, *max_parallelism)))
            }
            #[cfg(feature = "rocksdb")]
            OpenBackend::RocksDb(rocksdb) => rocksdb.create_table(name),
        }
    }

    /// States the backend holds by name, registered or not (RocksDB column families, which
    /// a native restore may bring before their state is registered).
    pub(crate) fn stored_states(&self) -> Vec<String> {
        match self {
            OpenBackend::Heap { .. } => Vec::new(),
            #[cfg(feature = "rocksdb")]
            OpenBackend::RocksDb(rocksdb) => rocksdb.stored_states(),
        }
    }

    /// Adds the canonical entries in `group` of the stored states `names` (from
    /// [`Self::stored_states`]) to `snapshot`, without knowing their types.
    #[cfg_attr(not(feature = "rocksdb"), expect(unused_variables, reason = "heap stores none"))]
    pub(crate) fn snapshot_stored(
        &self,
        names: &[String],
        group: KeyGroup,
        snapshot: &mut KeyedSnapshot,
    ) -> Result<()> {
        match self {
            // The heap backend stores nothing outside its registered tables.
            OpenBackend::Heap { .. } => Ok(()),
            #[cfg(feature = "rocksdb")]
            OpenBackend::RocksDb(rocksdb) => rocksdb.snapshot_stored(names, group, snapshot),
        }
    }
}

/// One registered state's storage. Every method names the key group so that storage stays
/// partitioned by group; a backend may assume the group is inside its range.
pub trait StateTable<K, N, V>: Send {
    /// A copy of the value under `(key, namespace)`.
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>>;
    /// Changes the value under `(key, namespace)` in place; returns whether there was one.
    fn modify(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        change: &mut dyn FnMut(&mut V),
    ) -> Result<bool>;
    /// Stores `value` under `(key, namespace)`, replacing what was there.
    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) -> Result<()>;
    /// Removes the value under `(key, namespace)`, returning it.
    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>>;
    /// Appends the entries of `group` to `out` in the canonical snapshot encoding
    /// (see [`crate::encode_entries`]); returns whether the group had any.
    fn snapshot_group(&self, group: KeyGroup, out: &mut Vec<u8>) -> Result<bool>;
    /// Adds the entries of a block written by [`Self::snapshot_group`] to `group`.
    fn restore_group(&mut self, group: KeyGroup, entries: &[u8]) -> Result<()>;
    /// The table as it is now, to encode later, off the task's thread, when keeping it costs
    /// the task less than encoding (live objects, shared until they change, as much of them
    /// as `sharing` says); `None` to encode at the snapshot.
    fn frozen(&mut self, _sharing: Sharing) -> Option<Box<dyn FrozenTable>> {
        None
    }
    /// Number of entries, over all key groups.
    fn len(&self) -> usize;
    /// Whether the table holds no entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
