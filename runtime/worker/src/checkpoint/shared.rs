//! The shared files of incremental checkpoints while a job runs: which ones checkpoints in
//! progress reference, and a lock that keeps the garbage collection of old checkpoints apart
//! from writes of `_metadata` and copies out of the latest checkpoint, so that it never
//! deletes a file that a checkpoint about to complete references.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedRwLockReadGuard, RwLock};
use weir_checkpoint::{CheckpointStorage, RetainReport};

use crate::Result;

/// Shared files in use by checkpoints in progress; clones share the bookkeeping.
#[derive(Clone, Debug, Default)]
pub struct SharedFiles {
    /// How many checkpoints in progress reference each shared file.
    in_use: Arc<Mutex<HashMap<String, usize>>>,
    /// Held shared by writers, exclusively by the garbage collection.
    lock: Arc<RwLock<()>>,
}

impl SharedFiles {
    /// A checkpoint in progress references `id` (whether it writes it or reuses it).
    pub fn acquire(&self, id: &str) {
        *self.counts().entry(id.to_string()).or_default() += 1;
    }

    /// A checkpoint that referenced `ids` completed or was given up.
    pub fn release<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        let mut counts = self.counts();
        for id in ids {
            if let Some(count) = counts.get_mut(id) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(id);
                }
            }
        }
    }

    /// Hold while writing a checkpoint's `_metadata` or copying files out of the latest
    /// complete checkpoint: no garbage collection runs meanwhile.
    pub async fn writing(&self) -> OwnedRwLockReadGuard<()> {
        Arc::clone(&self.lock).read_owned().await
    }

    /// Keeps the newest `keep` complete checkpoints of `storage` and deletes the rest, with the
    /// shared files that neither a retained checkpoint nor one in progress references. Runs
    /// alone: no shared file or `_metadata` is being written meanwhile.
    pub async fn retain(&self, storage: &CheckpointStorage, keep: usize) -> Result<RetainReport> {
        let _alone = self.lock.write().await;
        let in_use: HashSet<String> = self.counts().keys().cloned().collect();
        Ok(storage.retain(keep, &in_use).await?)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.in_use.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_stay_in_use_until_every_checkpoint_released_them() {
        let shared = SharedFiles::default();
        let (a, b) = ("a.sst".to_string(), "b.sst".to_string());
        shared.acquire(&a);
        shared.acquire(&a);
        shared.acquire(&b);
        shared.release([&a, &b]);
        assert_eq!(shared.counts().keys().collect::<Vec<_>>(), [&a]);
        shared.release([&a]);
        assert!(shared.counts().is_empty());
    }

    #[tokio::test]
    async fn retention_waits_for_writers_and_keeps_files_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let options = weir_checkpoint::StorageOptions::default();
        let storage = CheckpointStorage::new(&root, "job", &options).unwrap();
        storage.put_shared("in-use.sst", "x".into()).await.unwrap();
        storage.put_shared("garbage.sst", "x".into()).await.unwrap();
        // Checkpoint 1 referenced both; checkpoint 2, the one retained, neither.
        for (id, files) in [(1, vec!["in-use.sst", "garbage.sst"]), (2, vec![])] {
            let subtask = weir_checkpoint::SubtaskState {
                subtask: 0,
                file: "state".into(),
                key_group_range: weir_types::KeyGroupRange::for_subtask(128, 1, 0),
                key_groups: Vec::new(),
                operator_lists: Vec::new(),
                in_flight: None,
                shared_files: files.into_iter().map(String::from).collect(),
                native: None,
            };
            let metadata = weir_checkpoint::CheckpointMetadata {
                format_version: weir_checkpoint::FORMAT_VERSION,
                job_name: "job".into(),
                checkpoint_id: id,
                kind: weir_checkpoint::SnapshotKind::Checkpoint,
                timestamp_ms: 0,
                max_parallelism: 128,
                operators: vec![weir_checkpoint::OperatorState {
                    uid: "op".into(),
                    name: "op".into(),
                    parallelism: 1,
                    subtasks: vec![subtask],
                }],
            };
            storage.checkpoint_dir(id).write_metadata(&metadata).await.unwrap();
        }
        let shared = SharedFiles::default();
        shared.acquire("in-use.sst");

        let writing = shared.writing().await;
        let retention = tokio::spawn({
            let (shared, storage) = (shared.clone(), storage.clone());
            async move { shared.retain(&storage, 1).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!retention.is_finished(), "retention waits while a writer holds the lock");
        drop(writing);
        assert_eq!(retention.await.unwrap().shared_files, 1);
        assert!(storage.read_shared("in-use.sst").await.is_ok());
        assert!(storage.read_shared("garbage.sst").await.is_err());
    }
}
