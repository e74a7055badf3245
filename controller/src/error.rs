//! The error type of the operator, with a `Result` alias.

/// What can go wrong reconciling a `StreamJob`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// The spec cannot be deployed as written (memory settings, pod template, …); the
    /// message says what to change.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// The job's REST API could not be reached or answered with an error.
    #[error("job REST API at {url}: {message}")]
    JobApi {
        /// The URL called.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// An object could not be turned into JSON or YAML.
    #[error("cannot serialize {what}: {message}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The StreamJob has no namespace (it is a namespaced resource).
    #[error("StreamJob {0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    /// A short CamelCase label for metrics and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeError",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::JobApi { .. } => "JobApiError",
            Error::Serialize { .. } => "SerializeError",
            Error::Finalizer(_) => "FinalizerError",
            Error::NoNamespace(_) => "NoNamespace",
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
