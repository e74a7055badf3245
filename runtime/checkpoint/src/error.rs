//! The error type of this crate: every variant names the URL or path it is about.

use std::path::PathBuf;

/// What can go wrong when locating, writing or reading checkpoints and savepoints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage URL cannot be parsed or uses an unsupported scheme.
    #[error("invalid storage URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `s3://` URL without the settings needed to reach S3 safely.
    #[error("cannot use '{url}': {reason}")]
    S3NotConfigured {
        /// The URL as given.
        url: String,
        /// Which settings are missing, and how to set them.
        reason: &'static str,
    },
    /// A name that becomes a path segment (a job name) cannot be one.
    #[error(
        "{what} '{name}' cannot be used in a storage path: use only ASCII letters, digits, '-', \
         '_' and '.', and do not start with '.'"
    )]
    InvalidName {
        /// What the name is, e.g. "job name".
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// A file name inside a snapshot directory is not a valid relative path.
    #[error("invalid file path '{url}': {reason}")]
    InvalidPath {
        /// The URL the file would have.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local storage directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A local file being uploaded or downloaded could not be read or written.
    #[error("cannot {operation} local file {}: {source}", path.display())]
    LocalFile {
        /// What was attempted: read, write.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The object store failed.
    #[error("storage operation on '{url}' failed: {source}")]
    Store {
        /// The file or directory concerned.
        url: String,
        /// What the store said.
        source: object_store::Error,
    },
    /// The directory has no `_metadata`: an incomplete checkpoint, or no snapshot at all.
    #[error("'{url}' is not a complete checkpoint or savepoint: it has no _metadata file")]
    NotComplete {
        /// The directory.
        url: String,
    },
    /// `_metadata` was written by a newer Weir with a format this build cannot read.
    #[error(
        "'{url}' has metadata format version {found}, newer than the version {supported} this \
         build reads: restore it with a newer Weir"
    )]
    UnsupportedFormat {
        /// The `_metadata` file.
        url: String,
        /// Its format version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// `_metadata` could not be encoded or decoded.
    #[error("malformed metadata '{url}': {source}")]
    Metadata {
        /// The `_metadata` file.
        url: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
