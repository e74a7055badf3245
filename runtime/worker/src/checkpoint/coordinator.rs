//! The checkpoint coordinator: triggers checkpoints at the sources, collects every task's
//! acknowledgement (handles of the state files the task's process already wrote), writes
//! `_metadata` last, and then tells the tasks that the checkpoint completed (or that it was
//! aborted). It keeps the retained checkpoints and deletes the shared files no longer used.
//!
//! It runs on the job's driver thread and never blocks it: metadata writes (and copies of the
//! final state of finished tasks) run on the storage runtime and report back through
//! [`CheckpointCoordinator::results`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tracing::{info, warn};
use weir_checkpoint::{
    CheckpointMetadata, CheckpointStorage, FORMAT_VERSION, OperatorState, SnapshotDir,
    SnapshotKind, SubtaskState,
};
use weir_operators::processing_time_now;
use weir_types::{CheckpointBarrier, CheckpointId, SavepointFormat, SnapshotType};

use super::shared::SharedFiles;
use super::{Acknowledgement, CheckpointConfig, StoredState, TaskCommand, TaskId};
use crate::{Error, Result};

/// What the coordinator keeps about each task.
#[derive(Debug)]
pub struct TaskEntry {
    /// Where its commands go.
    pub commands: Sender<TaskCommand>,
    /// Whether it heads a source (barriers are injected there).
    pub source: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskPhase {
    Running,
    /// A source at the end of its input, waiting for a final checkpoint.
    EndOfData,
    /// The task's thread ended.
    Exited,
}

/// A checkpoint that finished, or failed, with its figures.
#[derive(Debug, Clone)]
pub struct CheckpointStats {
    /// Its id.
    pub id: CheckpointId,
    /// Checkpoint or savepoint.
    pub kind: SnapshotType,
    /// From trigger to completion (or abort).
    pub duration: Duration,
    /// Bytes of state it holds, including files shared with earlier checkpoints.
    pub state_size: u64,
    /// Bytes it wrote: all of its state, except files of an incremental checkpoint that
    /// earlier checkpoints already stored.
    pub incremental_size: u64,
    /// The longest barrier alignment of any task.
    pub alignment: Duration,
    /// Whether any task took it unaligned.
    pub unaligned: bool,
    /// Bytes of records in flight stored with it (counted in `state_size`).
    pub in_flight_size: u64,
    /// `None` when complete, else why it failed.
    pub failure: Option<String>,
    /// Where it is (or was being written, when it failed).
    pub location: String,
}

/// What the storage runtime reports back about a write.
#[derive(Debug)]
pub struct StorageResult(Written);

#[derive(Debug)]
enum Written {
    /// The final state of a finished task was copied into `checkpoint`, with its size.
    Copied { checkpoint: CheckpointId, size: Result<u64> },
    /// The metadata of `checkpoint` was written (or failed to be).
    Metadata { checkpoint: CheckpointId, result: Result<()> },
}

/// An operator's uid, name and parallelism, as recorded in the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct OperatorKey {
    uid: String,
    name: String,
    parallelism: usize,
}

impl OperatorKey {
    fn of(state: &StoredState) -> Self {
        OperatorKey {
            uid: state.operator_id.clone(),
            name: state.operator_name.clone(),
            parallelism: state.parallelism,
        }
    }
}

/// A savepoint someone waits for.
#[derive(Debug)]
pub struct SavepointRequest {
    /// Stop the job once the savepoint is complete.
    pub stop: bool,
    /// How keyed state is laid out in it.
    pub format: SavepointFormat,
    /// Gets the savepoint's location, or why it failed.
    pub reply: Sender<std::result::Result<String, String>>,
}

