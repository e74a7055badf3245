//! Operators that run user process functions, keyed and not.

use std::marker::PhantomData;

use weir_state::{KeyedState, OperatorStateStore, StateBackendKind};
use weir_types::{Key, Record};

use super::KeySelector;
use super::keyed::{keyed_state_for, process_each, process_keyed};
use crate::function::{FnResult, KeyedProcessFunction, ProcessFunction};
use crate::{Collector, KeyedRuntimeContext, OneInputOperator, RuntimeContext, SubtaskInfo};

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

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        self.function.open(&mut RuntimeContext::new(info, &mut self.operator_state))?;
        self.info = Some(info.clone());
        Ok(())
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
/// state before calling the function.
pub struct KeyedProcessOperator<K, I, O, F> {
    function: F,
    key_selector: KeySelector<I, K>,
    backend: StateBackendKind,
    running: Option<(SubtaskInfo, KeyedState<K>)>,
    _types: PhantomData<fn(I) -> O>,
}

impl<K: Key, I, O, F: KeyedProcessFunction<K, I, O>> KeyedProcessOperator<K, I, O, F> {
    /// Runs `function` over records keyed by `key_selector`, with state on `backend`.
    pub fn new(function: F, key_selector: KeySelector<I, K>, backend: StateBackendKind) -> Self {
        KeyedProcessOperator { function, key_selector, backend, running: None, _types: PhantomData }
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

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        let mut state = keyed_state_for(self.backend, info);
        self.function.open(&mut KeyedRuntimeContext::new(info, &mut state))?;
        self.running = Some((info.clone(), state));
        Ok(())
    }

    fn process_batch(&mut self, batch: &mut Vec<Record<I>>, out: &mut Collector<O>) -> FnResult {
        let (info, state) = self.running.as_mut().expect("opened before processing");
        let function = &mut self.function;
        process_keyed(batch, out, info, state, &self.key_selector, |value, ctx, out| {
            function.process_element(value, ctx, out)
        })
    }
}
