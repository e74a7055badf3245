//! The backend contract: typed tables of `(key, namespace) → value`, partitioned by key group.

use weir_types::{Data, Key, KeyGroup, KeyGroupRange};

use crate::Result;
use crate::heap::HeapTable;

/// Which backend stores keyed state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StateBackendKind {
    /// Objects in hash maps per key group: fastest, bounded by memory.
    #[default]
    Heap,
}

impl StateBackendKind {
    /// A new, empty table for one registered state.
    pub(crate) fn create_table<K: Key, N: Key, V: Data>(
        self,
        range: KeyGroupRange,
    ) -> Box<dyn StateTable<K, N, V>> {
        match self {
            StateBackendKind::Heap => Box::new(HeapTable::new(range)),
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
    /// Number of entries, over all key groups.
    fn len(&self) -> usize;
    /// Whether the table holds no entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
