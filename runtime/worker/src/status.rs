//! The live status of a running job, shared between its driver and readers such as the REST
//! API: state, restarts, failures, vertices with live counters, and checkpoint history.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use weir_memory::MemoryBreakdown;
use weir_types::Watermark;

use crate::checkpoint::CheckpointStats;
use crate::load::LoadRatios;
use crate::progress::MetricsRegistry;
use crate::{Error, JobResult, RestartTracker, Result};

/// Where a job is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Accepted, its tasks not started yet.
    Created,
    /// Its tasks run.
    Running,
    /// A task failed; the job waits to run again from its latest checkpoint.
    Restarting,
    /// Every input ended.
    Finished,
    /// Failed for good.
    Failed,
    /// Cancelled on request.
    Cancelled,
    /// Stopped after a savepoint at this location.
    Stopped(String),
}

impl JobState {
    /// The state's name in lower case, as the REST API spells it.
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Created => "created",
            JobState::Running => "running",
            JobState::Restarting => "restarting",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Stopped(_) => "stopped",
        }
    }

    /// Whether the job has ended.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, JobState::Created | JobState::Running | JobState::Restarting)
    }
}

/// A failure of the job, whether it restarted after it or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    /// When it happened.
    pub time: SystemTime,
    /// The root cause, naming the operator or task.
    pub message: String,
    /// The operator subtask that failed (`name (index/parallelism)`), when known.
    pub operator: Option<String>,
}

impl JobFailure {
    /// The failure `error` now.
    fn now(error: &weir_operators::Error) -> Self {
        let operator = match error {
            weir_operators::Error::Operator { operator, subtask, .. } => {
                Some(format!("{operator} ({subtask})"))
            }
            _ => None,
        };
        JobFailure { time: SystemTime::now(), message: error.to_string(), operator }
    }
}

/// The figures of one operator subtask, read when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubtaskCounts {
    /// Records taken in.
    pub records_in: u64,
    /// Records sent on.
    pub records_out: u64,
    /// The latest watermark it received or emitted, if any.
    pub watermark: Option<Watermark>,
    /// Its input is idle, so it does not hold back event time.
    pub idle: bool,
    /// How its task spent the latest window of time.
    pub load: LoadRatios,
}

/// One operator of the job, with the figures of each subtask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VertexStatus {
    /// The operator's name.
    pub name: String,
    /// Figures per subtask; their number is the operator's parallelism.
    pub subtasks: Vec<SubtaskCounts>,
}

/// An edge of the job graph, between operators by index in graph order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeStatus {
    /// The producing operator.
    pub source: usize,
    /// The consuming operator.
    pub target: usize,
    /// How records are distributed (`FORWARD`, `HASH`, …).
    pub partitioning: &'static str,
    /// Whether both run in one task (no channel between them).
    pub chained: bool,
}

/// A process running the job's subtasks.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerStatus {
    /// Its name (embedded: this process).
    pub name: String,
    /// Slots it offers.
    pub slots: usize,
    /// How its memory is split, when it is configured.
    pub memory: Option<MemoryBreakdown>,
}

/// A copy of a job's status at one moment.
#[derive(Clone, Debug)]
pub struct JobStatusSnapshot {
    /// The job's name.
    pub name: String,
    /// Where the job is in its life.
    pub state: JobState,
    /// When the job was submitted.
    pub start_time: SystemTime,
    /// How long it has run (until it ended, once it has).
    pub duration: Duration,
    /// Restarts after failures.
    pub restarts: u32,
    /// Restarts the restart strategy still allows.
    pub restarts_remaining: u32,
    /// Failures so far, oldest first.
    pub failures: Vec<JobFailure>,
    /// Operators in graph order; empty until the job is planned.
    pub vertices: Vec<VertexStatus>,
    /// Edges between the vertices.
    pub edges: Vec<EdgeStatus>,
    /// The processes running the job.
    pub workers: Vec<WorkerStatus>,
    /// Checkpoints and savepoints, completed or failed, oldest first.
    pub checkpoints: Vec<CheckpointStats>,
}

