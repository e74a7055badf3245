//! The coordinator role: serves the workers' sessions, waits until they offer the slots the
//! job needs (saying how many are missing), deploys an attempt, follows its tasks, runs its
//! checkpoints (workers write their tasks' state to checkpoint storage and acknowledge with
//! handles; the coordinator writes the metadata once all are in), and when a task fails or a worker is lost cancels the attempt and restarts
//! the job from its latest checkpoint as the restart strategy allows, on the workers still
//! there or ones that register meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use tracing::{error, info, warn};
use weir_checkpoint::SnapshotDir;
use weir_memory::{MemoryBreakdown, MemoryConfig, breakdown};
use weir_rpc::tonic::Status;
use weir_rpc::tonic::transport::Server;
use weir_rpc::v1::coordinator_message::Kind as FromCoordinator;
use weir_rpc::v1::coordinator_server::CoordinatorServer;
use weir_rpc::v1::worker_message::Kind as ToCoordinator;
use weir_rpc::v1::{
    Accepted, Cancel, CoordinatorMessage, Deploy, Deployed, Heartbeat, Register, SavepointTarget,
    Shutdown, TaskEnded,
};
use weir_types::Watermark;

use super::network_runtime;
use super::placement::assign_slots;
use super::session::{SessionEvent, SessionService, WorkerLine};
use super::task_messages::{acknowledgement_of, command_message};
use crate::channels::received;
use crate::checkpoint::{
    CheckpointCoordinator, CheckpointStats, JobStorage, SavepointRequest, TaskCommand, TaskEntry,
};
use crate::executor::{JobSetup, restart_after, sleep_until};
use crate::graph::{NodeFactory, StreamGraph};
use crate::load::LoadTotals;
use crate::plan::JobPlan;
use crate::progress::MetricsRegistry;
use crate::{
    Error, ExecutionConfig, JobClient, JobCommand, JobResult, JobStatus, RestartTracker, Result,
    SavepointOptions, WorkerStatus,
};

/// How long a cancelled attempt's tasks get to end before the next attempt starts anyway.
const CANCEL_GRACE: Duration = Duration::from_secs(30);
/// How long the coordinator waits for workers to leave after the job ended.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the coordinator says what it waits for.
const WAITING_NOTICE: Duration = Duration::from_secs(5);
/// The largest message a worker may send. Acknowledgements carry handles, not state, but
/// their metadata entries list a block per key group: a keyed operator's subtask owning all
/// of 32768 key groups adds about 1.6 MB, so a chain of several would pass tonic's default
/// of 4 MiB.
const MAX_MESSAGE_BYTES: usize = 8 << 20;

/// Options of `JOB coordinator`.
#[derive(Clone, Debug)]
pub struct CoordinatorOptions {
    /// Where the workers' sessions are served (`host:port`).
    pub bind: String,
    /// The job's own arguments, handed to every worker so that it builds the same job.
    pub job_args: Vec<String>,
    /// How long the job waits for enough slots before it fails.
    pub slot_timeout: Duration,
    /// How often workers send heartbeats.
    pub heartbeat_interval: Duration,
    /// A worker silent this long is lost.
    pub heartbeat_timeout: Duration,
}

