//! The job under construction, shared by the environment and every stream handle.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use weir_worker::{
    ChainingStrategy, ExecutionConfig, NodeFactory, NodeId, StreamEdge, StreamGraph, StreamNode,
    StreamType,
};

use crate::Parameters;

/// Everything the API accumulates before execution.
pub(crate) struct JobState {
    pub(crate) graph: StreamGraph,
    pub(crate) config: ExecutionConfig,
    /// Parallelism set in code with `env.set_parallelism`; applies to operators created after.
    pub(crate) code_parallelism: Option<usize>,
    pub(crate) job_name: String,
    pub(crate) parameters: Parameters,
}

/// A shared handle on the job being built (graph building is single-threaded).
#[doc(hidden)]
#[derive(Clone)]
pub struct JobHandle(Rc<RefCell<JobState>>);

/// What a new node needs besides its factory.
pub(crate) struct NodeSpec {
    pub(crate) name: String,
    pub(crate) inputs: Vec<StreamEdge>,
    pub(crate) output_type: Arc<dyn StreamType>,
    pub(crate) non_parallel: bool,
}

impl JobHandle {
    pub(crate) fn new(state: JobState) -> Self {
        JobHandle(Rc::new(RefCell::new(state)))
    }

    pub(crate) fn add(&self, spec: NodeSpec, factory: NodeFactory) -> NodeId {
        let mut state = self.0.borrow_mut();
        let environment_parallelism = state.code_parallelism;
        state.graph.add(StreamNode {
            id: NodeId(0),
            name: spec.name,
            uid: None,
            parallelism: None,
            environment_parallelism,
            non_parallel: spec.non_parallel,
            chaining: ChainingStrategy::Always,
            inputs: spec.inputs,
            output_type: spec.output_type,
            side_output_types: Vec::new(),
            factory,
        })
    }

    pub(crate) fn with_node<R>(&self, id: NodeId, change: impl FnOnce(&mut StreamNode) -> R) -> R {
        change(self.0.borrow_mut().graph.node_mut(id))
    }

    pub(crate) fn with_state<R>(&self, use_state: impl FnOnce(&mut JobState) -> R) -> R {
        use_state(&mut self.0.borrow_mut())
    }
}

/// Settings of the operator that produced a stream, or of a sink: Flink's
/// `SingleOutputStreamOperator` / `DataStreamSink` methods.
pub trait OperatorSettings: Sized {
    /// The job and the node these settings apply to.
    #[doc(hidden)]
    fn operator_node(&self) -> (&JobHandle, NodeId);

    /// Names the operator (shown in progress, errors and metrics).
    fn name(self, name: impl Into<String>) -> Self {
        let (job, id) = self.operator_node();
        let name = name.into();
        job.with_node(id, |node| node.name = name);
        self
    }

    /// Gives the operator a stable identifier, used to match its state across job versions.
    fn uid(self, uid: impl Into<String>) -> Self {
        let (job, id) = self.operator_node();
        let uid = uid.into();
        job.with_node(id, |node| node.uid = Some(uid));
        self
    }

    /// Runs the operator with `parallelism` subtasks, whatever the environment's default.
    fn set_parallelism(self, parallelism: usize) -> Self {
        let (job, id) = self.operator_node();
        job.with_node(id, |node| node.parallelism = Some(parallelism));
        self
    }

    /// Keeps the operator out of any chain: it runs in its own task.
    fn disable_chaining(self) -> Self {
        let (job, id) = self.operator_node();
        job.with_node(id, |node| node.chaining = ChainingStrategy::Never);
        self
    }

    /// Starts a new chain at this operator; what follows may chain to it.
    fn start_new_chain(self) -> Self {
        let (job, id) = self.operator_node();
        job.with_node(id, |node| node.chaining = ChainingStrategy::Head);
        self
    }
}
