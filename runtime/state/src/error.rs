//! The error type of this crate.

use weir_types::KeyGroup;

/// What can go wrong when reading or writing state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// State was accessed before the runtime set a current key.
    #[error(
        "keyed state '{state}' accessed without a current key (only keyed operators have keyed state)"
    )]
    NoCurrentKey {
        /// The state's name.
        state: String,
    },
    /// A key arrived at a subtask that does not own its key group: a routing bug.
    #[error("key {key} belongs to key group {group}, outside this subtask's range {start}..={end}")]
    KeyGroupOutOfRange {
        /// The key, as `Debug` prints it.
        key: String,
        /// Its key group.
        group: KeyGroup,
        /// First key group this subtask owns.
        start: KeyGroup,
        /// Last key group this subtask owns.
        end: KeyGroup,
    },
    /// The same state name was registered twice with different types or kinds.
    #[error("state '{name}' is already registered with another type or kind")]
    ConflictingRegistration {
        /// The state's name.
        name: String,
    },
    /// State could not be written to or read from a snapshot.
    #[error("snapshot of state '{state}' could not be encoded or decoded: {message}")]
    Snapshot {
        /// The state (or part of a snapshot) concerned.
        state: String,
        /// What the serializer said.
        message: String,
    },
    /// An incremental checkpoint of heap state could not be put together.
    #[error("the incremental checkpoint of cohort {cohort} cannot be written: {reason}")]
    Incremental {
        /// The cohort of the checkpoint being written.
        cohort: u64,
        /// Why.
        reason: &'static str,
    },
    /// A state backend name (configuration, command line) is not one of the accepted values.
    #[error("unknown state backend '{name}' (accepted: {accepted})")]
    UnknownBackend {
        /// The name given.
        name: String,
        /// The names this binary accepts, comma-separated.
        accepted: &'static str,
    },
    /// A state backend was asked for that this binary was built without.
    #[error(
        "state backend '{name}' is not available: this binary was built without the `{feature}` \
         feature of weir-state (accepted: {accepted})"
    )]
    BackendNotBuilt {
        /// The name given.
        name: String,
        /// The cargo feature that enables it.
        feature: &'static str,
        /// The names this binary accepts, comma-separated.
        accepted: &'static str,
    },
    /// An operation that only one kind of backend supports was called on another.
    #[error("{operation} needs the {required} state backend, but this keyed state uses {actual}")]
    UnsupportedByBackend {
        /// What was attempted.
        operation: &'static str,
        /// The backend that supports it.
        required: &'static str,
        /// The backend in use.
        actual: &'static str,
    },
    /// RocksDB failed on a state's column family.
    #[cfg(feature = "rocksdb")]
    #[error("RocksDB failed to {operation} state '{state}' in {}: {source}", .path.display())]
    RocksDbState {
        /// The state's name.
        state: String,
        /// The instance's directory.
        path: std::path::PathBuf,
        /// What was attempted.
        operation: &'static str,
        /// What RocksDB said.
        source: rocksdb::Error,
    },
    /// RocksDB failed on a whole instance (open, flush, checkpoint).
    #[cfg(feature = "rocksdb")]
    #[error("RocksDB failed to {operation} {}: {source}", .path.display())]
    RocksDb {
        /// The instance's (or checkpoint's) directory.
        path: std::path::PathBuf,
        /// What was attempted.
        operation: &'static str,
        /// What RocksDB said.
        source: rocksdb::Error,
    },
    /// An entry of a RocksDB-backed state could not be encoded or decoded.
    #[cfg(feature = "rocksdb")]
    #[error("entry of RocksDB state '{state}' could not be encoded or decoded: {message}")]
    RocksDbEntry {
        /// The state's name.
        state: String,
        /// What the serializer said.
        message: String,
    },
    /// A file or directory of the RocksDB backend (working directory, native checkpoint)
    /// could not be created, read, linked or removed.
    #[cfg(feature = "rocksdb")]
    #[error("could not {operation} {}: {source}", .path.display())]
    RocksDbFile {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What was attempted.
        operation: &'static str,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The key could not be hashed into a key group.
    #[error(transparent)]
    Key(#[from] weir_types::Error),
}

impl Error {
    /// The same error, naming state `name` as the one whose snapshot failed (an encoder
    /// names only the type it could not write).
    pub(crate) fn in_state(self, name: &str) -> Self {
        match self {
            Error::Snapshot { state, message } => {
                Error::Snapshot { state: name.to_string(), message: format!("{message} ({state})") }
            }
            other => other,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
