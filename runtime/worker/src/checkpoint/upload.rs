//! Writing tasks' state straight to checkpoint storage from the process that runs them (the
//! embedded process or a worker), as Flink's TaskManagers do: off the task threads and the
//! driver's or session's loop, each snapshot becomes its state files and the files of its
//! native checkpoints (shared ones into the job's `shared/` folder unless storage holds them
//! already), and then an [`Acknowledgement`] with handles only.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender};
use futures::future::{BoxFuture, try_join_all};
use tracing::debug;
use weir_checkpoint::{CheckpointStorage, SnapshotDir};
use weir_state::Completion;
use weir_types::{CheckpointId, SnapshotType};

use super::files::{KeyedLayout, StateFile, encode_unless};
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
    /// Whether checkpoints of heap state are incremental (see [`KeyedLayout`]).
    incremental: bool,
    /// The shared files of this process's tasks that the latest complete checkpoint
    /// references: stored, and kept while a later checkpoint references them.
    confirmed: Arc<HashSet<String>>,
    /// The shared files of this process's tasks each checkpoint in progress references
    /// (those of heap state known once it is encoded, off this thread).
    referenced: Referenced,
    uploaded: (Sender<Uploaded>, Receiver<Uploaded>),
    /// Set for a checkpoint in progress when it is aborted: its uploads stop, and state of
    /// it that arrives after the abort (a task that reached the barrier later) is not
    /// written. Kept until a later checkpoint completes.
    aborted: BTreeMap<CheckpointId, Arc<AtomicBool>>,
    /// Set when the run is cancelled or the uploader dropped: every upload stops.
    cancelled: Arc<AtomicBool>,
    /// What each checkpoint in progress tells its tasks' tables when it completes, so that
    /// they let go of the values kept in case it did not (see [`weir_state::Completion`]).
    completions: BTreeMap<CheckpointId, Vec<Box<dyn Completion>>>,
    /// The latest checkpoint whose state an upload was started for.
    latest_upload: Option<CheckpointId>,
}

/// The shared files each checkpoint in progress references.
type Referenced = Arc<Mutex<BTreeMap<CheckpointId, HashSet<String>>>>;

/// Says when an upload is no longer wanted: its checkpoint was aborted or the run that took
/// it is over. It then stops between two key groups of its encoding, or before its writes,
/// instead of taking CPU and disk from what comes next (a restore) for nothing, and of
/// writing into a directory that may be deleted already.
struct Abandon {
    aborted: Arc<AtomicBool>,
    cancelled: Arc<AtomicBool>,
}

impl Abandon {
    fn is_set(&self) -> bool {
        self.aborted.load(Ordering::Relaxed) || self.cancelled.load(Ordering::Relaxed)
    }
}

impl StateUploader {
    /// An uploader writing on `runtime`, shared files into `storage`'s `shared/` folder;
    /// `confirmed` are those the checkpoint the job restored from references; with
    /// `incremental`, checkpoints of heap state write what changed since the latest complete
    /// one and refer to its shared files for the rest.
    pub fn new(
        runtime: tokio::runtime::Handle,
        storage: Option<CheckpointStorage>,
        confirmed: HashSet<String>,
        incremental: bool,
    ) -> Self {
        StateUploader {
            runtime,
            storage,
            incremental,
            confirmed: Arc::new(confirmed),
            referenced: Arc::default(),
            uploaded: crossbeam_channel::unbounded(),
            aborted: BTreeMap::new(),
            cancelled: Arc::default(),
            completions: BTreeMap::new(),
            latest_upload: None,
        }
    }

    /// Where finished uploads report.
    pub fn uploaded(&self) -> &Receiver<Uploaded> {
        &self.uploaded.1
    }

