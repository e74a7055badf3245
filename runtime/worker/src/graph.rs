//! The logical job graph the DataStream API builds: nodes with type-erased factories and the
//! edges between them. Nothing here runs; [`crate::plan`] decides parallelism and chains.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use weir_operators::builtin::KeySelector;
use weir_operators::{OneInputOperator, SourceFunction, SubtaskInfo, TwoInputOperator};
use weir_types::{Data, Key, KeyGroup, KeyHasher, Record};

use crate::StreamType;
use crate::task::{OneInputFactory, PerSubtask, PerSubtaskSource, SourceFactory, TwoInputFactory};

/// Index of a node in its [`StreamGraph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// Whether a node may share a task with its neighbours (Flink's `ChainingStrategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChainingStrategy {
    /// Chains with its predecessor and successors when the edges allow.
    #[default]
    Always,
    /// Starts a new chain (`start_new_chain`); successors may chain to it.
    Head,
    /// Never chains, in either direction (`disable_chaining`).
    Never,
}

/// Which input of a two-input operator an edge feeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InputSlot {
    /// The only input, or the first of two.
    #[default]
    First,
    /// The second input of a connected stream.
    Second,
}

/// The key-group function of a hash edge: key selector, serialization and hashing in one,
/// appending the key group of each record of a batch (one dynamic call per batch).
pub type KeyGroupFn<T> = Arc<
    dyn Fn(&[Record<T>], &mut KeyHasher, usize, &mut Vec<KeyGroup>) -> weir_types::Result<()>
        + Send
        + Sync,
>;

/// How records of an edge are distributed over the consumer's subtasks.
#[derive(Clone)]
pub enum Partitioning {
    /// Forward when both sides have the same parallelism, rebalance otherwise (Flink's rule).
    Default,
    /// Subtask `i` to subtask `i`; requires equal parallelism; allows chaining.
    Forward,
    /// Round-robin over all consumer subtasks.
    Rebalance,
    /// Uniformly random consumer subtask.
    Shuffle,
    /// Every record to every consumer subtask.
    Broadcast,
    /// By key group of the record's key; holds a [`KeyGroupFn`] of the edge's record type.
    Hash(Arc<dyn Any + Send + Sync>),
}

impl Partitioning {
    /// Hash partitioning of `T` records by the key `key_selector` extracts.
    pub fn hash<T: 'static, K: Key>(key_selector: KeySelector<T, K>) -> Self {
        let key_group: KeyGroupFn<T> = Arc::new(move |records, hasher, max_parallelism, groups| {
            for record in records {
                groups.push(hasher.key_group(&key_selector(&record.value), max_parallelism)?);
            }
            Ok(())
        });
        Partitioning::Hash(Arc::new(key_group))
    }

    /// A short name for plans and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Partitioning::Default => "DEFAULT",
            Partitioning::Forward => "FORWARD",
            Partitioning::Rebalance => "REBALANCE",
            Partitioning::Shuffle => "SHUFFLE",
            Partitioning::Broadcast => "BROADCAST",
            Partitioning::Hash(_) => "HASH",
        }
    }
}

impl std::fmt::Debug for Partitioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An edge into a node: which node (and which of its outputs) feeds it, and how.
#[derive(Clone, Debug)]
pub struct StreamEdge {
    /// The producing node.
    pub source: NodeId,
    /// The producer's side output this edge reads, or `None` for its main output.
    pub side_output: Option<String>,
    /// How records are distributed.
    pub partitioning: Partitioning,
    /// Which input of the consumer this edge feeds.
    pub slot: InputSlot,
}

/// How a node's parallel instances are built.
pub enum NodeFactory {
    /// A source: no inputs.
    Source(Box<dyn SourceFactory>),
    /// One input; may be chained after its predecessor.
    OneInput(Box<dyn OneInputFactory>),
    /// Two inputs (connected streams); always heads its task.
    TwoInput(Box<dyn TwoInputFactory>),
}

