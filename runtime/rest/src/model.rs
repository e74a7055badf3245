//! The JSON the API answers with, built from a job's status snapshot. Times are milliseconds
//! since the Unix epoch, durations milliseconds, sizes bytes; names are snake_case.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use weir_types::{SavepointFormat, SnapshotType};
use weir_worker::checkpoint::CheckpointStats;
use weir_worker::{JobFailure, JobState, JobStatusSnapshot, WorkerStatus};

use crate::graph::JobGraph;

/// `GET /jobs`.
#[derive(Debug, Serialize)]
pub struct JobList {
    /// Every job served.
    pub jobs: Vec<JobOverview>,
}

/// A job in one line.
#[derive(Debug, Serialize)]
pub struct JobOverview {
    /// Its name.
    pub name: String,
    /// `created`, `running`, `restarting`, `finished`, `failed`, `cancelled` or `stopped`.
    pub state: &'static str,
    /// When it was submitted.
    pub start_time_ms: u64,
    /// How long it has run (until it ended).
    pub duration_ms: u64,
    /// Restarts after failures.
    pub restarts: u32,
    /// The widest operator's parallelism.
    pub parallelism: usize,
}

/// `GET /jobs/{name}`.
#[derive(Debug, Serialize)]
pub struct JobDetails {
    /// The overview fields.
    #[serde(flatten)]
    pub overview: JobOverview,
    /// Where the savepoint is when the job was stopped with one.
    pub stopped_with_savepoint: Option<String>,
    /// Vertices and edges.
    #[serde(flatten)]
    pub graph: JobGraph,
    /// Restarts the restart strategy still allows.
    pub restarts_remaining: u32,
    /// Failures so far, restarted after or not.
    pub failure_count: usize,
    /// The latest failure.
    pub last_failure: Option<Failure>,
}

/// A failure of the job.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// When it happened.
    pub time_ms: u64,
    /// The operator subtask that failed, when known.
    pub operator: Option<String>,
    /// The root cause.
    pub message: String,
}

/// `GET /jobs/{name}/exceptions`.
#[derive(Debug, Serialize)]
pub struct Exceptions {
    /// Restarts so far.
    pub restarts: u32,
    /// Restarts the restart strategy still allows.
    pub restarts_remaining: u32,
    /// Every failure, newest first.
    pub history: Vec<Failure>,
}

/// `GET /workers`.
#[derive(Debug, Serialize)]
pub struct Workers {
    /// The processes running the jobs, each once.
    pub workers: Vec<Worker>,
}

/// A process running subtasks.
#[derive(Debug, Serialize)]
pub struct Worker {
    /// Its name.
    pub name: String,
    /// Slots it offers.
    pub slots: usize,
    /// Its memory split, when configured.
    pub memory: Option<Memory>,
}

/// How a process's memory is split.
#[derive(Debug, Serialize)]
pub struct Memory {
    /// The whole process.
    pub process: u64,
    /// Overhead, network, managed and task memory, in that order.
    pub components: Vec<MemoryComponent>,
}

/// One part of a process's memory.
#[derive(Debug, Serialize)]
pub struct MemoryComponent {
    /// `runtime overhead`, `network`, `managed` or `task`.
    pub name: &'static str,
    /// Its size.
    pub bytes: u64,
}

/// `GET /jobs/{name}/checkpoints`.
#[derive(Debug, Serialize)]
pub struct Checkpoints {
    /// Checkpoints and savepoints that completed.
    pub completed: usize,
    /// Those that failed.
    pub failed: usize,
    /// Where the latest completed savepoint is.
    pub latest_savepoint: Option<String>,
    /// Every one, oldest first.
    pub history: Vec<Checkpoint>,
}

/// One checkpoint or savepoint.
#[derive(Debug, Serialize)]
pub struct Checkpoint {
    /// Its id.
    pub id: u64,
    /// `checkpoint` or `savepoint`.
    pub kind: &'static str,
    /// A savepoint's format, `canonical` or `native` (Flink's `savepointFormat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub savepoint_format: Option<SavepointFormat>,
    /// `completed` or `failed`.
    pub status: &'static str,
    /// From trigger to completion or failure.
    pub duration_ms: u64,
    /// Bytes of state, including files shared with earlier checkpoints.
    pub state_size: u64,
    /// Bytes this checkpoint wrote.
    pub incremental_size: u64,
    /// The longest barrier alignment of any task.
    pub alignment_ms: u64,
    /// Whether any task took it unaligned.
    pub unaligned: bool,
    /// Bytes of in-flight records stored with it.
    pub in_flight_bytes: u64,
    /// Where it is.
    pub location: String,
    /// Why it failed.
    pub failure: Option<String>,
}

