//! `DataStream`: transformations, partitioning, side outputs and sinks.

use std::fmt::{Debug, Display};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use weir_connectors::sink::{
    CollectHandle, CollectSink, DiscardSink, FileSink, PrintSink, TextFileSink,
};
use weir_operators::builtin::{
    Filter, FlatMap, Map, ProcessOperator, TryMap, TwoPhaseCommitSink, TwoPhaseCommitSinkOperator,
};
use weir_operators::function::{ProcessFunction, UserError};
use weir_operators::watermark::{TimestampsAndWatermarks, WatermarkStrategy};
use weir_operators::{OneInputOperator, OutputTag, SubtaskInfo};
use weir_types::{Data, Key};
use weir_worker::{InputSlot, NodeFactory, NodeId, Partitioning, StreamEdge, TypedStream};

use crate::job::{JobHandle, NodeSpec, OperatorSettings};
use weir_operators::builtin::window::WindowAssigner;

use crate::{ConnectedStreams, JoinedStreams, KeyedStream, WindowedStream};

/// One input of a stream: an operator's output (main or side) and how it is partitioned.
#[derive(Clone, Debug)]
pub(crate) struct StreamRef {
    pub(crate) node: NodeId,
    pub(crate) side_output: Option<String>,
    pub(crate) partitioning: Partitioning,
}

impl StreamRef {
    pub(crate) fn edge(&self, slot: InputSlot) -> StreamEdge {
        StreamEdge {
            source: self.node,
            side_output: self.side_output.clone(),
            partitioning: self.partitioning.clone(),
            slot,
        }
    }
}

/// A stream of `T` records (Flink's `DataStream`). Transformations add operators to the job;
/// nothing runs until the environment executes.
pub struct DataStream<T> {
    pub(crate) job: JobHandle,
    pub(crate) refs: Vec<StreamRef>,
    /// The operator whose main output this is, when it is exactly that.
    pub(crate) producer: Option<NodeId>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for DataStream<T> {
    fn clone(&self) -> Self {
        DataStream {
            job: self.job.clone(),
            refs: self.refs.clone(),
            producer: self.producer,
            _type: PhantomData,
        }
    }
}

impl<T> OperatorSettings for DataStream<T> {
    fn operator_node(&self) -> (&JobHandle, NodeId) {
        let producer = self.producer.expect(
            "operator settings apply to the result of an operator, not to a union, a \
             repartitioned stream or a side output",
        );
        (&self.job, producer)
    }
}

impl<T: Data> DataStream<T> {
    pub(crate) fn produced_by(job: JobHandle, node: NodeId) -> Self {
        let refs = vec![StreamRef { node, side_output: None, partitioning: Partitioning::Default }];
        DataStream { job, refs, producer: Some(node), _type: PhantomData }
    }

    pub(crate) fn with_partitioning(&self, partitioning: Partitioning) -> Self {
        let refs = self
            .refs
            .iter()
            .map(|r| StreamRef { partitioning: partitioning.clone(), ..r.clone() })
            .collect();
        DataStream { job: self.job.clone(), refs, producer: None, _type: PhantomData }
    }

    /// Adds a one-input operator that `make` builds per subtask (the general form behind
    /// every transformation; Flink's `transform`).
    pub fn transform<Op, M>(&self, name: &str, make: M) -> DataStream<Op::Out>
    where
        Op: OneInputOperator<In = T> + 'static,
        Op::Out: Data,
        M: Fn(&SubtaskInfo) -> Op + Send + 'static,
    {
        let id =
            self.add_one_input(name, NodeFactory::one_input(make), TypedStream::<Op::Out>::arc());
        DataStream::produced_by(self.job.clone(), id)
    }

    fn add_one_input(
        &self,
        name: &str,
        factory: NodeFactory,
        output_type: Arc<dyn weir_worker::StreamType>,
    ) -> NodeId {
        let spec = NodeSpec {
            name: name.to_string(),
            inputs: self.refs.iter().map(|r| r.edge(InputSlot::First)).collect(),
            output_type,
            non_parallel: false,
        };
        self.job.add(spec, factory)
    }

    /// Applies `f` to every record.
    pub fn map<O: Data, F>(&self, f: F) -> DataStream<O>
    where
        F: FnMut(T) -> O + Clone + Send + 'static,
    {
        self.transform("Map", move |_| Map::new(f.clone()))
    }

