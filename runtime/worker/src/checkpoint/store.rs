//! The job's checkpoint storage and the runtime its I/O runs on, with the "where to restore
//! from" rules a job applies at start and after a failure.

use tokio::runtime::Runtime;
use weir_checkpoint::{CheckpointStorage, SnapshotDir, StorageOptions, resolve_restore};

use super::CheckpointConfig;
use super::restore::{OperatorToRestore, RestoredState, load};
use crate::{Error, Result};

/// Checkpoint storage of one job, with a small runtime for its asynchronous I/O.
pub struct JobStorage {
    runtime: Runtime,
    storage: CheckpointStorage,
    options: StorageOptions,
    job_name: String,
}

impl JobStorage {
    /// Storage for `job_name` under `config.dir`, with S3 settings from the environment.
    pub fn new(config: &CheckpointConfig, job_name: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-storage")
            .enable_all()
            .build()
            .map_err(|source| Error::Spawn { task: "checkpoint storage".into(), source })?;
        let options = StorageOptions::from_env();
        let storage = CheckpointStorage::new(&config.dir, job_name, &options)?;
        Ok(JobStorage { runtime, storage, options, job_name: job_name.to_string() })
    }

    /// The job's checkpoints.
    pub fn checkpoints(&self) -> &CheckpointStorage {
        &self.storage
    }

    /// A handle to the I/O runtime.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Where a job starts from: `latest` is the latest complete checkpoint of this job (none:
    /// a fresh start), anything else a savepoint or checkpoint path, or a prefix to take the
    /// latest complete checkpoint under (which must exist).
    pub fn initial_restore(&self, restore: &str) -> Result<Option<SnapshotDir>> {
        if restore == "latest" {
            return self.latest();
        }
        let found =
            self.runtime.block_on(resolve_restore(restore, &self.job_name, &self.options))?;
        match found {
            Some(dir) => Ok(Some(dir)),
            None => Err(Error::Restore {
                url: restore.to_string(),
                reason: "there is no savepoint or complete checkpoint there".to_string(),
            }),
        }
    }

    /// The latest complete checkpoint of this job.
    pub fn latest(&self) -> Result<Option<SnapshotDir>> {
        let latest = self.runtime.block_on(self.storage.latest_complete())?;
        Ok(latest.map(|(dir, _)| dir))
    }

    /// Reads the snapshot in `dir` for `operators`.
    pub fn load(
        &self,
        dir: &SnapshotDir,
        operators: &[OperatorToRestore],
        max_parallelism: usize,
        allow_non_restored_state: bool,
    ) -> Result<RestoredState> {
        self.runtime.block_on(async {
            let metadata = dir.read_metadata().await?;
            load(dir, &metadata, operators, max_parallelism, allow_non_restored_state).await
        })
    }
}
