//! Wiring a planned job into tasks: a channel for every non-chained edge and subtask pair,
//! chains assembled from tail to head, each operator subtask given its restored state and
//! each task with network inputs its restored records in flight. In a cluster, a process
//! builds only the subtasks of its slots; a channel between two processes becomes a local
//! channel on each side whose other end is handed to the data plane.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use weir_operators::{SideOutput, SubtaskInfo};

use crate::ExecutionConfig;
use crate::checkpoint::{RestoredState, TaskInFlight};
use crate::cluster::{ChannelKey, FrameSink, FrameSource};
use crate::exchange::CancelToken;
use crate::graph::{InputSlot, NodeFactory, NodeId, StreamGraph, StreamNode};
use crate::load::TaskLoad;
use crate::plan::{Chain, JobPlan};
use crate::progress::MetricsRegistry;
use crate::stream_type::{AnyOutput, AnyReceiver, AnySender, StreamType, WriterSettings};
use crate::task::{BuildContext, TaskBody};

/// A task ready to run.
pub(crate) struct BuiltTask {
    /// `chain name (subtask/parallelism)`.
    pub(crate) name: String,
    /// What runs on its thread.
    pub(crate) body: Box<dyn TaskBody>,
    /// Whether it heads a source, where checkpoints are triggered.
    pub(crate) source: bool,
    /// Its time accounting.
    pub(crate) load: Arc<TaskLoad>,
}

/// Builds the tasks of a plan: creates a channel for every non-chained edge and subtask pair,
/// then assembles each chain from its tail to its head.
pub(crate) struct Wiring<'a> {
    graph: &'a StreamGraph,
    plan: &'a JobPlan,
    config: &'a ExecutionConfig,
    metrics: &'a MetricsRegistry,
    cancel: CancelToken,
    restored: RestoredState,
    /// Per (consumer, input edge): per producer subtask, the senders to the consumer's subtasks.
    senders: HashMap<(NodeId, usize), Vec<Option<Vec<AnySender>>>>,
    /// Per (consumer, input slot): per consumer subtask, its receivers.
    receivers: HashMap<(NodeId, InputSlot), Vec<Vec<AnyReceiver>>>,
    /// Which attempt of the job this is (names remote channels).
    attempt: u64,
    /// The slots this process runs (subtask `i` of every operator is in slot `i`); `None`
    /// runs them all.
    local_slots: Option<BTreeSet<usize>>,
    /// Channels this process produces into for consumers elsewhere.
    remote_outputs: Vec<(ChannelKey, Box<dyn FrameSource>)>,
    /// Channels this process consumes from producers elsewhere.
    remote_inputs: Vec<(ChannelKey, Box<dyn FrameSink>)>,
}

/// The ends of a process's channels that cross to other processes.
pub(crate) struct RemoteChannels {
    /// Local producers' channels to consumers elsewhere, to be sent.
    pub(crate) outputs: Vec<(ChannelKey, Box<dyn FrameSource>)>,
    /// Local consumers' channels from producers elsewhere, to be filled.
    pub(crate) inputs: Vec<(ChannelKey, Box<dyn FrameSink>)>,
}

impl<'a> Wiring<'a> {
    pub(crate) fn new(
        graph: &'a StreamGraph,
        plan: &'a JobPlan,
        config: &'a ExecutionConfig,
        metrics: &'a MetricsRegistry,
        cancel: CancelToken,
        restored: RestoredState,
    ) -> Self {
        Wiring {
            graph,
            plan,
            config,
            metrics,
            cancel,
            restored,
            senders: HashMap::new(),
            receivers: HashMap::new(),
            attempt: 0,
            local_slots: None,
            remote_outputs: Vec::new(),
            remote_inputs: Vec::new(),
        }
    }

    /// Builds only the subtasks in `slots`, for attempt `attempt` of the job in a cluster.
    pub(crate) fn only_slots(mut self, slots: BTreeSet<usize>, attempt: u64) -> Self {
        self.local_slots = Some(slots);
        self.attempt = attempt;
        self
    }

    /// Whether subtask `subtask` (of any operator) runs in this process.
    fn is_local(&self, subtask: usize) -> bool {
        self.local_slots.as_ref().is_none_or(|slots| slots.contains(&subtask))
    }

