//! What a running function can see: its subtask, the current record's time, its state.

use std::ops::{Deref, DerefMut};

use weir_state::{KeyedState, KeyedStateAccess, OperatorStateStore};
use weir_types::{Key, Timestamp};

/// Identity of one parallel instance of an operator.
#[derive(Clone, Debug)]
pub struct SubtaskInfo {
    /// The operator's name, as shown in logs, errors and metrics.
    pub operator_name: String,
    /// Index of this subtask, from 0.
    pub index: usize,
    /// Number of parallel subtasks of the operator.
    pub parallelism: usize,
    /// Number of key groups (the upper bound for rescaling).
    pub max_parallelism: usize,
}

/// Given to non-keyed functions when they open: subtask identity and operator state.
pub struct RuntimeContext<'a> {
    info: &'a SubtaskInfo,
    operator_state: &'a mut OperatorStateStore,
}

impl<'a> RuntimeContext<'a> {
    /// A context over the subtask's identity and operator state.
    pub fn new(info: &'a SubtaskInfo, operator_state: &'a mut OperatorStateStore) -> Self {
        RuntimeContext { info, operator_state }
    }

    /// This subtask.
    pub fn subtask(&self) -> &SubtaskInfo {
        self.info
    }

    /// Operator state of this subtask (register list states here).
    pub fn operator_state(&mut self) -> &mut OperatorStateStore {
        self.operator_state
    }
}

/// Given to keyed functions when they open: subtask identity and keyed state to register
/// descriptors with (dereferences to [`KeyedState`]).
pub struct KeyedRuntimeContext<'a, K> {
    info: &'a SubtaskInfo,
    state: &'a mut KeyedState<K>,
}

impl<'a, K> KeyedRuntimeContext<'a, K> {
    /// A context over the subtask's identity and keyed state.
    pub fn new(info: &'a SubtaskInfo, state: &'a mut KeyedState<K>) -> Self {
        KeyedRuntimeContext { info, state }
    }

    /// This subtask.
    pub fn subtask(&self) -> &SubtaskInfo {
        self.info
    }
}

impl<K> Deref for KeyedRuntimeContext<'_, K> {
    type Target = KeyedState<K>;
    fn deref(&self) -> &KeyedState<K> {
        self.state
    }
}

impl<K> DerefMut for KeyedRuntimeContext<'_, K> {
    fn deref_mut(&mut self) -> &mut KeyedState<K> {
        self.state
    }
}

/// Given to a process function with each record.
pub struct ProcessContext<'a> {
    info: &'a SubtaskInfo,
    timestamp: Option<Timestamp>,
    operator_state: &'a mut OperatorStateStore,
}

impl<'a> ProcessContext<'a> {
    /// A context for one record.
    pub fn new(
        info: &'a SubtaskInfo,
        timestamp: Option<Timestamp>,
        operator_state: &'a mut OperatorStateStore,
    ) -> Self {
        ProcessContext { info, timestamp, operator_state }
    }

    /// The record's event timestamp, if it has one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    /// This subtask.
    pub fn subtask(&self) -> &SubtaskInfo {
        self.info
    }

    /// Operator state of this subtask.
    pub fn operator_state(&mut self) -> &mut OperatorStateStore {
        self.operator_state
    }
}

/// Given to a keyed function with each record: the key, the record's time and keyed state
/// scoped to the key (handles take the context: `self.count.value(ctx)`).
pub struct KeyedContext<'a, K> {
    info: &'a SubtaskInfo,
    timestamp: Option<Timestamp>,
    state: &'a mut KeyedState<K>,
}

impl<'a, K: Key> KeyedContext<'a, K> {
    /// A context for one record whose key is already set on `state`.
    pub fn new(
        info: &'a SubtaskInfo,
        timestamp: Option<Timestamp>,
        state: &'a mut KeyedState<K>,
    ) -> Self {
        KeyedContext { info, timestamp, state }
    }

    /// The key of the record being processed.
    pub fn key(&self) -> &K {
        self.state.current_key().expect("the runtime sets the key before calling a keyed function")
    }

    /// The record's event timestamp, if it has one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    /// This subtask.
    pub fn subtask(&self) -> &SubtaskInfo {
        self.info
    }
}

impl<K: Key> KeyedStateAccess for KeyedContext<'_, K> {
    type Key = K;
    fn keyed_state(&self) -> &KeyedState<K> {
        self.state
    }
    fn keyed_state_mut(&mut self) -> &mut KeyedState<K> {
        self.state
    }
}
