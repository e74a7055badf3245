//! Runs a planned job in this process: one thread per task, bounded channels between them,
//! progress while it runs, checkpoints when configured, and on failure a restart from the
//! latest complete checkpoint as the restart strategy allows.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use tracing::{error, info, warn};
use weir_checkpoint::SnapshotDir;
use weir_operators::panic_message;
use weir_types::CheckpointId;

use crate::channels::received;
use crate::checkpoint::{
    BarrierMode, CheckpointCoordinator, CheckpointStats, JobStorage, OperatorToRestore,
    RestoredState, SavepointRequest, StateUploader, TaskControl, TaskEntry, TaskEvent, Uploaded,
};
use crate::exchange::{CancelHandle, CancelToken};
use crate::graph::StreamGraph;
use crate::plan::JobPlan;
use crate::progress::{MetricsRegistry, progress_line};
use crate::task::TaskContext;
use crate::wiring::{BuiltTask, Wiring};
use crate::{
    Error, ExecutionConfig, JobClient, JobCommand, JobResult, JobStatus, RestartDecision,
    RestartTracker, Result, SavepointOptions, WorkerStatus,
};

/// Executes jobs on threads of this process.
#[derive(Clone, Debug, Default)]
pub struct LocalExecutor {
    config: ExecutionConfig,
}

/// How one run of the job's tasks ended.
enum RunOutcome {
    /// Every input ended.
    Finished,
    /// Stopped after a savepoint at this location.
    Stopped(String),
    /// Cancelled on request.
    Cancelled,
    /// A task failed, first seen at that instant.
    Failed(weir_operators::Error, Instant),
}

/// What survives from one run of a job to the next.
struct JobState<'a> {
    name: &'a str,
    graph: &'a StreamGraph,
    plan: JobPlan,
    metrics: MetricsRegistry,
    storage: JobStorage,
    next_checkpoint: CheckpointId,
    checkpoints: Vec<CheckpointStats>,
}

impl LocalExecutor {
    /// An executor with `config`.
    pub fn new(config: ExecutionConfig) -> Self {
        LocalExecutor { config }
    }

    /// Runs `graph` to completion (bounded input) or failure, restarting it from its latest
    /// checkpoint after failures as the restart strategy allows.
    pub fn execute(&self, job_name: &str, graph: &StreamGraph) -> Result<JobResult> {
        let status = JobStatus::new(job_name);
        self.execute_restarting(job_name, graph, &crossbeam_channel::never(), &status)
    }

    /// Runs the job on a thread of its own; the returned client takes savepoints, stops or
    /// cancels it, and waits for its result.
    pub fn execute_async(self, job_name: &str, graph: StreamGraph) -> Result<JobClient> {
        let name = job_name.to_string();
        JobClient::spawn(job_name, "job driver", move |control, status| {
            self.execute_restarting(&name, &graph, control, status)
        })
    }

    /// Runs `graph` until it ends, restarting it after failures as the strategy allows.
    fn execute_restarting(
        &self,
        job_name: &str,
        graph: &StreamGraph,
        control: &Receiver<JobCommand>,
        status: &JobStatus,
    ) -> Result<JobResult> {
        let JobSetup { plan, storage, mut restore_from, metrics, mut restarts } =
            JobSetup::new(job_name, graph, &self.config, status)?;
        status.workers(vec![WorkerStatus {
            name: format!("embedded (pid {})", std::process::id()),
            slots: plan.slots_needed(),
            memory: self.config.memory_breakdown().ok().flatten(),
        }]);
        let mut job = JobState {
            name: job_name,
            graph,
            plan,
            metrics,
            storage,
            next_checkpoint: 1,
            checkpoints: Vec::new(),
        };
        let start = Instant::now();
        // After a restart, when the tasks may start: the state is read before, during the delay.
        let mut start_at: Option<Instant> = None;
        loop {
            let restored = self.restore(&job, restore_from.as_ref())?;
            if let Some(at) = start_at.take() {
                sleep_until(at);
            }
            job.next_checkpoint = job.next_checkpoint.max(restored.checkpoint_id + 1);
            status.running();
            let outcome = self.run(&mut job, restored, start, control, status)?;
            let savepoint = match outcome {
                RunOutcome::Finished => None,
                RunOutcome::Stopped(location) => Some(location),
                RunOutcome::Cancelled => {
                    return Err(Error::JobFailed {
                        job: job_name.to_string(),
                        restarts: restarts.restarts(),
                        source: weir_operators::Error::Cancelled,
                    });
                }
                RunOutcome::Failed(source, failed_at) => {
                    let restart = restart_after(
                        source,
                        failed_at,
                        job_name,
                        &mut restarts,
                        status,
                        &job.storage,
                        restore_from,
                    )?;
                    (restore_from, start_at) = (restart.restore_from, Some(restart.start_at));
                    continue;
                }
            };
            return Ok(JobResult {
                job_name: job_name.to_string(),
                duration: start.elapsed(),
                operators: job.metrics.snapshot(),
                restarts: restarts.restarts(),
                checkpoints: job.checkpoints,
                savepoint,
            });
        }
    }

