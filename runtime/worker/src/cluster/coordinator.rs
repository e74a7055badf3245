//! The coordinator role: serves the workers' sessions, waits until they offer the slots the
//! job needs (saying how many are missing), deploys an attempt, follows its tasks, and when a
//! task fails or a worker is lost cancels the attempt and restarts the job as the restart
//! strategy allows, on the workers still there or ones that register meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use tracing::{error, info, warn};
use weir_rpc::tonic::Status;
use weir_rpc::tonic::transport::Server;
use weir_rpc::v1::coordinator_message::Kind as FromCoordinator;
use weir_rpc::v1::coordinator_server::CoordinatorServer;
use weir_rpc::v1::worker_message::Kind as ToCoordinator;
use weir_rpc::v1::{
    Accepted, Cancel, CoordinatorMessage, Deploy, Deployed, Heartbeat, Shutdown, TaskEnded,
};
use weir_types::Watermark;

use super::placement::assign_slots;
use super::session::{SessionEvent, SessionService, WorkerLine};
use crate::graph::StreamGraph;
use crate::load::LoadTotals;
use crate::plan::JobPlan;
use crate::progress::MetricsRegistry;
use crate::{
    Error, ExecutionConfig, JobClient, JobCommand, JobResult, JobStatus, RestartDecision,
    RestartTracker, Result, WorkerStatus,
};

/// How long a cancelled attempt's tasks get to end before the next attempt starts anyway.
const CANCEL_GRACE: Duration = Duration::from_secs(30);
/// How long the coordinator waits for workers to leave after the job ended.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the coordinator says what it waits for.
const WAITING_NOTICE: Duration = Duration::from_secs(5);

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
    line: WorkerLine,
}

/// The attempt running now.
struct Attempt {
    id: u64,
    /// Tasks still running, per worker.
    running: BTreeMap<u32, usize>,
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
    Failed(String),
    Cancelled,
}

impl ClusterCoordinator {
    /// A coordinator for jobs configured with `config`.
    pub fn new(config: ExecutionConfig, options: CoordinatorOptions) -> Self {
        ClusterCoordinator { config, options }
    }

    /// Runs the job on a thread of its own; the client cancels it and waits for its result,
    /// and the REST API reads its status.
    pub fn execute_async(self, job_name: &str, graph: StreamGraph) -> Result<JobClient> {
        let (commands, control) = crossbeam_channel::unbounded();
        let status = JobStatus::new(job_name);
        let driver_status = status.clone();
        let name = job_name.to_string();
        let thread = std::thread::Builder::new()
            .name("coordinator".into())
            .spawn(move || {
                let result = self.execute(&name, &graph, &control, &driver_status);
                driver_status.ended(&result);
                result
            })
            .map_err(|source| Error::Spawn { task: "coordinator".into(), source })?;
        Ok(JobClient::new(job_name.to_string(), commands, status, thread))
    }

