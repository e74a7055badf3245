//! What process-function operators share: the key selector, per-subtask keyed state, and
//! the per-record loop that sets key and timestamp before calling the function.

use std::sync::Arc;

use weir_state::{KeyedState, OperatorStateStore, StateBackendKind};
use weir_types::{Key, KeyGroupRange, Record};

use crate::function::FnResult;
use crate::{Collector, KeyedContext, ProcessContext, SubtaskInfo};

/// Extracts the key of a record; shared by the partitioner and the keyed operator.
pub type KeySelector<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// The keyed state of the subtask `info` describes: the key groups it owns on `backend`.
pub(crate) fn keyed_state_for<K: Key>(
    backend: StateBackendKind,
    info: &SubtaskInfo,
) -> KeyedState<K> {
    let range = KeyGroupRange::for_subtask(info.max_parallelism, info.parallelism, info.index);
    KeyedState::new(backend, info.max_parallelism, range)
}

/// Calls `function` for every record of `batch`, with the record's key set on `state` and
/// its timestamp on `out`.
pub(crate) fn process_keyed<K: Key, T, O>(
    batch: &mut Vec<Record<T>>,
    out: &mut Collector<O>,
    info: &SubtaskInfo,
    state: &mut KeyedState<K>,
    key_selector: &KeySelector<T, K>,
    mut function: impl FnMut(T, &mut KeyedContext<'_, K>, &mut Collector<O>) -> FnResult,
) -> FnResult {
    for record in batch.drain(..) {
        state.set_current_key(key_selector(&record.value))?;
        out.set_timestamp(record.timestamp);
        function(record.value, &mut KeyedContext::new(info, record.timestamp, state), out)?;
    }
    Ok(())
}

/// Calls `function` for every record of `batch`, with its timestamp on `out`.
pub(crate) fn process_each<T, O>(
    batch: &mut Vec<Record<T>>,
    out: &mut Collector<O>,
    info: &SubtaskInfo,
    operator_state: &mut OperatorStateStore,
    mut function: impl FnMut(T, &mut ProcessContext<'_>, &mut Collector<O>) -> FnResult,
) -> FnResult {
    for record in batch.drain(..) {
        out.set_timestamp(record.timestamp);
        function(
            record.value,
            &mut ProcessContext::new(info, record.timestamp, operator_state),
            out,
        )?;
    }
    Ok(())
}