impl CoordinatorOptions {
    /// Options with Weir's defaults: 5 minutes for slots (Flink's slot request timeout),
    /// a heartbeat every second, and a worker lost after 10 s of silence.
    pub fn new(bind: &str, job_args: Vec<String>) -> Self {
        CoordinatorOptions {
            bind: bind.to_string(),
            job_args,
            slot_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs jobs on the workers that register with it.
pub struct ClusterCoordinator {
    config: ExecutionConfig,
    options: CoordinatorOptions,
}

/// A registered worker.
struct WorkerEntry {
    name: String,
    slots: usize,
    data_address: String,
    /// How its memory is split: by its own settings, else the job's.
    memory: Option<MemoryBreakdown>,
    line: WorkerLine,
}

/// The attempt running now.
struct Attempt {
    id: u64,
    /// Tasks still running, per worker.
    running: BTreeMap<u32, usize>,
    /// The worker of each task, by job-wide task id.
    task_workers: Vec<u32>,
    /// Its checkpoints.
    checkpoints: CheckpointCoordinator,
    /// The first failure, which ends the attempt.
    failure: Option<String>,
    /// When the attempt was cancelled, if it was.
    cancelled_at: Option<Instant>,
    /// The user asked for the cancel: the job ends cancelled rather than restarting.
    cancel_requested: bool,
}

/// How an attempt ended.
enum AttemptEnd {
    Finished,
    Stopped(String),
    /// Failed, first seen at that instant.
    Failed(String, Instant),
    Cancelled,
}

impl ClusterCoordinator {
    /// A coordinator for jobs configured with `config`.
    pub fn new(config: ExecutionConfig, options: CoordinatorOptions) -> Self {
        ClusterCoordinator { config, options }
    }

    /// Runs the job on a thread of its own; the client takes savepoints, stops or cancels
    /// it and waits for its result, and the REST API reads its status.
    pub fn execute_async(self, job_name: &str, graph: StreamGraph) -> Result<JobClient> {
        let name = job_name.to_string();
        JobClient::spawn(job_name, "coordinator", move |control, status| {
            self.execute(&name, &graph, control, status)
        })
    }

    fn execute(
        &self,
        job_name: &str,
        graph: &StreamGraph,
        control: &Receiver<JobCommand>,
        status: &JobStatus,
    ) -> Result<JobResult> {
        let config = self.config.clone();
        let JobSetup { plan, storage, mut restore_from, metrics, mut restarts } =
            JobSetup::new(job_name, graph, &config, status)?;
        let runtime = network_runtime("weir-rpc")?;
        let events = self.serve_sessions(&runtime, &config)?;
        let mut driver = Driver {
            job: job_name,
            graph,
            plan: &plan,
            config: &config,
            metrics: &metrics,
            options: &self.options,
            storage: &storage,
            status,
            workers: BTreeMap::new(),
            next_attempt: 1,
            last_start: None,
            next_checkpoint: 1,
            checkpoints: Vec::new(),
        };
        let start = Instant::now();
        // After a restart, when the tasks may start: the workers read the state before.
        let mut start_at: Option<Instant> = None;
        let savepoint = loop {
            match driver.run_attempt(&events, control, restore_from.as_ref(), start_at)? {
                AttemptEnd::Finished => break None,
                AttemptEnd::Stopped(location) => break Some(location),
                AttemptEnd::Cancelled => {
                    driver.shutdown(&events, "the job was cancelled");
                    return Err(job_failed(job_name, &restarts, weir_operators::Error::Cancelled));
                }
                AttemptEnd::Failed(failure, failed_at) => {
                    let failure = weir_operators::Error::Runtime(failure);
                    match restart_after(
                        failure,
                        failed_at,
                        job_name,
                        &mut restarts,
                        status,
                        &storage,
                        restore_from,
                    ) {
                        Ok(restart) => {
                            // An attempt that failed before its tasks started (its restore,
                            // say) is followed by one deployed when the delay is over: a
                            // restore that fails does not loop faster than the strategy.
                            if driver.last_start.is_some_and(|start| failed_at < start) {
                                sleep_until(restart.start_at);
                            }
                            (restore_from, start_at) =
                                (restart.restore_from, Some(restart.start_at));
                        }
                        Err(error) => {
                            driver.shutdown(&events, "the job failed");
                            return Err(error);
                        }
                    }
                }
            }
        };
        driver.shutdown(&events, "the job finished");
        Ok(JobResult {
            job_name: job_name.to_string(),
            duration: start.elapsed(),
            operators: metrics.snapshot(),
            restarts: restarts.restarts(),
            checkpoints: driver.checkpoints,
            savepoint,
        })
    }

    /// Serves the workers' sessions on the configured address; returns what happens on them.
    fn serve_sessions(
        &self,
        runtime: &tokio::runtime::Runtime,
        config: &ExecutionConfig,
    ) -> Result<Receiver<SessionEvent>> {
        let (events_sender, events) = crossbeam_channel::unbounded();
        let config = serde_json::to_string(config)
            .map_err(|e| Error::Cluster(format!("cannot encode the execution config: {e}")))?;
        let service = SessionService {
            events: events_sender,
            accepted: Accepted {
                worker: 0,
                job_args: self.options.job_args.clone(),
                config,
                heartbeat_interval_ms: self.options.heartbeat_interval.as_millis() as u64,
            },
            heartbeat_timeout: self.options.heartbeat_timeout,
            next_worker: Arc::new(AtomicU32::new(1)),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&self.options.bind))
            .map_err(|e| Error::Cluster(format!("cannot listen on {}: {e}", self.options.bind)))?;
        let address = listener.local_addr().map_err(|e| Error::Cluster(e.to_string()))?;
        let server = CoordinatorServer::new(service).max_decoding_message_size(MAX_MESSAGE_BYTES);
        runtime.spawn(
            Server::builder()
                .add_service(server)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        eprintln!("coordinator: listening on {address}");
        Ok(events)
    }
}

fn job_failed(job: &str, restarts: &RestartTracker, source: weir_operators::Error) -> Error {
    Error::JobFailed { job: job.to_string(), restarts: restarts.restarts(), source }
}

/// The coordinator's bookkeeping of workers, attempts and checkpoints.
struct Driver<'a> {
    job: &'a str,
    graph: &'a StreamGraph,
    plan: &'a JobPlan,
    config: &'a ExecutionConfig,
    metrics: &'a MetricsRegistry,
    options: &'a CoordinatorOptions,
    storage: &'a JobStorage,
    status: &'a JobStatus,
    workers: BTreeMap<u32, WorkerEntry>,
    next_attempt: u64,
    /// When the latest attempt's tasks were to start.
    last_start: Option<Instant>,
    next_checkpoint: u64,
    /// Checkpoints of earlier attempts.
    checkpoints: Vec<CheckpointStats>,
}

impl Driver<'_> {
    /// Waits for slots, deploys one attempt from `restore` whose tasks start at `start_at`
    /// (at once if `None`) and follows it to its end.
    fn run_attempt(
        &mut self,
        events: &Receiver<SessionEvent>,
        control: &Receiver<JobCommand>,
        restore: Option<&SnapshotDir>,
        start_at: Option<Instant>,
    ) -> Result<AttemptEnd> {
        let mut attempt = self.wait_for_slots(events, restore, start_at)?;
        self.status.running();
        let mut published = 0;
        // Owned, to be swapped once disconnected (the client dropped: the job runs on).
        let mut control = control.clone();
        loop {
            if let Some(end) = self.attempt_end(&attempt) {
                attempt.checkpoints.finish();
                self.publish(&attempt.checkpoints, &mut published);
                self.next_checkpoint = attempt.checkpoints.next_id();
                self.checkpoints.extend_from_slice(attempt.checkpoints.history());
                return Ok(end);
            }
            let now = Instant::now();
            let grace = attempt.cancelled_at.map(|at| at + CANCEL_GRACE);
            let wake = [grace, attempt.checkpoints.next_deadline()].into_iter().flatten().min();
            let timeout =
                wake.map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(now));
            select! {
                recv(events) -> event => {
                    let event = event.expect("the session service holds a sender");
                    self.on_event(event, Some(&mut attempt));
                }
                recv(attempt.checkpoints.results()) -> result => {
                    if let Ok(result) = result
                        && let Err(failure) = attempt.checkpoints.on_result(result)
                    {
                        self.fail(&mut attempt, format!("checkpointing failed: {failure}"));
                    }
                }
                recv(control) -> command => {
                    if let Some(command) = received(&mut control, command) {
                        self.on_command(command, &mut attempt);
                    }
                }
                default(timeout) => {}
            }
            self.step(&mut attempt, &mut published);
        }
    }

