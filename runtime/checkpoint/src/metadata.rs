//! The `_metadata` file: what a complete checkpoint or savepoint holds and where each
//! subtask's state lives. Written last; a directory without it is not a checkpoint.

use serde::{Deserialize, Serialize};
use weir_types::{KeyGroup, KeyGroupRange};

/// Version of the metadata format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Whether a snapshot was taken for recovery or by the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotKind {
    /// Periodic, owned by the job: retained by count, may reference shared files.
    Checkpoint,
    /// Triggered by the user: self-contained, in the backend-independent format, never
    /// deleted by the job.
    Savepoint,
}

/// The content of `_metadata`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The job's name.
    pub job_name: String,
    /// Checkpoint id, increasing over the job's life (across restores).
    pub checkpoint_id: u64,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// When it was triggered, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The job's max parallelism (number of key groups); a restore must use the same.
    pub max_parallelism: usize,
    /// Every stateful operator, by uid.
    pub operators: Vec<OperatorState>,
}

/// The state of one operator, over its subtasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    /// The operator's stable id (`.uid(...)` or derived from the graph).
    pub uid: String,
    /// Its name, for messages.
    pub name: String,
    /// Parallelism when the snapshot was taken.
    pub parallelism: usize,
    /// One entry per subtask that had state.
    pub subtasks: Vec<SubtaskState>,
}

/// The state one subtask wrote: blocks in one file under the snapshot's directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubtaskState {
    /// Index of the subtask.
    pub subtask: usize,
    /// The file holding its blocks, relative to the snapshot's directory.
    pub file: String,
    /// Key groups the subtask owned.
    pub key_group_range: KeyGroupRange,
    /// Keyed state: one block per key group with entries.
    pub key_groups: Vec<KeyGroupBlock>,
    /// Operator list states.
    pub operator_lists: Vec<OperatorListBlock>,
    /// Records in flight on its inputs (unaligned checkpoints), replayed first on restore.
    pub in_flight: Option<Block>,
    /// Files under the job's `shared/` folder this subtask's state references (incremental
    /// checkpoints: RocksDB's SST files, the heap's pieces), relative to that folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_files: Vec<String>,
    /// The keyed state as the backend's own incremental checkpoint (then `key_groups` holds
    /// only timers and states the backend did not hold). Checkpoints only, never savepoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeState>,
}

/// A subtask's keyed state as its backend's own checkpoint (RocksDB's), file by file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NativeState {
    /// The folder, relative to the snapshot's directory, of the files of this checkpoint only.
    pub dir: String,
    /// Every file of the backend's checkpoint.
    pub files: Vec<NativeFileRef>,
}

/// One file of a backend's checkpoint and where it is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeFileRef {
    /// Its name in the backend's checkpoint directory.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its name in the job's `shared/` folder when it is shared with other checkpoints (an
    /// immutable SST file); `None` when it is in [`NativeState::dir`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<String>,
}

/// A byte range of a state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Offset from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The keyed state of one key group: all of the operator's named states for that group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyGroupBlock {
    /// The key group.
    pub group: KeyGroup,
    /// Where its bytes are in the subtask's file; when `pieces` is set, only their length
    /// (offset 0).
    pub block: Block,
    /// Set by incremental heap checkpoints: where the subtask's file lists the block's
    /// pieces (a postcard `Vec<BlockPiece>`), byte ranges of its shared files (those written
    /// by this checkpoint and by earlier ones) which, joined in order, are the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pieces: Option<Block>,
}

/// A byte range of one of a subtask's shared files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockPiece {
    /// The file, as an index into [`SubtaskState::shared_files`].
    pub file: u32,
    /// Offset from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// How an operator list state is spread over subtasks on restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Redistribution {
    /// The elements of all subtasks are dealt out round-robin (Flink's list state).
    Split,
    /// Every subtask gets all elements of all subtasks (Flink's union list state).
    Union,
}

/// One operator list state of one subtask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorListBlock {
    /// The state's name.
    pub name: String,
    /// How it is redistributed.
    pub redistribution: Redistribution,
    /// Where its serialized elements are.
    pub block: Block,
}

impl Block {
    /// Its bytes' range in the file.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset + self.len
    }
}

impl CheckpointMetadata {
    /// The operator with `uid`.
    pub fn operator(&self, uid: &str) -> Option<&OperatorState> {
        self.operators.iter().find(|operator| operator.uid == uid)
    }

    /// Total bytes of state the snapshot references.
    pub fn state_size(&self) -> u64 {
        self.operators.iter().flat_map(|operator| &operator.subtasks).map(SubtaskState::size).sum()
    }
}

impl SubtaskState {
    /// Bytes of this subtask's state: its blocks and the files of its native checkpoint,
    /// whether written by this checkpoint or shared with earlier ones.
    pub fn size(&self) -> u64 {
        let keyed: u64 = self.key_groups.iter().map(|g| g.block.len).sum();
        let lists: u64 = self.operator_lists.iter().map(|l| l.block.len).sum();
        let native: u64 = self.native.iter().flat_map(|n| &n.files).map(|f| f.size).sum();
        keyed + lists + self.in_flight.map_or(0, |b| b.len) + native
    }
}