#[derive(Debug)]
struct Pending {
    barrier: CheckpointBarrier,
    request: Option<SavepointRequest>,
    dir: SnapshotDir,
    started: Instant,
    awaiting: BTreeSet<TaskId>,
    /// Copies of final states still running.
    copies: usize,
    states: BTreeMap<OperatorKey, Vec<SubtaskState>>,
    alignment: Duration,
    /// Bytes written so far.
    written: u64,
    /// Ids of the shared files its states reference (whether written by it or before).
    shared: HashSet<String>,
    /// Some task took it unaligned.
    unaligned: bool,
    writing_metadata: bool,
    /// Triggered after every source ended: it covers everything the job emitted.
    after_end: bool,
}

/// Coordinates the checkpoints of one run of a job.
pub struct CheckpointCoordinator {
    config: CheckpointConfig,
    job_name: String,
    max_parallelism: usize,
    /// Where periodic checkpoints go; `None` when the job takes none.
    storage: Option<CheckpointStorage>,
    runtime: tokio::runtime::Handle,
    tasks: Vec<(TaskEntry, TaskPhase)>,
    next_id: CheckpointId,
    pending: BTreeMap<CheckpointId, Pending>,
    next_trigger: Option<Instant>,
    failures_in_row: u32,
    /// The last state of tasks that acknowledged after finishing: carried (copied) into
    /// checkpoints they no longer take part in, so that a restore does not run them again.
    finished_state: HashMap<TaskId, Vec<StoredState>>,
    /// The latest complete checkpoint or savepoint: it holds the final state of every task
    /// that ended, which later checkpoints copy from it.
    latest_complete: Arc<Mutex<Option<SnapshotDir>>>,
    results: (Sender<StorageResult>, Receiver<StorageResult>),
    history: Vec<CheckpointStats>,
    /// A checkpoint completed after every source ended: tasks are on their way out.
    final_complete: bool,
    /// Clean-ups of old checkpoints in progress, awaited when the run ends.
    cleanups: Vec<tokio::task::JoinHandle<()>>,
    /// A stop-with-savepoint completed: the job ends, restorable from this location.
    stopped_at: Option<String>,
    /// Shared files that checkpoints in progress reference, and the lock that keeps garbage
    /// collection apart from writes.
    shared_files: SharedFiles,
    /// The shared files of the latest two complete checkpoints, kept in use: a task may take
    /// its next checkpoint before it hears that the latest one completed, and then refers to
    /// the files of the one before (incremental heap checkpoints refer to those of the latest
    /// complete checkpoint the task knows of).
    recently_complete: VecDeque<HashSet<String>>,
}

impl CheckpointCoordinator {
    /// A coordinator for `tasks`, with periodic checkpoints in `storage` (if any),
    /// numbering from `first_id`.
    pub fn new(
        config: CheckpointConfig,
        job_name: &str,
        max_parallelism: usize,
        storage: Option<CheckpointStorage>,
        runtime: tokio::runtime::Handle,
        tasks: Vec<TaskEntry>,
        first_id: CheckpointId,
    ) -> Self {
        let next_trigger = match &storage {
            Some(_) => config.interval().map(|interval| Instant::now() + interval),
            None => None,
        };
        let final_complete = storage.is_none(); // no final checkpoint without checkpoints
        CheckpointCoordinator {
            config,
            job_name: job_name.to_string(),
            max_parallelism,
            storage,
            runtime,
            tasks: tasks.into_iter().map(|task| (task, TaskPhase::Running)).collect(),
            next_id: first_id,
            pending: BTreeMap::new(),
            next_trigger,
            failures_in_row: 0,
            finished_state: HashMap::new(),
            latest_complete: Arc::default(),
            results: crossbeam_channel::unbounded(),
            history: Vec::new(),
            final_complete,
            cleanups: Vec::new(),
            stopped_at: None,
            shared_files: SharedFiles::default(),
            recently_complete: VecDeque::new(),
        }
    }

    /// Triggers the first periodic checkpoint an interval after `start`, when the tasks start
    /// (a restarted attempt's, after the restart delay), rather than an interval after now.
    pub fn first_trigger_after(&mut self, start: Instant) {
        if let Some(interval) = self.config.interval() {
            self.next_trigger = self.next_trigger.map(|_| start + interval);
        }
    }

