//! The source contract: a subtask's share of an input, polled by its task.

use weir_state::OperatorStateStore;
use weir_types::{CheckpointId, Record, Watermark};

use crate::function::FnResult;
use crate::{Collector, RuntimeContext, SubtaskInfo};

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

/// Event time as a source tracks it itself, per split (Flink's per-split watermarks, e.g. one
/// per Kafka partition), combined over the subtask's splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceWatermark {
    /// The minimum over the subtask's active splits.
    Watermark(Watermark),
    /// Every split is idle, or the subtask has none: it must not hold back event time.
    Idle,
}

/// One parallel instance of a source. Built per subtask; polled on the task's thread.
pub trait SourceFunction<T>: Send {
    /// Called once before the first poll.
    fn open(&mut self, _info: &SubtaskInfo, _ctx: &mut RuntimeContext<'_>) -> FnResult {
        Ok(())
    }
    /// Appends up to `max` records to `out`.
    fn poll(&mut self, out: &mut Vec<Record<T>>, max: usize) -> FnResult<SourcePoll>;
    /// Emits with [`Collector::output`] what the source set aside for side outputs since the
    /// last call (say, a Kafka source's records that cannot be deserialized); called after
    /// every poll. Records `collect`ed into `out` go nowhere. Most sources have none.
    fn side_outputs(&mut self, _out: &mut Collector<()>) -> FnResult {
        Ok(())
    }
    /// The barrier of `checkpoint` is about to follow the records polled so far: store the
    /// position reached in `state` (list states registered in `open`, where a restored
    /// position is read back), so that a restore replays exactly what came after it.
    fn snapshot_state(
        &mut self,
        _checkpoint: CheckpointId,
        _state: &mut OperatorStateStore,
    ) -> FnResult {
        Ok(())
    }
    /// The source's own watermark, asked for after each poll; `None` (the default) leaves
    /// event time to a downstream timestamp assigner. The task emits a watermark only when
    /// it advances, and marks the stream idle and active again as this changes.
    fn watermark(&mut self) -> Option<SourceWatermark> {
        None
    }
    /// Checkpoint `checkpoint` completed (e.g. commit consumer offsets to an external system).
    fn notify_checkpoint_complete(&mut self, _checkpoint: CheckpointId) -> FnResult {
        Ok(())
    }
}
