//! The source contract: a subtask's share of an input, polled by its task.

use weir_state::OperatorStateStore;
use weir_types::{CheckpointId, Record};

use crate::function::FnResult;
use crate::{RuntimeContext, SubtaskInfo};

/// What a poll produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePoll {
    /// Records were appended; poll again soon.
    Ready,
    /// Nothing available now; the task flushes its output and polls again after this long at
    /// the latest (sources keep waits short so that cancellation is prompt).
    Pending(std::time::Duration),
    /// The input is exhausted; the task ends its stream.
    Finished,
}

/// One parallel instance of a source. Built per subtask; polled on the task's thread.
pub trait SourceFunction<T>: Send {
    /// Called once before the first poll.
    fn open(&mut self, _info: &SubtaskInfo, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        Ok(())
    }
    /// Appends up to `max` records to `out`.
    fn poll(&mut self, out: &mut Vec<Record<T>>, max: usize) -> FnResult<SourcePoll>;
    /// A checkpoint barrier is about to follow the records polled so far: store the position
    /// reached in `state` (list states registered in `open`, where a restored position is read
    /// back), so that a restore replays exactly what came after it.
    fn snapshot_state(&mut self, _state: &mut OperatorStateStore) -> FnResult {
        Ok(())
    }
    /// Checkpoint `checkpoint` completed (e.g. commit consumer offsets to an external system).
    fn notify_checkpoint_complete(&mut self, _checkpoint: CheckpointId) -> FnResult {
        Ok(())
    }
}
