//! `KeyedStream`: a stream partitioned by key, with keyed state and rolling aggregations.

use std::ops::AddAssign;

use weir_operators::builtin::{KeySelector, KeyedProcessOperator, RollingReduce};
use weir_operators::function::KeyedProcessFunction;
use weir_types::{Data, Key};
use weir_worker::Partitioning;

use weir_operators::builtin::window::{
    CountTrigger, GlobalWindows, PurgingTrigger, WindowAssigner,
};

use crate::IntervalJoin;
use crate::{DataStream, KeyedConnectedStreams, WindowedStream};

/// A stream whose records are routed by key, so that every record of a key reaches the same
/// subtask (Flink's `KeyedStream`).
pub struct KeyedStream<T, K> {
    pub(crate) stream: DataStream<T>,
    pub(crate) key_selector: KeySelector<T, K>,
}

/// A keyed stream is a data stream partitioned by key (Flink's `KeyedStream extends
/// DataStream`): `map`, `filter`, `print` and the other stream methods apply after the
/// partitioning, so each key's records reach one subtask.
impl<T, K> std::ops::Deref for KeyedStream<T, K> {
    type Target = DataStream<T>;

    fn deref(&self) -> &DataStream<T> {
        &self.stream
    }
}

impl<T, K> Clone for KeyedStream<T, K> {
    fn clone(&self) -> Self {
        KeyedStream { stream: self.stream.clone(), key_selector: self.key_selector.clone() }
    }
}

impl<T: Data, K: Key> KeyedStream<T, K> {
    pub(crate) fn new(input: &DataStream<T>, key_selector: KeySelector<T, K>) -> Self {
        let stream = input.with_partitioning(Partitioning::hash(key_selector.clone()));
        KeyedStream { stream, key_selector }
    }

    /// Runs a [`KeyedProcessFunction`], with keyed state scoped to each record's key.
    pub fn process<O: Data, F: KeyedProcessFunction<K, T, O>>(&self, function: F) -> DataStream<O> {
        self.process_named("KeyedProcess", function)
    }

    fn process_named<O: Data, F: KeyedProcessFunction<K, T, O>>(
        &self,
        name: &str,
        function: F,
    ) -> DataStream<O> {
        let key_selector = self.key_selector.clone();
        self.stream.transform(name, move |_| {
            KeyedProcessOperator::new(function.clone(), key_selector.clone())
        })
    }

    /// Folds each key's records with `reduce(accumulated, new)`, emitting every new
    /// accumulated value.
    pub fn reduce<F>(&self, reduce: F) -> DataStream<T>
    where
        F: Fn(T, T) -> T + Send + Sync + 'static,
    {
        self.process_named("Keyed Reduce", RollingReduce::new(reduce))
    }

    /// Rolling sum of the field `field` selects; the other fields keep the key's first record's
    /// values (Flink's `sum(position)`).
    pub fn sum<V, F>(&self, field: F) -> DataStream<T>
    where
        V: AddAssign + Clone,
        F: Fn(&mut T) -> &mut V + Send + Sync + 'static,
    {
        self.fold("Keyed Aggregation", move |acc, mut new| {
            *field(acc) += field(&mut new).clone();
        })
    }

    /// Rolling minimum of a field; other fields keep the first record's values (Flink's `min`).
    pub fn min<V, F>(&self, field: F) -> DataStream<T>
    where
        V: PartialOrd + Clone,
        F: Fn(&mut T) -> &mut V + Send + Sync + 'static,
    {
        self.fold("Keyed Aggregation", move |acc, mut new| {
            if *field(&mut new) < *field(acc) {
                *field(acc) = field(&mut new).clone();
            }
        })
    }

    /// Rolling maximum of a field; other fields keep the first record's values (Flink's `max`).
    pub fn max<V, F>(&self, field: F) -> DataStream<T>
    where
        V: PartialOrd + Clone,
        F: Fn(&mut T) -> &mut V + Send + Sync + 'static,
    {
        self.fold("Keyed Aggregation", move |acc, mut new| {
            if *field(&mut new) > *field(acc) {
                *field(acc) = field(&mut new).clone();
            }
        })
    }

    /// The record with the smallest `value` so far per key; the earlier one on ties (Flink's
    /// `minBy`).
    pub fn min_by<V, F>(&self, value: F) -> DataStream<T>
    where
        V: PartialOrd,
        F: Fn(&T) -> V + Send + Sync + 'static,
    {
        self.fold("Keyed Aggregation", move |acc, new| {
            if value(&new) < value(acc) {
                *acc = new;
            }
        })
    }

    /// The record with the largest `value` so far per key; the earlier one on ties (Flink's
    /// `maxBy`).
    pub fn max_by<V, F>(&self, value: F) -> DataStream<T>
    where
        V: PartialOrd,
        F: Fn(&T) -> V + Send + Sync + 'static,
    {
        self.fold("Keyed Aggregation", move |acc, new| {
            if value(&new) > value(acc) {
                *acc = new;
            }
        })
    }

    fn fold(&self, name: &str, fold: impl Fn(&mut T, T) + Send + Sync + 'static) -> DataStream<T> {
        self.process_named(name, RollingReduce::folding(fold))
    }

    /// Cuts the stream into windows of `assigner` (per key).
    pub fn window<A: WindowAssigner<T>>(&self, assigner: A) -> WindowedStream<T, K, A> {
        WindowedStream::new(self.clone(), assigner, false)
    }

    /// Tumbling count windows: every `size` records of a key form a window (Flink's
    /// `countWindow(size)`: global windows, purging count trigger).
    pub fn count_window(&self, size: u64) -> WindowedStream<T, K, GlobalWindows> {
        self.window(GlobalWindows::create()).trigger(PurgingTrigger::of(CountTrigger::of(size)))
    }

    /// Joins this stream (left) with `other` (right) on key and event time: each pair of
    /// records of a key whose timestamps lie within the bounds set by
    /// [`IntervalJoin::between`] (Flink's `intervalJoin`).
    pub fn interval_join<U: Data>(&self, other: &KeyedStream<U, K>) -> IntervalJoin<T, U, K> {
        IntervalJoin::new(self.clone(), other.clone())
    }

    /// Pairs this keyed stream with another keyed the same way, for a keyed co-process.
    pub fn connect<U: Data>(&self, other: &KeyedStream<U, K>) -> KeyedConnectedStreams<T, U, K> {
        KeyedConnectedStreams::new(self.clone(), other.clone())
    }
}
