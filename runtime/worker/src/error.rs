//! The error type of this crate.

use crate::NodeId;

/// Why a job could not be planned or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The graph is not executable as built; names the operator and the rule.
    #[error("invalid job graph at operator '{operator}': {reason}")]
    InvalidGraph {
        /// The operator's name.
        operator: String,
        /// The violated rule and what to do about it.
        reason: String,
    },
    /// An execution setting is out of range.
    #[error("invalid execution config: {0}")]
    InvalidConfig(String),
    /// The graph has no sink or source.
    #[error("the job graph is empty: add a source and a sink before running")]
    EmptyGraph,
    /// A task failed and the restart strategy gave up; `source` names the operator and
    /// subtask.
    #[error("job '{job}' failed (after {restarts} restarts): {source}")]
    JobFailed {
        /// The job's name.
        job: String,
        /// Restarts made before giving up.
        restarts: u32,
        /// The root cause.
        source: weir_operators::Error,
    },
    /// The job's processes could not reach or understand each other.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The coordinator waited for slots longer than `cluster.slot_timeout_ms`.
    #[error(
        "job '{job}' needs {needed} slots but {offered} are offered by {workers} workers after \
         waiting {waited_secs} s; start more workers (`JOB worker --coordinator ADDR --slots N`) \
         or lower the parallelism"
    )]
    NotEnoughSlots {
        /// The job's name.
        job: String,
        /// Slots the job needs: its widest operator's parallelism.
        needed: usize,
        /// Slots the registered workers offer.
        offered: usize,
        /// Workers registered.
        workers: usize,
        /// How long the coordinator waited.
        waited_secs: u64,
    },
    /// A task thread could not be started.
    #[error("cannot start task thread '{task}': {source}")]
    Spawn {
        /// The task's name.
        task: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A snapshot cannot be restored into this job.
    #[error("cannot restore from {url}: {reason}")]
    Restore {
        /// Where the snapshot is.
        url: String,
        /// Why, and what to do about it.
        reason: String,
    },
    /// A savepoint could not be taken.
    #[error("savepoint of job '{job}' failed: {reason}")]
    Savepoint {
        /// The job's name.
        job: String,
        /// Why.
        reason: String,
    },
    /// More checkpoints failed in a row than the job tolerates.
    #[error(
        "{failures} checkpoints failed in a row (tolerable: {tolerable}); the last because {last}"
    )]
    CheckpointFailures {
        /// Failures in a row.
        failures: u32,
        /// The `checkpointing.tolerable_failures` setting.
        tolerable: u32,
        /// Why the last one failed.
        last: String,
    },
    /// Encoding a task's snapshot into state files failed (a value did not serialize, or the
    /// encoding panicked).
    #[error("cannot encode the state of task {task} for checkpoint {checkpoint}: {reason}")]
    EncodeState {
        /// The task.
        task: usize,
        /// The checkpoint.
        checkpoint: u64,
        /// What went wrong.
        reason: String,
    },
    /// A checkpoint must carry the final state of a finished task, but no complete
    /// checkpoint holds it to copy from.
    #[error("no complete checkpoint holds the final state of '{operator}' to copy into {url}")]
    FinalState {
        /// The operator whose state is missing.
        operator: String,
        /// The checkpoint that needs it.
        url: String,
    },
    /// Checkpoint storage failed.
    #[error(transparent)]
    Storage(#[from] weir_checkpoint::Error),
    /// A node id that the graph does not hold.
    #[error("unknown node {0:?}")]
    UnknownNode(NodeId),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