    fn create_channels(&mut self, consumer: &StreamNode, edge_index: usize, slot: InputSlot) {
        let edge = &consumer.inputs[edge_index];
        let stream = self.edge_type(consumer, edge_index);
        let producers = self.plan.parallelism[edge.source.0];
        let consumers = self.plan.parallelism[consumer.id.0];
        let forward = matches!(
            self.plan.partitioning[consumer.id.0][edge_index],
            crate::Partitioning::Forward
        );
        let mut receivers: Vec<Vec<AnyReceiver>> = self
            .receivers
            .remove(&(consumer.id, slot))
            .unwrap_or_else(|| (0..consumers).map(|_| Vec::new()).collect());
        let mut senders = Vec::with_capacity(producers);
        for producer in 0..producers {
            let targets: Vec<usize> =
                if forward { vec![producer] } else { (0..consumers).collect() };
            let local_producer = self.is_local(producer);
            let mut producer_senders = Vec::with_capacity(targets.len());
            for target in targets {
                let local_consumer = self.is_local(target);
                if !local_producer && !local_consumer {
                    continue;
                }
                let (sender, receiver) = stream.channel(self.config.channel_capacity);
                let key = ChannelKey {
                    attempt: self.attempt,
                    consumer_node: consumer.id.0,
                    edge: edge_index,
                    producer,
                    consumer: target,
                };
                if local_producer {
                    producer_senders.push(sender);
                } else {
                    self.remote_inputs.push((key, stream.frame_sink(sender)));
                }
                if local_consumer {
                    receivers[target].push(receiver);
                } else {
                    self.remote_outputs.push((key, stream.frame_source(receiver)));
                }
            }
            senders.push(local_producer.then_some(producer_senders));
        }
        self.receivers.insert((consumer.id, slot), receivers);
        self.senders.insert((consumer.id, edge_index), senders);
    }

    fn edge_type(&self, consumer: &StreamNode, edge_index: usize) -> Arc<dyn StreamType> {
        let edge = &consumer.inputs[edge_index];
        self.graph
            .node(edge.source)
            .output_type(edge.side_output.as_deref())
            .expect("the API registers a side output's type before reading it")
            .clone()
    }

    /// Every task of the job that runs in this process (its name, its body, and whether it
    /// heads a source), with the ends of channels that cross to other processes.
    pub(crate) fn build_tasks(mut self) -> (Vec<BuiltTask>, RemoteChannels) {
        let graph = self.graph;
        for node in &graph.nodes {
            for (index, edge) in node.inputs.iter().enumerate() {
                if !self.plan.is_chained(node.id, index) {
                    self.create_channels(node, index, edge.slot);
                }
            }
        }
        let mut tasks = Vec::new();
        for chain in &self.plan.chains {
            let source = matches!(self.graph.node(chain.head).factory, NodeFactory::Source(_));
            for subtask in 0..chain.parallelism {
                if !self.is_local(subtask) {
                    continue;
                }
                let name = format!("{} ({}/{})", chain.name, subtask + 1, chain.parallelism);
                let body = self.build_task(chain, subtask);
                let load = self.metrics.load(chain.head.0, subtask);
                tasks.push(BuiltTask { name, body, source, load });
            }
        }
        let remote = RemoteChannels {
            outputs: std::mem::take(&mut self.remote_outputs),
            inputs: std::mem::take(&mut self.remote_inputs),
        };
        (tasks, remote)
    }

    fn build_task(&mut self, chain: &Chain, subtask: usize) -> Box<dyn TaskBody> {
        let head = self.graph.node(chain.head);
        let context = self.build_context(head, subtask);
        match &head.factory {
            NodeFactory::Source(factory) => factory.build(context),
            NodeFactory::OneInput(factory) => {
                let in_flight = self.in_flight(&context.info);
                let input = factory.build(context);
                let receivers = self.take_receivers(head.id, InputSlot::First, subtask);
                self.edge_type(head, 0).input_task(receivers, input, in_flight)
            }
            NodeFactory::TwoInput(factory) => {
                let in_flight = self.in_flight(&context.info);
                let first = self.take_receivers(head.id, InputSlot::First, subtask);
                let second = self.take_receivers(head.id, InputSlot::Second, subtask);
                factory.build(context, first, second, in_flight)
            }
        }
    }

