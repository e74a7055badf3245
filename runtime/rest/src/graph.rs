//! The job graph as JSON: vertices with per-subtask counters, load and watermarks, where each
//! vertex's event time is held back, and the edges between vertices.

use serde::Serialize;
use weir_worker::{EdgeStatus, JobStatusSnapshot, SubtaskCounts, VertexStatus};

/// The vertices and edges of a job.
#[derive(Debug, Serialize)]
pub struct JobGraph {
    /// Operators in graph order; an edge names them by `id`.
    pub vertices: Vec<Vertex>,
    /// Edges between them.
    pub edges: Vec<Edge>,
}

/// One operator with totals and per-subtask figures.
#[derive(Debug, Serialize)]
pub struct Vertex {
    /// Its index in graph order.
    pub id: usize,
    /// The operator's name.
    pub name: String,
    /// Its parallelism.
    pub parallelism: usize,
    /// Records taken in, over all subtasks.
    pub records_in: u64,
    /// Records sent on, over all subtasks.
    pub records_out: u64,
    /// The busiest subtask's busy share (0 to 1) of the latest window.
    pub busy_ratio: f64,
    /// The most backpressured subtask's share blocked on output.
    pub backpressured_ratio: f64,
    /// The minimum watermark over its subtasks that are not idle (ms); none before the first.
    pub watermark: Option<i64>,
    /// Every subtask is idle: the vertex holds back no one.
    pub idle: bool,
    /// The input subtask with the lowest watermark (for a source, its own subtask), which
    /// holds the vertex's event time back.
    pub watermark_held_back_by: Option<SubtaskRef>,
    /// Input subtasks that are idle, so they hold nothing back.
    pub idle_inputs: Vec<SubtaskRef>,
    /// Per subtask, by index.
    pub subtasks: Vec<Subtask>,
}

/// One subtask of one vertex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubtaskRef {
    /// The vertex's id.
    pub vertex: usize,
    /// The vertex's name.
    pub name: String,
    /// The subtask's index.
    pub subtask: usize,
}

/// The figures of one subtask.
#[derive(Debug, Serialize)]
pub struct Subtask {
    /// Its index.
    pub subtask: usize,
    /// Records taken in.
    pub records_in: u64,
    /// Records sent on.
    pub records_out: u64,
    /// Share of the latest window its task worked (0 to 1).
    pub busy_ratio: f64,
    /// Share blocked sending to a full channel.
    pub backpressured_ratio: f64,
    /// Share waiting for input.
    pub idle_ratio: f64,
    /// The latest watermark it received or emitted (ms), if any.
    pub watermark: Option<i64>,
    /// Its input is idle.
    pub idle: bool,
}

/// An edge between two vertices.
#[derive(Debug, Serialize)]
pub struct Edge {
    /// The producing vertex's id.
    pub source: usize,
    /// The consuming vertex's id.
    pub target: usize,
    /// `FORWARD`, `REBALANCE`, `HASH`, `BROADCAST` or `SHUFFLE`.
    pub partitioning: &'static str,
    /// Both run in one task.
    pub chained: bool,
}

impl From<&JobStatusSnapshot> for JobGraph {
    fn from(job: &JobStatusSnapshot) -> Self {
        let vertices = (job.vertices.iter().enumerate())
            .map(|(id, vertex)| {
                let inputs: Vec<usize> =
                    job.edges.iter().filter(|e| e.target == id).map(|e| e.source).collect();
                Vertex::new(id, vertex, &inputs, &job.vertices)
            })
            .collect();
        JobGraph { vertices, edges: job.edges.iter().map(Edge::from).collect() }
    }
}

