//! The JSON the API answers with, built from a job's status snapshot. Times are milliseconds
//! since the Unix epoch, durations milliseconds, sizes bytes; names are snake_case.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use weir_types::SnapshotType;
use weir_worker::checkpoint::CheckpointStats;
use weir_worker::{JobFailure, JobState, JobStatusSnapshot, SubtaskCounts, VertexStatus};

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
}

/// `GET /jobs/{name}`.
#[derive(Debug, Serialize)]
pub struct JobDetails {
    /// The overview fields.
    #[serde(flatten)]
    pub overview: JobOverview,
    /// Where the savepoint is when the job was stopped with one.
    pub stopped_with_savepoint: Option<String>,
    /// Operators in graph order.
    pub vertices: Vec<Vertex>,
    /// Failures so far, restarted after or not.
    pub failure_count: usize,
    /// The latest failure.
    pub last_failure: Option<Failure>,
}

/// One operator with totals and per-subtask counters.
#[derive(Debug, Serialize)]
pub struct Vertex {
    /// The operator's name.
    pub name: String,
    /// Its parallelism.
    pub parallelism: usize,
    /// Records taken in, over all subtasks.
    pub records_in: u64,
    /// Records sent on, over all subtasks.
    pub records_out: u64,
    /// Per subtask, by index.
    pub subtasks: Vec<Subtask>,
}

/// The counters of one subtask.
#[derive(Debug, Serialize)]
pub struct Subtask {
    /// Its index.
    pub subtask: usize,
    /// Records taken in.
    pub records_in: u64,
    /// Records sent on.
    pub records_out: u64,
}

/// A failure of the job.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// When it happened.
    pub time_ms: u64,
    /// The root cause.
    pub message: String,
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
            vertices: job.vertices.iter().map(Vertex::from).collect(),
            failure_count: job.failures.len(),
            last_failure: job.failures.last().map(Failure::from),
        }
    }
}

impl From<&VertexStatus> for Vertex {
    fn from(vertex: &VertexStatus) -> Self {
        let total = |count: fn(&SubtaskCounts) -> u64| vertex.subtasks.iter().map(count).sum();
        Vertex {
            name: vertex.name.clone(),
            parallelism: vertex.subtasks.len(),
            records_in: total(|s| s.records_in),
            records_out: total(|s| s.records_out),
            subtasks: (vertex.subtasks.iter().enumerate())
                .map(|(subtask, s)| Subtask {
                    subtask,
                    records_in: s.records_in,
                    records_out: s.records_out,
                })
                .collect(),
        }
    }
}

impl From<&JobFailure> for Failure {
    fn from(failure: &JobFailure) -> Self {
        Failure { time_ms: epoch_ms(failure.time), message: failure.message.clone() }
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
                SnapshotType::Savepoint => "savepoint",
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
mod tests {
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

    fn stopped_job() -> JobStatusSnapshot {
        JobStatusSnapshot {
            name: "job".into(),
            state: JobState::Stopped("file:///s/sp-3".into()),
            start_time: UNIX_EPOCH + Duration::from_millis(1_000),
            duration: Duration::from_millis(2_500),
            restarts: 1,
            failures: vec![JobFailure {
                time: UNIX_EPOCH + Duration::from_millis(2_000),
                message: "boom".into(),
            }],
            vertices: vec![VertexStatus {
                name: "map".into(),
                subtasks: vec![
                    SubtaskCounts { records_in: 3, records_out: 2 },
                    SubtaskCounts { records_in: 4, records_out: 1 },
                ],
            }],
            checkpoints: vec![
                stats(1, SnapshotType::Checkpoint, None),
                stats(2, SnapshotType::Checkpoint, Some("timed out")),
                stats(3, SnapshotType::Savepoint, None),
            ],
        }
    }

    #[test]
    fn job_details_carry_totals_subtasks_and_the_last_failure() {
        let json = serde_json::to_value(JobDetails::from(&stopped_job())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "job", "state": "stopped", "start_time_ms": 1000, "duration_ms": 2500,
                "restarts": 1, "stopped_with_savepoint": "file:///s/sp-3",
                "vertices": [{
                    "name": "map", "parallelism": 2, "records_in": 7, "records_out": 3,
                    "subtasks": [
                        { "subtask": 0, "records_in": 3, "records_out": 2 },
                        { "subtask": 1, "records_in": 4, "records_out": 1 },
                    ],
                }],
                "failure_count": 1,
                "last_failure": { "time_ms": 2000, "message": "boom" },
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
    }
}
