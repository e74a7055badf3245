//! What a running function can see: its subtask, the current record's time, its state.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use weir_state::{KeyedState, KeyedStateAccess, OperatorStateStore, StateBackend};
use weir_types::{Key, KeyGroup, KeyGroupRange, Timestamp};

use crate::{TimeDomain, TimerService, processing_time_now};

/// Identity of one parallel instance of an operator.
#[derive(Clone, Debug)]
pub struct SubtaskInfo {
    /// The operator's name, as shown in logs, errors and metrics.
    pub operator_name: String,
    /// The operator's stable id, under which its state is stored (`uid(...)`, or derived
    /// from the graph).
    pub operator_id: String,
    /// Index of this subtask, from 0.
    pub index: usize,
    /// Number of parallel subtasks of the operator.
    pub parallelism: usize,
    /// Number of key groups (the upper bound for rescaling).
    pub max_parallelism: usize,
    /// Where keyed state lives.
    pub state_backend: StateBackend,
    /// How often the job takes checkpoints (`None`: it does not). With checkpoints, sinks
    /// make output visible when a checkpoint completes, not at the end of input.
    pub checkpoint_interval: Option<Duration>,
}

impl SubtaskInfo {
    /// Subtask `index` of `parallelism` of the operator `name` (also its id), for tests and
    /// tools.
    pub fn new(name: &str, index: usize, parallelism: usize, max_parallelism: usize) -> Self {
        SubtaskInfo {
            operator_name: name.to_string(),
            operator_id: name.to_string(),
            index,
            parallelism,
            max_parallelism,
            state_backend: StateBackend::Heap,
            checkpoint_interval: None,
        }
    }

    /// Whether the job takes checkpoints.
    pub fn checkpointing(&self) -> bool {
        self.checkpoint_interval.is_some()
    }

    /// The key groups this subtask owns.
    pub fn key_group_range(&self) -> KeyGroupRange {
        KeyGroupRange::for_subtask(self.max_parallelism, self.parallelism, self.index)
    }
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

    /// Whether the job restarts from a snapshot: operator state holds what was stored, and
    /// its absence means there was nothing (not a fresh start).
    pub fn is_restored(&self) -> bool {
        self.operator_state.is_restored()
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

/// Given to a keyed function with each record and each timer: the key, the time, keyed
/// state scoped to the key (handles take the context: `self.count.value(ctx)`) and timers.
pub struct KeyedContext<'a, K> {
    info: &'a SubtaskInfo,
    timestamp: Option<Timestamp>,
    time_domain: Option<TimeDomain>,
    state: &'a mut KeyedState<K>,
    timers: &'a mut TimerService<K>,
}

impl<'a, K: Key> KeyedContext<'a, K> {
    /// A context for one record (or, with `time_domain`, one timer) whose key is already set
    /// on `state`.
    pub fn new(
        info: &'a SubtaskInfo,
        timestamp: Option<Timestamp>,
        time_domain: Option<TimeDomain>,
        state: &'a mut KeyedState<K>,
        timers: &'a mut TimerService<K>,
    ) -> Self {
        KeyedContext { info, timestamp, time_domain, state, timers }
    }

    /// The key of the record or timer being processed.
    pub fn key(&self) -> &K {
        self.state.current_key().expect("the runtime sets the key before calling a keyed function")
    }

    /// The record's event timestamp, or the firing timer's time.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    /// In `on_timer`, the domain of the firing timer; `None` while processing a record.
    pub fn time_domain(&self) -> Option<TimeDomain> {
        self.time_domain
    }

    /// This subtask.
    pub fn subtask(&self) -> &SubtaskInfo {
        self.info
    }

    /// Timers of the current key.
    pub fn timer_service(&mut self) -> KeyedTimers<'_, K> {
        let key = self.state.current_key_in_group().expect("the runtime sets the key first");
        KeyedTimers { timers: self.timers, key }
    }
}

/// Registers and deletes timers of the current key (Flink's `TimerService`).
pub struct KeyedTimers<'a, K> {
    timers: &'a mut TimerService<K>,
    key: (&'a K, KeyGroup),
}

impl<K: Key> KeyedTimers<'_, K> {
    /// Calls `on_timer` once the watermark reaches `time`. Once per key and time.
    pub fn register_event_time_timer(&mut self, time: Timestamp) {
        self.timers.register(TimeDomain::EventTime, self.key, &(), time);
    }

    /// Calls `on_timer` once the wall clock reaches `time` (milliseconds since the epoch).
    pub fn register_processing_time_timer(&mut self, time: Timestamp) {
        self.timers.register(TimeDomain::ProcessingTime, self.key, &(), time);
    }

    /// Deletes the event-time timer at `time`, if any.
    pub fn delete_event_time_timer(&mut self, time: Timestamp) {
        self.timers.delete(TimeDomain::EventTime, self.key.0, &(), time);
    }

    /// Deletes the processing-time timer at `time`, if any.
    pub fn delete_processing_time_timer(&mut self, time: Timestamp) {
        self.timers.delete(TimeDomain::ProcessingTime, self.key.0, &(), time);
    }

    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.timers.watermark().timestamp()
    }

    /// The wall clock, in milliseconds since the epoch.
    pub fn current_processing_time(&self) -> Timestamp {
        processing_time_now()
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