impl JobStatusSnapshot {
    /// How many checkpoints and savepoints failed.
    pub fn failed_checkpoints(&self) -> usize {
        self.checkpoints.iter().filter(|c| c.failure.is_some()).count()
    }

    /// The latest checkpoint or savepoint that completed.
    pub fn last_completed_checkpoint(&self) -> Option<&CheckpointStats> {
        self.checkpoints.iter().rev().find(|c| c.failure.is_none())
    }

    /// The location of the latest completed savepoint, if any.
    pub fn latest_savepoint(&self) -> Option<&str> {
        self.checkpoints
            .iter()
            .rev()
            .find(|c| c.kind.is_savepoint() && c.failure.is_none())
            .map(|c| c.location.as_str())
    }
}

/// What the driver writes and readers copy.
struct Inner {
    name: String,
    state: JobState,
    start_time: SystemTime,
    started: Instant,
    ended: Option<Instant>,
    restarts: u32,
    restarts_remaining: u32,
    failures: Vec<JobFailure>,
    metrics: Option<MetricsRegistry>,
    workers: Vec<WorkerStatus>,
    checkpoints: Vec<CheckpointStats>,
}

/// A cloneable, thread-safe handle on a job's live status: the executor updates it at
/// transitions, readers take [`JobStatus::snapshot`]s. Record counters are read at snapshot
/// time from the tasks' own counters, so the hot path never touches it.
#[derive(Clone)]
pub struct JobStatus(Arc<RwLock<Inner>>);

impl JobStatus {
    /// The status of a job called `name`, just submitted.
    pub fn new(name: &str) -> Self {
        JobStatus(Arc::new(RwLock::new(Inner {
            name: name.to_string(),
            state: JobState::Created,
            start_time: SystemTime::now(),
            started: Instant::now(),
            ended: None,
            restarts: 0,
            restarts_remaining: 0,
            failures: Vec::new(),
            metrics: None,
            workers: Vec::new(),
            checkpoints: Vec::new(),
        })))
    }

    /// The job's name.
    pub fn name(&self) -> String {
        self.read(|inner| inner.name.clone())
    }

    /// The job's status now.
    pub fn snapshot(&self) -> JobStatusSnapshot {
        self.read(|inner| JobStatusSnapshot {
            name: inner.name.clone(),
            state: inner.state.clone(),
            start_time: inner.start_time,
            duration: inner.ended.unwrap_or_else(Instant::now) - inner.started,
            restarts: inner.restarts,
            restarts_remaining: inner.restarts_remaining,
            failures: inner.failures.clone(),
            vertices: inner.metrics.as_ref().map(MetricsRegistry::vertices).unwrap_or_default(),
            edges: inner.metrics.as_ref().map(|m| m.edges().to_vec()).unwrap_or_default(),
            workers: inner.workers.clone(),
            checkpoints: inner.checkpoints.clone(),
        })
    }

    /// The job's operators and their counters are known, and its restart strategy.
    pub(crate) fn planned(&self, metrics: &MetricsRegistry, restarts: &RestartTracker) {
        self.write(|inner| {
            inner.metrics = Some(metrics.clone());
            inner.restarts_remaining = restarts.remaining();
        });
    }

    /// The processes running the job are `workers`.
    pub(crate) fn workers(&self, workers: Vec<WorkerStatus>) {
        self.write(|inner| inner.workers = workers);
    }

    /// The job's tasks (re)started.
    pub(crate) fn running(&self) {
        self.write(|inner| inner.state = JobState::Running);
    }

