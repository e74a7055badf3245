//! The worker role: registers its slots with the coordinator, learns the job from it, and
//! runs the subtasks of its slots for each attempt the coordinator deploys, until the
//! coordinator shuts it down. Heartbeats carry the counters of its subtasks. It writes its
//! tasks' checkpoint state to checkpoint storage itself and acknowledges with handles.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, select};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};
use weir_memory::MemoryConfig;
use weir_rpc::tonic::transport::{Channel, Endpoint, Server};
use weir_rpc::v1::coordinator_message::Kind as FromCoordinator;
use weir_rpc::v1::exchange_server::ExchangeServer;
use weir_rpc::v1::worker_message::Kind as ToCoordinator;
use weir_rpc::v1::{
    CoordinatorMessage, Declined, Deploy, Deployed, EndOfData, Heartbeat, Register, SubtaskMetrics,
    TaskEnded, WorkerMessage,
};

use super::inbound::{ExchangeService, Inbound, InboundChannel};
use super::outbound::send_channel;
use super::targets::StateTargets;
use super::task_messages::{acknowledged_message, command_of};
use super::{ChannelKey, connect_patiently, http2_windows, network_runtime, network_window};
use crate::channels::received;
use crate::checkpoint::{
    BarrierMode, JobStorage, RestoredState, StateUploader, TaskCommand, TaskEvent, Uploaded,
};
use crate::exchange::CancelHandle;
use crate::executor::{SpawnedTasks, restore_state, sleep_until, spawn_tasks};
use crate::graph::StreamGraph;
use crate::plan::JobPlan;
use crate::progress::MetricsRegistry;
use crate::wiring::Wiring;
use crate::{Error, ExecutionConfig, Result};

/// Options of `JOB worker`.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The coordinator's `host:port`.
    pub coordinator: String,
    /// Slots this worker offers (one subtask of every operator each).
    pub slots: u32,
    /// Where the data plane listens (`host:port`, port 0 picks one).
    pub data_bind: String,
    /// The data plane's address as other workers reach it; defaults to the bound address.
    pub advertise: Option<String>,
    /// Memory settings of its own, instead of the coordinator's.
    pub memory: Option<MemoryConfig>,
}

/// The job as the coordinator runs it: what the worker builds.
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// The job's own arguments.
    pub job_args: Vec<String>,
    /// Its execution settings.
    pub config: ExecutionConfig,
}

/// A worker registered with its coordinator.
pub struct Worker {
    runtime: tokio::runtime::Runtime,
    to_coordinator: mpsc::Sender<WorkerMessage>,
    from_coordinator: Receiver<Option<CoordinatorMessage>>,
    inbound: Inbound,
    heartbeat_interval: Duration,
    name: String,
}

/// What every deployment of the job builds on.
#[derive(Clone, Copy)]
struct DeployedJob<'a> {
    graph: &'a StreamGraph,
    config: &'a ExecutionConfig,
    plan: &'a JobPlan,
    storage: &'a JobStorage,
}

/// The job-wide ids (chains in order, then subtasks) of the tasks in `slots`, in the order
/// the wiring builds them.
pub(crate) fn local_task_ids(plan: &JobPlan, slots: &BTreeSet<usize>) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut id = 0u32;
    for chain in &plan.chains {
        for subtask in 0..chain.parallelism {
            if slots.contains(&subtask) {
                ids.push(id);
            }
            id += 1;
        }
    }
    ids
}

/// One attempt's tasks on this worker.
struct LocalAttempt {
    attempt: u64,
    cancel: Option<CancelHandle>,
    tasks: SpawnedTasks,
    senders: Vec<std::thread::JoinHandle<()>>,
    metrics: MetricsRegistry,
    slots: BTreeSet<usize>,
    /// The job-wide id of each local task, by local index.
    task_ids: Vec<u32>,
    /// Writes the tasks' checkpoint state.
    uploader: StateUploader,
    /// Where it goes, checkpoint by checkpoint.
    targets: StateTargets,
}

