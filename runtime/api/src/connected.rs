//! Connected streams: two inputs of possibly different types into one operator.

use weir_operators::builtin::{CoMap, CoProcessOperator, KeyedCoProcessOperator};
use weir_operators::function::{CoProcessFunction, KeyedCoProcessFunction};
use weir_operators::{SubtaskInfo, TwoInputOperator};
use weir_types::{Data, Key};
use weir_worker::{InputSlot, NodeFactory, TypedStream};

use crate::job::NodeSpec;
use crate::{DataStream, KeyedStream};

/// Two streams feeding one co-operator (Flink's `ConnectedStreams`).
pub struct ConnectedStreams<A, B> {
    first: DataStream<A>,
    second: DataStream<B>,
}

impl<A: Data, B: Data> ConnectedStreams<A, B> {
    pub(crate) fn new(first: DataStream<A>, second: DataStream<B>) -> Self {
        ConnectedStreams { first, second }
    }

    /// Adds a two-input operator that `make` builds per subtask.
    pub fn transform<Op, M>(&self, name: &str, make: M) -> DataStream<Op::Out>
    where
        Op: TwoInputOperator<In1 = A, In2 = B> + 'static,
        Op::Out: Data,
        M: Fn(&SubtaskInfo) -> Op + Send + 'static,
    {
        let inputs = self
            .first
            .refs
            .iter()
            .map(|r| r.edge(InputSlot::First))
            .chain(self.second.refs.iter().map(|r| r.edge(InputSlot::Second)))
            .collect();
        let spec = NodeSpec {
            name: name.to_string(),
            inputs,
            output_type: TypedStream::<Op::Out>::arc(),
            non_parallel: false,
        };
        let id = self.first.job.add(spec, NodeFactory::two_input(make));
        DataStream::produced_by(self.first.job.clone(), id)
    }

    /// Maps the first stream with `first` and the second with `second` into one stream.
    pub fn map<O: Data, F1, F2>(&self, first: F1, second: F2) -> DataStream<O>
    where
        F1: FnMut(A) -> O + Clone + Send + 'static,
        F2: FnMut(B) -> O + Clone + Send + 'static,
    {
        self.transform("Co-Map", move |_| CoMap::new(first.clone(), second.clone()))
    }

    /// Runs a [`CoProcessFunction`] over both streams.
    pub fn process<O: Data, F: CoProcessFunction<A, B, O>>(&self, function: F) -> DataStream<O> {
        self.transform("Co-Process", move |_| CoProcessOperator::new(function.clone()))
    }
}

/// Two streams keyed into the same key space, feeding a keyed co-operator.
pub struct KeyedConnectedStreams<A, B, K> {
    first: KeyedStream<A, K>,
    second: KeyedStream<B, K>,
}

impl<A: Data, B: Data, K: Key> KeyedConnectedStreams<A, B, K> {
    pub(crate) fn new(first: KeyedStream<A, K>, second: KeyedStream<B, K>) -> Self {
        KeyedConnectedStreams { first, second }
    }

    /// Runs a [`KeyedCoProcessFunction`] with keyed state shared by both inputs per key.
    pub fn process<O: Data, F: KeyedCoProcessFunction<K, A, B, O>>(
        &self,
        function: F,
    ) -> DataStream<O> {
        let (key1, key2) = (self.first.key_selector.clone(), self.second.key_selector.clone());
        ConnectedStreams::new(self.first.stream.clone(), self.second.stream.clone())
            .transform("KeyedCoProcess", move |_| {
                KeyedCoProcessOperator::new(function.clone(), key1.clone(), key2.clone())
            })
    }
}
