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
    /// A savepoint the user asked for: always aligned, in the backend-independent format.
    Savepoint,
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
