//! The job's checkpoint and savepoint storage and the runtime its I/O runs on, with the
//! "where to restore from" rules a job applies at start and after a failure.

use tokio::runtime::Runtime;
use weir_checkpoint::{
    CheckpointStorage, SnapshotDir, StorageOptions, resolve_restore, savepoint_dir,
};
use weir_types::CheckpointId;

use super::CheckpointConfig;
use super::restore::{OperatorToRestore, RestoredState, load};
use crate::{Error, Result};

/// Checkpoint storage of one job (when it takes periodic checkpoints), savepoint
/// locations, and a small runtime for their asynchronous I/O.
pub struct JobStorage {
    runtime: Runtime,
    storage: Option<CheckpointStorage>,
    options: StorageOptions,
    job_name: String,
    savepoint_dir: Option<String>,
}

/// The name of the threads that encode and write checkpoints' state (a benchmark tells their
/// CPU time from the tasks' by it).
pub const STORAGE_THREADS: &str = "weir-storage";

impl JobStorage {
    /// Storage for `job_name`: checkpoints under `config.dir` when periodic checkpoints or a
    /// restore of the latest one are asked for; S3 settings from the environment.
    pub fn new(config: &CheckpointConfig, job_name: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(STORAGE_THREADS)
            .enable_all()
            .build()
            .map_err(|source| Error::Spawn { task: "checkpoint storage".into(), source })?;
        let options = StorageOptions::from_env();
        let uses_dir = config.interval().is_some() || config.restore.as_deref() == Some("latest");
        let storage = match uses_dir {
            true => Some(CheckpointStorage::new(&config.dir, job_name, &options)?),
            false => None,
        };
        Ok(JobStorage {
            runtime,
            storage,
            options,
            job_name: job_name.to_string(),
            savepoint_dir: config.savepoint_dir.clone(),
        })
    }

    /// The job's checkpoints, when it takes them.
    pub fn checkpoints(&self) -> Option<&CheckpointStorage> {
        self.storage.as_ref()
    }

    /// A new directory for savepoint `id` under `root`, or else the configured savepoint dir.
    pub fn savepoint_dir(&self, root: Option<&str>, id: CheckpointId) -> Result<SnapshotDir> {
        let root = root.or(self.savepoint_dir.as_deref()).ok_or_else(|| {
            Error::InvalidConfig(
                "a savepoint needs a directory: pass one or set checkpointing.savepoint_dir"
                    .to_string(),
            )
        })?;
        Ok(savepoint_dir(root, &self.job_name, id, &self.options)?)
    }

    /// The snapshot directory at `url`, as the coordinator named it.
    pub fn snapshot_dir(&self, url: &str) -> Result<SnapshotDir> {
        Ok(SnapshotDir::open(url, &self.options)?)
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
        let Some(storage) = &self.storage else { return Ok(None) };
        let latest = self.runtime.block_on(storage.latest_complete())?;
        Ok(latest.map(|(dir, _)| dir))
    }

    /// The id of the checkpoint or savepoint in `dir`.
    pub fn snapshot_id(&self, dir: &SnapshotDir) -> Result<CheckpointId> {
        let metadata = self.runtime.block_on(dir.read_metadata())?;
        Ok(metadata.checkpoint_id)
    }

    /// Whether `dir` is one of this job's checkpoints, beside the `shared/` folder its
    /// checkpoints write to.
    fn is_own_checkpoint(&self, dir: &SnapshotDir) -> bool {
        let Some(storage) = &self.storage else { return false };
        dir.url().strip_prefix(storage.url()).is_some_and(|rest| rest.starts_with("/chk-"))
    }

    /// Reads the snapshot in `dir` for `operators`; shared files of this job's checkpoints
    /// that it references are marked as already stored.
    pub fn load(
        &self,
        dir: &SnapshotDir,
        operators: &[OperatorToRestore],
        max_parallelism: usize,
        allow_non_restored_state: bool,
    ) -> Result<RestoredState> {
        self.runtime.block_on(async {
            let metadata = dir.read_metadata().await?;
            let mut restored =
                load(dir, &metadata, operators, max_parallelism, allow_non_restored_state).await?;
            if self.is_own_checkpoint(dir) {
                let subtasks = metadata.operators.iter().flat_map(|operator| &operator.subtasks);
                let shared = subtasks.flat_map(|subtask| subtask.shared_files.iter().cloned());
                restored.confirmed_shared = shared.collect();
            }
            Ok(restored)
        })
    }
}