    fn execute(
        &self,
        job_name: &str,
        graph: &StreamGraph,
        control: &Receiver<JobCommand>,
        status: &JobStatus,
    ) -> Result<JobResult> {
        let plan = JobPlan::new(graph, &self.config)?;
        if self.config.checkpointing.interval().is_some()
            || self.config.checkpointing.restore.is_some()
        {
            return Err(Error::InvalidConfig(
                "checkpoints and restores are not supported across workers yet; run the job \
                 embedded (`JOB run`) for exactly-once state"
                    .into(),
            ));
        }
        let strategy = self.config.restart_strategy();
        strategy.validate().map_err(Error::InvalidConfig)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-rpc")
            .enable_all()
            .build()
            .map_err(|e| Error::Cluster(format!("cannot start the network runtime: {e}")))?;
        let (events_sender, events) = crossbeam_channel::unbounded();
        let config = serde_json::to_string(&self.config)
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
        runtime.spawn(
            Server::builder()
                .add_service(CoordinatorServer::new(service))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        eprintln!("coordinator: listening on {address}");
        let metrics = MetricsRegistry::for_plan(graph, &plan);
        let mut restarts = RestartTracker::new(strategy);
        status.planned(&metrics, &restarts);
        let mut driver = Driver {
            job: job_name,
            plan: &plan,
            metrics: &metrics,
            status,
            options: &self.options,
            workers: BTreeMap::new(),
            next_attempt: 1,
        };
        let start = Instant::now();
        loop {
            let end = driver.run_attempt(&events, control, status)?;
            match end {
                AttemptEnd::Finished => break,
                AttemptEnd::Cancelled => {
                    driver.shutdown(&events, "the job was cancelled");
                    return Err(job_failed(job_name, &restarts, weir_operators::Error::Cancelled));
                }
                AttemptEnd::Failed(failure) => match restarts.on_failure(Instant::now()) {
                    RestartDecision::Fail => {
                        driver.shutdown(&events, "the job failed");
                        let source = weir_operators::Error::Runtime(failure);
                        return Err(job_failed(job_name, &restarts, source));
                    }
                    RestartDecision::Restart(delay) => {
                        status.restarting(
                            &weir_operators::Error::Runtime(failure.clone()),
                            &restarts,
                        );
                        warn!(
                            job = job_name,
                            "attempt failed: {failure}; restart {} in {} ms",
                            restarts.restarts(),
                            delay.as_millis()
                        );
                        std::thread::sleep(delay);
                    }
                },
            }
        }
        driver.shutdown(&events, "the job finished");
        Ok(JobResult {
            job_name: job_name.to_string(),
            duration: start.elapsed(),
            operators: metrics.snapshot(),
            restarts: restarts.restarts(),
            checkpoints: Vec::new(),
            savepoint: None,
        })
    }
}

fn job_failed(job: &str, restarts: &RestartTracker, source: weir_operators::Error) -> Error {
    Error::JobFailed { job: job.to_string(), restarts: restarts.restarts(), source }
}

/// The coordinator's bookkeeping of workers and attempts.
struct Driver<'a> {
    job: &'a str,
    plan: &'a JobPlan,
    metrics: &'a MetricsRegistry,
    status: &'a JobStatus,
    options: &'a CoordinatorOptions,
    workers: BTreeMap<u32, WorkerEntry>,
    next_attempt: u64,
}