    /// Writes what a task snapshotted into `dir`, the checkpoint's directory; the outcome
    /// arrives on [`Self::uploaded`], unless the checkpoint is aborted or the uploader dropped
    /// first.
    pub fn upload(&mut self, dir: SnapshotDir, state: TaskState) {
        let (task, barrier) = (state.task, state.snapshot.barrier);
        let checkpoint = barrier.kind == SnapshotType::Checkpoint;
        if checkpoint {
            let native = state.snapshot.operators.iter().filter_map(|op| op.state.native.as_ref());
            let shared = native.flat_map(|native| native.shared_files().map(|(_, id)| id));
            let mut referenced = lock(&self.referenced);
            referenced.entry(barrier.id).or_default().extend(shared.map(str::to_string));
            let keyed = state.snapshot.operators.iter().map(|op| &op.state.keyed);
            let completions = keyed.flat_map(weir_state::KeyedSnapshot::completions);
            self.completions.entry(barrier.id).or_default().extend(completions);
            self.latest_upload = self.latest_upload.max(Some(barrier.id));
        }
        let incremental = (checkpoint && self.incremental && self.storage.is_some())
            .then(|| Arc::clone(&self.referenced));
        let (storage, confirmed) = (self.storage.clone(), Arc::clone(&self.confirmed));
        let uploaded = self.uploaded.0.clone();
        let abandon = Abandon {
            aborted: Arc::clone(self.aborted.entry(barrier.id).or_default()),
            cancelled: Arc::clone(&self.cancelled),
        };
        self.runtime.spawn(async move {
            let outcome = match write(dir, storage, &confirmed, incremental, state, abandon).await {
                Ok(Some(acknowledgement)) => Uploaded::Stored(acknowledgement),
                Ok(None) => {
                    debug!(task, checkpoint = barrier.id, "abandoned a task's state upload");
                    return;
                }
                Err(error) => {
                    Uploaded::Failed { task, checkpoint: barrier.id, reason: error.to_string() }
                }
            };
            let _ = uploaded.send(outcome);
        });
    }

    /// `checkpoint` completed: the shared files it references are the ones stored now, and
    /// the tables whose state it wrote are told so, unless an upload of a later checkpoint
    /// started before now (its encoding may not refer to this checkpoint's files).
    pub fn on_complete(&mut self, checkpoint: CheckpointId) {
        self.aborted.retain(|&id, _| id > checkpoint); // uploaded, all of them
        let completions = self.completions.remove(&checkpoint).unwrap_or_default();
        self.completions.retain(|&id, _| id > checkpoint); // subsumed
        let mut referenced = lock(&self.referenced);
        let Some(confirmed) = referenced.remove(&checkpoint) else {
            return; // a savepoint, or no task of this process took part
        };
        self.confirmed = Arc::new(confirmed);
        referenced.retain(|&id, _| id > checkpoint); // subsumed
        if self.latest_upload == Some(checkpoint) {
            completions.iter().for_each(|completion| completion.completed());
        }
    }

    /// `checkpoint` was aborted: its uploads stop.
    pub fn on_abort(&mut self, checkpoint: CheckpointId) {
        self.completions.remove(&checkpoint);
        lock(&self.referenced).remove(&checkpoint);
        self.aborted.entry(checkpoint).or_default().store(true, Ordering::Relaxed);
    }

