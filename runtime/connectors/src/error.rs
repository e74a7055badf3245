//! The error type of this crate.

use std::io;
use std::path::PathBuf;

/// What can go wrong in a connector. Sources and sinks return it from `open`, `poll`,
/// `process_batch` and `finish`, converted into a [`weir_operators::function::UserError`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A non-parallel connector was opened with more than one subtask.
    #[error("{connector} is not a parallel connector but runs with parallelism {parallelism}")]
    NotParallel {
        /// The connector's type name.
        connector: &'static str,
        /// The parallelism it was given.
        parallelism: usize,
    },
    /// A socket connection could not be established.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// `host:port` as configured.
        address: String,
        /// Why the connection failed.
        source: io::Error,
    },
    /// Reading from an established socket connection failed.
    #[error("cannot read from {address}: {source}")]
    SocketRead {
        /// `host:port` as configured.
        address: String,
        /// Why the read failed.
        source: io::Error,
    },
    /// A directory could not be listed.
    #[error("cannot list directory {}: {source}", path.display())]
    ListDirectory {
        /// The directory.
        path: PathBuf,
        /// Why listing failed.
        source: io::Error,
    },
    /// A file could not be opened for reading.
    #[error("cannot open {}: {source}", path.display())]
    OpenFile {
        /// The file.
        path: PathBuf,
        /// Why opening failed.
        source: io::Error,
    },
    /// Reading an open file failed.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why the read failed.
        source: io::Error,
    },
    /// A text file holds bytes that are not UTF-8.
    #[error("invalid UTF-8 in {} at byte offset {offset}", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Offset of the first invalid byte from the start of the file.
        offset: u64,
    },
    /// An output file or directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The file or directory.
        path: PathBuf,
        /// Why creation failed.
        source: io::Error,
    },
    /// Writing or flushing an output file failed.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why the write failed.
        source: io::Error,
    },
    /// Flushing an output file or directory to disk (fsync) failed.
    #[error("cannot sync {} to disk: {source}", path.display())]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// Why the sync failed.
        source: io::Error,
    },
    /// Renaming a file failed.
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        /// The file's current name.
        from: PathBuf,
        /// The name it should get.
        to: PathBuf,
        /// Why the rename failed.
        source: io::Error,
    },
    /// Deleting a file failed.
    #[error("cannot delete {}: {source}", path.display())]
    Delete {
        /// The file.
        path: PathBuf,
        /// Why the deletion failed.
        source: io::Error,
    },
    /// Writing to stdout or stderr failed (for example a broken pipe).
    #[error("cannot write to {stream}: {source}")]
    Print {
        /// `"stdout"` or `"stderr"`.
        stream: &'static str,
        /// Why the write failed.
        source: io::Error,
    },
    /// A Kafka client call failed.
    #[cfg(feature = "kafka")]
    #[error("Kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
    /// A record sent to Kafka was not delivered.
    #[error("Kafka: {0}")]
    KafkaDelivery(String),
    /// A Kafka connector is configured in a way that cannot work.
    #[error("Kafka connector configuration: {0}")]
    KafkaConfig(String),
    /// A file sink's location or settings cannot work.
    #[error("file sink: {0}")]
    FileSinkConfig(String),
    /// A file sink's S3 location cannot be opened (bad URL, no endpoint or credentials).
    #[error("file sink location: {0}")]
    Location(weir_checkpoint::Error),
    /// An object store request failed.
    #[error("{url}: {source}")]
    ObjectStore {
        /// The object.
        url: String,
        /// What the store said.
        source: object_store::Error,
    },
    /// The runtime that runs a connector's requests could not be started.
    #[error("cannot start an I/O runtime: {source}")]
    Runtime {
        /// Why.
        source: io::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("cannot encode a record as JSON: {source}")]
    Encode {
        /// What the encoder said.
        source: serde_json::Error,
    },
    /// A bucket assigner named a bucket that cannot be a directory of part files.
    #[error("invalid bucket '{bucket}': {reason}")]
    InvalidBucket {
        /// The bucket as named.
        bucket: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The write-ahead copy of a Kafka transaction could not be encoded or decoded.
    #[cfg(feature = "kafka")]
    #[error("cannot {action} a write-ahead record of a Kafka transaction: {source}")]
    WriteAhead {
        /// "encode" or "decode".
        action: &'static str,
        /// What postcard said.
        source: postcard::Error,
    },
    /// A Nexmark source is configured in a way that cannot generate events.
    #[error("invalid Nexmark configuration: {0}")]
    NexmarkConfig(String),
    /// A Kafka record could not be deserialized (policy: fail).
    #[error("cannot deserialize the record of {topic}[{partition}] at offset {offset}: {reason}")]
    Deserialize {
        /// The record's topic.
        topic: String,
        /// The record's partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What the deserializer said.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failed Kafka client call, with what was being done.
    #[cfg(feature = "kafka")]
    pub(crate) fn kafka(context: String, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka { context, source }
    }

    /// Fails unless a non-parallel `connector` runs with parallelism 1.
    pub(crate) fn check_not_parallel(connector: &'static str, parallelism: usize) -> Result<()> {
        if parallelism > 1 { Err(Error::NotParallel { connector, parallelism }) } else { Ok(()) }
    }
}