/// `POST /jobs/{name}/savepoints`.
#[derive(Debug, Serialize)]
pub struct SavepointTaken {
    /// Where the savepoint is.
    pub location: String,
}

impl From<&JobStatusSnapshot> for JobOverview {
    fn from(job: &JobStatusSnapshot) -> Self {
        JobOverview {
            name: job.name.clone(),
            state: job.state.name(),
            start_time_ms: epoch_ms(job.start_time),
            duration_ms: ms(job.duration),
            restarts: job.restarts,
            parallelism: job.vertices.iter().map(|v| v.subtasks.len()).max().unwrap_or(0),
        }
    }
}

impl From<&JobStatusSnapshot> for JobDetails {
    fn from(job: &JobStatusSnapshot) -> Self {
        let stopped_with_savepoint = match &job.state {
            JobState::Stopped(location) => Some(location.clone()),
            _ => None,
        };
        JobDetails {
            overview: job.into(),
            stopped_with_savepoint,
            graph: job.into(),
            restarts_remaining: job.restarts_remaining,
            failure_count: job.failures.len(),
            last_failure: job.failures.last().map(Failure::from),
        }
    }
}

impl From<&JobFailure> for Failure {
    fn from(failure: &JobFailure) -> Self {
        Failure {
            time_ms: epoch_ms(failure.time),
            operator: failure.operator.clone(),
            message: failure.message.clone(),
        }
    }
}

impl From<&JobStatusSnapshot> for Exceptions {
    fn from(job: &JobStatusSnapshot) -> Self {
        Exceptions {
            restarts: job.restarts,
            restarts_remaining: job.restarts_remaining,
            history: job.failures.iter().rev().map(Failure::from).collect(),
        }
    }
}

impl Workers {
    /// The workers of `jobs`, each named once.
    pub fn of(jobs: &[JobStatusSnapshot]) -> Self {
        let mut workers: Vec<Worker> = Vec::new();
        for worker in jobs.iter().flat_map(|job| &job.workers) {
            if workers.iter().all(|known| known.name != worker.name) {
                workers.push(worker.into());
            }
        }
        Workers { workers }
    }
}

impl From<&WorkerStatus> for Worker {
    fn from(worker: &WorkerStatus) -> Self {
        let memory = worker.memory.as_ref().map(|memory| Memory {
            process: memory.process.0,
            components: (memory.components().into_iter())
                .map(|(name, component)| MemoryComponent { name, bytes: component.size.0 })
                .collect(),
        });
        Worker { name: worker.name.clone(), slots: worker.slots, memory }
    }
}

impl From<&JobStatusSnapshot> for Checkpoints {
    fn from(job: &JobStatusSnapshot) -> Self {
        let failed = job.failed_checkpoints();
        Checkpoints {
            completed: job.checkpoints.len() - failed,
            failed,
            latest_savepoint: job.latest_savepoint().map(str::to_string),
            history: job.checkpoints.iter().map(Checkpoint::from).collect(),
        }
    }
}

impl From<&CheckpointStats> for Checkpoint {
    fn from(stats: &CheckpointStats) -> Self {
        Checkpoint {
            id: stats.id,
            kind: match stats.kind {
                SnapshotType::Checkpoint => "checkpoint",
                SnapshotType::Savepoint(_) => "savepoint",
            },
            savepoint_format: match stats.kind {
                SnapshotType::Checkpoint => None,
                SnapshotType::Savepoint(format) => Some(format),
            },
            status: if stats.failure.is_some() { "failed" } else { "completed" },
            duration_ms: ms(stats.duration),
            state_size: stats.state_size,
            incremental_size: stats.incremental_size,
            alignment_ms: ms(stats.alignment),
            unaligned: stats.unaligned,
            in_flight_bytes: stats.in_flight_size,
            location: stats.location.clone(),
            failure: stats.failure.clone(),
        }
    }
}