impl Driver<'_> {
    /// Waits for slots, deploys one attempt and follows it to its end.
    fn run_attempt(
        &mut self,
        events: &Receiver<SessionEvent>,
        control: &Receiver<JobCommand>,
        status: &JobStatus,
    ) -> Result<AttemptEnd> {
        let mut attempt = self.wait_for_slots(events)?;
        status.running();
        loop {
            if let Some(end) = self.attempt_end(&attempt) {
                return Ok(end);
            }
            let grace = attempt
                .cancelled_at
                .map(|at| (at + CANCEL_GRACE).saturating_duration_since(Instant::now()));
            select! {
                recv(events) -> event => {
                    let event = event.expect("the session service holds a sender");
                    self.on_event(event, Some(&mut attempt));
                }
                recv(control) -> command => match command {
                    Ok(JobCommand::Cancel) => {
                        info!(job = self.job, "cancelling the job on request");
                        attempt.cancel_requested = true;
                        self.cancel(&mut attempt);
                    }
                    Ok(JobCommand::Savepoint { reply, .. }) => {
                        let _ = reply.send(Err("savepoints of jobs that run across workers are not supported yet".into()));
                    }
                    Err(_) => {}
                },
                default(grace.unwrap_or(Duration::from_secs(3600))) => {
                    if attempt.cancelled_at.is_some() {
                        warn!(attempt = attempt.id, "tasks did not end within {} s of the cancel; going on", CANCEL_GRACE.as_secs());
                        attempt.running.clear();
                    }
                }
            }
        }
    }

    /// How the attempt ended, once every task did.
    fn attempt_end(&self, attempt: &Attempt) -> Option<AttemptEnd> {
        if attempt.running.values().any(|&n| n > 0) {
            return None;
        }
        Some(match (&attempt.failure, attempt.cancel_requested) {
            (_, true) => AttemptEnd::Cancelled,
            (Some(failure), false) => AttemptEnd::Failed(failure.clone()),
            (None, false) => AttemptEnd::Finished,
        })
    }

    /// Collects registrations until the workers offer the slots the job needs, then deploys.
    fn wait_for_slots(&mut self, events: &Receiver<SessionEvent>) -> Result<Attempt> {
        let needed = self.plan.slots_needed();
        let start = Instant::now();
        let mut notice = start;
        loop {
            let offers: Vec<(u32, usize)> =
                self.workers.iter().map(|(id, w)| (*id, w.slots)).collect();
            if let Some(placement) = assign_slots(needed, &offers) {
                return Ok(self.deploy(&placement));
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

    /// Sends each worker its slots of a new attempt.
    fn deploy(&mut self, placement: &[u32]) -> Attempt {
        let id = self.next_attempt;
        self.next_attempt += 1;
        let slot_addresses: Vec<String> =
            placement.iter().map(|w| self.workers[w].data_address.clone()).collect();
        let mut running = BTreeMap::new();
        for chain in &self.plan.chains {
            for worker in &placement[..chain.parallelism] {
                *running.entry(*worker).or_insert(0) += 1;
            }
        }
        for worker in running.keys() {
            let local_slots = (0..placement.len())
                .filter(|&s| placement[s] == *worker)
                .map(|s| s as u32)
                .collect();
            let deploy = Deploy {
                attempt: id,
                local_slots,
                slot_addresses: slot_addresses.clone(),
                restore: String::new(),
            };
            self.send(*worker, FromCoordinator::Deploy(deploy));
        }
        info!(
            job = self.job,
            attempt = id,
            workers = running.len(),
            slots = placement.len(),
            "deployed"
        );
        Attempt { id, running, failure: None, cancelled_at: None, cancel_requested: false }
    }

    fn on_event(&mut self, event: SessionEvent, attempt: Option<&mut Attempt>) {
        match event {
            SessionEvent::Registered { worker, register, line } => {
                info!(worker, name = %register.name, slots = register.slots, "worker registered");
                let entry = WorkerEntry {
                    name: register.name,
                    slots: register.slots as usize,
                    data_address: register.data_address,
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
            SessionEvent::Reported { worker, message } => match (message, attempt) {
                (ToCoordinator::Heartbeat(heartbeat), Some(attempt))
                    if attempt.running.contains_key(&worker) =>
                {
                    self.record(&heartbeat);
                }
                (ToCoordinator::Deployed(deployed), Some(attempt))
                    if deployed.attempt == attempt.id =>
                {
                    self.check_plan(worker, &deployed, attempt);
                }
                (ToCoordinator::TaskEnded(ended), Some(attempt)) if ended.attempt == attempt.id => {
                    self.on_task_ended(worker, ended, attempt);
                }
                _ => {} // from an earlier attempt, or before any
            },
        }
    }

    fn on_task_ended(&mut self, worker: u32, ended: TaskEnded, attempt: &mut Attempt) {
        if let Some(running) = attempt.running.get_mut(&worker) {
            *running = running.saturating_sub(1);
        }
        if !ended.error.is_empty() && !ended.cancelled {
            let name = self.workers.get(&worker).map_or("?", |w| w.name.as_str());
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
        let status =
            |w: &WorkerEntry| WorkerStatus { name: w.name.clone(), slots: w.slots, memory: None };
        self.status.workers(workers.map(status).collect());
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
        let workers: Vec<u32> = attempt.running.keys().copied().collect();
        for worker in workers {
            self.send(worker, FromCoordinator::Cancel(Cancel { attempt: attempt.id }));
        }
    }

    /// Tells every worker that the job is over and waits (a little) for them to leave, so
    /// that they exit on the shutdown rather than on losing the coordinator.
    fn shutdown(&mut self, events: &Receiver<SessionEvent>, reason: &str) {
        for worker in self.workers.keys() {
            self.send(*worker, FromCoordinator::Shutdown(Shutdown { reason: reason.to_string() }));
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.workers.is_empty() {
            match events.recv_deadline(deadline) {
                Ok(SessionEvent::Lost { worker, .. }) => drop(self.workers.remove(&worker)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }

    fn send(&self, worker: u32, message: FromCoordinator) {
        if let Some(entry) = self.workers.get(&worker) {
            let message: Result<CoordinatorMessage, Status> =
                Ok(CoordinatorMessage { kind: Some(message) });
            if entry.line.blocking_send(message).is_err() {
                warn!(worker, "cannot reach the worker; its session closed");
            }
        }
    }
}