    /// The job failed with `error` and restarts as `restarts` decided.
    pub(crate) fn restarting(&self, error: &weir_operators::Error, restarts: &RestartTracker) {
        self.write(|inner| {
            inner.failures.push(JobFailure::now(error));
            inner.state = JobState::Restarting;
            inner.restarts = restarts.restarts();
            inner.restarts_remaining = restarts.remaining();
        });
    }

    /// A checkpoint or savepoint completed or failed.
    pub(crate) fn checkpointed(&self, stats: &[CheckpointStats]) {
        if !stats.is_empty() {
            self.write(|inner| inner.checkpoints.extend_from_slice(stats));
        }
    }

    /// The job ended with `result`.
    pub(crate) fn ended(&self, result: &Result<JobResult>) {
        let (state, failure) = match result {
            Ok(JobResult { savepoint: Some(location), .. }) => {
                (JobState::Stopped(location.clone()), None)
            }
            Ok(_) => (JobState::Finished, None),
            Err(Error::JobFailed { source: weir_operators::Error::Cancelled, .. }) => {
                (JobState::Cancelled, None)
            }
            Err(Error::JobFailed { source, .. }) => {
                (JobState::Failed, Some(JobFailure::now(source)))
            }
            Err(error) => {
                let message = error.to_string();
                (
                    JobState::Failed,
                    Some(JobFailure { time: SystemTime::now(), message, operator: None }),
                )
            }
        };
        self.write(|inner| {
            if let Some(failure) = failure {
                inner.failures.push(failure);
                inner.restarts_remaining = 0;
            }
            inner.state = state;
            inner.ended = Some(Instant::now());
        });
    }

    fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.0.write().unwrap_or_else(PoisonError::into_inner));
    }
}

impl std::fmt::Debug for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.read(|inner| write!(f, "JobStatus({}, {})", inner.name, inner.state.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_visible_to_clones() {
        let status = JobStatus::new("job");
        let reader = status.clone();
        assert_eq!(reader.snapshot().state, JobState::Created);
        let metrics = MetricsRegistry::new([("map".to_string(), 2)]);
        let strategy = crate::RestartStrategy::FixedDelay { attempts: 2, delay_ms: 0 };
        let mut restarts = RestartTracker::new(strategy);
        status.planned(&metrics, &restarts);
        assert_eq!(reader.snapshot().restarts_remaining, 2);
        status.running();
        metrics.subtask(0, 1).add_in(5);
        metrics.subtask(0, 1).watermark_reached(Watermark(42));
        let snapshot = reader.snapshot();
        assert_eq!(snapshot.state, JobState::Running);
        assert_eq!(snapshot.vertices[0].subtasks[1].records_in, 5);
        assert_eq!(snapshot.vertices[0].subtasks[1].watermark, Some(Watermark(42)));
        assert_eq!(snapshot.vertices[0].subtasks[0].watermark, None);
        restarts.on_failure(Instant::now());
        let info = weir_operators::SubtaskInfo::new("map", 0, 2, 128);
        let boom = weir_operators::Error::operator(&info, "boom".into());
        status.restarting(&boom, &restarts);
        let snapshot = reader.snapshot();
        assert_eq!(snapshot.restarts_remaining, 1);
        assert_eq!(snapshot.failures[0].operator.as_deref(), Some("map (1/2)"));
        let failure = weir_operators::Error::Runtime("boom again".into());
        status.ended(&Err(Error::JobFailed { job: "job".into(), restarts: 1, source: failure }));
        let snapshot = reader.snapshot();
        assert_eq!(snapshot.state, JobState::Failed);
        assert!(snapshot.state.is_terminal());
        assert_eq!(snapshot.restarts, 1);
        let messages: Vec<_> = snapshot.failures.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages, ["operator 'map' (subtask 1/2) failed: boom", "boom again"]);
        assert_eq!(snapshot.restarts_remaining, 0, "a failed job has no restarts left");
        let duration = snapshot.duration;
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(reader.snapshot().duration, duration, "the clock stops when the job ends");
    }
}