    /// Applies a fallible `f` to every record; an error fails the job, naming this operator.
    pub fn try_map<O: Data, E, F>(&self, f: F) -> DataStream<O>
    where
        E: Into<UserError> + 'static,
        F: FnMut(T) -> Result<O, E> + Clone + Send + 'static,
    {
        self.transform("Map", move |_| TryMap::new(f.clone()))
    }

    /// Keeps the records for which `predicate` is true.
    pub fn filter<F>(&self, predicate: F) -> DataStream<T>
    where
        F: FnMut(&T) -> bool + Clone + Send + 'static,
    {
        self.transform("Filter", move |_| Filter::new(predicate.clone()))
    }

    /// Turns every record into any number of records.
    pub fn flat_map<I, F>(&self, f: F) -> DataStream<I::Item>
    where
        I: IntoIterator + 'static,
        I::Item: Data,
        F: FnMut(T) -> I + Clone + Send + 'static,
    {
        self.transform("Flat Map", move |_| FlatMap::new(f.clone()))
    }

    /// Runs a [`ProcessFunction`] on every record.
    pub fn process<O: Data, F: ProcessFunction<T, O>>(&self, function: F) -> DataStream<O> {
        self.transform("Process", move |_| ProcessOperator::new(function.clone()))
    }

    /// Assigns event timestamps and generates watermarks as `strategy` says (Flink's
    /// `assignTimestampsAndWatermarks`); chained to its input, so per source subtask.
    pub fn assign_timestamps_and_watermarks(
        &self,
        strategy: WatermarkStrategy<T>,
    ) -> DataStream<T> {
        let interval = self.job.with_state(|s| s.config.auto_watermark_interval());
        self.transform("Timestamps/Watermarks", move |_| {
            TimestampsAndWatermarks::new(strategy.clone(), interval)
        })
    }

    /// Partitions by the key `key_selector` extracts; state and keyed operations follow.
    pub fn key_by<K: Key, F>(&self, key_selector: F) -> KeyedStream<T, K>
    where
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        KeyedStream::new(self, Arc::new(key_selector))
    }

    /// Windows over the whole stream, not per key (Flink's `windowAll`): one subtask sees
    /// every record.
    pub fn window_all<A: WindowAssigner<T>>(&self, assigner: A) -> WindowedStream<T, (), A> {
        WindowedStream::new(self.key_by(|_| ()), assigner, true)
    }

    /// Merges streams of the same type.
    pub fn union(&self, others: &[DataStream<T>]) -> DataStream<T> {
        let mut refs = self.refs.clone();
        refs.extend(others.iter().flat_map(|o| o.refs.iter().cloned()));
        DataStream { job: self.job.clone(), refs, producer: None, _type: PhantomData }
    }

    /// Joins this stream with `other` in windows (Flink's `join`): name the keys with
    /// `where_key` and `equal_to`, then the window, then `apply` the join function.
    pub fn join<U: Data>(&self, other: &DataStream<U>) -> JoinedStreams<T, U> {
        JoinedStreams::new(self.clone(), other.clone())
    }

    /// Pairs this stream with `other` for co-operators.
    pub fn connect<U: Data>(&self, other: &DataStream<U>) -> ConnectedStreams<T, U> {
        ConnectedStreams::new(self.clone(), other.clone())
    }

    /// Sends subtask `i`'s records to subtask `i` (needs equal parallelism).
    pub fn forward(&self) -> DataStream<T> {
        self.with_partitioning(Partitioning::Forward)
    }

    /// Spreads records round-robin over the next operator's subtasks.
    pub fn rebalance(&self) -> DataStream<T> {
        self.with_partitioning(Partitioning::Rebalance)
    }

    /// Sends each record to a random subtask of the next operator.
    pub fn shuffle(&self) -> DataStream<T> {
        self.with_partitioning(Partitioning::Shuffle)
    }

    /// Sends every record to every subtask of the next operator.
    pub fn broadcast(&self) -> DataStream<T> {
        self.with_partitioning(Partitioning::Broadcast)
    }

