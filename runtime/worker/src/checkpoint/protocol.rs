//! Messages between the checkpoint coordinator and the tasks of a job.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use weir_operators::TaskSnapshot;
use weir_types::{CheckpointBarrier, CheckpointId};

use super::{CheckpointConfig, CheckpointingMode, InFlight};

/// Identifies a task (one subtask of one chain) within a job run.
pub type TaskId = usize;

/// From the coordinator to one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCommand {
    /// Sources only: take a snapshot and emit this barrier.
    Trigger(CheckpointBarrier),
    /// Sources only: as `Trigger`, then emit nothing more until this savepoint is aborted
    /// (the source resumes) or completes (the job stops): Flink's stop-with-savepoint, where
    /// no record is processed after the savepoint's barrier.
    StopAfter(CheckpointBarrier),
    /// The checkpoint completed: commit what waited for it.
    Complete(CheckpointId),
    /// The checkpoint was aborted.
    Abort(CheckpointId),
}

/// From a task to the coordinator.
#[derive(Debug)]
pub enum TaskEvent {
    /// The task snapshotted its operators for the barrier's checkpoint (boxed: the other
    /// events are small).
    Acknowledged(Box<TaskState>),
    /// The task could not take part in the checkpoint.
    Declined {
        /// Which task.
        task: TaskId,
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Why.
        reason: String,
    },
    /// A source reached the end of its input and waits for a final checkpoint.
    EndOfData {
        /// Which task.
        task: TaskId,
    },
}

/// What a task snapshotted for a checkpoint, to be written to storage.
#[derive(Debug)]
pub struct TaskState {
    /// Which task.
    pub task: TaskId,
    /// The states of its operators.
    pub snapshot: TaskSnapshot,
    /// How long the barrier waited for alignment.
    pub alignment: Duration,
    /// Whether the task had reached the end of its input: its state is final.
    pub finished: bool,
    /// The records in flight on its inputs when it took the checkpoint unaligned; `None`
    /// when it aligned.
    pub in_flight: Option<InFlight>,
}

/// A task's line to the coordinator.
#[derive(Debug, Clone)]
pub struct TaskControl {
    /// This task.
    pub task: TaskId,
    /// Commands for this task.
    pub commands: Receiver<TaskCommand>,
    /// Where it reports.
    pub events: Sender<TaskEvent>,
    /// How barriers are aligned, or `None` when the task ignores them.
    pub checkpointing: Option<BarrierMode>,
    /// Whether a finished task waits for a checkpoint taken after its end (periodic
    /// checkpoints are on) before it ends.
    pub final_checkpoint: bool,
}

/// How a task treats barriers arriving on several input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierMode {
    /// Hold back inputs that delivered the barrier until all did (exactly-once).
    Aligned,
    /// Let every input flow; snapshot when the last barrier arrives (at-least-once).
    AtLeastOnce,
    /// Exactly-once without waiting for the slowest input: align for at most
    /// `alignment_timeout`, then snapshot, pass the barrier on, and store the records still in
    /// flight on the inputs that have not delivered it with the checkpoint.
    Unaligned {
        /// How long a checkpoint aligns before it goes unaligned (zero: not at all).
        alignment_timeout: Duration,
    },
}

impl From<&CheckpointConfig> for BarrierMode {
    fn from(config: &CheckpointConfig) -> Self {
        match config.mode {
            CheckpointingMode::ExactlyOnce if config.unaligned => BarrierMode::Unaligned {
                alignment_timeout: Duration::from_millis(config.alignment_timeout_ms),
            },
            CheckpointingMode::ExactlyOnce => BarrierMode::Aligned,
            CheckpointingMode::AtLeastOnce => BarrierMode::AtLeastOnce,
        }
    }
}

impl TaskControl {
    /// Reports `event`; a coordinator that has gone away (job ending) is ignored.
    pub fn report(&self, event: TaskEvent) {
        let _ = self.events.send(event);
    }
}