impl Worker {
    /// Starts the data plane, registers with the coordinator, and returns the job to build.
    pub fn connect(options: &WorkerOptions) -> Result<(Worker, JobSpec)> {
        let runtime = network_runtime("weir-net")?;
        let inbound = Inbound::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&options.data_bind))
            .map_err(|e| Error::Cluster(format!("cannot listen on {}: {e}", options.data_bind)))?;
        let bound = listener.local_addr().map_err(|e| Error::Cluster(e.to_string()))?;
        let data_address = options.advertise.clone().unwrap_or_else(|| bound.to_string());
        let (stream_window, connection_window) = http2_windows();
        let service = ExchangeServer::new(ExchangeService(inbound.clone()));
        runtime.spawn(
            Server::builder()
                .initial_stream_window_size(stream_window)
                .initial_connection_window_size(connection_window)
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let name = format!("{}@{}", std::process::id(), data_address);
        let memory = match &options.memory {
            Some(memory) => serde_json::to_string(memory).map_err(|e| {
                Error::Cluster(format!("the memory settings do not serialize: {e}"))
            })?,
            None => String::new(),
        };
        let register = Register { data_address, slots: options.slots, name: name.clone(), memory };
        let (to_coordinator, outgoing) = mpsc::channel(64);
        let (forward, from_coordinator) = crossbeam_channel::unbounded();
        let accepted = runtime.block_on(async {
            let mut client = connect_patiently(&options.coordinator).await?;
            to_coordinator
                .send(WorkerMessage { kind: Some(ToCoordinator::Register(register)) })
                .await
                .map_err(|_| Error::Cluster("the session closed before registering".into()))?;
            let mut incoming = client
                .session(ReceiverStream::new(outgoing))
                .await
                .map_err(|s| Error::Cluster(format!("the coordinator refused the worker: {s}")))?
                .into_inner();
            let first = incoming.message().await.ok().flatten();
            let Some(FromCoordinator::Accepted(accepted)) = first.and_then(|m| m.kind) else {
                return Err(Error::Cluster("the coordinator did not accept the worker".into()));
            };
            tokio::spawn(async move {
                while let Ok(Some(message)) = incoming.message().await {
                    if forward.send(Some(message)).is_err() {
                        return;
                    }
                }
                let _ = forward.send(None);
            });
            Ok(accepted)
        })?;
        let config: ExecutionConfig = serde_json::from_str(&accepted.config).map_err(|e| {
            Error::Cluster(format!("the coordinator's execution config does not parse: {e}"))
        })?;
        info!(worker = accepted.worker, slots = options.slots, "registered with the coordinator");
        let worker = Worker {
            runtime,
            to_coordinator,
            from_coordinator,
            inbound,
            heartbeat_interval: Duration::from_millis(accepted.heartbeat_interval_ms.max(10)),
            name,
        };
        Ok((worker, JobSpec { job_args: accepted.job_args, config }))
    }

    /// Runs the attempts the coordinator deploys of the job `name` (`graph`, built with
    /// `config`) until it shuts this worker down (`Ok`) or goes away (`Err`).
    pub fn serve(self, name: &str, graph: &StreamGraph, config: &ExecutionConfig) -> Result<()> {
        let plan = JobPlan::new(graph, config)?;
        let storage = JobStorage::new(&config.checkpointing, name)?;
        let mut connections: HashMap<String, Channel> = HashMap::new();
        let mut current: Option<LocalAttempt> = None;
        let mut next_heartbeat = Instant::now();
        loop {
            let wait = next_heartbeat.saturating_duration_since(Instant::now());
            let never = crossbeam_channel::never();
            let done = current.as_ref().map_or(&never, |a| &a.tasks.done);
            let never_events = crossbeam_channel::never();
            let events = current.as_ref().map_or(&never_events, |a| &a.tasks.events);
            let never_uploaded = crossbeam_channel::never();
            let uploaded = current.as_ref().map_or(&never_uploaded, |a| a.uploader.uploaded());
            select! {
                recv(self.from_coordinator) -> message => match message.ok().flatten() {
                    Some(message) => match message.kind {
                        Some(FromCoordinator::Deploy(deploy)) => {
                            if let Some(previous) = current.take() {
                                previous.stop();
                            }
                            let job = DeployedJob { graph, config, plan: &plan, storage: &storage };
                            current = Some(self.deploy(&job, deploy, &mut connections)?);
                        }
                        Some(FromCoordinator::Cancel(cancel)) => {
                            if let Some(attempt) = current.as_mut().filter(|a| a.attempt == cancel.attempt) {
                                info!(attempt = attempt.attempt, "cancelling the attempt");
                                drop(attempt.cancel.take());
                                attempt.uploader.cancel();
                            }
                        }
                        Some(FromCoordinator::Shutdown(shutdown)) => {
                            info!("shutting down: {}", shutdown.reason);
                            if let Some(attempt) = current.take() {
                                attempt.stop();
                            }
                            return Ok(());
                        }
                        Some(FromCoordinator::TaskCommand(message)) => {
                            if let Some(attempt) = current.as_mut().filter(|a| a.attempt == message.attempt) {
                                attempt.command(&message);
                            }
                        }
                        Some(FromCoordinator::SavepointTarget(target)) => {
                            if let Some(attempt) = current.as_mut().filter(|a| a.attempt == target.attempt) {
                                match storage.snapshot_dir(&target.url) {
                                    Ok(dir) => attempt.on_savepoint(target.checkpoint, dir),
                                    Err(error) => warn!("cannot write savepoint {}: {error}", target.checkpoint),
                                }
                            }
                        }
                        Some(FromCoordinator::Heartbeat(_) | FromCoordinator::Accepted(_)) | None => {}
                    },
                    None => {
                        if let Some(attempt) = current.take() {
                            attempt.stop();
                        }
                        return Err(Error::Cluster("lost the coordinator; the worker stops".into()));
                    }
                },
                recv(done) -> ended => {
                    let attempt = current.as_mut().expect("done is read only while an attempt runs");
                    if let Some((task, name, result)) = received(&mut attempt.tasks.done, ended) {
                        self.send(ToCoordinator::Heartbeat(attempt.heartbeat()));
                        self.send(ToCoordinator::TaskEnded(attempt.ended(task, name, result)));
                    }
                }
                recv(events) -> event => {
                    let attempt = current.as_mut().expect("events are read only while an attempt runs");
                    if let Some(event) = received(&mut attempt.tasks.events, event)
                        && let Some(report) = attempt.report(event)
                    {
                        self.send(report);
                    }
                }
                recv(uploaded) -> uploaded => {
                    let attempt = current.as_ref().expect("uploads are read only while an attempt runs");
                    if let Ok(uploaded) = uploaded {
                        self.send(attempt.acknowledge(uploaded)?);
                    }
                }
                default(wait) => {
                    let heartbeat = current.as_ref().map(LocalAttempt::heartbeat).unwrap_or_default();
                    self.send(ToCoordinator::Heartbeat(heartbeat));
                    next_heartbeat = Instant::now() + self.heartbeat_interval;
                }
            }
        }
    }

    /// Builds and starts this worker's subtasks of `deploy`'s attempt.
    fn deploy(
        &self,
        job: &DeployedJob<'_>,
        deploy: Deploy,
        connections: &mut HashMap<String, Channel>,
    ) -> Result<LocalAttempt> {
        let DeployedJob { graph, config, plan, storage } = *job;
        let start_at = Instant::now() + Duration::from_millis(deploy.start_delay_ms);
        let from = match deploy.restore.as_str() {
            "" => None,
            restore => storage.initial_restore(restore)?,
        };
        let slots: BTreeSet<usize> = deploy.local_slots.iter().map(|&s| s as usize).collect();
        let beat = || self.send(ToCoordinator::Heartbeat(Heartbeat::default()));
        let mut restored = match from {
            // Loading a large state takes a while: the coordinator must still hear from us.
            Some(dir) => keeping_alive(self.heartbeat_interval, beat, || {
                restore_state(storage, &dir, graph, plan, config, Some(&slots))
            })?,
            None => RestoredState::default(),
        };
        let confirmed = std::mem::take(&mut restored.confirmed_shared);
        let uploader = StateUploader::new(
            storage.handle(),
            storage.checkpoints().cloned(),
            confirmed,
            config.checkpointing.incremental,
        );
        let targets = StateTargets::new(storage.checkpoints().cloned());
        let task_ids = local_task_ids(plan, &slots);
        let metrics = MetricsRegistry::for_plan(graph, plan);
        let (cancel, token) = CancelHandle::new();
        let wiring = Wiring::new(graph, plan, config, &metrics, token.clone(), restored)
            .only_slots(slots.clone(), deploy.attempt);
        let (tasks, remote) = wiring.build_tasks();
        info!(
            attempt = deploy.attempt,
            slots = ?slots,
            tasks = tasks.len(),
            remote_in = remote.inputs.len(),
            remote_out = remote.outputs.len(),
            restore = %deploy.restore,
            start_in_ms = start_at.saturating_duration_since(Instant::now()).as_millis(),
            "deploying"
        );
        if start_at > Instant::now() {
            // The rest of a restart delay, still heard from by the coordinator.
            keeping_alive(self.heartbeat_interval, beat, || sleep_until(start_at));
        }
        let window = network_window(config, remote.inputs.len());
        let inputs = remote
            .inputs
            .into_iter()
            .map(|(key, sink)| (key, InboundChannel { sink, window, cancel: token.clone() }))
            .collect();
        self.inbound.deploy(deploy.attempt, inputs);
        let mut senders = Vec::with_capacity(remote.outputs.len());
        for (key, source) in remote.outputs {
            let connection = self.connection(connections, &deploy.slot_addresses, key)?;
            senders.push(send_channel(
                self.runtime.handle(),
                connection,
                key,
                source,
                token.clone(),
            )?);
        }
        let barriers = Some(BarrierMode::from(&config.checkpointing));
        let final_checkpoint = config.checkpointing.interval().is_some();
        let tasks = spawn_tasks(tasks, &token, config, barriers, final_checkpoint)?;
        self.send(ToCoordinator::Deployed(Deployed {
            attempt: deploy.attempt,
            plan: plan.describe(),
        }));
        Ok(LocalAttempt {
            attempt: deploy.attempt,
            cancel: Some(cancel),
            tasks,
            senders,
            metrics,
            slots,
            task_ids,
            uploader,
            targets,
        })
    }

    /// The connection to the worker holding the consumer of `key`, opened once per worker.
    fn connection(
        &self,
        connections: &mut HashMap<String, Channel>,
        addresses: &[String],
        key: ChannelKey,
    ) -> Result<Channel> {
        let address = addresses.get(key.consumer).ok_or_else(|| {
            Error::Cluster(format!("the deployment names no worker for slot {}", key.consumer))
        })?;
        if let Some(connection) = connections.get(address) {
            return Ok(connection.clone());
        }
        let (stream_window, connection_window) = http2_windows();
        let _runtime = self.runtime.enter(); // the connection's task runs on it
        let connection = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| Error::Cluster(format!("bad worker address '{address}': {e}")))?
            .initial_stream_window_size(stream_window)
            .initial_connection_window_size(connection_window)
            .tcp_nodelay(true)
            .connect_lazy();
        connections.insert(address.clone(), connection.clone());
        Ok(connection)
    }

    fn send(&self, kind: ToCoordinator) {
        let message = WorkerMessage { kind: Some(kind) };
        if self.to_coordinator.blocking_send(message).is_err() {
            warn!(worker = %self.name, "the coordinator session closed");
        }
    }
}