    /// The state every operator subtask starts from.
    fn restore(&self, job: &JobState<'_>, from: Option<&SnapshotDir>) -> Result<RestoredState> {
        let Some(dir) = from else { return Ok(RestoredState::default()) };
        restore_state(&job.storage, dir, job.graph, &job.plan, &self.config, None)
    }

    /// Runs the job's tasks once, from `restored`, until they all end, one fails, or
    /// `control` stops or cancels them.
    fn run(
        &self,
        job: &mut JobState<'_>,
        mut restored: RestoredState,
        start: Instant,
        control: &Receiver<JobCommand>,
        status: &JobStatus,
    ) -> Result<RunOutcome> {
        let confirmed_shared = std::mem::take(&mut restored.confirmed_shared);
        let (cancel, token) = CancelHandle::new();
        let wiring =
            Wiring::new(job.graph, &job.plan, &self.config, &job.metrics, token.clone(), restored);
        let (tasks, _) = wiring.build_tasks();
        info!(job = job.name, tasks = tasks.len(), chains = job.plan.chains.len(), "job starting");
        for chain in &job.plan.chains {
            info!("  task '{}' x{}", chain.name, chain.parallelism);
        }
        let barriers = Some(BarrierMode::from(&self.config.checkpointing));
        let final_checkpoint = self.config.checkpointing.interval().is_some();
        let SpawnedTasks { threads, entries, done, events } =
            spawn_tasks(tasks, &token, &self.config, barriers, final_checkpoint)?;
        drop(token);
        let mut coordinator = CheckpointCoordinator::new(
            self.config.checkpointing.clone(),
            job.name,
            self.config.max_parallelism,
            job.storage.checkpoints().cloned(),
            job.storage.handle(),
            entries,
            job.next_checkpoint,
        );
        let mut uploader = StateUploader::new(
            job.storage.handle(),
            job.storage.checkpoints().cloned(),
            confirmed_shared,
            self.config.checkpointing.incremental,
        );
        let mut driver = Driver {
            cancel: Some(cancel),
            cancelled: false,
            stopping: false,
            failures: Vec::new(),
            progress: self.config.progress_interval(),
            last_progress: (Instant::now(), job.metrics.snapshot()),
            start,
            status: status.clone(),
            published: 0,
        };
        let channels = DriverChannels { done: &done, events: &events, control };
        let mut checkpoints =
            Checkpointing { coordinator: &mut coordinator, uploader: &mut uploader };
        driver.drive(channels, &mut checkpoints, &job.storage, &job.metrics);
        threads.into_iter().for_each(|thread| drop(thread.join()));
        coordinator.finish();
        driver.publish_checkpoints(&mut Checkpointing {
            coordinator: &mut coordinator,
            uploader: &mut uploader,
        });
        job.next_checkpoint = coordinator.next_id();
        job.checkpoints.extend_from_slice(coordinator.history());
        Ok(match (driver.failures.into_iter().next(), coordinator.stopped_at()) {
            (Some((failure, at)), _) => RunOutcome::Failed(failure, at),
            (None, Some(location)) => RunOutcome::Stopped(location.to_string()),
            (None, None) if driver.cancelled => RunOutcome::Cancelled,
            (None, None) if driver.cancel.is_none() => {
                RunOutcome::Failed(weir_operators::Error::Cancelled, Instant::now())
            }
            (None, None) => RunOutcome::Finished,
        })
    }
}

