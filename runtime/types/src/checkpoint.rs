//! Checkpoint barriers: the markers that cut a stream into before and after a snapshot.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Identifies a checkpoint or savepoint; increases over a job's life, across restores.
pub type CheckpointId = u64;

/// What a barrier asks the tasks it passes to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotType {
    /// A periodic checkpoint, for recovery.
    Checkpoint,
    /// A savepoint the user asked for, always aligned, in the given format.
    Savepoint(SavepointFormat),
}

impl SnapshotType {
    /// Whether this is a savepoint (of either format).
    pub fn is_savepoint(self) -> bool {
        matches!(self, SnapshotType::Savepoint(_))
    }
}

/// How a savepoint lays out keyed state (Flink's `SavepointFormatType`). Either is
/// self-contained: it references no file of the job's checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SavepointFormat {
    /// The backend-independent format: every entry read out and written again. A job may
    /// restore it with another state backend.
    #[default]
    #[serde(alias = "CANONICAL")]
    Canonical,
    /// The state backend's own files (RocksDB: its SST files, as a checkpoint links them),
    /// copied into the savepoint. Much faster to take and restore with large RocksDB state;
    /// restored only by the same backend. A heap backend writes the canonical format.
    #[serde(alias = "NATIVE")]
    Native,
}

impl std::str::FromStr for SavepointFormat {
    type Err = String;

    /// `canonical` or `native`, in any case (Flink writes `CANONICAL` and `NATIVE`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "canonical" => Ok(SavepointFormat::Canonical),
            "native" => Ok(SavepointFormat::Native),
            _ => Err(format!("unknown savepoint format {text:?}: expected canonical or native")),
        }
    }
}

/// Injected at the sources and carried in-band: every task snapshots its state when the
/// barrier has arrived on its inputs, then passes it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBarrier {
    /// The checkpoint this barrier belongs to.
    pub id: CheckpointId,
    /// When the coordinator triggered it (milliseconds since the epoch).
    pub timestamp: Timestamp,
    /// Checkpoint or savepoint.
    pub kind: SnapshotType,
}

impl CheckpointBarrier {
    /// The barrier of periodic checkpoint `id`, triggered at `timestamp`.
    pub fn checkpoint(id: CheckpointId, timestamp: Timestamp) -> Self {
        CheckpointBarrier { id, timestamp, kind: SnapshotType::Checkpoint }
    }
}
