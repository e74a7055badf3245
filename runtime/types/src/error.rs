//! The error type of this crate.

/// What can go wrong in the shared vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key could not be serialized for hashing.
    #[error("cannot serialize key {key} for hashing: {source}")]
    KeySerialization {
        /// The key, as `Debug` prints it.
        key: String,
        /// Why serialization failed.
        source: postcard::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
