//! Checkpoint storage: where snapshots of a job's state live and how they are laid out, over
//! any `object_store` URL (`file://` for embedded runs, `s3://` in clusters).
//!
//! Layout: `{root}/{job}/chk-{n}/…` with `{root}/{job}/chk-{n}/_metadata` written last, so a
//! directory without `_metadata` is an incomplete checkpoint, invisible to restore and
//! garbage-collected; files shared by several checkpoints sit in `{root}/{job}/shared/`.
//! Savepoints are self-contained directories with the same `_metadata`.

mod error;
mod metadata;
mod storage;

pub use error::{Error, Result};
pub use metadata::{
    Block, BlockPiece, CheckpointMetadata, FORMAT_VERSION, KeyGroupBlock, NativeFileRef,
    NativeState, OperatorListBlock, OperatorState, Redistribution, SnapshotKind, SubtaskState,
};
/// A file's bytes in one or more pieces, as the storage writes them.
pub use object_store::PutPayload;
pub use storage::{
    CheckpointStorage, RetainReport, SnapshotDir, StorageOptions, resolve_restore, s3_client,
    savepoint_dir,
};