    /// The run is cancelled: every upload stops.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

impl Drop for StateUploader {
    /// The run is over: uploads still going stop.
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Encodes `state` (off the runtime's threads), writes its files into `dir` and the shared
/// files not in `confirmed` into `storage`'s `shared/` folder, all at once; `None` when
/// abandoned before the writes. With `incremental` (the uploader's referenced files), heap
/// state refers to the shared files in `confirmed` for what did not change, and the files it
/// refers to are added to those its checkpoint references.
async fn write(
    dir: SnapshotDir,
    storage: Option<CheckpointStorage>,
    confirmed: &Arc<HashSet<String>>,
    incremental: Option<Referenced>,
    state: TaskState,
    abandon: Abandon,
) -> Result<Option<Acknowledgement>> {
    let TaskState { task, snapshot, alignment, finished, in_flight } = state;
    let checkpoint = snapshot.barrier.id;
    let unaligned = in_flight.is_some();
    let reusable = Arc::clone(confirmed);
    let incremental_layout = incremental.is_some();
    let encoded = tokio::task::spawn_blocking(move || {
        let reusable = |file: &str| reusable.contains(file);
        let layout = match incremental_layout {
            true => KeyedLayout::Incremental { checkpoint, reusable: &reusable },
            false => KeyedLayout::Full,
        };
        let mut files: Vec<StateFile> = Vec::with_capacity(snapshot.operators.len());
        for operator in &snapshot.operators {
            match encode_unless(operator, layout, &|| abandon.is_set())? {
                Some(file) => files.push(file),
                None => return Ok(None),
            }
        }
        if let Some(in_flight) = in_flight {
            in_flight.attach_to(&mut files);
        }
        Ok::<_, weir_state::Error>(Some((files, abandon)))
    })
    .await;
    let encode_failed = |reason: String| Error::EncodeState { task, checkpoint, reason };
    let encoded = encoded
        .map_err(|error| encode_failed(error.to_string()))?
        .map_err(|error| encode_failed(error.to_string()))?;
    let Some((files, _)) = encoded.filter(|(_, abandon)| !abandon.is_set()) else {
        return Ok(None);
    };
    if let Some(referenced) = incremental {
        let shared = files.iter().flat_map(|file| file.state.shared_files.iter().cloned());
        lock(&referenced).entry(checkpoint).or_default().extend(shared);
    }
    let (dir, mut writes) = (&dir, Vec::<BoxFuture<'_, Result<u64>>>::new());
    for file in &files {
        let bytes = file.bytes.clone();
        writes.push(Box::pin(async move { Ok::<_, Error>(dir.put(&file.name, bytes).await?) }));
        if let Some((id, bytes)) = &file.shared {
            let storage = shared_storage(storage.as_ref(), id)?;
            let bytes = bytes.clone();
            writes.push(Box::pin(
                async move { Ok::<_, Error>(storage.put_shared(id, bytes).await?) },
            ));
        }
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
    Ok(Some(Acknowledgement { task, checkpoint, states, written, alignment, finished, unaligned }))
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
                let storage = shared_storage(storage, id)?;
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

/// The storage whose `shared/` folder takes the shared file `id`.
fn shared_storage<'a>(
    storage: Option<&'a CheckpointStorage>,
    id: &str,
) -> Result<&'a CheckpointStorage> {
    storage
        .ok_or_else(|| Error::InvalidConfig(format!("shared file {id} needs checkpoint storage")))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weir_checkpoint::StorageOptions;
    use weir_operators::{OperatorSnapshot, SubtaskInfo, TaskSnapshot};
    use weir_state::KeyedSnapshot;
    use weir_types::{CheckpointBarrier, KeyGroupRange};

    use super::*;

    /// Task 0's state for checkpoint `id`: one keyed operator with a few key groups.
    fn state(id: CheckpointId) -> TaskState {
        let mut keyed = KeyedSnapshot::new();
        for group in 0..8 {
            keyed.add(group, "count", vec![group as u8; 100]);
        }
        let mut snapshot = TaskSnapshot::new(CheckpointBarrier::checkpoint(id, 0));
        let info = SubtaskInfo::new("count", 0, 1, 128);
        snapshot.add(&info, OperatorSnapshot { keyed, ..Default::default() });
        TaskState { task: 0, snapshot, alignment: Duration::ZERO, finished: false, in_flight: None }
    }

    /// The files under `root`.
    fn files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() { dirs.push(path) } else { found.push(path) }
            }
        }
        found
    }

    /// Calls `before` with a new uploader, uploads checkpoints 1 and 2 on a runtime that runs
    /// nothing until `between` has had the uploader (and kept it, or not), then waits until
    /// `expected` outcomes arrived (10 s at most: a busy machine is slow) and 300 ms more for
    /// any unexpected one; returns what arrived and the files written.
    fn upload_two(
        before: impl FnOnce(&mut StateUploader),
        between: impl FnOnce(StateUploader) -> Option<StateUploader>,
        expected: usize,
    ) -> (Vec<Uploaded>, Vec<std::path::PathBuf>) {
        let root = tempfile::tempdir().unwrap();
        let url = root.path().display().to_string();
        let storage = CheckpointStorage::new(&url, "job", &StorageOptions::default()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut uploader = StateUploader::new(runtime.handle().clone(), None, HashSet::new(), true);
        let uploaded = uploader.uploaded().clone();
        before(&mut uploader);
        for id in [1, 2] {
            uploader.upload(storage.checkpoint_dir(id), state(id));
        }
        let kept = between(uploader);
        let mut outcomes = Vec::new();
        runtime.block_on(async {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while outcomes.len() < expected && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
                outcomes.extend(uploaded.try_iter());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        });
        drop((runtime, kept));
        outcomes.extend(uploaded.try_iter());
        (outcomes, files(root.path()))
    }

    /// A table that records the checkpoints it is told completed.
    struct Told {
        checkpoint: CheckpointId,
        told: Arc<Mutex<Vec<CheckpointId>>>,
    }

    impl weir_state::FrozenTable for Told {
        fn encode_group<'a>(
            &'a self,
            _: weir_types::KeyGroup,
            _: &mut weir_state::GroupEntries<'a>,
        ) -> weir_state::Result<bool> {
            Ok(false)
        }

        fn is_empty(&self) -> bool {
            false
        }

        fn completion(&self) -> Option<Box<dyn Completion>> {
            let told = Told { checkpoint: self.checkpoint, told: Arc::clone(&self.told) };
            Some(Box::new(told))
        }
    }

