//! What keyed operators share: the key selector and per-subtask keyed state.

use std::sync::Arc;

use weir_state::{KeyedState, StateBackendKind};
use weir_types::{Key, KeyGroupRange};

use crate::SubtaskInfo;

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