/// Runs `work` while another thread calls `beat` every `interval`, until `work` returns.
fn keeping_alive<R>(interval: Duration, beat: impl Fn() + Sync, work: impl FnOnce() -> R) -> R {
    let (done, finished) = crossbeam_channel::bounded::<()>(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while finished.recv_timeout(interval) == Err(RecvTimeoutError::Timeout) {
                beat();
            }
        });
        let result = work();
        drop(done);
        result
    })
}

impl LocalAttempt {
    /// The counters of this worker's subtasks.
    fn heartbeat(&self) -> Heartbeat {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let metrics = self
            .metrics
            .each_subtask()
            .filter(|(_, subtask, _, _)| self.slots.contains(subtask))
            .map(|(node, subtask, counters, load)| {
                let totals = load.totals();
                SubtaskMetrics {
                    node: narrow(node),
                    subtask: narrow(subtask),
                    records_in: counters.records_in(),
                    records_out: counters.records_out(),
                    watermark: counters.watermark().map(|watermark| watermark.0),
                    idle: counters.is_idle(),
                    uptime_ns: totals.uptime_ns,
                    idle_ns: totals.idle_ns,
                    backpressured_ns: totals.backpressured_ns,
                }
            })
            .collect();
        Heartbeat { metrics }
    }

    /// The report of a task that ended with `result`.
    fn ended(&self, task: usize, name: String, result: weir_operators::Result<()>) -> TaskEnded {
        let cancelled = self.cancel.is_none();
        let error = match result {
            Ok(()) => String::new(),
            Err(weir_operators::Error::Cancelled) if cancelled => "cancelled".to_string(),
            Err(weir_operators::Error::Cancelled) => {
                "an input or output channel closed before its end: a task it exchanges \
                 records with failed"
                    .to_string()
            }
            Err(failure) => failure.to_string(),
        };
        TaskEnded {
            attempt: self.attempt,
            task: name,
            error,
            cancelled,
            task_id: self.task_ids[task],
        }
    }