    /// Where copies and metadata writes report; feed what arrives to [`Self::on_result`].
    pub fn results(&self) -> &Receiver<StorageResult> {
        &self.results.1
    }

    /// The next id to be used (the id after the last one triggered).
    pub fn next_id(&self) -> CheckpointId {
        self.next_id
    }

    /// Finished and failed checkpoints, oldest first.
    pub fn history(&self) -> &[CheckpointStats] {
        &self.history
    }

    /// When [`Self::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeouts = self.pending.values().map(|p| p.started + self.config.timeout());
        timeouts.chain(self.next_trigger).min()
    }

    /// Triggers a checkpoint when one is due and aborts those past their timeout. Fails when
    /// more checkpoints failed in a row than tolerated.
    pub fn tick(&mut self, now: Instant) -> Result<()> {
        let expired: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.started) >= self.config.timeout())
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let timeout = self.config.timeout_ms;
            self.abort(id, format!("not complete after the timeout of {timeout} ms"))?;
        }
        if self.final_complete && self.all_sources_ended() {
            return Ok(()); // the final checkpoint is done: tasks are ending
        }
        let final_due = self.all_sources_ended() && self.pending.is_empty();
        if self.next_trigger.is_some_and(|at| now >= at) || final_due {
            self.trigger_checkpoint(now);
        }
        Ok(())
    }

    /// Takes a savepoint into the directory `dir_for(id)` gives; `request` hears how it
    /// went, and with `request.stop` the job stops once it is complete.
    pub fn trigger_savepoint(
        &mut self,
        dir_for: impl FnOnce(CheckpointId) -> Result<SnapshotDir>,
        request: SavepointRequest,
    ) {
        match dir_for(self.next_id) {
            Ok(dir) => {
                self.trigger(SnapshotType::Savepoint(request.format), dir, Some(request));
            }
            Err(error) => drop(request.reply.send(Err(error.to_string()))),
        }
    }

    /// The location of the savepoint a stop-with-savepoint completed, once it has.
    pub fn stopped_at(&self) -> Option<&str> {
        self.stopped_at.as_deref()
    }

    /// Whether no source runs any more: a checkpoint now is the final one.
    fn all_sources_ended(&self) -> bool {
        let mut sources = self.tasks.iter().filter(|(task, _)| task.source).peekable();
        sources.peek().is_some() && sources.all(|(_, phase)| *phase != TaskPhase::Running)
    }

    /// Whether a stop-with-savepoint is in progress: the sources emit nothing until it ends.
    fn stopping(&self) -> bool {
        self.pending.values().any(|pending| pending.request.as_ref().is_some_and(|r| r.stop))
    }

    fn trigger_checkpoint(&mut self, now: Instant) {
        let Some(storage) = &self.storage else { return };
        let interval = self.config.interval();
        if self.pending.len() >= self.config.max_concurrent || self.stopping() {
            self.next_trigger = interval.map(|_| now + Duration::from_millis(50));
            return;
        }
        self.next_trigger = interval.map(|interval| now + interval);
        let dir = storage.checkpoint_dir(self.next_id);
        self.trigger(SnapshotType::Checkpoint, dir, None);
    }

    fn trigger(&mut self, kind: SnapshotType, dir: SnapshotDir, request: Option<SavepointRequest>) {
        let now = Instant::now();
        let barrier =
            CheckpointBarrier { id: self.next_id, timestamp: processing_time_now(), kind };
        self.next_id += 1;
        let stop = request.as_ref().is_some_and(|request| request.stop);
        if stop {
            self.abort_checkpoints_before(barrier.id);
        }
        let command =
            if stop { TaskCommand::StopAfter(barrier) } else { TaskCommand::Trigger(barrier) };
        let mut awaiting = BTreeSet::new();
        for (task, (entry, phase)) in self.tasks.iter().enumerate() {
            if *phase == TaskPhase::Exited {
                continue;
            }
            if entry.source && entry.commands.send(command).is_err() {
                continue;
            }
            awaiting.insert(task);
        }
        let mut pending = Pending {
            barrier,
            request,
            dir,
            started: now,
            awaiting,
            copies: 0,
            states: BTreeMap::new(),
            alignment: Duration::ZERO,
            written: 0,
            shared: HashSet::new(),
            unaligned: false,
            writing_metadata: false,
            after_end: self.all_sources_ended(),
        };
        for (task, states) in &self.finished_state {
            if self.tasks[*task].1 == TaskPhase::Exited {
                self.carry(&mut pending, states);
            }
        }
        self.pending.insert(barrier.id, pending);
    }

    /// Where the tasks write their state for `checkpoint`, while it is in progress.
    pub fn dir_of(&self, checkpoint: CheckpointId) -> Option<&SnapshotDir> {
        self.pending.get(&checkpoint).map(|pending| &pending.dir)
    }

    /// Task `task` could not take part in `checkpoint`: it is aborted.
    pub fn on_declined(
        &mut self,
        task: TaskId,
        checkpoint: CheckpointId,
        reason: &str,
    ) -> Result<()> {
        self.abort(checkpoint, format!("task {task} declined: {reason}"))
    }

    /// Source task `task` reached the end of its input and waits for a final checkpoint.
    pub fn on_end_of_data(&mut self, task: TaskId) {
        self.tasks[task].1 = TaskPhase::EndOfData;
    }

    /// Takes a task's part of its checkpoint, its state already written (by this process or
    /// a worker).
    pub fn on_acknowledgement(&mut self, acknowledgement: Acknowledgement) {
        let Acknowledgement { task, checkpoint, states, written, alignment, finished, unaligned } =
            acknowledgement;
        if finished {
            self.finished_state.insert(task, states.clone());
        }
        let Some(pending) = self.pending.get_mut(&checkpoint) else {
            return; // aborted meanwhile
        };
        pending.awaiting.remove(&task);
        pending.alignment = pending.alignment.max(alignment);
        pending.unaligned |= unaligned;
        pending.written += written;
        for state in states {
            Self::record(&self.shared_files, pending, state);
        }
        self.maybe_complete(checkpoint);
    }

    /// Adds `state` to `pending`, its shared files in use until `pending` ends.
    fn record(shared_files: &SharedFiles, pending: &mut Pending, state: StoredState) {
        for id in &state.state.shared_files {
            if pending.shared.insert(id.clone()) {
                shared_files.acquire(id);
            }
        }
        pending.states.entry(OperatorKey::of(&state)).or_default().push(state.state);
    }

    /// Carries the final `states` of a task that ended into `pending`: their files are copied
    /// from the latest complete checkpoint (which holds them) into its directory.
    fn carry(&self, pending: &mut Pending, states: &[StoredState]) {
        for state in states {
            Self::record(&self.shared_files, pending, state.clone());
            pending.copies += 1;
            let (checkpoint, dir, files) = (pending.barrier.id, pending.dir.clone(), state.clone());
            let (latest, results) = (Arc::clone(&self.latest_complete), self.results.0.clone());
            let shared_files = self.shared_files.clone();
            self.runtime.spawn(async move {
                // Retention deletes no checkpoint meanwhile; the latest complete one stays.
                let _writing = shared_files.writing().await;
                let source = latest.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let size = copy_files(&files, source, &dir).await;
                let _ = results.send(StorageResult(Written::Copied { checkpoint, size }));
            });
        }
    }

    /// The run is failing or cancelled: checkpoints still waiting for tasks can no longer
    /// complete (the tasks are going away), so they are aborted, and no new one starts.
    /// Those whose metadata is being written are complete and consistent; they finish.
    pub fn stop(&mut self) {
        self.next_trigger = None;
        self.final_complete = true;
        let ids: Vec<_> =
            self.pending.iter().filter(|(_, p)| !p.writing_metadata).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some(pending) = self.pending.remove(&id) {
                self.discard(pending, "the job is failing or cancelled".to_string());
            }
        }
    }

    /// A task's thread ended after finishing its input: it no longer takes part in
    /// checkpoints, which carry its final state instead.
    pub fn on_task_finished(&mut self, task: TaskId) {
        self.tasks[task].1 = TaskPhase::Exited;
        let ids: Vec<_> = self.pending.keys().copied().collect();
        for id in ids {
            let Some(mut pending) = self.pending.remove(&id) else { continue };
            if pending.awaiting.remove(&task) {
                let states = self.finished_state.get(&task).map_or(&[][..], Vec::as_slice);
                self.carry(&mut pending, states);
            }
            self.pending.insert(id, pending);
            self.maybe_complete(id);
        }
    }

    /// Handles what the storage runtime reported.
    pub fn on_result(&mut self, result: StorageResult) -> Result<()> {
        match result {
            StorageResult(Written::Copied { checkpoint, size }) => {
                let Some(pending) = self.pending.get_mut(&checkpoint) else { return Ok(()) };
                pending.copies -= 1;
                match size {
                    Ok(size) => pending.written += size,
                    Err(error) => {
                        let reason = format!("copying the final state of a task failed: {error}");
                        return self.abort(checkpoint, reason);
                    }
                }
                self.maybe_complete(checkpoint);
                Ok(())
            }
            StorageResult(Written::Metadata { checkpoint, result: Ok(()) }) => {
                self.complete(checkpoint);
                Ok(())
            }
            StorageResult(Written::Metadata { checkpoint, result: Err(error) }) => {
                self.abort(checkpoint, format!("writing the metadata failed: {error}"))
            }
        }
    }

    fn maybe_complete(&mut self, id: CheckpointId) {
        let Some(pending) = self.pending.get_mut(&id) else { return };
        if !pending.awaiting.is_empty() || pending.copies > 0 || pending.writing_metadata {
            return;
        }
        pending.writing_metadata = true;
        let mut operators: Vec<OperatorState> = pending
            .states
            .iter()
            .map(|(key, subtasks)| {
                let mut subtasks = subtasks.clone();
                subtasks.sort_by_key(|s| s.subtask);
                OperatorState {
                    uid: key.uid.clone(),
                    name: key.name.clone(),
                    parallelism: key.parallelism,
                    subtasks,
                }
            })
            .collect();
        operators.sort_by(|a, b| a.uid.cmp(&b.uid));
        let metadata = CheckpointMetadata {
            format_version: FORMAT_VERSION,
            job_name: self.job_name.clone(),
            checkpoint_id: id,
            kind: match pending.barrier.kind {
                SnapshotType::Checkpoint => SnapshotKind::Checkpoint,
                SnapshotType::Savepoint(_) => SnapshotKind::Savepoint,
            },
            timestamp_ms: pending.barrier.timestamp,
            max_parallelism: self.max_parallelism,
            operators,
        };
        let dir = pending.dir.clone();
        let (results, shared_files) = (self.results.0.clone(), self.shared_files.clone());
        self.runtime.spawn(async move {
            let _writing = shared_files.writing().await;
            let result = dir.write_metadata(&metadata).await.map_err(Error::from);
            let _ = results.send(StorageResult(Written::Metadata { checkpoint: id, result }));
        });
    }

    fn complete(&mut self, id: CheckpointId) {
        let Some(pending) = self.pending.remove(&id) else { return };
        let duration = pending.started.elapsed();
        let state_size: u64 = pending.states.values().flatten().map(SubtaskState::size).sum();
        let blocks = pending.states.values().flatten().filter_map(|state| state.in_flight);
        let in_flight_size: u64 = blocks.map(|block| block.len).sum();
        info!(
            checkpoint = id,
            duration_ms = duration.as_millis() as u64,
            bytes = state_size,
            written = pending.written,
            in_flight_bytes = in_flight_size,
            unaligned = pending.unaligned,
            "checkpoint complete at {}",
            pending.dir.url()
        );
        self.history.push(CheckpointStats {
            id,
            kind: pending.barrier.kind,
            duration,
            state_size,
            incremental_size: pending.written,
            alignment: pending.alignment,
            unaligned: pending.unaligned,
            in_flight_size,
            failure: None,
            location: pending.dir.url().to_string(),
        });
        *self.latest_complete.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(pending.dir.clone());
        if let Some(request) = pending.request {
            let _ = request.reply.send(Ok(pending.dir.url().to_string()));
            if request.stop {
                self.stopped_at = Some(pending.dir.url().to_string());
            }
        }
        if pending.barrier.kind.is_savepoint() {
            self.broadcast(TaskCommand::Complete(id));
            return; // savepoints neither count for nor subsume checkpoints
        }
        self.failures_in_row = 0;
        self.recently_complete.push_back(pending.shared);
        if self.recently_complete.len() > 2 {
            let oldest = self.recently_complete.pop_front().expect("three of them");
            self.shared_files.release(&oldest);
        }
        // Only a checkpoint triggered after the sources ended covers their last records; one
        // triggered before completes too early to be the final one, however late it completes.
        self.final_complete |= pending.after_end;
        let earliest = Instant::now() + self.config.min_pause();
        self.next_trigger = self.next_trigger.map(|at| at.max(earliest));
        // Older checkpoints still in progress are subsumed by this one.
        let older: Vec<_> = self.pending.range(..id).map(|(id, _)| *id).collect();
        for old in older {
            if let Some(old) = self.pending.remove(&old) {
                self.shared_files.release(&old.shared);
            }
            self.broadcast(TaskCommand::Abort(old));
        }
        self.broadcast(TaskCommand::Complete(id));
        let Some(storage) = self.storage.clone() else { return };
        let (retained, shared_files) = (self.config.retained, self.shared_files.clone());
        self.cleanups.retain(|cleanup| !cleanup.is_finished());
        self.cleanups.push(self.runtime.spawn(async move {
            if let Err(error) = shared_files.retain(&storage, retained).await {
                warn!("could not delete old checkpoints: {error}");
            }
        }));
    }

    fn abort(&mut self, id: CheckpointId, reason: String) -> Result<()> {
        let Some(pending) = self.pending.remove(&id) else { return Ok(()) };
        let savepoint = pending.barrier.kind.is_savepoint();
        self.discard(pending, reason.clone());
        if savepoint {
            return Ok(()); // a failed savepoint is reported to whoever asked, not counted
        }
        self.failures_in_row += 1;
        if self.failures_in_row > self.config.tolerable_failures {
            return Err(Error::CheckpointFailures {
                failures: self.failures_in_row,
                tolerable: self.config.tolerable_failures,
                last: reason,
            });
        }
        Ok(())
    }

    /// Aborts the periodic checkpoints in progress before `savepoint`, a stop-with-savepoint:
    /// the job will restore from the savepoint, and their uploads would only slow it down.
    /// Not counted as failures.
    fn abort_checkpoints_before(&mut self, savepoint: CheckpointId) {
        let periodic: Vec<CheckpointId> = self
            .pending
            .range(..savepoint)
            .filter(|(_, pending)| pending.barrier.kind == SnapshotType::Checkpoint)
            .map(|(id, _)| *id)
            .collect();
        for id in periodic {
            if let Some(pending) = self.pending.remove(&id) {
                let reason = format!("superseded by stop-with-savepoint {savepoint}");
                self.discard(pending, reason);
            }
        }
    }

    /// Records `pending` as failed, tells the tasks and deletes what it wrote.
    fn discard(&mut self, pending: Pending, reason: String) {
        let id = pending.barrier.id;
        if let Some(request) = &pending.request {
            let _ = request.reply.send(Err(format!("savepoint {id} failed: {reason}")));
        }
        warn!(checkpoint = id, "checkpoint aborted: {reason}");
        self.history.push(CheckpointStats {
            id,
            kind: pending.barrier.kind,
            duration: pending.started.elapsed(),
            state_size: 0,
            incremental_size: pending.written,
            alignment: pending.alignment,
            unaligned: pending.unaligned,
            in_flight_size: 0,
            failure: Some(reason),
            location: pending.dir.url().to_string(),
        });
        self.broadcast(TaskCommand::Abort(id));
        self.shared_files.release(&pending.shared);
        let dir = pending.dir;
        self.cleanups.push(self.runtime.spawn(async move {
            let _ = dir.delete().await;
        }));
    }

    /// Aborts checkpoints that can no longer complete and waits for deletions still running
    /// (call from outside the storage runtime, when the run has ended).
    pub fn finish(&mut self) {
        self.stop();
        for cleanup in self.cleanups.drain(..) {
            let _ = self.runtime.block_on(cleanup);
        }
    }

    fn broadcast(&self, command: TaskCommand) {
        for (entry, phase) in &self.tasks {
            if *phase != TaskPhase::Exited {
                let _ = entry.commands.send(command);
            }
        }
    }
}

