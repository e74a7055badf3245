//! The live status of a running job, shared between its driver and readers such as the REST
//! API: state, restarts, failures, vertices with live counters, and checkpoint history.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::checkpoint::CheckpointStats;
use crate::progress::MetricsRegistry;
use crate::{Error, JobResult, Result};

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
}

/// Records in and out of one operator subtask, read when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubtaskCounts {
    /// Records taken in.
    pub records_in: u64,
    /// Records sent on.
    pub records_out: u64,
}

/// One operator of the job, with the counters of each subtask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VertexStatus {
    /// The operator's name.
    pub name: String,
    /// Counters per subtask; their number is the operator's parallelism.
    pub subtasks: Vec<SubtaskCounts>,
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
    /// Failures so far, oldest first.
    pub failures: Vec<JobFailure>,
    /// Operators in graph order; empty until the job is planned.
    pub vertices: Vec<VertexStatus>,
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
            .find(|c| c.kind == weir_types::SnapshotType::Savepoint && c.failure.is_none())
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
    failures: Vec<JobFailure>,
    metrics: Option<MetricsRegistry>,
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
            failures: Vec::new(),
            metrics: None,
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
            failures: inner.failures.clone(),
            vertices: inner.metrics.as_ref().map(MetricsRegistry::vertices).unwrap_or_default(),
            checkpoints: inner.checkpoints.clone(),
        })
    }

    /// The job's operators and their counters are known.
    pub(crate) fn planned(&self, metrics: &MetricsRegistry) {
        self.write(|inner| inner.metrics = Some(metrics.clone()));
    }

    /// The job's tasks (re)started.
    pub(crate) fn running(&self) {
        self.write(|inner| inner.state = JobState::Running);
    }

    /// The job failed with `message` and restarts (for the `restarts`-th time).
    pub(crate) fn restarting(&self, message: String, restarts: u32) {
        self.write(|inner| {
            inner.failures.push(JobFailure { time: SystemTime::now(), message });
            inner.state = JobState::Restarting;
            inner.restarts = restarts;
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
            Err(Error::JobFailed { source, .. }) => (JobState::Failed, Some(source.to_string())),
            Err(error) => (JobState::Failed, Some(error.to_string())),
        };
        self.write(|inner| {
            if let Some(message) = failure {
                inner.failures.push(JobFailure { time: SystemTime::now(), message });
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
        status.planned(&metrics);
        status.running();
        metrics.subtask(0, 1).add_in(5);
        let snapshot = reader.snapshot();
        assert_eq!(snapshot.state, JobState::Running);
        assert_eq!(snapshot.vertices[0].subtasks[1].records_in, 5);
        status.restarting("boom".into(), 1);
        let failure = weir_operators::Error::Runtime("boom again".into());
        status.ended(&Err(Error::JobFailed { job: "job".into(), restarts: 1, source: failure }));
        let snapshot = reader.snapshot();
        assert_eq!(snapshot.state, JobState::Failed);
        assert!(snapshot.state.is_terminal());
        assert_eq!(snapshot.restarts, 1);
        let messages: Vec<_> = snapshot.failures.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages, ["boom", "boom again"]);
        let duration = snapshot.duration;
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(reader.snapshot().duration, duration, "the clock stops when the job ends");
    }
}
