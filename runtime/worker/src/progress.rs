//! Progress while a job runs and its summary at the end, from per-subtask counters.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use weir_operators::OperatorMetrics;

use crate::graph::StreamGraph;
use crate::load::TaskLoad;
use crate::plan::JobPlan;
use crate::status::{EdgeStatus, SubtaskCounts, VertexStatus};

/// Counters of every subtask of every operator, in graph order, with the time accounting of
/// the task each subtask runs in, and the edges between operators; clones share them.
#[derive(Clone)]
pub(crate) struct MetricsRegistry {
    operators: Vec<OperatorEntry>,
    edges: Vec<EdgeStatus>,
}

/// One operator's counters, and per subtask the load of its task (shared along a chain).
#[derive(Clone)]
struct OperatorEntry {
    name: String,
    subtasks: Vec<Arc<OperatorMetrics>>,
    loads: Vec<Arc<TaskLoad>>,
}

impl MetricsRegistry {
    /// Counters for operators named `names` with the given parallelism each, each subtask a
    /// task of its own.
    #[cfg(test)]
    pub(crate) fn new(operators: impl IntoIterator<Item = (String, usize)>) -> Self {
        let operators = operators
            .into_iter()
            .map(|(name, parallelism)| OperatorEntry {
                name,
                subtasks: (0..parallelism).map(|_| Arc::default()).collect(),
                loads: (0..parallelism).map(|_| Arc::default()).collect(),
            })
            .collect();
        MetricsRegistry { operators, edges: Vec::new() }
    }

    /// Counters for every subtask of every node of `graph` as `plan` runs it; the operators
    /// of a chain share their subtask's load.
    pub(crate) fn for_plan(graph: &StreamGraph, plan: &JobPlan) -> Self {
        let mut loads: Vec<Vec<Arc<TaskLoad>>> = vec![Vec::new(); graph.nodes.len()];
        for chain in &plan.chains {
            let shared: Vec<Arc<TaskLoad>> =
                (0..chain.parallelism).map(|_| Arc::default()).collect();
            for node in &chain.nodes {
                loads[node.0] = shared.clone();
            }
        }
        let operators = (graph.nodes.iter().zip(loads))
            .map(|(node, loads)| OperatorEntry {
                name: node.name.clone(),
                subtasks: (0..plan.parallelism[node.id.0]).map(|_| Arc::default()).collect(),
                loads,
            })
            .collect();
        let edges = (graph.nodes.iter())
            .flat_map(|node| {
                node.inputs.iter().enumerate().map(|(index, edge)| EdgeStatus {
                    source: edge.source.0,
                    target: node.id.0,
                    partitioning: plan.partitioning[node.id.0][index].name(),
                    chained: plan.is_chained(node.id, index),
                })
            })
            .collect();
        MetricsRegistry { operators, edges }
    }

    /// The counters of one subtask.
    pub(crate) fn subtask(&self, operator: usize, subtask: usize) -> Arc<OperatorMetrics> {
        self.operators[operator].subtasks[subtask].clone()
    }

    /// The load of the task one subtask runs in.
    pub(crate) fn load(&self, operator: usize, subtask: usize) -> Arc<TaskLoad> {
        self.operators[operator].loads[subtask].clone()
    }

    /// Every subtask of every operator, as (operator, subtask, counters, its task's load).
    pub(crate) fn each_subtask(
        &self,
    ) -> impl Iterator<Item = (usize, usize, &OperatorMetrics, &TaskLoad)> {
        self.operators.iter().enumerate().flat_map(|(operator, entry)| {
            (entry.subtasks.iter().zip(&entry.loads))
                .enumerate()
                .map(move |(subtask, (m, load))| (operator, subtask, m.as_ref(), load.as_ref()))
        })
    }