/// Copies the files of `state` from `source` into `target`; returns their size.
async fn copy_files(
    state: &StoredState,
    source: Option<SnapshotDir>,
    target: &SnapshotDir,
) -> Result<u64> {
    let source = source.ok_or_else(|| Error::FinalState {
        operator: state.operator_name.clone(),
        url: target.url().to_string(),
    })?;
    for file in state.private_files() {
        target.copy_from(&source, &file).await?;
    }
    Ok(state.private_size())
}

#[cfg(test)]
mod tests {
    use weir_checkpoint::StorageOptions;

    use super::*;

    /// A coordinator for one source task checkpointing every 100 ms into `dir`, and the
    /// source's command channel.
    fn coordinator(
        dir: &std::path::Path,
        runtime: &tokio::runtime::Runtime,
    ) -> (CheckpointCoordinator, Receiver<TaskCommand>) {
        let config = CheckpointConfig { interval_ms: 100, ..CheckpointConfig::default() };
        let root = dir.display().to_string();
        let storage = CheckpointStorage::new(&root, "job", &StorageOptions::default()).unwrap();
        let (commands, source) = crossbeam_channel::unbounded();
        let tasks = vec![TaskEntry { commands, source: true }];
        let coordinator = CheckpointCoordinator::new(
            config,
            "job",
            128,
            Some(storage),
            runtime.handle().clone(),
            tasks,
            1,
        );
        (coordinator, source)
    }

