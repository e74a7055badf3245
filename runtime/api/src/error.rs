//! The error type of the API crate.

/// What can go wrong building, configuring or running a job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file, environment or `--set` values are invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] Box<figment::Error>),
    /// A `--set` option is not `key=value`.
    #[error("--set expects key=value, got '{0}'")]
    SetSyntax(String),
    /// A job parameter the job requires was not given.
    #[error("missing job parameter --{0}")]
    MissingParameter(String),
    /// A job parameter could not be parsed.
    #[error("invalid value '{value}' for --{name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: String,
        /// What was given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The REST API cannot be served.
    #[error(transparent)]
    Rest(#[from] weir_rest::Error),
    /// The job could not be planned or failed while running.
    #[error(transparent)]
    Execution(#[from] weir_worker::Error),
    /// A connector was configured in a way that cannot work.
    #[error(transparent)]
    Connector(#[from] weir_connectors::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