/// What a job driver starts from: the plan, the checkpoint storage with the first restore
/// point, metrics and the restart strategy's bookkeeping, all checked and published.
pub(crate) struct JobSetup {
    pub(crate) plan: JobPlan,
    pub(crate) storage: JobStorage,
    pub(crate) restore_from: Option<SnapshotDir>,
    pub(crate) metrics: MetricsRegistry,
    pub(crate) restarts: RestartTracker,
}

impl JobSetup {
    /// Plans `graph` with `config`, checks the checkpoint and restart settings, finds the
    /// configured restore point and tells `status` the job is planned.
    pub(crate) fn new(
        job_name: &str,
        graph: &StreamGraph,
        config: &ExecutionConfig,
        status: &JobStatus,
    ) -> Result<JobSetup> {
        let plan = JobPlan::new(graph, config)?;
        config.checkpointing.validate().map_err(Error::InvalidConfig)?;
        let strategy = config.restart_strategy();
        strategy.validate().map_err(Error::InvalidConfig)?;
        let storage = JobStorage::new(&config.checkpointing, job_name)?;
        let restore_from = match &config.checkpointing.restore {
            Some(restore) => storage.initial_restore(restore)?,
            None => None,
        };
        let metrics = MetricsRegistry::for_plan(graph, &plan);
        let restarts = RestartTracker::new(strategy);
        status.planned(&metrics, &restarts);
        Ok(JobSetup { plan, storage, restore_from, metrics, restarts })
    }
}

/// A restart the strategy allows: where the next attempt restores from, and when its tasks
/// may start.
pub(crate) struct Restart {
    /// The latest complete checkpoint, else where the failed attempt restored from.
    pub(crate) restore_from: Option<SnapshotDir>,
    /// The failure plus the strategy's delay: the next attempt reads its state meanwhile and
    /// starts its tasks no sooner.
    pub(crate) start_at: Instant,
}