    /// Feeds storage results to `coordinator` until `source` receives a command.
    fn next_command(
        coordinator: &mut CheckpointCoordinator,
        source: &Receiver<TaskCommand>,
    ) -> TaskCommand {
        loop {
            if let Ok(command) = source.try_recv() {
                return command;
            }
            let result = coordinator.results().recv_timeout(Duration::from_secs(5)).unwrap();
            coordinator.on_result(result).unwrap();
        }
    }

    #[test]
    fn a_checkpoint_triggered_before_the_sources_ended_is_not_the_final_one() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (mut coordinator, source) = coordinator(dir.path(), &runtime);
        coordinator.tick(Instant::now() + Duration::from_millis(100)).unwrap();
        let TaskCommand::Trigger(barrier) = source.try_recv().unwrap() else {
            panic!("the source is triggered first")
        };
        // The source ends after emitting the barrier, before the checkpoint completes.
        coordinator.on_end_of_data(0);
        let ack = Acknowledgement {
            task: 0,
            checkpoint: barrier.id,
            states: Vec::new(),
            written: 0,
            alignment: Duration::ZERO,
            finished: false,
            unaligned: false,
        };
        coordinator.on_acknowledgement(ack);
        assert!(
            matches!(next_command(&mut coordinator, &source), TaskCommand::Complete(id) if id == barrier.id)
        );
        coordinator.tick(Instant::now()).unwrap();
        match source.try_recv() {
            Ok(TaskCommand::Trigger(last)) => assert_eq!(last.id, barrier.id + 1),
            other => panic!("a final checkpoint must follow, got {other:?}"),
        }
    }
}
