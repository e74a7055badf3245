//! Operators that run user process functions, keyed and not.

use std::marker::PhantomData;

use weir_state::OperatorStateStore;
use weir_types::{CheckpointBarrier, Key, Record, Timestamp, Watermark};

use super::KeySelector;
use super::keyed::{KeyedRuntime, process_each};
use crate::function::{FnResult, KeyedProcessFunction, ProcessFunction};
use crate::{
    Collector, OneInputOperator, OperatorSnapshot, RuntimeContext, StateRestore, SubtaskInfo,
};

/// Runs a [`ProcessFunction`] on a non-keyed stream.
pub struct ProcessOperator<I, O, F> {
    function: F,
    info: Option<SubtaskInfo>,
    operator_state: OperatorStateStore,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O, F: ProcessFunction<I, O>> ProcessOperator<I, O, F> {
    /// Runs `function`.
    pub fn new(function: F) -> Self {
        ProcessOperator {
            function,
            info: None,
            operator_state: OperatorStateStore::new(),
            _types: PhantomData,
        }
    }
}

impl<I, O, F: ProcessFunction<I, O>> OneInputOperator for ProcessOperator<I, O, F> {
    type In = I;
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

    fn process_batch(&mut self, batch: &mut Vec<Record<I>>, out: &mut Collector<O>) -> FnResult {
        let info = self.info.as_ref().expect("opened before processing");
        let function = &mut self.function;
        process_each(batch, out, info, &mut self.operator_state, |value, ctx, out| {
            function.process_element(value, ctx, out)
        })
    }

    fn finish(&mut self, out: &mut Collector<O>) -> FnResult {
        out.set_timestamp(None);
        self.function.finish(out)
    }
}

/// Runs a [`KeyedProcessFunction`] on a keyed stream: sets each record's key on the keyed
/// state before calling the function, and fires its timers.
pub struct KeyedProcessOperator<K, I, O, F> {
    function: F,
    key_selector: KeySelector<I, K>,
    runtime: Option<KeyedRuntime<K>>,
    _types: PhantomData<fn(I) -> O>,
}

impl<K: Key, I, O, F: KeyedProcessFunction<K, I, O>> KeyedProcessOperator<K, I, O, F> {
    /// Runs `function` over records keyed by `key_selector`.
    pub fn new(function: F, key_selector: KeySelector<I, K>) -> Self {
        KeyedProcessOperator { function, key_selector, runtime: None, _types: PhantomData }
    }

    fn runtime(&mut self) -> (&mut KeyedRuntime<K>, &mut F) {
        (self.runtime.as_mut().expect("opened before processing"), &mut self.function)
    }
}

impl<K, I, O, F> OneInputOperator for KeyedProcessOperator<K, I, O, F>
where
    K: Key,
    I: Send,
    F: KeyedProcessFunction<K, I, O>,
{
    type In = I;
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

    fn process_batch(&mut self, batch: &mut Vec<Record<I>>, out: &mut Collector<O>) -> FnResult {
        let key_selector = self.key_selector.clone();
        let (runtime, function) = self.runtime();
        runtime.process(batch, out, &key_selector, |value, ctx, out| {
            function.process_element(value, ctx, out)
        })
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