    /// Hands a checkpoint command from the coordinator to its task; the end of a checkpoint
    /// also tells the uploader which shared files are stored.
    fn command(&mut self, message: &weir_rpc::v1::TaskCommand) {
        let local = self.task_ids.iter().position(|&id| id == message.task_id);
        let Some(command) = command_of(message) else { return };
        match command {
            TaskCommand::Complete(id) => {
                self.uploader.on_complete(id);
                self.targets.forget(id);
            }
            TaskCommand::Abort(id) => {
                self.uploader.on_abort(id);
                self.targets.forget(id);
            }
            TaskCommand::Trigger(_) | TaskCommand::StopAfter(_) => {}
        }
        if let Some(local) = local {
            let _ = self.tasks.entries[local].commands.send(command);
        }
    }

    /// The directory of savepoint `id` is known: state waiting for it is written there.
    fn on_savepoint(&mut self, id: u64, dir: weir_checkpoint::SnapshotDir) {
        for (dir, state) in self.targets.on_savepoint(id, dir) {
            self.uploader.upload(dir, state);
        }
    }

    /// A task's checkpoint traffic: its state is written to storage (acknowledged once it is,
    /// by [`Self::acknowledge`]); the rest is for the coordinator now.
    fn report(&mut self, event: TaskEvent) -> Option<ToCoordinator> {
        let (attempt, id) = (self.attempt, |task: usize| self.task_ids[task]);
        Some(match event {
            TaskEvent::Acknowledged(state) => {
                if let Some((dir, state)) = self.targets.place(*state) {
                    self.uploader.upload(dir, state);
                }
                return None;
            }
            TaskEvent::Declined { task, checkpoint, reason } => {
                ToCoordinator::Declined(Declined { attempt, task_id: id(task), checkpoint, reason })
            }
            TaskEvent::EndOfData { task } => {
                ToCoordinator::EndOfData(EndOfData { attempt, task_id: id(task) })
            }
        })
    }

