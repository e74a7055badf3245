//! What a window keeps (its contents, built incrementally) and what it emits when it fires:
//! reduce, aggregate, process window functions, and the incremental + process combinations.

use std::marker::PhantomData;
use std::sync::Arc;

use weir_state::AggregateFunction;
use weir_types::{Data, Timestamp};

use crate::function::FnResult;
use crate::{Collector, processing_time_now};

/// How records accumulate into a window's contents.
pub trait WindowContents<T>: Clone + Send + 'static {
    /// The stored contents.
    type Acc: Data;
    /// The contents of a window holding just `value`.
    fn first(&self, value: T) -> Self::Acc;
    /// Adds `value` to existing contents.
    fn add(&self, acc: &mut Self::Acc, value: T);
    /// Merges the contents of two windows (session merging).
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
}

/// Contents reduced to one record with a reduce function.
pub struct ReduceContents<T> {
    reduce: Arc<dyn Fn(T, T) -> T + Send + Sync>,
}

impl<T> Clone for ReduceContents<T> {
    fn clone(&self) -> Self {
        ReduceContents { reduce: self.reduce.clone() }
    }
}

impl<T> ReduceContents<T> {
    /// Reduces with `reduce(accumulated, new)`.
    pub fn new(reduce: impl Fn(T, T) -> T + Send + Sync + 'static) -> Self {
        ReduceContents { reduce: Arc::new(reduce) }
    }
}

impl<T: Data> WindowContents<T> for ReduceContents<T> {
    type Acc = T;
    fn first(&self, value: T) -> T {
        value
    }
    fn add(&self, acc: &mut T, value: T) {
        *acc = (self.reduce)(acc.clone(), value);
    }
    fn merge(&self, acc: &mut T, other: T) {
        self.add(acc, other);
    }
}

/// Contents folded into an accumulator by an [`AggregateFunction`].
pub struct AggregateContents<In, Acc, Out> {
    aggregate: Arc<dyn AggregateFunction<In, Acc, Out>>,
}

impl<In, Acc, Out> Clone for AggregateContents<In, Acc, Out> {
    fn clone(&self) -> Self {
        AggregateContents { aggregate: self.aggregate.clone() }
    }
}

impl<In, Acc, Out> AggregateContents<In, Acc, Out> {
    /// Aggregates with `aggregate`.
    pub fn new(aggregate: Arc<dyn AggregateFunction<In, Acc, Out>>) -> Self {
        AggregateContents { aggregate }
    }

    /// The aggregate, for emitting results.
    pub fn function(&self) -> Arc<dyn AggregateFunction<In, Acc, Out>> {
        self.aggregate.clone()
    }
}

impl<In: 'static, Acc: Data, Out: 'static> WindowContents<In> for AggregateContents<In, Acc, Out> {
    type Acc = Acc;
    fn first(&self, value: In) -> Acc {
        let mut acc = self.aggregate.create_accumulator();
        self.aggregate.add(value, &mut acc);
        acc
    }
    fn add(&self, acc: &mut Acc, value: In) {
        self.aggregate.add(value, acc);
    }
    fn merge(&self, acc: &mut Acc, other: Acc) {
        let current = std::mem::replace(acc, self.aggregate.create_accumulator());
        *acc = self.aggregate.merge(current, other);
    }
}

/// Every record of the window, kept for a process window function.
pub struct ListContents<T>(PhantomData<fn() -> T>);

impl<T> Clone for ListContents<T> {
    fn clone(&self) -> Self {
        ListContents(PhantomData)
    }
}

impl<T> Default for ListContents<T> {
    fn default() -> Self {
        ListContents(PhantomData)
    }
}

impl<T: Data> WindowContents<T> for ListContents<T> {
    type Acc = Vec<T>;
    fn first(&self, value: T) -> Vec<T> {
        vec![value]
    }
    fn add(&self, acc: &mut Vec<T>, value: T) {
        acc.push(value);
    }
    fn merge(&self, acc: &mut Vec<T>, other: Vec<T>) {
        acc.extend(other);
    }
}

