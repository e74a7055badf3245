//! `WindowedStream`: a keyed stream cut into windows, and the window functions applied to them.

use std::sync::Arc;
use std::time::Duration;

use weir_operators::OutputTag;
use weir_operators::builtin::window::{
    AggregateContents, AggregateResult, ListContents, PassThrough, ProcessContents,
    ProcessWindowFunction, ReduceContents, Trigger, WindowAssigner, WindowContents, WindowEmit,
    WindowOperator, WindowSettings,
};
use weir_state::AggregateFunction;
use weir_types::{Data, Key};

use crate::job::OperatorSettings;
use crate::{DataStream, KeyedStream};

type TriggerFactory<T, W> = Arc<dyn Fn() -> Box<dyn Trigger<T, W>> + Send + Sync>;

/// A keyed stream cut into windows by an assigner (Flink's `WindowedStream`). Configure the
/// trigger, lateness and late-data output, then apply a window function.
pub struct WindowedStream<T, K, A: WindowAssigner<T>> {
    keyed: KeyedStream<T, K>,
    assigner: A,
    trigger: Option<TriggerFactory<T, A::W>>,
    allowed_lateness: Duration,
    late_data: Option<OutputTag<T>>,
    /// `window_all`: the window operator runs as a single subtask.
    single_subtask: bool,
}

impl<T: Data, K: Key, A: WindowAssigner<T>> WindowedStream<T, K, A> {
    pub(crate) fn new(keyed: KeyedStream<T, K>, assigner: A, single_subtask: bool) -> Self {
        WindowedStream {
            keyed,
            assigner,
            trigger: None,
            allowed_lateness: Duration::ZERO,
            late_data: None,
            single_subtask,
        }
    }

    /// Fires windows with `trigger` instead of the assigner's default.
    pub fn trigger<Tr>(mut self, trigger: Tr) -> Self
    where
        Tr: Trigger<T, A::W> + Clone + Sync + 'static,
    {
        self.trigger = Some(Arc::new(move || Box::new(trigger.clone())));
        self
    }

    /// Keeps windows for `lateness` after their end: late records update them and re-fire.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.allowed_lateness = lateness;
        self
    }

    /// Sends records too late for every window to the side output `tag` instead of dropping
    /// them; read it with `get_side_output(&tag)` on the windowed result.
    pub fn side_output_late_data(mut self, tag: OutputTag<T>) -> Self {
        self.late_data = Some(tag);
        self
    }

    /// Reduces each window's records to one (Flink's `reduce`).
    pub fn reduce<F>(&self, reduce: F) -> DataStream<T>
    where
        F: Fn(T, T) -> T + Send + Sync + 'static,
    {
        self.build(ReduceContents::new(reduce), PassThrough)
    }

    /// Aggregates each window incrementally and emits the aggregate's result.
    pub fn aggregate<Acc, Out, F>(&self, aggregate: F) -> DataStream<Out>
    where
        Acc: Data,
        Out: Data,
        F: AggregateFunction<T, Acc, Out> + 'static,
    {
        let aggregate: Arc<dyn AggregateFunction<T, Acc, Out>> = Arc::new(aggregate);
        self.build(AggregateContents::new(aggregate.clone()), AggregateResult(aggregate))
    }

    /// Runs a process window function over all records of each window (they are buffered).
    pub fn process<Out, F>(&self, function: F) -> DataStream<Out>
    where
        Out: Data,
        F: ProcessWindowFunction<T, Out, K, A::W>,
    {
        self.build(ListContents::default(), ProcessContents::new(function, |all: Vec<T>| all))
    }

    /// Reduces incrementally, then hands the one reduced record to a process window function
    /// with the window's metadata.
    pub fn reduce_with_process<Out, R, F>(&self, reduce: R, function: F) -> DataStream<Out>
    where
        Out: Data,
        R: Fn(T, T) -> T + Send + Sync + 'static,
        F: ProcessWindowFunction<T, Out, K, A::W>,
    {
        self.build(ReduceContents::new(reduce), ProcessContents::new(function, |one: T| vec![one]))
    }

    /// Aggregates incrementally, then hands the result to a process window function.
    pub fn aggregate_with_process<Acc, Mid, Out, G, F>(
        &self,
        aggregate: G,
        function: F,
    ) -> DataStream<Out>
    where
        Acc: Data,
        Mid: Data,
        Out: Data,
        G: AggregateFunction<T, Acc, Mid> + 'static,
        F: ProcessWindowFunction<Mid, Out, K, A::W>,
    {
        let aggregate: Arc<dyn AggregateFunction<T, Acc, Mid>> = Arc::new(aggregate);
        let result = aggregate.clone();
        self.build(
            AggregateContents::new(aggregate),
            ProcessContents::new(function, move |acc: Acc| vec![result.get_result(&acc)]),
        )
    }

    fn build<C, E, Out>(&self, contents: C, emit: E) -> DataStream<Out>
    where
        C: WindowContents<T>,
        E: WindowEmit<K, A::W, C::Acc, Out>,
        Out: Data,
    {
        let key_selector = self.keyed.key_selector.clone();
        let assigner = self.assigner.clone();
        let trigger = self.trigger.clone();
        let settings = WindowSettings {
            allowed_lateness: self.allowed_lateness.as_millis() as i64,
            late_data: self.late_data.clone(),
        };
        let stream = self.keyed.stream.transform("Window", move |_| {
            let trigger = match &trigger {
                Some(make) => make(),
                None => assigner.default_trigger(),
            };
            WindowOperator::new(
                key_selector.clone(),
                assigner.clone(),
                trigger,
                contents.clone(),
                emit.clone(),
                settings.clone(),
            )
        });
        if self.single_subtask { stream.set_parallelism(1) } else { stream }
    }
}
