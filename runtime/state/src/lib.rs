//! State that operators keep between records: keyed state scoped to the current key and
//! stored per key group, and operator state per subtask.
//!
//! A keyed operator owns one [`KeyedState`]; functions register state from descriptors once
//! (in `open`) and get small typed handles back. Before each record the runtime sets the
//! current key; handles then read and write that key's entry:
//!
//! ```
//! use weir_state::{KeyedState, StateBackendKind, ValueStateDescriptor};
//! use weir_types::KeyGroupRange;
//!
//! let mut state = KeyedState::<String>::new(StateBackendKind::Heap, 128, KeyGroupRange::for_subtask(128, 1, 0));
//! let count = state.value_state(&ValueStateDescriptor::<u64>::new("count")).unwrap();
//! state.set_current_key("apple".to_string()).unwrap();
//! count.update(&mut state, 2).unwrap();
//! assert_eq!(count.value(&state).unwrap(), Some(2));
//! state.set_current_key("pear".to_string()).unwrap();
//! assert_eq!(count.value(&state).unwrap(), None);
//! ```
//!
//! Tables are reached through the [`StateTable`] trait: the heap backend keeps objects, the
//! RocksDB backend (cargo feature `rocksdb`) keeps bytes on local disk, one column family per
//! state, and adds native incremental checkpoints. Snapshots use one canonical format, so
//! state moves between backends.

mod aggregate;
mod backend;
mod codec;
mod cohorts;
mod descriptor;
mod entries;
mod error;
mod grouped;
mod handles;
mod heap;
mod keyed;
mod namespaces;
mod native;
mod operator;
mod pieces;
#[cfg(feature = "rocksdb")]
mod rocksdb;
mod shareable;
mod snapshot;
#[cfg(test)]
mod tests;

#[cfg(feature = "rocksdb")]
pub use crate::rocksdb::RocksDbSettings;
pub use aggregate::AggregateFunction;
pub use backend::{StateBackend, StateBackendKind, StateTable};
pub use cohorts::{Changes, Cohorts, Completion, Fresh, FrozenCohorts, Handed, Handle};
pub use descriptor::{
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor,
    ValueStateDescriptor,
};
pub use error::{Error, Result};
pub use grouped::{GroupLayout, GroupSink, encode_by_group, encode_split};
pub use handles::{
    AggregatingState, ListState, MapState, NamespacedValueState, ReducingState, ValueState,
};
pub use keyed::{KeyedState, KeyedStateAccess};
pub use native::{
    LocalDir, NativeCheckpoint, NativeFile, NativeRestore, remove_dirs_of_dead_processes,
};
pub use operator::{OperatorListState, OperatorStateStore};
pub use pieces::{BlockWriter, FileBytes, GroupEntries, Piece, PlacedBlock, Spot, Stored};
pub use shareable::{Frozen, Shareable, Spares};
pub use snapshot::{
    FrozenTable, KeyedRestore, KeyedSnapshot, ListMode, ListSnapshot, OperatorRestore, Sharing,
    append_count, append_run, append_runs_header, decode_entries,
};