/// Sleeps until `at`.
pub(crate) fn sleep_until(at: Instant) {
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// After a failed attempt: when the restart strategy's delay will have passed since the
/// failure (`failed_at`; cancelling the attempt's tasks counts towards it, as in Flink) and
/// where the next attempt restores from (the latest complete checkpoint, else
/// `restore_from`), or fails the job with `failure` when the strategy allows no more
/// restarts. It does not wait: the next attempt reads its state during the delay (it touches
/// only checkpoint storage) and starts its tasks when the delay is over.
pub(crate) fn restart_after(
    failure: weir_operators::Error,
    failed_at: Instant,
    job: &str,
    restarts: &mut RestartTracker,
    status: &JobStatus,
    storage: &JobStorage,
    restore_from: Option<SnapshotDir>,
) -> Result<Restart> {
    match restarts.on_failure(failed_at) {
        RestartDecision::Fail => Err(Error::JobFailed {
            job: job.to_string(),
            restarts: restarts.restarts(),
            source: failure,
        }),
        RestartDecision::Restart(delay) => {
            status.restarting(&failure, restarts);
            warn!(
                job,
                "job failed: {failure}; restart {} in {} ms ({} ms after the failure; {:?})",
                restarts.restarts(),
                delay.saturating_sub(failed_at.elapsed()).as_millis(),
                delay.as_millis(),
                restarts.strategy()
            );
            let restore_from = storage.latest()?.or(restore_from);
            Ok(Restart { restore_from, start_at: failed_at + delay })
        }
    }
}

/// The state every operator subtask of `graph` (planned as `plan`) starts from when the job
/// restores from `dir`; only the keyed state of subtasks in `slots` when given (subtask `i`
/// of every operator runs in slot `i`).
pub(crate) fn restore_state(
    storage: &JobStorage,
    dir: &SnapshotDir,
    graph: &StreamGraph,
    plan: &JobPlan,
    config: &ExecutionConfig,
    slots: Option<&BTreeSet<usize>>,
) -> Result<RestoredState> {
    let operators: Vec<OperatorToRestore> = graph
        .nodes
        .iter()
        .map(|node| OperatorToRestore {
            uid: node.operator_id(),
            name: node.name.clone(),
            parallelism: plan.parallelism[node.id.0],
            reads_inputs: !node.inputs.is_empty()
                && plan.chains.iter().any(|chain| chain.head == node.id),
            subtasks: (0..plan.parallelism[node.id.0])
                .filter(|subtask| slots.is_none_or(|slots| slots.contains(subtask)))
                .collect(),
        })
        .collect();
    let restored = storage.load(
        dir,
        &operators,
        config.max_parallelism,
        config.checkpointing.allow_non_restored_state,
    )?;
    info!(checkpoint = restored.checkpoint_id, "restoring from {}", dir.url());
    Ok(restored)
}

/// Tasks running on threads of their own, and what they report.
pub(crate) struct SpawnedTasks {
    /// One thread per task.
    pub(crate) threads: Vec<std::thread::JoinHandle<()>>,
    /// The checkpoint coordinator's line to each task.
    pub(crate) entries: Vec<TaskEntry>,
    /// Tasks ending: index, name and result.
    pub(crate) done: Receiver<(usize, String, weir_operators::Result<()>)>,
    /// Checkpoint traffic from the tasks.
    pub(crate) events: Receiver<TaskEvent>,
}

/// Starts every task of `tasks` on a thread of its own.
pub(crate) fn spawn_tasks(
    tasks: Vec<BuiltTask>,
    token: &CancelToken,
    config: &ExecutionConfig,
    checkpointing: Option<BarrierMode>,
    final_checkpoint: bool,
) -> Result<SpawnedTasks> {
    let (events_sender, events) = crossbeam_channel::unbounded();
    let (done_sender, done) = crossbeam_channel::unbounded();
    let mut entries = Vec::with_capacity(tasks.len());
    let mut threads = Vec::with_capacity(tasks.len());
    for (task, BuiltTask { name, body, source, load }) in tasks.into_iter().enumerate() {
        let (commands_sender, commands) = crossbeam_channel::unbounded();
        entries.push(TaskEntry { commands: commands_sender, source });
        let context = TaskContext {
            load,
            cancel: token.clone(),
            batch_size: config.batch_size,
            batch_bytes: config.batch_bytes,
            buffer_timeout: config.buffer_timeout(),
            control: TaskControl {
                task,
                commands,
                events: events_sender.clone(),
                checkpointing,
                final_checkpoint,
            },
        };
        let done_sender = done_sender.clone();
        let task_name = name.clone();
        let thread = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || {
                let result =
                    catch_unwind(AssertUnwindSafe(|| body.run(&context))).unwrap_or_else(|panic| {
                        Err(weir_operators::Error::Runtime(panic_message(panic.as_ref())))
                    });
                let _ = done_sender.send((task, task_name, result));
            })
            .map_err(|source| Error::Spawn { task: name, source })?;
        threads.push(thread);
    }
    Ok(SpawnedTasks { threads, entries, done, events })
}

/// What the driver listens to.
struct DriverChannels<'a> {
    /// Tasks ending, with their result.
    done: &'a Receiver<(usize, String, weir_operators::Result<()>)>,
    /// Checkpoint traffic from the tasks.
    events: &'a Receiver<TaskEvent>,
    /// Requests from the job's client.
    control: &'a Receiver<JobCommand>,
}

/// The checkpoint coordinator and the writer of the tasks' state, side by side in this
/// process.
struct Checkpointing<'a> {
    coordinator: &'a mut CheckpointCoordinator,
    uploader: &'a mut StateUploader,
}

