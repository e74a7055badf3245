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
    /// A task failed; `source` names the operator and subtask.
    #[error("job '{job}' failed: {source}")]
    JobFailed {
        /// The job's name.
        job: String,
        /// The root cause.
        source: weir_operators::Error,
    },
    /// A task thread could not be started.
    #[error("cannot start task thread '{task}': {source}")]
    Spawn {
        /// The task's name.
        task: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A node id that the graph does not hold.
    #[error("unknown node {0:?}")]
    UnknownNode(NodeId),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
