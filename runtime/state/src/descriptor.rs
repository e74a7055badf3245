//! Descriptors: the name and type of a piece of state, from which handles are registered.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::AggregateFunction;

/// Describes a single value per key.
#[derive(Debug, Clone)]
pub struct ValueStateDescriptor<V> {
    pub(crate) name: String,
    _value: PhantomData<fn() -> V>,
}

impl<V> ValueStateDescriptor<V> {
    /// A value state called `name` (unique within the operator).
    pub fn new(name: impl Into<String>) -> Self {
        ValueStateDescriptor { name: name.into(), _value: PhantomData }
    }
}

/// Describes a list of values per key.
#[derive(Debug, Clone)]
pub struct ListStateDescriptor<V> {
    pub(crate) name: String,
    _value: PhantomData<fn() -> V>,
}

impl<V> ListStateDescriptor<V> {
    /// A list state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ListStateDescriptor { name: name.into(), _value: PhantomData }
    }
}

/// Describes a map from user keys to values per key.
#[derive(Debug, Clone)]
pub struct MapStateDescriptor<UK, UV> {
    pub(crate) name: String,
    _entries: PhantomData<fn() -> (UK, UV)>,
}

impl<UK, UV> MapStateDescriptor<UK, UV> {
    /// A map state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MapStateDescriptor { name: name.into(), _entries: PhantomData }
    }
}

/// A reduce function shared by a descriptor and the handles registered from it.
pub type ReduceFn<V> = Arc<dyn Fn(&V, &V) -> V + Send + Sync>;

/// Describes a value per key that every `add` folds into with a reduce function.
#[derive(Clone)]
pub struct ReducingStateDescriptor<V> {
    pub(crate) name: String,
    pub(crate) reduce: ReduceFn<V>,
}

impl<V> ReducingStateDescriptor<V> {
    /// A reducing state called `name` combining values with `reduce`.
    pub fn new(
        name: impl Into<String>,
        reduce: impl Fn(&V, &V) -> V + Send + Sync + 'static,
    ) -> Self {
        ReducingStateDescriptor { name: name.into(), reduce: Arc::new(reduce) }
    }
}

/// Describes an accumulator per key that every `add` folds into with an aggregate function.
#[derive(Clone)]
pub struct AggregatingStateDescriptor<In, Acc, Out> {
    pub(crate) name: String,
    pub(crate) aggregate: Arc<dyn AggregateFunction<In, Acc, Out>>,
}

impl<In, Acc, Out> AggregatingStateDescriptor<In, Acc, Out> {
    /// An aggregating state called `name` using `aggregate`.
    pub fn new(
        name: impl Into<String>,
        aggregate: impl AggregateFunction<In, Acc, Out> + 'static,
    ) -> Self {
        AggregatingStateDescriptor { name: name.into(), aggregate: Arc::new(aggregate) }
    }
}