impl Vertex {
    /// Vertex `id`, fed by the vertices `inputs` of `all`.
    fn new(id: usize, vertex: &VertexStatus, inputs: &[usize], all: &[VertexStatus]) -> Self {
        let total = |count: fn(&SubtaskCounts) -> u64| vertex.subtasks.iter().map(count).sum();
        let highest = |share: fn(&SubtaskCounts) -> u16| {
            vertex.subtasks.iter().map(share).max().map_or(0.0, ratio)
        };
        // Whose watermarks make this one: its inputs' subtasks, or a source's own.
        let upstream: Vec<(SubtaskRef, &SubtaskCounts)> = if inputs.is_empty() {
            subtask_refs(id, vertex).collect()
        } else {
            inputs.iter().flat_map(|&input| subtask_refs(input, &all[input])).collect()
        };
        let active = || upstream.iter().filter(|(_, counts)| !counts.idle);
        Vertex {
            id,
            name: vertex.name.clone(),
            parallelism: vertex.subtasks.len(),
            records_in: total(|s| s.records_in),
            records_out: total(|s| s.records_out),
            busy_ratio: highest(|s| s.load.busy),
            backpressured_ratio: highest(|s| s.load.backpressured),
            watermark: (vertex.subtasks.iter().filter(|s| !s.idle))
                .map(|s| s.watermark.map(|w| w.0))
                .min()
                .flatten(),
            idle: !vertex.subtasks.is_empty() && vertex.subtasks.iter().all(|s| s.idle),
            // Without event time (no watermark anywhere) nothing is held back.
            watermark_held_back_by: (active().any(|(_, counts)| counts.watermark.is_some()))
                .then(|| active().min_by_key(|(_, counts)| counts.watermark))
                .flatten()
                .map(|(held_by, _)| held_by.clone()),
            idle_inputs: (upstream.iter())
                .filter(|(_, counts)| counts.idle)
                .map(|(idle, _)| idle.clone())
                .collect(),
            subtasks: (vertex.subtasks.iter().enumerate())
                .map(|(subtask, s)| Subtask {
                    subtask,
                    records_in: s.records_in,
                    records_out: s.records_out,
                    busy_ratio: ratio(s.load.busy),
                    backpressured_ratio: ratio(s.load.backpressured),
                    idle_ratio: ratio(s.load.idle),
                    watermark: s.watermark.map(|w| w.0),
                    idle: s.idle,
                })
                .collect(),
        }
    }
}

/// Each subtask of vertex `id`, named, with its figures.
fn subtask_refs(
    id: usize,
    vertex: &VertexStatus,
) -> impl Iterator<Item = (SubtaskRef, &SubtaskCounts)> {
    vertex.subtasks.iter().enumerate().map(move |(subtask, counts)| {
        (SubtaskRef { vertex: id, name: vertex.name.clone(), subtask }, counts)
    })
}

/// Thousandths as a share.
fn ratio(thousandths: u16) -> f64 {
    f64::from(thousandths) / 1000.0
}

impl From<&EdgeStatus> for Edge {
    fn from(edge: &EdgeStatus) -> Self {
        Edge {
            source: edge.source,
            target: edge.target,
            partitioning: edge.partitioning,
            chained: edge.chained,
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_types::Watermark;
    use weir_worker::load::LoadRatios;

    use super::*;

    fn subtask(watermark: Option<i64>, idle: bool, busy: u16) -> SubtaskCounts {
        SubtaskCounts {
            records_in: 1,
            records_out: 2,
            watermark: watermark.map(Watermark),
            idle,
            load: LoadRatios { busy, backpressured: 1000 - busy, idle: 0 },
        }
    }

    fn vertex(name: &str, subtasks: Vec<SubtaskCounts>) -> VertexStatus {
        VertexStatus { name: name.into(), subtasks }
    }

    #[test]
    fn the_lowest_active_input_holds_back_and_idle_inputs_are_named() {
        let source = vertex(
            "source",
            vec![
                subtask(Some(50), false, 100),
                subtask(None, true, 0),
                subtask(Some(20), false, 0),
            ],
        );
        let window = vertex("window", vec![subtask(Some(20), false, 900)]);
        let edge = EdgeStatus { source: 0, target: 1, partitioning: "HASH", chained: false };
        let graph = JobGraph::from(&JobStatusSnapshot {
            vertices: vec![source, window],
            edges: vec![edge],
            ..crate::model::tests::stopped_job()
        });
        let window = &graph.vertices[1];
        let source_ref = |subtask| SubtaskRef { vertex: 0, name: "source".into(), subtask };
        assert_eq!(window.watermark_held_back_by, Some(source_ref(2)));
        assert_eq!(window.idle_inputs, [source_ref(1)]);
        assert_eq!((window.watermark, window.busy_ratio), (Some(20), 0.9));
        let source = &graph.vertices[0];
        assert_eq!(source.watermark, Some(20), "the idle subtask does not count");
        assert_eq!(source.watermark_held_back_by, Some(source_ref(2)));
        assert_eq!(source.backpressured_ratio, 1.0);
        assert_eq!(graph.edges[0].partitioning, "HASH");
    }
}