    /// What follows any event: checkpoint timers, a completed stop-with-savepoint, the end
    /// of a cancel's grace.
    fn step(&mut self, attempt: &mut Attempt, published: &mut usize) {
        let now = Instant::now();
        if attempt.cancelled_at.is_none()
            && let Err(failure) = attempt.checkpoints.tick(now)
        {
            self.fail(attempt, format!("checkpointing failed: {failure}"));
        }
        if attempt.checkpoints.stopped_at().is_some() && attempt.cancelled_at.is_none() {
            info!("savepoint complete; stopping the job");
            self.cancel(attempt);
        }
        if attempt.cancelled_at.is_some() {
            attempt.checkpoints.stop();
        }
        if attempt.cancelled_at.is_some_and(|at| now >= at + CANCEL_GRACE) {
            warn!(
                attempt = attempt.id,
                "tasks did not end within {} s of the cancel; going on",
                CANCEL_GRACE.as_secs()
            );
            attempt.running.clear();
        }
        self.publish(&attempt.checkpoints, published);
    }

    /// Adds the attempt's checkpoints since the last call to the job's status.
    fn publish(&self, checkpoints: &CheckpointCoordinator, published: &mut usize) {
        let history = checkpoints.history();
        self.status.checkpointed(&history[*published..]);
        *published = history.len();
    }