impl NodeFactory {
    /// A source whose subtasks `make` builds.
    pub fn source<T, S, M>(make: M) -> Self
    where
        T: Data,
        S: SourceFunction<T> + 'static,
        M: Fn(&SubtaskInfo) -> S + Send + 'static,
    {
        NodeFactory::Source(Box::new(PerSubtaskSource(make, PhantomData)))
    }

    /// A one-input operator whose subtasks `make` builds.
    pub fn one_input<Op, M>(make: M) -> Self
    where
        Op: OneInputOperator + 'static,
        Op::In: Data,
        Op::Out: Data,
        M: Fn(&SubtaskInfo) -> Op + Send + 'static,
    {
        NodeFactory::OneInput(Box::new(PerSubtask(make)))
    }

    /// A two-input operator whose subtasks `make` builds.
    pub fn two_input<Op, M>(make: M) -> Self
    where
        Op: TwoInputOperator + 'static,
        Op::In1: Data,
        Op::In2: Data,
        Op::Out: Data,
        M: Fn(&SubtaskInfo) -> Op + Send + 'static,
    {
        NodeFactory::TwoInput(Box::new(PerSubtask(make)))
    }
}

/// One operator of the logical graph.
pub struct StreamNode {
    /// Its index.
    pub id: NodeId,
    /// Display name (`name(...)` in the API).
    pub name: String,
    /// Stable identifier for state (`uid(...)`); derived from the graph when absent.
    pub uid: Option<String>,
    /// Explicit parallelism (`set_parallelism`).
    pub parallelism: Option<usize>,
    /// The environment's parallelism when the node was created, if the job set one in code
    /// (`env.set_parallelism`); else the execution config's applies.
    pub environment_parallelism: Option<usize>,
    /// Whether the operator cannot run in parallel (collection and socket sources).
    pub non_parallel: bool,
    /// Chaining preference.
    pub chaining: ChainingStrategy,
    /// Edges into this node, in input order.
    pub inputs: Vec<StreamEdge>,
    /// The record type of the main output.
    pub output_type: Arc<dyn StreamType>,
    /// The record types of side outputs, by tag name.
    pub side_output_types: Vec<(String, Arc<dyn StreamType>)>,
    /// Builds the node's instances.
    pub factory: NodeFactory,
}

impl StreamNode {
    /// The id its state is stored under: the `uid`, or else the node's position and name,
    /// which stay the same as long as the job builds the same graph.
    pub fn operator_id(&self) -> String {
        self.uid.clone().unwrap_or_else(|| format!("{}-{}", self.id.0, self.name))
    }

    /// The record type of `side_output` (or the main output for `None`).
    pub fn output_type(&self, side_output: Option<&str>) -> Option<&Arc<dyn StreamType>> {
        match side_output {
            None => Some(&self.output_type),
            Some(tag) => self.side_output_types.iter().find(|(t, _)| t == tag).map(|(_, ty)| ty),
        }
    }
}

/// The whole logical graph of a job, in the order the API created nodes (a topological order:
/// every edge points from an earlier node to a later one).
#[derive(Default)]
pub struct StreamGraph {
    /// Every node, indexed by [`NodeId`].
    pub nodes: Vec<StreamNode>,
}

impl StreamGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `node`, giving it the next id.
    pub fn add(&mut self, mut node: StreamNode) -> NodeId {
        let id = NodeId(self.nodes.len());
        node.id = id;
        self.nodes.push(node);
        id
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &StreamNode {
        &self.nodes[id.0]
    }

    /// The node `id`, mutably (for `name`, `uid`, `set_parallelism`, chaining).
    pub fn node_mut(&mut self, id: NodeId) -> &mut StreamNode {
        &mut self.nodes[id.0]
    }

    /// Edges leaving `id`, with the consumer of each.
    pub fn out_edges(&self, id: NodeId) -> impl Iterator<Item = (NodeId, &StreamEdge)> {
        self.nodes.iter().flat_map(move |node| {
            node.inputs.iter().filter(move |e| e.source == id).map(move |e| (node.id, e))
        })
    }
}
