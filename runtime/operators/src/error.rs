//! The error type of this crate.

use crate::SubtaskInfo;
use crate::function::UserError;

/// Why an operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// User code or an operator failed; names the operator and subtask.
    #[error("operator '{operator}' (subtask {subtask}) failed: {source}")]
    Operator {
        /// The operator's name.
        operator: String,
        /// `index+1/parallelism`, as Flink prints subtasks.
        subtask: String,
        /// What went wrong.
        source: UserError,
    },
    /// The task was cancelled because another task failed or the job was stopped.
    #[error("cancelled")]
    Cancelled,
    /// The runtime around the operator failed (a channel, a file, a socket).
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// Wraps a failure of the operator described by `info`.
    pub fn operator(info: &SubtaskInfo, source: UserError) -> Self {
        Error::Operator {
            operator: info.operator_name.clone(),
            subtask: format!("{}/{}", info.index + 1, info.parallelism),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
