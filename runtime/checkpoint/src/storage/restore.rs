//! The "restore from" rule: a URL names a snapshot directly, or a prefix under which the
//! latest complete checkpoint is found.

use super::location::{Location, checked_segment};
use super::snapshot::split_metadata;
use super::{CheckpointStorage, SnapshotDir, StorageOptions};
use crate::{Error, Result};

/// The snapshot to restore `job_name` from, given `url`:
/// 1. `url` itself when it holds `_metadata` (or names a `_metadata` file, which must exist);
/// 2. else the latest complete checkpoint under `{url}/{job_name}/`;
/// 3. else the latest complete checkpoint directly under `{url}/`;
/// 4. else `None`: nothing to restore.
pub async fn resolve_restore(
    url: &str,
    job_name: &str,
    options: &StorageOptions,
) -> Result<Option<SnapshotDir>> {
    let job_name = checked_segment("job name", job_name)?;
    let (dir_url, names_metadata) = split_metadata(url);
    let root = Location::parse(dir_url, options)?;
    let dir = SnapshotDir::new(root.clone());
    if dir.is_complete().await? {
        return Ok(Some(dir));
    }
    if names_metadata {
        return Err(Error::NotComplete { url: dir.url().to_owned() });
    }
    for checkpoints in [CheckpointStorage::at(root.child(job_name)), CheckpointStorage::at(root)] {
        if let Some(dir) = checkpoints.latest_complete_dir().await? {
            tracing::info!(url, restore_from = dir.url(), "resolved restore");
            return Ok(Some(dir));
        }
    }
    Ok(None)
}
