//! The checkpoints of one job, `{root}/{job}/chk-{n}/` beside `{root}/{job}/shared/`: which
//! are complete, which is the latest, and retention with garbage collection of shared files;
//! and where savepoints go.

use std::collections::HashSet;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;

use super::location::{Location, checked_segment};
use super::{SHARED_DIR, SnapshotDir, StorageOptions};
use crate::{CheckpointMetadata, Result};

/// How many `_metadata` lookups run at once when listing checkpoints.
const CONCURRENT_LOOKUPS: usize = 16;

/// The checkpoints of one job.
#[derive(Clone, Debug)]
pub struct CheckpointStorage {
    job: Location,
    shared: Location,
}

/// What [`CheckpointStorage::retain`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetainReport {
    /// Complete checkpoints older than the retained ones.
    pub checkpoints: usize,
    /// Incomplete checkpoints older than the latest complete one.
    pub incomplete: usize,
    /// Files of `shared/` no retained checkpoint references.
    pub shared_files: usize,
}

impl CheckpointStorage {
    /// The checkpoints of `job_name` under `root_url` (`file://`, a path, or `s3://`).
    pub fn new(root_url: &str, job_name: &str, options: &StorageOptions) -> Result<Self> {
        let job_name = checked_segment("job name", job_name)?;
        Ok(Self::at(Location::parse(root_url, options)?.child(job_name)))
    }

    /// The checkpoints directly in `job`.
    pub(crate) fn at(job: Location) -> Self {
        Self { shared: job.child(SHARED_DIR), job }
    }

    /// The job's folder.
    pub fn url(&self) -> &str {
        self.job.url()
    }

    /// The directory of checkpoint `id`, `{root}/{job}/chk-{id}`.
    pub fn checkpoint_dir(&self, id: u64) -> SnapshotDir {
        SnapshotDir::new(self.job.child(&format!("chk-{id}")))
    }

    /// Writes `name` (a relative path) into `shared/`; returns its size.
    pub async fn put_shared(&self, name: &str, bytes: PutPayload) -> Result<u64> {
        self.shared.put(name, bytes).await
    }

    /// Writes `name` into `shared/` from the local file `source`, which is never changed in
    /// place: a hard link on the local filesystem, else streaming large files; returns its
    /// size.
    pub async fn put_shared_local(&self, name: &str, source: &std::path::Path) -> Result<u64> {
        self.shared.put_local(name, source).await
    }

    /// The content of `name` in `shared/`.
    pub async fn read_shared(&self, name: &str) -> Result<Bytes> {
        self.shared.read(name).await
    }

    /// Ids of the complete checkpoints, ascending.
    pub async fn complete_checkpoints(&self) -> Result<Vec<u64>> {
        let ids = self.checkpoint_ids().await?;
        self.complete_among(&ids).await
    }

    /// The latest complete checkpoint and its metadata, if any.
    pub async fn latest_complete(&self) -> Result<Option<(SnapshotDir, CheckpointMetadata)>> {
        match self.latest_complete_dir().await? {
            Some(dir) => {
                let metadata = dir.read_metadata().await?;
                Ok(Some((dir, metadata)))
            }
            None => Ok(None),
        }
    }

    pub(crate) async fn latest_complete_dir(&self) -> Result<Option<SnapshotDir>> {
        let latest = self.complete_checkpoints().await?.pop();
        Ok(latest.map(|id| self.checkpoint_dir(id)))
    }

    /// Keeps the newest `keep` complete checkpoints and deletes the rest: older complete
    /// checkpoints, incomplete ones older than the latest complete one (they can never
    /// complete), and the files of `shared/` that a deleted checkpoint referenced and neither
    /// a retained checkpoint references nor `protected_shared` names (files of checkpoints
    /// still in progress). With `keep` 0 every checkpoint goes.
    ///
    /// Shared files no complete checkpoint ever referenced are left alone: workers write
    /// shared files before the checkpoint that references them completes, so such a file may
    /// belong to a checkpoint in progress. A file a deleted checkpoint referenced but the
    /// latest does not is gone from every backend (SST files never come back), so no
    /// checkpoint will reference it again.
    ///
    /// Every checkpoint's metadata is read before anything is deleted, and shared files go
    /// after the checkpoints that referenced them.
    pub async fn retain(
        &self,
        keep: usize,
        protected_shared: &HashSet<String>,
    ) -> Result<RetainReport> {
        let ids = self.checkpoint_ids().await?;
        let complete = self.complete_among(&ids).await?;
        let (expired, retained) = complete.split_at(complete.len().saturating_sub(keep));
        let abandoned: Vec<u64> = match complete.last() {
            Some(latest) => {
                ids.into_iter().filter(|id| id < latest && !complete.contains(id)).collect()
            }
            None => Vec::new(),
        };
        let referenced = self.shared_files_of(retained).await?;
        let expired_files = self.shared_files_of(expired).await?;
        for &id in expired.iter().chain(&abandoned) {
            self.checkpoint_dir(id).delete().await?;
        }
        let mut unused: Vec<String> = (expired_files.into_iter())
            .filter(|file| !referenced.contains(file) && !protected_shared.contains(file))
            .collect();
        unused.sort_unstable();
        let report = RetainReport {
            checkpoints: expired.len(),
            incomplete: abandoned.len(),
            shared_files: self.shared.delete_files(&unused).await?,
        };
        tracing::info!(url = self.url(), ?retained, ?report, "retained checkpoints");
        Ok(report)
    }

    /// The shared files the complete checkpoints `ids` reference.
    async fn shared_files_of(&self, ids: &[u64]) -> Result<HashSet<String>> {
        let mut files = HashSet::new();
        for &id in ids {
            let metadata = self.checkpoint_dir(id).read_metadata().await?;
            let subtasks = metadata.operators.into_iter().flat_map(|operator| operator.subtasks);
            files.extend(subtasks.flat_map(|subtask| subtask.shared_files));
        }
        Ok(files)
    }

    /// Ids of every `chk-{n}` folder, complete or not, ascending.
    async fn checkpoint_ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = (self.job.sub_folders().await?.iter())
            .filter_map(|name| name.strip_prefix("chk-")?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Those of `ids` whose `_metadata` exists, in the same order.
    async fn complete_among(&self, ids: &[u64]) -> Result<Vec<u64>> {
        let complete: Vec<Option<u64>> = futures::stream::iter(ids.iter().copied())
            .map(|id| async move {
                let complete = self.checkpoint_dir(id).is_complete().await?;
                Ok::<_, crate::Error>(complete.then_some(id))
            })
            .buffered(CONCURRENT_LOOKUPS)
            .try_collect()
            .await?;
        Ok(complete.into_iter().flatten().collect())
    }
}

/// A new savepoint directory `{root}/savepoint-{job}-{id}-{6 random hex digits}`, apart from
/// the job's checkpoints so that retention never touches it.
pub fn savepoint_dir(
    root_url: &str,
    job_name: &str,
    id: u64,
    options: &StorageOptions,
) -> Result<SnapshotDir> {
    let job_name = checked_segment("job name", job_name)?;
    let root = Location::parse(root_url, options)?;
    let suffix = fastrand::u32(..1 << 24);
    Ok(SnapshotDir::new(root.child(&format!("savepoint-{job_name}-{id}-{suffix:06x}"))))
}