    /// The in-flight side of the task `head` heads, with the records restored for it.
    fn in_flight(&mut self, head: &SubtaskInfo) -> TaskInFlight {
        let restored = self.restored.take_in_flight(&head.operator_id, head.index);
        TaskInFlight { head: head.clone(), restored }
    }

    /// The instance of `node` for `subtask` with its outputs wired, as a build context.
    fn build_context(&mut self, node: &StreamNode, subtask: usize) -> BuildContext {
        let (output, side_outputs) = self.build_outputs(node, subtask);
        BuildContext {
            info: SubtaskInfo {
                operator_name: node.name.clone(),
                operator_id: node.operator_id(),
                index: subtask,
                parallelism: self.plan.parallelism[node.id.0],
                max_parallelism: self.config.max_parallelism,
                state_backend: self.config.state_backend(),
                checkpoint_interval: self.config.checkpointing.interval(),
            },
            metrics: self.metrics.subtask(node.id.0, subtask),
            output,
            side_outputs,
            restore: self.restored.take(&node.operator_id(), subtask),
        }
    }

    /// Everything `node`'s subtask sends to: chained successors and channel writers, grouped
    /// into its main output and its read side outputs.
    fn build_outputs(&mut self, node: &StreamNode, subtask: usize) -> (AnyOutput, Vec<SideOutput>) {
        let mut main = Vec::new();
        let mut sides: Vec<(String, Vec<AnyOutput>)> = Vec::new();
        let graph = self.graph;
        for consumer in &graph.nodes {
            for (index, edge) in consumer.inputs.iter().enumerate() {
                if edge.source != node.id {
                    continue;
                }
                let target = if self.plan.is_chained(consumer.id, index) {
                    self.build_chained(consumer, subtask)
                } else {
                    self.build_writer(node, consumer, index, subtask)
                };
                match &edge.side_output {
                    None => main.push(target),
                    Some(tag) => match sides.iter_mut().find(|(t, _)| t == tag) {
                        Some((_, outputs)) => outputs.push(target),
                        None => sides.push((tag.clone(), vec![target])),
                    },
                }
            }
        }
        let main = combine(&node.output_type, main);
        let sides = sides
            .into_iter()
            .map(|(tag, outputs)| {
                let stream = node.output_type(Some(&tag)).expect("side output type registered");
                stream.side_output(&tag, combine(stream, outputs))
            })
            .collect();
        (main, sides)
    }

    fn build_chained(&mut self, node: &StreamNode, subtask: usize) -> AnyOutput {
        let context = self.build_context(node, subtask);
        match &node.factory {
            NodeFactory::OneInput(factory) => factory.build(context),
            _ => unreachable!("only one-input operators are chained"),
        }
    }

    fn build_writer(
        &mut self,
        producer: &StreamNode,
        consumer: &StreamNode,
        edge_index: usize,
        subtask: usize,
    ) -> AnyOutput {
        let senders = self
            .senders
            .get_mut(&(consumer.id, edge_index))
            .and_then(|per_producer| per_producer[subtask].take())
            .expect("channels created for every non-chained edge, taken once");
        let settings = WriterSettings {
            subtask,
            max_parallelism: self.config.max_parallelism,
            batch_size: self.config.batch_size,
            batch_bytes: self.config.batch_bytes,
            cancel: self.cancel.clone(),
            consumer: consumer.name.clone(),
            load: self.metrics.load(producer.id.0, subtask),
        };
        self.edge_type(consumer, edge_index).writer(
            &self.plan.partitioning[consumer.id.0][edge_index],
            senders,
            settings,
        )
    }

    fn take_receivers(
        &mut self,
        node: NodeId,
        slot: InputSlot,
        subtask: usize,
    ) -> Vec<AnyReceiver> {
        self.receivers
            .get_mut(&(node, slot))
            .map(|per_subtask| std::mem::take(&mut per_subtask[subtask]))
            .unwrap_or_default()
    }
}

/// One output from several: nothing → discard, one → itself, more → fan-out.
fn combine(stream: &Arc<dyn StreamType>, mut outputs: Vec<AnyOutput>) -> AnyOutput {
    match outputs.len() {
        0 => stream.discard(),
        1 => outputs.pop().expect("one output"),
        _ => stream.fan_out(outputs),
    }
}
