//! Checkpoint and savepoint directories over `object_store`: opening URLs, writing and reading
//! state files and `_metadata`, listing, retention and the restore rule.

mod checkpoints;
mod location;
mod options;
mod restore;
mod snapshot;
#[cfg(test)]
mod tests;

/// Folder, beside a job's `chk-{n}` folders, of files shared by several of its checkpoints.
const SHARED_DIR: &str = "shared";

pub use checkpoints::{CheckpointStorage, RetainReport, savepoint_dir};
pub use location::s3_client;
pub use options::StorageOptions;
pub use restore::resolve_restore;
pub use snapshot::SnapshotDir;
