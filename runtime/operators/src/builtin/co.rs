//! Operators over two connected streams: co-map, co-process, keyed co-process.

use std::marker::PhantomData;

use weir_state::OperatorStateStore;
use weir_types::{CheckpointBarrier, Key, Record, Timestamp, Watermark};

use super::KeySelector;
use super::keyed::{KeyedRuntime, process_each};
use crate::function::{CoProcessFunction, FnResult, KeyedCoProcessFunction};
use crate::{
    Collector, OperatorSnapshot, RuntimeContext, StateRestore, SubtaskInfo, TwoInputOperator,
};

/// Maps each input with its own closure into one output type.
pub struct CoMap<I1, I2, O, F1, F2> {
    first: F1,
    second: F2,
    _types: PhantomData<fn(I1, I2) -> O>,
}

impl<I1, I2, O, F1: FnMut(I1) -> O, F2: FnMut(I2) -> O> CoMap<I1, I2, O, F1, F2> {
    /// Maps the first input with `first` and the second with `second`.
    pub fn new(first: F1, second: F2) -> Self {
        CoMap { first, second, _types: PhantomData }
    }
}

fn map_batch<I, O>(batch: &mut Vec<Record<I>>, out: &mut Collector<O>, f: &mut impl FnMut(I) -> O) {
    for record in batch.drain(..) {
        out.set_timestamp(record.timestamp);
        out.collect(f(record.value));
    }
}

impl<I1, I2, O, F1, F2> TwoInputOperator for CoMap<I1, I2, O, F1, F2>
where
    F1: FnMut(I1) -> O + Send,
    F2: FnMut(I2) -> O + Send,
{
    type In1 = I1;
    type In2 = I2;
    type Out = O;

    fn process_batch1(&mut self, batch: &mut Vec<Record<I1>>, out: &mut Collector<O>) -> FnResult {
        map_batch(batch, out, &mut self.first);
        Ok(())
    }

    fn process_batch2(&mut self, batch: &mut Vec<Record<I2>>, out: &mut Collector<O>) -> FnResult {
        map_batch(batch, out, &mut self.second);
        Ok(())
    }
}

/// Runs a [`CoProcessFunction`].
pub struct CoProcessOperator<I1, I2, O, F> {
    function: F,
    info: Option<SubtaskInfo>,
    operator_state: OperatorStateStore,
    _types: PhantomData<fn(I1, I2) -> O>,
}

impl<I1, I2, O, F: CoProcessFunction<I1, I2, O>> CoProcessOperator<I1, I2, O, F> {
    /// Runs `function`.
    pub fn new(function: F) -> Self {
        CoProcessOperator {
            function,
            info: None,
            operator_state: OperatorStateStore::new(),
            _types: PhantomData,
        }
    }
}

impl<I1, I2, O, F: CoProcessFunction<I1, I2, O>> TwoInputOperator
    for CoProcessOperator<I1, I2, O, F>
{
    type In1 = I1;
    type In2 = I2;
    type Out = O;

    fn initialize_state(&mut self, _info: &SubtaskInfo, restore: StateRestore) -> FnResult {
        self.operator_state.restore(restore.operator);
        Ok(())
    }

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        self.function.open(&mut RuntimeContext::new(info, &mut self.operator_state))?;
        self.info = Some(info.clone());
        Ok(())
    }

    fn snapshot_state(&mut self, _barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        Ok(OperatorSnapshot { lists: self.operator_state.snapshot()?, ..Default::default() })
    }

    fn process_batch1(&mut self, batch: &mut Vec<Record<I1>>, out: &mut Collector<O>) -> FnResult {
        let info = self.info.as_ref().expect("opened before processing");
        let function = &mut self.function;
        process_each(batch, out, info, &mut self.operator_state, |value, ctx, out| {
            function.process_element1(value, ctx, out)
        })
    }

    fn process_batch2(&mut self, batch: &mut Vec<Record<I2>>, out: &mut Collector<O>) -> FnResult {
        let info = self.info.as_ref().expect("opened before processing");
        let function = &mut self.function;
        process_each(batch, out, info, &mut self.operator_state, |value, ctx, out| {
            function.process_element2(value, ctx, out)
        })
    }
}

/// Runs a [`KeyedCoProcessFunction`] over two streams keyed into the same key space.
pub struct KeyedCoProcessOperator<K, I1, I2, O, F> {
    function: F,
    key1: KeySelector<I1, K>,
    key2: KeySelector<I2, K>,
    runtime: Option<KeyedRuntime<K>>,
    _types: PhantomData<fn(I1, I2) -> O>,
}

impl<K: Key, I1, I2, O, F: KeyedCoProcessFunction<K, I1, I2, O>>
    KeyedCoProcessOperator<K, I1, I2, O, F>
{
    /// Runs `function`; `key1`/`key2` extract the key of each input.
    pub fn new(function: F, key1: KeySelector<I1, K>, key2: KeySelector<I2, K>) -> Self {
        KeyedCoProcessOperator { function, key1, key2, runtime: None, _types: PhantomData }
    }

    fn runtime(&mut self) -> (&mut KeyedRuntime<K>, &mut F) {
        (self.runtime.as_mut().expect("opened before processing"), &mut self.function)
    }
}

impl<K, I1, I2, O, F> TwoInputOperator for KeyedCoProcessOperator<K, I1, I2, O, F>
where
    K: Key,
    I1: Send,
    I2: Send,
    F: KeyedCoProcessFunction<K, I1, I2, O>,
{
    type In1 = I1;
    type In2 = I2;
    type Out = O;

    fn initialize_state(&mut self, info: &SubtaskInfo, restore: StateRestore) -> FnResult {
        self.runtime = Some(KeyedRuntime::new(info, restore)?);
        Ok(())
    }

    fn open(&mut self, _info: &SubtaskInfo) -> FnResult {
        let (runtime, function) = self.runtime();
        function.open(&mut runtime.open_context())
    }

    fn snapshot_state(&mut self, barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        self.runtime().0.snapshot(barrier)
    }

    fn process_batch1(&mut self, batch: &mut Vec<Record<I1>>, out: &mut Collector<O>) -> FnResult {
        let key = self.key1.clone();
        let (runtime, function) = self.runtime();
        runtime
            .process(batch, out, &key, |value, ctx, out| function.process_element1(value, ctx, out))
    }

    fn process_batch2(&mut self, batch: &mut Vec<Record<I2>>, out: &mut Collector<O>) -> FnResult {
        let key = self.key2.clone();
        let (runtime, function) = self.runtime();
        runtime
            .process(batch, out, &key, |value, ctx, out| function.process_element2(value, ctx, out))
    }

    fn process_watermark(&mut self, watermark: Watermark, out: &mut Collector<O>) -> FnResult {
        let (runtime, function) = self.runtime();
        runtime.on_watermark(watermark, out, |time, ctx, out| function.on_timer(time, ctx, out))
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector<O>) -> FnResult {
        let (runtime, function) = self.runtime();
        runtime.on_processing_time(now, out, |time, ctx, out| function.on_timer(time, ctx, out))
    }

    fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.runtime.as_ref().and_then(KeyedRuntime::next_processing_deadline)
    }
}