    /// A task's state is in storage (acknowledge with its handles) or could not be written
    /// (decline).
    fn acknowledge(&self, uploaded: Uploaded) -> Result<ToCoordinator> {
        let attempt = self.attempt;
        Ok(match uploaded {
            Uploaded::Stored(acknowledgement) => {
                let task_id = self.task_ids[acknowledgement.task];
                ToCoordinator::Acknowledged(acknowledged_message(
                    attempt,
                    task_id,
                    acknowledgement,
                )?)
            }
            Uploaded::Failed { task, checkpoint, reason } => {
                let task_id = self.task_ids[task];
                ToCoordinator::Declined(Declined { attempt, task_id, checkpoint, reason })
            }
        })
    }

    /// Cancels the attempt and waits for its threads.
    fn stop(mut self) {
        drop(self.cancel.take());
        self.tasks.threads.drain(..).for_each(|t| drop(t.join()));
        self.senders.drain(..).for_each(|t| drop(t.join()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn heartbeats_go_on_while_a_restore_runs_and_stop_with_it() {
        let beats = AtomicUsize::new(0);
        let beat = || {
            beats.fetch_add(1, Ordering::SeqCst);
        };
        let result = keeping_alive(Duration::from_millis(20), beat, || {
            std::thread::sleep(Duration::from_millis(210));
            7
        });
        assert_eq!(result, 7);
        let during = beats.load(Ordering::SeqCst);
        assert!((5..=11).contains(&during), "{during} beats in 210 ms at one per 20 ms");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(beats.load(Ordering::SeqCst), during, "no beat after the work ended");
    }
}
