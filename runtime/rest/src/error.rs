//! The error type of this crate, and how each error answers over HTTP.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What can go wrong serving the API or answering a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address cannot be listened on.
    #[error("cannot serve the REST API on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server's thread or runtime could not be started.
    #[error("cannot start the REST API server: {0}")]
    Start(std::io::Error),
    /// No job has this name (HTTP 404).
    #[error("no job named '{0}'")]
    UnknownJob(String),
    /// The request body is not what the endpoint takes (HTTP 400).
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// A savepoint cannot be taken, e.g. the job is no longer running or has no savepoint
    /// directory (HTTP 409).
    #[error("{0}")]
    Savepoint(weir_worker::Error),
    /// Anything else (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::UnknownJob(_) => StatusCode::NOT_FOUND,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Savepoint(_) => StatusCode::CONFLICT,
            Error::Bind { .. } | Error::Start(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}