    impl Completion for Told {
        fn completed(&self) {
            lock(&self.told).push(self.checkpoint);
        }
    }

    #[test]
    fn tables_are_told_of_a_completion_unless_a_later_upload_started_before_it() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut uploader = StateUploader::new(runtime.handle().clone(), None, HashSet::new(), true);
        let told = Arc::new(Mutex::new(Vec::new()));
        let upload = |uploader: &mut StateUploader, checkpoint| {
            let mut state = state(checkpoint);
            let table = Box::new(Told { checkpoint, told: Arc::clone(&told) });
            state.snapshot.operators[0].state.keyed.defer(
                "t",
                KeyGroupRange::for_subtask(128, 1, 0),
                table,
            );
            let dir = CheckpointStorage::new("/nowhere", "job", &Default::default()).unwrap();
            uploader.upload(dir.checkpoint_dir(checkpoint), state);
        };
        upload(&mut uploader, 1);
        uploader.on_complete(1);
        upload(&mut uploader, 2);
        upload(&mut uploader, 3);
        uploader.on_complete(2); // 3's encoding may not refer to 2's files
        uploader.on_complete(3);
        upload(&mut uploader, 4);
        uploader.on_abort(4);
        upload(&mut uploader, 5);
        uploader.on_complete(5);
        assert_eq!(*lock(&told), [1, 3, 5]);
        assert!(uploader.completions.is_empty(), "nothing is held after a completion");
    }

    #[test]
    fn uploads_of_an_aborted_checkpoint_or_a_dropped_uploader_stop_before_writing() {
        let (uploaded, written) = upload_two(|_| {}, Some, 2);
        let mut acknowledged: Vec<_> = uploaded
            .iter()
            .map(|outcome| match outcome {
                Uploaded::Stored(ack) => ack.checkpoint,
                Uploaded::Failed { reason, .. } => panic!("{reason}"),
            })
            .collect();
        acknowledged.sort(); // the two uploads run at once and may end in either order
        assert_eq!(acknowledged, [1, 2], "both uploaded when nothing intervenes");
        assert_eq!(written.len(), 2, "{written:?}");

        let (uploaded, written) = upload_two(
            |_| {},
            |mut uploader| {
                uploader.on_abort(1);
                Some(uploader)
            },
            1,
        );
        assert!(
            matches!(&uploaded[..], [Uploaded::Stored(ack)] if ack.checkpoint == 2),
            "checkpoint 1 was aborted: {uploaded:?}"
        );
        assert!(
            matches!(&written[..], [file] if file.to_string_lossy().contains("chk-2")),
            "{written:?}"
        );

        let (uploaded, written) = upload_two(|_| {}, |_dropped| None, 0);
        assert!(uploaded.is_empty() && written.is_empty(), "{uploaded:?} {written:?}");
    }

    #[test]
    fn state_of_a_checkpoint_aborted_before_it_arrived_is_not_written() {
        // A stop-with-savepoint aborts checkpoint 1 before a task's state of it arrives.
        let (outcomes, written) = upload_two(
            |uploader| uploader.on_abort(1),
            |mut uploader| {
                uploader.on_complete(2);
                assert!(
                    uploader.aborted.is_empty(),
                    "flags of checkpoints before a complete one go"
                );
                Some(uploader)
            },
            1,
        );
        assert!(
            matches!(&outcomes[..], [Uploaded::Stored(ack)] if ack.checkpoint == 2),
            "only checkpoint 2 is written: {outcomes:?}"
        );
        assert!(written.iter().all(|f| !f.to_string_lossy().contains("chk-1")), "{written:?}");
    }
}