    fn on_command(&mut self, command: JobCommand, attempt: &mut Attempt) {
        match command {
            JobCommand::Cancel => {
                info!(job = self.job, "cancelling the job on request");
                attempt.cancel_requested = true;
                self.cancel(attempt);
            }
            JobCommand::Savepoint { options, reply } => {
                let SavepointOptions { dir, stop, format } = options;
                let request = SavepointRequest { stop, format, reply };
                let (storage, id) = (self.storage, attempt.id);
                let workers: Vec<WorkerLine> = (attempt.running.keys())
                    .filter_map(|worker| Some(self.workers.get(worker)?.line.clone()))
                    .collect();
                // The workers learn where to write before any source is triggered.
                let dir_for = |checkpoint| {
                    let dir = storage.savepoint_dir(dir.as_deref(), checkpoint)?;
                    let url = dir.url().to_string();
                    for line in &workers {
                        let target = SavepointTarget { attempt: id, checkpoint, url: url.clone() };
                        send_line(line, FromCoordinator::SavepointTarget(target));
                    }
                    Ok(dir)
                };
                attempt.checkpoints.trigger_savepoint(dir_for, request);
            }
        }
    }

    /// How the attempt ended, once every task did.
    fn attempt_end(&self, attempt: &Attempt) -> Option<AttemptEnd> {
        if attempt.running.values().any(|&n| n > 0) {
            return None;
        }
        let stopped = attempt.checkpoints.stopped_at().map(str::to_string);
        Some(match (&attempt.failure, attempt.cancel_requested, stopped) {
            (_, true, _) => AttemptEnd::Cancelled,
            (Some(failure), false, _) => {
                let failed_at = attempt.cancelled_at.unwrap_or_else(Instant::now);
                AttemptEnd::Failed(failure.clone(), failed_at)
            }
            (None, false, Some(location)) => AttemptEnd::Stopped(location),
            (None, false, None) => AttemptEnd::Finished,
        })
    }

