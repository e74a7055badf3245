//! `GET /metrics`: every job's counters in Prometheus' text exposition format (0.0.4).

use std::fmt::Write;

use weir_worker::{JobStatusSnapshot, SubtaskCounts};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family being written: its samples follow its `HELP` and `TYPE` lines.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> =
            labels.iter().map(|(name, value)| format!("{name}=\"{}\"", escape(value))).collect();
        let _ = writeln!(self.out, "{}{{{}}} {value}", self.name, labels.join(","));
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', r#"\""#).replace('\n', r"\n")
}

/// The exposition of `jobs`.
pub fn render(jobs: &[JobStatusSnapshot]) -> String {
    let mut out = String::new();
    subtask_counter(
        &mut out,
        jobs,
        "weir_records_in_total",
        "Records an operator subtask took in.",
        |s| s.records_in,
    );
    subtask_counter(
        &mut out,
        jobs,
        "weir_records_out_total",
        "Records an operator subtask sent on.",
        |s| s.records_out,
    );
    for metric in JOB_METRICS {
        let mut family = Family::new(&mut out, metric.name, metric.kind, metric.help);
        for job in jobs {
            if let Some(value) = (metric.value)(job) {
                family.sample(&[("job", &job.name)], value);
            }
        }
    }
    out
}

/// A metric with one sample per job.
struct JobMetric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// The job's value, if it has one yet.
    value: fn(&JobStatusSnapshot) -> Option<String>,
}

const JOB_METRICS: [JobMetric; 5] = [
    JobMetric {
        name: "weir_job_restarts_total",
        kind: "counter",
        help: "Restarts of a job after failures.",
        value: |job| Some(job.restarts.to_string()),
    },
    JobMetric {
        name: "weir_checkpoints_completed",
        kind: "gauge",
        help: "Checkpoints and savepoints of a job that completed.",
        value: |job| Some((job.checkpoints.len() - job.failed_checkpoints()).to_string()),
    },
    JobMetric {
        name: "weir_checkpoints_failed",
        kind: "gauge",
        help: "Checkpoints and savepoints of a job that failed.",
        value: |job| Some(job.failed_checkpoints().to_string()),
    },
    JobMetric {
        name: "weir_last_checkpoint_duration_seconds",
        kind: "gauge",
        help: "Duration of a job's latest completed checkpoint or savepoint.",
        value: |job| job.last_completed_checkpoint().map(|c| c.duration.as_secs_f64().to_string()),
    },
    JobMetric {
        name: "weir_last_checkpoint_size_bytes",
        kind: "gauge",
        help: "State size of a job's latest completed checkpoint or savepoint.",
        value: |job| job.last_completed_checkpoint().map(|c| c.state_size.to_string()),
    },
];

/// A counter per operator subtask of every job.
fn subtask_counter(
    out: &mut String,
    jobs: &[JobStatusSnapshot],
    name: &'static str,
    help: &str,
    count: fn(&SubtaskCounts) -> u64,
) {
    let mut family = Family::new(out, name, "counter", help);
    for job in jobs {
        for vertex in &job.vertices {
            for (subtask, counts) in vertex.subtasks.iter().enumerate() {
                let subtask = subtask.to_string();
                let labels =
                    [("job", &*job.name), ("operator", &vertex.name), ("subtask", &subtask)];
                family.sample(&labels, count(counts));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