impl Checkpointing<'_> {
    /// A task's checkpoint traffic: its state goes to storage first, the rest straight to the
    /// coordinator.
    fn on_event(&mut self, event: TaskEvent) -> crate::Result<()> {
        match event {
            TaskEvent::Acknowledged(state) => {
                // No directory: the checkpoint was aborted meanwhile.
                if let Some(dir) = self.coordinator.dir_of(state.snapshot.barrier.id) {
                    self.uploader.upload(dir.clone(), *state);
                }
                Ok(())
            }
            TaskEvent::Declined { task, checkpoint, reason } => {
                self.coordinator.on_declined(task, checkpoint, &reason)
            }
            TaskEvent::EndOfData { task } => {
                self.coordinator.on_end_of_data(task);
                Ok(())
            }
        }
    }

    /// A task's state is in storage (or could not be written).
    fn on_uploaded(&mut self, uploaded: Uploaded) -> crate::Result<()> {
        match uploaded {
            Uploaded::Stored(acknowledgement) => {
                self.coordinator.on_acknowledgement(acknowledgement);
                Ok(())
            }
            Uploaded::Failed { task, checkpoint, reason } => {
                self.coordinator.on_declined(task, checkpoint, &reason)
            }
        }
    }
}

/// The job's driver loop: task endings, checkpoint traffic, client requests, progress lines.
struct Driver {
    /// Dropped to cancel every task.
    cancel: Option<CancelHandle>,
    /// The client asked for a cancel.
    cancelled: bool,
    /// The job is being stopped on purpose (cancel, stop-with-savepoint): task errors that
    /// follow are consequences, not causes.
    stopping: bool,
    failures: Vec<(weir_operators::Error, Instant)>,
    progress: Option<Duration>,
    last_progress: (Instant, Vec<crate::OperatorSummary>),
    start: Instant,
    /// The job's live status.
    status: JobStatus,
    /// Checkpoints of this run already in the status.
    published: usize,
}

impl Driver {
    fn drive(
        &mut self,
        channels: DriverChannels<'_>,
        checkpoints: &mut Checkpointing<'_>,
        storage: &JobStorage,
        metrics: &MetricsRegistry,
    ) {
        // Owned, to be swapped once disconnected (the client dropped: the job runs on).
        let (mut events, mut control) = (channels.events.clone(), channels.control.clone());
        loop {
            let now = Instant::now();
            let progress_at = self.progress.map(|interval| self.last_progress.0 + interval);
            let deadline = checkpoints.coordinator.next_deadline();
            let wake = [progress_at, deadline].into_iter().flatten().min();
            let timeout =
                wake.map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(now));
            let step = select! {
                recv(channels.done) -> ended => match ended {
                    Ok((task, name, result)) => {
                        if result.is_ok() && self.cancel.is_some() {
                            checkpoints.coordinator.on_task_finished(task);
                        }
                        self.on_task_end(&name, result);
                        Ok(())
                    }
                    Err(_) => return, // every task ended
                },
                recv(events) -> event => match received(&mut events, event) {
                    Some(event) => checkpoints.on_event(event),
                    None => Ok(()),
                },
                recv(checkpoints.uploader.uploaded()) -> uploaded => match uploaded {
                    Ok(uploaded) => checkpoints.on_uploaded(uploaded),
                    Err(_) => Ok(()),
                },
                recv(checkpoints.coordinator.results()) -> result => match result {
                    Ok(result) => checkpoints.coordinator.on_result(result),
                    Err(_) => Ok(()),
                },
                recv(control) -> command => {
                    if let Some(command) = received(&mut control, command) {
                        self.on_command(command, checkpoints.coordinator, storage);
                    }
                    Ok(())
                },
                default(timeout) => Ok(()),
            };
            let coordinator = &mut *checkpoints.coordinator;
            let now = Instant::now();
            let ticked = if self.cancel.is_some() { coordinator.tick(now) } else { Ok(()) };
            if let Err(failure) = step.and(ticked) {
                error!("checkpointing failed: {failure}; cancelling the job");
                let failure = weir_operators::Error::Runtime(failure.to_string());
                self.failures.push((failure, Instant::now()));
                drop(self.cancel.take());
            }
            self.publish_checkpoints(checkpoints);
            let coordinator = &mut *checkpoints.coordinator;
            if coordinator.stopped_at().is_some() && !self.stopping {
                info!("savepoint complete; stopping the job");
                self.stopping = true;
                drop(self.cancel.take());
            }
            if self.cancel.is_none() {
                coordinator.stop();
                checkpoints.uploader.cancel();
            }
            if progress_at.is_some_and(|at| now >= at) {
                let current = (now, metrics.snapshot());
                let since = current.0 - self.last_progress.0;
                info!(
                    "{}",
                    progress_line(self.start.elapsed(), since, &current.1, &self.last_progress.1)
                );
                self.last_progress = current;
            }
        }
    }

    /// Adds the checkpoints the coordinator recorded since the last call to the status, and
    /// tells the uploader how they ended.
    fn publish_checkpoints(&mut self, checkpoints: &mut Checkpointing<'_>) {
        let history = checkpoints.coordinator.history();
        let recorded = &history[self.published..];
        self.status.checkpointed(recorded);
        for stats in recorded {
            match stats.failure {
                None => checkpoints.uploader.on_complete(stats.id),
                Some(_) => checkpoints.uploader.on_abort(stats.id),
            }
        }
        self.published = history.len();
    }

    fn on_command(
        &mut self,
        command: JobCommand,
        coordinator: &mut CheckpointCoordinator,
        storage: &JobStorage,
    ) {
        match command {
            JobCommand::Savepoint { options, reply } => {
                let SavepointOptions { dir, stop, format } = options;
                let request = SavepointRequest { stop, format, reply };
                coordinator
                    .trigger_savepoint(|id| storage.savepoint_dir(dir.as_deref(), id), request);
            }
            JobCommand::Cancel => {
                info!("cancelling the job on request");
                self.cancelled = true;
                self.stopping = true;
                drop(self.cancel.take());
            }
        }
    }

    fn on_task_end(&mut self, task: &str, result: weir_operators::Result<()>) {
        match result {
            Ok(()) => {}
            Err(weir_operators::Error::Cancelled) => drop(self.cancel.take()),
            Err(failure) if self.stopping => {
                tracing::debug!(task = %task, "task ended while the job stops: {failure}");
            }
            Err(failure) => {
                error!(task = %task, "task failed: {failure}; cancelling the job");
                self.failures.push((name_task(task, failure), Instant::now()));
                drop(self.cancel.take());
            }
        }
    }
}

