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
    /// The key could not be hashed into a key group.
    #[error(transparent)]
    Key(#[from] weir_types::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