/// What a process window function learns about the firing window.
pub struct WindowContext<'a, W> {
    window: &'a W,
    watermark: Timestamp,
}

impl<'a, W> WindowContext<'a, W> {
    pub(crate) fn new(window: &'a W, watermark: Timestamp) -> Self {
        WindowContext { window, watermark }
    }

    /// The window being emitted.
    pub fn window(&self) -> &W {
        self.window
    }

    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }

    /// The wall clock, read when asked (most functions never ask: no clock read per firing).
    pub fn current_processing_time(&self) -> Timestamp {
        processing_time_now()
    }
}

/// A function over all records of a window (or the one pre-aggregated result), with the key
/// and window (Flink's `ProcessWindowFunction`).
pub trait ProcessWindowFunction<In, Out, K, W>: Clone + Send + 'static {
    /// Emits the results of `window` for `key`.
    fn process(
        &mut self,
        key: &K,
        ctx: &WindowContext<'_, W>,
        elements: Vec<In>,
        out: &mut Collector<Out>,
    ) -> FnResult;
}

/// Turns a firing window's contents into output.
pub trait WindowEmit<K, W, Acc, Out>: Clone + Send + 'static {
    /// Emits for `key` and the window in `ctx`, from a copy of its contents.
    fn emit(
        &mut self,
        key: &K,
        ctx: &WindowContext<'_, W>,
        acc: Acc,
        out: &mut Collector<Out>,
    ) -> FnResult;
}

/// Emits the contents themselves (a reduced record).
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough;

impl<K, W, T: 'static> WindowEmit<K, W, T, T> for PassThrough {
    fn emit(
        &mut self,
        _: &K,
        _: &WindowContext<'_, W>,
        acc: T,
        out: &mut Collector<T>,
    ) -> FnResult {
        out.collect(acc);
        Ok(())
    }
}

/// Emits an aggregate's result.
pub struct AggregateResult<In, Acc, Out>(pub Arc<dyn AggregateFunction<In, Acc, Out>>);

impl<In, Acc, Out> Clone for AggregateResult<In, Acc, Out> {
    fn clone(&self) -> Self {
        AggregateResult(self.0.clone())
    }
}

impl<K, W, In: 'static, Acc: 'static, Out: 'static> WindowEmit<K, W, Acc, Out>
    for AggregateResult<In, Acc, Out>
{
    fn emit(
        &mut self,
        _: &K,
        _: &WindowContext<'_, W>,
        acc: Acc,
        out: &mut Collector<Out>,
    ) -> FnResult {
        out.collect(self.0.get_result(&acc));
        Ok(())
    }
}

/// Hands the contents to a process window function, after `prepare` turns them into the
/// elements it sees: all records, or the one pre-aggregated result.
pub struct ProcessContents<Acc, In, F> {
    function: F,
    prepare: Arc<dyn Fn(Acc) -> Vec<In> + Send + Sync>,
}

impl<Acc, In, F: Clone> Clone for ProcessContents<Acc, In, F> {
    fn clone(&self) -> Self {
        ProcessContents { function: self.function.clone(), prepare: self.prepare.clone() }
    }
}

impl<Acc, In, F> ProcessContents<Acc, In, F> {
    /// Calls `function` with `prepare(contents)`.
    pub fn new(function: F, prepare: impl Fn(Acc) -> Vec<In> + Send + Sync + 'static) -> Self {
        ProcessContents { function, prepare: Arc::new(prepare) }
    }
}

impl<K, W, Acc: 'static, In: 'static, Out, F> WindowEmit<K, W, Acc, Out>
    for ProcessContents<Acc, In, F>
where
    F: ProcessWindowFunction<In, Out, K, W>,
{
    fn emit(
        &mut self,
        key: &K,
        ctx: &WindowContext<'_, W>,
        acc: Acc,
        out: &mut Collector<Out>,
    ) -> FnResult {
        self.function.process(key, ctx, (self.prepare)(acc), out)
    }
}