    /// Collects registrations until the workers offer the slots the job needs, then deploys.
    fn wait_for_slots(
        &mut self,
        events: &Receiver<SessionEvent>,
        restore: Option<&SnapshotDir>,
        start_at: Option<Instant>,
    ) -> Result<Attempt> {
        let needed = self.plan.slots_needed();
        let start = Instant::now();
        let mut notice = start;
        loop {
            let offers: Vec<(u32, usize)> =
                self.workers.iter().map(|(id, w)| (*id, w.slots)).collect();
            if let Some(placement) = assign_slots(needed, &offers) {
                return self.deploy(&placement, restore, start_at);
            }
            let offered: usize = offers.iter().map(|(_, slots)| slots).sum();
            let waited = start.elapsed();
            if waited >= self.options.slot_timeout {
                return Err(Error::NotEnoughSlots {
                    job: self.job.to_string(),
                    needed,
                    offered,
                    workers: offers.len(),
                    waited_secs: waited.as_secs(),
                });
            }
            if Instant::now() >= notice {
                info!(
                    job = self.job,
                    "waiting for slots: {needed} needed, {offered} offered by {} workers",
                    offers.len()
                );
                notice += WAITING_NOTICE;
            }
            let wake = notice.min(start + self.options.slot_timeout);
            if let Ok(event) = events.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                self.on_event(event, None);
            }
        }
    }

    /// Sends each worker its slots of a new attempt, whose tasks start at `start_at` (at once
    /// if `None`), and starts the attempt's checkpoints.
    fn deploy(
        &mut self,
        placement: &[u32],
        restore: Option<&SnapshotDir>,
        start_at: Option<Instant>,
    ) -> Result<Attempt> {
        let id = self.next_attempt;
        self.next_attempt += 1;
        let now = Instant::now();
        self.last_start = Some(start_at.map_or(now, |at| at.max(now)));
        let start_delay_ms = start_at.map_or(0, |at| at.saturating_duration_since(now).as_millis());
        let slot_addresses: Vec<String> =
            placement.iter().map(|w| self.workers[w].data_address.clone()).collect();
        let mut running = BTreeMap::new();
        let mut task_workers = Vec::new();
        let mut entries = Vec::new();
        let mut commands = Vec::new();
        for chain in &self.plan.chains {
            let source = matches!(self.graph.node(chain.head).factory, NodeFactory::Source(_));
            for worker in &placement[..chain.parallelism] {
                *running.entry(*worker).or_insert(0) += 1;
                let (sender, receiver) = crossbeam_channel::unbounded();
                entries.push(TaskEntry { commands: sender, source });
                commands.push((receiver, self.workers[worker].line.clone()));
                task_workers.push(*worker);
            }
        }
        forward_commands(id, commands)?;
        if let Some(dir) = restore {
            // Number checkpoints after the restored one, as an embedded job does: starting
            // again at 1 would overwrite older checkpoints of this job and leave a stale one
            // with the highest id, which a later restore of `latest` would take.
            let restored = self.storage.snapshot_id(dir)?;
            self.next_checkpoint = self.next_checkpoint.max(restored + 1);
        }
        let restore_url = restore.map(|dir| dir.url().to_string()).unwrap_or_default();
        for worker in running.keys() {
            let local_slots = (0..placement.len())
                .filter(|&s| placement[s] == *worker)
                .map(|s| s as u32)
                .collect();
            let deploy = Deploy {
                attempt: id,
                local_slots,
                slot_addresses: slot_addresses.clone(),
                restore: restore_url.clone(),
                start_delay_ms: u64::try_from(start_delay_ms).unwrap_or(u64::MAX),
            };
            self.send(*worker, FromCoordinator::Deploy(deploy));
        }
        info!(job = self.job, attempt = id, workers = running.len(), slots = placement.len(), restore = %restore_url, start_delay_ms, "deployed");
        let mut checkpoints = CheckpointCoordinator::new(
            self.config.checkpointing.clone(),
            self.job,
            self.config.max_parallelism,
            self.storage.checkpoints().cloned(),
            self.storage.handle(),
            entries,
            self.next_checkpoint,
        );
        if let Some(start) = start_at {
            checkpoints.first_trigger_after(start);
        }
        Ok(Attempt {
            id,
            running,
            task_workers,
            checkpoints,
            failure: None,
            cancelled_at: None,
            cancel_requested: false,
        })
    }

    fn on_event(&mut self, event: SessionEvent, attempt: Option<&mut Attempt>) {
        match event {
            SessionEvent::Registered { worker, register, line } => {
                info!(worker, name = %register.name, slots = register.slots, "worker registered");
                let memory = self.worker_memory(&register);
                let entry = WorkerEntry {
                    name: register.name,
                    slots: register.slots as usize,
                    data_address: register.data_address,
                    memory,
                    line,
                };
                self.workers.insert(worker, entry);
                self.publish_workers();
            }
            SessionEvent::Lost { worker, reason } => {
                let Some(entry) = self.workers.remove(&worker) else { return };
                self.publish_workers();
                warn!(worker, name = %entry.name, "worker lost: {reason}");
                if let Some(attempt) = attempt.filter(|a| a.running.contains_key(&worker)) {
                    attempt.running.insert(worker, 0);
                    self.fail(attempt, format!("worker {} was lost: {reason}", entry.name));
                }
            }
            SessionEvent::Reported { worker, message } => {
                if let Some(attempt) = attempt.filter(|a| a.running.contains_key(&worker)) {
                    self.on_report(worker, message, attempt);
                }
            }
        }
    }

    /// What a worker of the current attempt reported.
    fn on_report(&mut self, worker: u32, message: ToCoordinator, attempt: &mut Attempt) {
        let current = |reported: u64, task: u32| {
            reported == attempt.id && attempt.task_workers.get(task as usize) == Some(&worker)
        };
        match message {
            ToCoordinator::Heartbeat(heartbeat) => self.record(&heartbeat),
            ToCoordinator::Deployed(deployed) if deployed.attempt == attempt.id => {
                self.check_plan(worker, &deployed, attempt);
            }
            ToCoordinator::TaskEnded(ended) if current(ended.attempt, ended.task_id) => {
                self.on_task_ended(worker, ended, attempt);
            }
            ToCoordinator::Acknowledged(acknowledged)
                if current(acknowledged.attempt, acknowledged.task_id) =>
            {
                let task = acknowledged.task_id as usize;
                match acknowledgement_of(acknowledged, task) {
                    Ok(acknowledgement) => attempt.checkpoints.on_acknowledgement(acknowledgement),
                    Err(failure) => self.fail(attempt, failure.to_string()),
                }
            }
            ToCoordinator::Declined(declined) if current(declined.attempt, declined.task_id) => {
                let (task, checkpoint) = (declined.task_id as usize, declined.checkpoint);
                if let Err(failure) =
                    attempt.checkpoints.on_declined(task, checkpoint, &declined.reason)
                {
                    self.fail(attempt, format!("checkpointing failed: {failure}"));
                }
            }
            ToCoordinator::EndOfData(end) if current(end.attempt, end.task_id) => {
                attempt.checkpoints.on_end_of_data(end.task_id as usize);
            }
            _ => {} // from an earlier attempt
        }
    }

    fn on_task_ended(&mut self, worker: u32, ended: TaskEnded, attempt: &mut Attempt) {
        if let Some(running) = attempt.running.get_mut(&worker) {
            *running = running.saturating_sub(1);
        }
        if ended.error.is_empty() {
            if attempt.cancelled_at.is_none() {
                attempt.checkpoints.on_task_finished(ended.task_id as usize);
            }
        } else if !ended.cancelled {
            let name = self.workers.get(&worker).map_or("?", |w| w.name.as_str());
            if attempt.cancelled_at.is_some() && attempt.checkpoints.stopped_at().is_some() {
                // Stopping after its savepoint: a task that saw a peer's channel close before
                // its own cancel arrived reports that; the job still stops (as embedded).
                info!(task = %ended.task, worker = name, "task ended while the job stops: {}", ended.error);
                return;
            }
            error!(task = %ended.task, worker = name, "task failed: {}", ended.error);
            self.fail(attempt, format!("task '{}' failed: {}", ended.task, ended.error));
        }
    }

    /// A worker built another plan than this coordinator: its binary or arguments differ.
    fn check_plan(&mut self, worker: u32, deployed: &Deployed, attempt: &mut Attempt) {
        let expected = self.plan.describe();
        if deployed.plan != expected {
            let name = self.workers.get(&worker).map_or("?", |w| w.name.as_str()).to_string();
            self.fail(
                attempt,
                format!(
                    "worker {name} built another job than the coordinator (different binary or \
                     version?):\n coordinator:\n{expected} worker:\n{}",
                    deployed.plan
                ),
            );
        }
    }

    /// Shows the registered workers in the job's status.
    fn publish_workers(&self) {
        let workers = self.workers.values();
        let status = |w: &WorkerEntry| WorkerStatus {
            name: w.name.clone(),
            slots: w.slots,
            memory: w.memory.clone(),
        };
        self.status.workers(workers.map(status).collect());
    }

    /// The memory breakdown of a registering worker: from the settings it sent, or the job's,
    /// for its slots; `None` without settings (or, logged, when they do not hold).
    fn worker_memory(&self, register: &Register) -> Option<MemoryBreakdown> {
        let settings = if register.memory.is_empty() {
            self.config.memory.clone()?
        } else {
            serde_json::from_str::<MemoryConfig>(&register.memory)
                .map_err(|e| warn!(name = %register.name, "unreadable memory settings: {e}"))
                .ok()?
        };
        let slots = settings.slots.or(Some(register.slots));
        breakdown(&MemoryConfig { slots, ..settings })
            .map_err(|e| warn!(name = %register.name, "memory settings do not hold: {e}"))
            .ok()
    }

    fn record(&self, heartbeat: &Heartbeat) {
        for m in &heartbeat.metrics {
            let (node, subtask) = (m.node as usize, m.subtask as usize);
            if self.plan.parallelism.get(node).is_some_and(|parallelism| subtask < *parallelism) {
                let watermark = m.watermark.map(Watermark);
                let counters = self.metrics.subtask(node, subtask);
                counters.store(m.records_in, m.records_out, watermark, m.idle);
                self.metrics.load(node, subtask).store(LoadTotals {
                    uptime_ns: m.uptime_ns,
                    idle_ns: m.idle_ns,
                    backpressured_ns: m.backpressured_ns,
                });
            }
        }
    }

    /// Records the attempt's first failure and cancels it.
    fn fail(&self, attempt: &mut Attempt, failure: String) {
        if attempt.failure.is_none() && !attempt.cancel_requested {
            attempt.failure = Some(failure);
        }
        self.cancel(attempt);
    }

    /// Tells every worker of the attempt to cancel its tasks.
    fn cancel(&self, attempt: &mut Attempt) {
        if attempt.cancelled_at.is_some() {
            return;
        }
        attempt.cancelled_at = Some(Instant::now());
        attempt.checkpoints.stop();
        for worker in attempt.running.keys() {
            self.send(*worker, FromCoordinator::Cancel(Cancel { attempt: attempt.id }));
        }
    }

    /// Tells every worker that the job is over and waits (a little) for them to leave, so
    /// that they exit on the shutdown rather than on losing the coordinator.
    fn shutdown(&mut self, events: &Receiver<SessionEvent>, reason: &str) {
        for worker in self.workers.keys() {
            self.send(*worker, FromCoordinator::Shutdown(Shutdown { reason: reason.to_string() }));
        }
        info!(workers = self.workers.len(), "shutting the workers down: {reason}");
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.workers.is_empty() {
            match events.recv_deadline(deadline) {
                Ok(SessionEvent::Lost { worker, .. }) => drop(self.workers.remove(&worker)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        info!(still_connected = self.workers.len(), "the workers are shut down");
    }

    fn send(&self, worker: u32, message: FromCoordinator) {
        if let Some(entry) = self.workers.get(&worker) {
            send_line(&entry.line, message);
        }
    }
}

fn send_line(line: &WorkerLine, message: FromCoordinator) {
    let message: std::result::Result<CoordinatorMessage, Status> =
        Ok(CoordinatorMessage { kind: Some(message) });
    if line.send(message).is_err() {
        warn!("cannot reach a worker; its session closed");
    }
}

/// Forwards the checkpoint coordinator's commands for each task (by job-wide id) to the
/// worker running it, until the attempt's coordinator is dropped.
fn forward_commands(attempt: u64, tasks: Vec<(Receiver<TaskCommand>, WorkerLine)>) -> Result<()> {
    let forward = move || {
        let mut open: Vec<usize> = (0..tasks.len()).collect();
        while !open.is_empty() {
            let mut select = crossbeam_channel::Select::new();
            for &task in &open {
                select.recv(&tasks[task].0);
            }
            let operation = select.select();
            let task = open[operation.index()];
            match operation.recv(&tasks[task].0) {
                Ok(command) => {
                    let task_id = u32::try_from(task).unwrap_or(u32::MAX);
                    let message = command_message(attempt, task_id, command);
                    send_line(&tasks[task].1, FromCoordinator::TaskCommand(message));
                }
                Err(_) => open.retain(|&t| t != task),
            }
        }
    };
    std::thread::Builder::new()
        .name(format!("commands {attempt}"))
        .spawn(forward)
        .map(drop)
        .map_err(|source| Error::Spawn { task: format!("command forwarder {attempt}"), source })
}