/// Runtime errors do not know their task; operator errors already name their operator.
fn name_task(task: &str, failure: weir_operators::Error) -> weir_operators::Error {
    match failure {
        weir_operators::Error::Runtime(message) => {
            weir_operators::Error::Runtime(format!("task '{task}': {message}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RestartStrategy;
    use crate::checkpoint::CheckpointConfig;

    /// The delay counts from the failure: time spent cancelling the failed attempt is part of
    /// it (as Flink starts its backoff timer when it handles the failure). Deciding does not
    /// wait: the next attempt reads its state meanwhile and starts its tasks at `start_at`.
    #[test]
    fn the_restart_delay_counts_from_the_failure() {
        let strategy = RestartStrategy::FixedDelay { attempts: 3, delay_ms: 600 };
        let mut restarts = RestartTracker::new(strategy);
        let status = JobStatus::new("job");
        let storage = JobStorage::new(&CheckpointConfig::default(), "job").unwrap();
        let failure = || weir_operators::Error::Runtime("boom".into());

        let failed_at = Instant::now() - Duration::from_millis(400);
        let decided = Instant::now();
        let restart =
            restart_after(failure(), failed_at, "job", &mut restarts, &status, &storage, None)
                .unwrap();
        assert!(decided.elapsed() < Duration::from_millis(100), "deciding does not wait");
        assert_eq!(restart.start_at, failed_at + Duration::from_millis(600));
        assert!(restart.restore_from.is_none(), "no checkpoint to restore");

        let slept = Instant::now();
        sleep_until(restart.start_at);
        let waited = slept.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_millis(450),
            "waited {waited:?}: the rest of the 600 ms delay after 400 ms of cancelling"
        );
        let started = Instant::now();
        sleep_until(failed_at);
        assert!(started.elapsed() < Duration::from_millis(50), "a time past is not waited for");
    }
}