    /// Every operator with the figures of each subtask now.
    pub(crate) fn vertices(&self) -> Vec<VertexStatus> {
        self.operators
            .iter()
            .map(|entry| VertexStatus {
                name: entry.name.clone(),
                subtasks: (entry.subtasks.iter().zip(&entry.loads))
                    .map(|(m, load)| SubtaskCounts {
                        records_in: m.records_in(),
                        records_out: m.records_out(),
                        watermark: m.watermark(),
                        idle: m.is_idle(),
                        load: load.ratios(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The edges between operators.
    pub(crate) fn edges(&self) -> &[EdgeStatus] {
        &self.edges
    }

    /// Totals per operator now.
    pub(crate) fn snapshot(&self) -> Vec<OperatorSummary> {
        self.operators
            .iter()
            .map(|entry| OperatorSummary {
                name: entry.name.clone(),
                parallelism: entry.subtasks.len(),
                records_in: entry.subtasks.iter().map(|m| m.records_in()).sum(),
                records_out: entry.subtasks.iter().map(|m| m.records_out()).sum(),
            })
            .collect()
    }
}

/// Totals of one operator over its subtasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSummary {
    /// The operator's name.
    pub name: String,
    /// Its parallelism.
    pub parallelism: usize,
    /// Records taken in.
    pub records_in: u64,
    /// Records sent on.
    pub records_out: u64,
}

/// What a finished job reports.
#[derive(Clone, Debug)]
pub struct JobResult {
    /// The job's name.
    pub job_name: String,
    /// Wall-clock time from start to end of the last task.
    pub duration: Duration,
    /// Totals per operator, in graph order.
    pub operators: Vec<OperatorSummary>,
    /// Times the job was restarted after a failure.
    pub restarts: u32,
    /// The checkpoints taken, completed or failed, oldest first.
    pub checkpoints: Vec<crate::checkpoint::CheckpointStats>,
    /// Where the savepoint is when the job was stopped with one.
    pub savepoint: Option<String>,
}

impl JobResult {
    /// The summary of the operator called `name`, if there is one.
    pub fn operator(&self, name: &str) -> Option<&OperatorSummary> {
        self.operators.iter().find(|o| o.name == name)
    }
}

/// One line of progress: per operator, records in/out and the rates since the last line.
pub(crate) fn progress_line(
    elapsed: Duration,
    since_last: Duration,
    now: &[OperatorSummary],
    before: &[OperatorSummary],
) -> String {
    let seconds = since_last.as_secs_f64().max(1e-9);
    let parts: Vec<String> = now
        .iter()
        .zip(before)
        .map(|(n, b)| {
            // Sources are rated by what they emit, everything else by what it takes in.
            let delta = if n.records_in == 0 {
                n.records_out - b.records_out
            } else {
                n.records_in - b.records_in
            };
            format!(
                "{} in={} out={} ({}/s)",
                n.name,
                n.records_in,
                n.records_out,
                human(delta as f64 / seconds)
            )
        })
        .collect();
    format!("progress {:.1}s: {}", elapsed.as_secs_f64(), parts.join(" | "))
}

fn human(rate: f64) -> String {
    match rate {
        r if r >= 1e6 => format!("{:.2}M", r / 1e6),
        r if r >= 1e3 => format!("{:.1}K", r / 1e3),
        r => format!("{r:.0}"),
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "job '{}' finished in {:.3}s", self.job_name, self.duration.as_secs_f64())?;
        let width = self.operators.iter().map(|o| o.name.len()).max().unwrap_or(8).max(8);
        writeln!(
            f,
            "  {:<width$}  {:>4}  {:>14}  {:>14}",
            "operator", "par", "records in", "records out"
        )?;
        for o in &self.operators {
            writeln!(
                f,
                "  {:<width$}  {:>4}  {:>14}  {:>14}",
                o.name, o.parallelism, o.records_in, o.records_out
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, records_in: u64, records_out: u64) -> OperatorSummary {
        OperatorSummary { name: name.into(), parallelism: 2, records_in, records_out }
    }

    #[test]
    fn progress_rates_sources_by_output_and_others_by_input() {
        let before = [summary("Source: gen", 0, 1_000), summary("Sink", 900, 0)];
        let now = [summary("Source: gen", 0, 3_001_000), summary("Sink", 2_900, 0)];
        let line = progress_line(Duration::from_secs(4), Duration::from_secs(2), &now, &before);
        assert_eq!(
            line,
            "progress 4.0s: Source: gen in=0 out=3001000 (1.50M/s) | Sink in=2900 out=0 (1.0K/s)"
        );
    }
}
