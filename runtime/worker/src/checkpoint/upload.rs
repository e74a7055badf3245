//! Writing tasks' state straight to checkpoint storage from the process that runs them (the
//! embedded process or a worker), as Flink's TaskManagers do: off the task threads and the
//! driver's or session's loop, each snapshot becomes its state files and the files of its
//! native checkpoints (shared ones into the job's `shared/` folder unless storage holds them
//! already), and then an [`Acknowledgement`] with handles only.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use futures::future::{BoxFuture, try_join_all};
use tracing::debug;
use weir_checkpoint::{CheckpointStorage, SnapshotDir};
use weir_types::{CheckpointId, SnapshotType};

use super::files::{StateFile, encode};
use super::{Acknowledgement, StoredState, TaskId, TaskState};
use crate::{Error, Result};

/// How writing a task's state ended.
#[derive(Debug)]
pub enum Uploaded {
    /// Every file is in storage: acknowledge.
    Stored(Acknowledgement),
    /// A file could not be written: decline the checkpoint.
    Failed {
        /// Which task.
        task: TaskId,
        /// Which checkpoint.
        checkpoint: CheckpointId,
        /// Why.
        reason: String,
    },
}

/// Writes the state of this process's tasks and remembers which shared files storage holds.
pub struct StateUploader {
    runtime: tokio::runtime::Handle,
    /// The job's checkpoints, whose `shared/` folder takes the shared files.
    storage: Option<CheckpointStorage>,
    /// The shared files of this process's tasks that the latest complete checkpoint
    /// references: stored, and kept while a later checkpoint references them.
    confirmed: Arc<HashSet<String>>,
    /// The shared files of this process's tasks each checkpoint in progress references.
    referenced: BTreeMap<CheckpointId, HashSet<String>>,
    uploaded: (Sender<Uploaded>, Receiver<Uploaded>),
}

impl StateUploader {
    /// An uploader writing on `runtime`, shared files into `storage`'s `shared/` folder;
    /// `confirmed` are those the checkpoint the job restored from references.
    pub fn new(
        runtime: tokio::runtime::Handle,
        storage: Option<CheckpointStorage>,
        confirmed: HashSet<String>,
    ) -> Self {
        StateUploader {
            runtime,
            storage,
            confirmed: Arc::new(confirmed),
            referenced: BTreeMap::new(),
            uploaded: crossbeam_channel::unbounded(),
        }
    }

    /// Where finished uploads report.
    pub fn uploaded(&self) -> &Receiver<Uploaded> {
        &self.uploaded.1
    }

    /// Writes what a task snapshotted into `dir`, the checkpoint's directory; the outcome
    /// arrives on [`Self::uploaded`].
    pub fn upload(&mut self, dir: SnapshotDir, state: TaskState) {
        let (task, barrier) = (state.task, state.snapshot.barrier);
        if barrier.kind == SnapshotType::Checkpoint {
            let native = state.snapshot.operators.iter().filter_map(|op| op.state.native.as_ref());
            let shared = native.flat_map(|native| native.shared_files().map(|(_, id)| id));
            let referenced = self.referenced.entry(barrier.id).or_default();
            referenced.extend(shared.map(str::to_string));
        }
        let (storage, confirmed) = (self.storage.clone(), Arc::clone(&self.confirmed));
        let uploaded = self.uploaded.0.clone();
        self.runtime.spawn(async move {
            let outcome = match write(dir, storage, &confirmed, state).await {
                Ok(acknowledgement) => Uploaded::Stored(acknowledgement),
                Err(error) => {
                    Uploaded::Failed { task, checkpoint: barrier.id, reason: error.to_string() }
                }
            };
            let _ = uploaded.send(outcome);
        });
    }

    /// `checkpoint` completed: the shared files it references are the ones stored now.
    pub fn on_complete(&mut self, checkpoint: CheckpointId) {
        let Some(referenced) = self.referenced.remove(&checkpoint) else {
            return; // a savepoint, or no task of this process took part
        };
        self.confirmed = Arc::new(referenced);
        self.referenced.retain(|&id, _| id > checkpoint); // subsumed
    }

    /// `checkpoint` was aborted.
    pub fn on_abort(&mut self, checkpoint: CheckpointId) {
        self.referenced.remove(&checkpoint);
    }
}

/// Encodes `state` (off the runtime's threads), writes its files into `dir` and the shared
/// files not in `confirmed` into `storage`'s `shared/` folder, all at once.
async fn write(
    dir: SnapshotDir,
    storage: Option<CheckpointStorage>,
    confirmed: &HashSet<String>,
    state: TaskState,
) -> Result<Acknowledgement> {
    let TaskState { task, snapshot, alignment, finished, in_flight } = state;
    let checkpoint = snapshot.barrier.id;
    let unaligned = in_flight.is_some();
    let encoded = tokio::task::spawn_blocking(move || {
        let mut files: Vec<StateFile> =
            snapshot.operators.iter().map(encode).collect::<std::result::Result<_, _>>()?;
        if let Some(in_flight) = in_flight {
            in_flight.attach_to(&mut files);
        }
        Ok::<_, weir_state::Error>(files)
    })
    .await;
    let encode_failed = |reason: String| Error::EncodeState { task, checkpoint, reason };
    let files = encoded
        .map_err(|error| encode_failed(error.to_string()))?
        .map_err(|error| encode_failed(error.to_string()))?;
    let (dir, mut writes) = (&dir, Vec::<BoxFuture<'_, Result<u64>>>::new());
    for file in &files {
        let bytes = file.bytes.clone();
        writes.push(Box::pin(async move { Ok::<_, Error>(dir.put(&file.name, bytes).await?) }));
        writes.extend(native_writes(file, dir, storage.as_ref(), confirmed)?);
    }
    let written: u64 = try_join_all(writes).await?.into_iter().sum();
    debug!(task, checkpoint, written, "wrote a task's state to {}", dir.url());
    let states = files
        .into_iter()
        .map(|file| StoredState {
            operator_id: file.operator_id,
            operator_name: file.operator_name,
            parallelism: file.parallelism,
            state: file.state,
        })
        .collect();
    Ok(Acknowledgement { task, checkpoint, states, written, alignment, finished, unaligned })
}

/// The writes of the files of `file`'s native checkpoint: private ones into `dir`, shared ones
/// that storage does not hold (`confirmed`) into `storage`'s `shared/` folder.
fn native_writes<'a>(
    file: &'a StateFile,
    dir: &'a SnapshotDir,
    storage: Option<&'a CheckpointStorage>,
    confirmed: &HashSet<String>,
) -> Result<Vec<BoxFuture<'a, Result<u64>>>> {
    let (Some(native), Some(layout)) = (&file.native, &file.state.native) else {
        return Ok(Vec::new());
    };
    let mut writes: Vec<BoxFuture<'a, Result<u64>>> = Vec::new();
    for entry in &layout.files {
        let source = native.dir.path().join(&entry.name);
        match &entry.shared {
            Some(id) if confirmed.contains(id) => {} // stored, and kept while referenced
            Some(id) => {
                let storage = storage.ok_or_else(|| {
                    Error::InvalidConfig(format!("shared file {id} needs checkpoint storage"))
                })?;
                let write =
                    async move { Ok::<_, Error>(storage.put_shared_local(id, &source).await?) };
                writes.push(Box::pin(write));
            }
            None => {
                let path = format!("{}/{}", layout.dir, entry.name);
                let write = async move { Ok::<_, Error>(dir.put_local(&path, &source).await?) };
                writes.push(Box::pin(write));
            }
        }
    }
    Ok(writes)
}