    /// The records the producing operator emitted on the side output `tag`.
    pub fn get_side_output<S: Data>(&self, tag: &OutputTag<S>) -> DataStream<S> {
        let (job, producer) = self.operator_node();
        let stream_type = TypedStream::<S>::arc();
        job.with_node(producer, |node| {
            match node.side_output_types.iter().find(|(name, _)| name == tag.name()) {
                Some((_, existing)) => assert_eq!(
                    existing.type_name(),
                    stream_type.type_name(),
                    "side output '{}' of '{}' is read with two different types",
                    tag.name(),
                    node.name
                ),
                None => node.side_output_types.push((tag.name().to_string(), stream_type)),
            }
        });
        let refs = vec![StreamRef {
            node: producer,
            side_output: Some(tag.name().to_string()),
            partitioning: Partitioning::Default,
        }];
        DataStream { job: self.job.clone(), refs, producer: None, _type: PhantomData }
    }

    /// Adds a sink operator that `make` builds per subtask.
    pub fn sink_to<Op, M>(&self, name: &str, make: M) -> DataStreamSink
    where
        Op: OneInputOperator<In = T, Out = ()> + 'static,
        M: Fn(&SubtaskInfo) -> Op + Send + 'static,
    {
        let id = self.add_one_input(name, NodeFactory::one_input(make), TypedStream::<()>::arc());
        DataStreamSink { job: self.job.clone(), node: id }
    }

    /// Sends records to a two-phase-commit sink made per subtask by `make`: what it writes
    /// becomes visible when the checkpoint after it completes (at the end of input without
    /// checkpoints), exactly once across failures.
    pub fn sink_to_two_phase<S, M>(&self, name: &str, make: M) -> DataStreamSink
    where
        S: TwoPhaseCommitSink<T> + 'static,
        M: Fn(&SubtaskInfo) -> S + Send + 'static,
    {
        self.sink_to(name, move |info| TwoPhaseCommitSinkOperator::new(make(info)))
    }

    /// Writes each record with `Display` as a line of part files in `dir`, exactly once
    /// (Flink's `FileSink` in row format): a part file appears, as `part-…`, when the
    /// checkpoint covering it completes (at the end of input without checkpoints); files in
    /// progress or pending are hidden (`.part-…`).
    pub fn sink_to_files(&self, dir: impl Into<PathBuf>) -> DataStreamSink
    where
        T: Display,
    {
        let dir = dir.into();
        self.sink_to_two_phase("File Sink", move |_| FileSink::text_lines(dir.clone()))
    }

    /// Writes records with `sink` exactly once: text or JSON lines, local or `s3://`, with
    /// its buckets and rolling policy.
    pub fn sink_to_file(&self, sink: FileSink<T>) -> DataStreamSink {
        self.sink_to_two_phase("File Sink", move |_| sink.clone())
    }

    /// Prints every record with `{:?}` to standard output, prefixed `N> ` by subtask when
    /// the sink runs in parallel (Flink's `print()`).
    pub fn print(&self) -> DataStreamSink
    where
        T: Debug,
    {
        self.sink_to("Print to Std. Out", |_| PrintSink::new(None, false))
    }

    /// Like [`Self::print`], with `identifier` in the prefix (`identifier:N> `).
    pub fn print_with_identifier(&self, identifier: &str) -> DataStreamSink
    where
        T: Debug,
    {
        let identifier = identifier.to_string();
        self.sink_to("Print to Std. Out", move |_| PrintSink::new(Some(identifier.clone()), false))
    }

    /// Prints every record to standard error.
    pub fn print_to_err(&self) -> DataStreamSink
    where
        T: Debug,
    {
        self.sink_to("Print to Std. Err", |_| PrintSink::new(None, true))
    }

    /// Drops every record.
    pub fn discard(&self) -> DataStreamSink {
        self.sink_to("Discard", |_| DiscardSink::new())
    }

    /// Writes records as lines (`Display`): to the file `path` at parallelism 1, else to
    /// files `1`…`p` in the directory `path` (Flink's `writeAsText`).
    pub fn write_as_text(&self, path: impl Into<PathBuf>) -> DataStreamSink
    where
        T: Display,
    {
        let path = path.into();
        self.sink_to("Text File Sink", move |_| TextFileSink::new(path.clone()))
    }

    /// Collects every record into memory; read them from the handle after execution.
    pub fn collect(&self) -> CollectHandle<T> {
        let (sink, handle) = CollectSink::new();
        self.sink_to("Collect Sink", move |_| sink.clone());
        handle
    }
}

/// A sink in the job: name it, give it a uid or a parallelism.
pub struct DataStreamSink {
    job: JobHandle,
    node: NodeId,
}

impl OperatorSettings for DataStreamSink {
    fn operator_node(&self) -> (&JobHandle, NodeId) {
        (&self.job, self.node)
    }
}
