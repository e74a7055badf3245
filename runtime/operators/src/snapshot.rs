//! What operators hand over at a checkpoint barrier and get back on restore.

use weir_state::{KeyedRestore, KeyedSnapshot, ListSnapshot, NativeCheckpoint, OperatorRestore};
use weir_types::{CheckpointBarrier, KeyGroupRange};

use crate::SubtaskInfo;

/// The state of one operator subtask at a checkpoint.
#[derive(Debug, Default)]
pub struct OperatorSnapshot {
    /// Keyed state (and timers), per key group.
    pub keyed: KeyedSnapshot,
    /// Operator list states.
    pub lists: Vec<ListSnapshot>,
    /// The keyed state backend's own incremental checkpoint, which then holds the keyed
    /// state except what `keyed` carries (timers, restored states not registered yet).
    pub native: Option<NativeCheckpoint>,
}

impl OperatorSnapshot {
    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.keyed.is_empty()
            && self.lists.iter().all(|list| list.elements.is_empty())
            && self.native.is_none()
    }
}

/// The state an operator subtask starts from: empty on a fresh start, read back from a
/// checkpoint or savepoint (already narrowed to this subtask's key groups and share of the
/// list states) on restore.
#[derive(Debug, Default)]
pub struct StateRestore {
    /// Keyed state and timers.
    pub keyed: KeyedRestore,
    /// Operator list states.
    pub operator: OperatorRestore,
}

/// One operator subtask's part of a task's snapshot.
#[derive(Debug)]
pub struct SubtaskSnapshot {
    /// Which operator subtask.
    pub info: SubtaskInfo,
    /// Its state.
    pub state: OperatorSnapshot,
}

impl SubtaskSnapshot {
    /// The key groups the subtask owned.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.info.key_group_range()
    }
}

/// What a task collects from the operators of its chain when a barrier passes.
#[derive(Debug)]
pub struct TaskSnapshot {
    /// The barrier being processed.
    pub barrier: CheckpointBarrier,
    /// The snapshots of the chain's stateful operators.
    pub operators: Vec<SubtaskSnapshot>,
}

impl TaskSnapshot {
    /// An empty snapshot for `barrier`.
    pub fn new(barrier: CheckpointBarrier) -> Self {
        TaskSnapshot { barrier, operators: Vec::new() }
    }

    /// Adds the state of the operator subtask `info` describes, unless it is empty.
    pub fn add(&mut self, info: &SubtaskInfo, state: OperatorSnapshot) {
        if !state.is_empty() {
            self.operators.push(SubtaskSnapshot { info: info.clone(), state });
        }
    }
}