/// Milliseconds, saturating.
pub(crate) fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch (0 before it).
fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(ms).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use weir_worker::load::LoadRatios;
    use weir_worker::{SubtaskCounts, VertexStatus};

    use super::*;

    fn stats(id: u64, kind: SnapshotType, failure: Option<&str>) -> CheckpointStats {
        CheckpointStats {
            id,
            kind,
            duration: Duration::from_millis(12),
            state_size: 100,
            incremental_size: 40,
            alignment: Duration::from_millis(3),
            unaligned: false,
            in_flight_size: 0,
            failure: failure.map(str::to_string),
            location: format!("file:///c/chk-{id}"),
        }
    }

    /// A stopped job with one failure, one vertex and three checkpoints.
    pub(crate) fn stopped_job() -> JobStatusSnapshot {
        JobStatusSnapshot {
            name: "job".into(),
            state: JobState::Stopped("file:///s/sp-3".into()),
            start_time: UNIX_EPOCH + Duration::from_millis(1_000),
            duration: Duration::from_millis(2_500),
            restarts: 1,
            restarts_remaining: 2,
            failures: vec![JobFailure {
                time: UNIX_EPOCH + Duration::from_millis(2_000),
                message: "boom".into(),
                operator: Some("map (2/2)".into()),
            }],
            vertices: vec![VertexStatus {
                name: "map".into(),
                subtasks: vec![counts(3, 2), counts(4, 1)],
            }],
            edges: Vec::new(),
            workers: Vec::new(),
            checkpoints: vec![
                stats(1, SnapshotType::Checkpoint, None),
                stats(2, SnapshotType::Checkpoint, Some("timed out")),
                stats(3, SnapshotType::Savepoint(SavepointFormat::Canonical), None),
            ],
        }
    }

    fn counts(records_in: u64, records_out: u64) -> SubtaskCounts {
        let load = LoadRatios { busy: 250, backpressured: 500, idle: 250 };
        SubtaskCounts { records_in, records_out, watermark: None, idle: false, load }
    }

    #[test]
    fn job_details_carry_totals_subtasks_and_the_last_failure() {
        let json = serde_json::to_value(JobDetails::from(&stopped_job())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "job", "state": "stopped", "start_time_ms": 1000, "duration_ms": 2500,
                "restarts": 1, "parallelism": 2, "stopped_with_savepoint": "file:///s/sp-3",
                "restarts_remaining": 2,
                "vertices": [{
                    "id": 0, "name": "map", "parallelism": 2, "records_in": 7, "records_out": 3,
                    "busy_ratio": 0.25, "backpressured_ratio": 0.5, "watermark": null,
                    "idle": false, "watermark_held_back_by": null, "idle_inputs": [],
                    "subtasks": [
                        { "subtask": 0, "records_in": 3, "records_out": 2, "busy_ratio": 0.25,
                          "backpressured_ratio": 0.5, "idle_ratio": 0.25, "watermark": null,
                          "idle": false },
                        { "subtask": 1, "records_in": 4, "records_out": 1, "busy_ratio": 0.25,
                          "backpressured_ratio": 0.5, "idle_ratio": 0.25, "watermark": null,
                          "idle": false },
                    ],
                }],
                "edges": [],
                "failure_count": 1,
                "last_failure": { "time_ms": 2000, "operator": "map (2/2)", "message": "boom" },
            })
        );
    }

    #[test]
    fn checkpoints_count_failures_and_name_the_latest_savepoint() {
        let json = serde_json::to_value(Checkpoints::from(&stopped_job())).unwrap();
        assert_eq!((json["completed"].as_u64(), json["failed"].as_u64()), (Some(2), Some(1)));
        assert_eq!(json["latest_savepoint"], "file:///c/chk-3");
        assert_eq!(
            json["history"][1],
            serde_json::json!({
                "id": 2, "kind": "checkpoint", "status": "failed", "duration_ms": 12,
                "state_size": 100, "incremental_size": 40, "alignment_ms": 3, "unaligned": false,
                "in_flight_bytes": 0, "location": "file:///c/chk-2", "failure": "timed out",
            })
        );
        assert_eq!(json["history"][2]["kind"], "savepoint");
        assert_eq!(json["history"][2]["savepoint_format"], "canonical");
    }
}
