//! What process-function operators share: the key selector, per-subtask keyed state, and
//! the per-record loop that sets key and timestamp before calling the function.

use std::sync::Arc;

use weir_state::{KeyedRestore, KeyedState, OperatorStateStore, Sharing};
use weir_types::{CheckpointBarrier, Key, Record, Timestamp, Watermark};

use crate::function::FnResult;
use crate::{
    Collector, FiredTimer, KeyedContext, KeyedRuntimeContext, OperatorSnapshot, ProcessContext,
    StateRestore, SubtaskInfo, TimeDomain, TimerService,
};

/// Extracts the key of a record; shared by the partitioner and the keyed operator.
pub type KeySelector<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// The keyed state and timers of the subtask `info` describes, starting from `restore`.
pub(crate) fn keyed_state_for<K: Key, N: Key>(
    info: &SubtaskInfo,
    mut restore: KeyedRestore,
) -> FnResult<(KeyedState<K>, TimerService<K, N>)> {
    let mut timers = TimerService::new();
    timers.restore(&mut restore)?;
    let mut state =
        KeyedState::new(info.state_backend.clone(), info.max_parallelism, info.key_group_range());
    state.restore(restore)?;
    Ok((state, timers))
}

/// The snapshot of keyed state (incremental where the backend and `barrier` allow) and its
/// timers (always canonical).
pub(crate) fn snapshot_keyed<K: Key, N: Key>(
    info: &SubtaskInfo,
    state: &mut KeyedState<K>,
    timers: &mut TimerService<K, N>,
    barrier: CheckpointBarrier,
) -> FnResult<OperatorSnapshot> {
    let (mut keyed, native) = state.snapshot_for(barrier.id, barrier.kind)?;
    timers.snapshot(info.key_group_range(), &mut keyed, Sharing::of(barrier.kind));
    Ok(OperatorSnapshot { keyed, lists: Vec::new(), native })
}

/// What a keyed operator subtask runs with: its identity, keyed state over the key groups
/// it owns, and timers.
pub(crate) struct KeyedRuntime<K> {
    pub(crate) info: SubtaskInfo,
    pub(crate) state: KeyedState<K>,
    pub(crate) timers: TimerService<K>,
}

impl<K: Key> KeyedRuntime<K> {
    /// The runtime of the subtask `info` describes, starting from `restore`.
    pub(crate) fn new(info: &SubtaskInfo, restore: StateRestore) -> FnResult<Self> {
        let (state, timers) = keyed_state_for(info, restore.keyed)?;
        Ok(KeyedRuntime { info: info.clone(), state, timers })
    }

    /// The keyed state and timers as of now, for `barrier`.
    pub(crate) fn snapshot(&mut self, barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        snapshot_keyed(&self.info, &mut self.state, &mut self.timers, barrier)
    }

    /// The context functions register their state with in `open`.
    pub(crate) fn open_context(&mut self) -> KeyedRuntimeContext<'_, K> {
        KeyedRuntimeContext::new(&self.info, &mut self.state)
    }

    /// Calls `function` for every record of `batch`, with the record's key set on the state
    /// and its timestamp on `out`.
    pub(crate) fn process<T, O>(
        &mut self,
        batch: &mut Vec<Record<T>>,
        out: &mut Collector<O>,
        key_selector: &KeySelector<T, K>,
        mut function: impl FnMut(T, &mut KeyedContext<'_, K>, &mut Collector<O>) -> FnResult,
    ) -> FnResult {
        for record in batch.drain(..) {
            self.state.set_current_key(key_selector(&record.value))?;
            out.set_timestamp(record.timestamp);
            let mut ctx = KeyedContext::new(
                &self.info,
                record.timestamp,
                None,
                &mut self.state,
                &mut self.timers,
            );
            function(record.value, &mut ctx, out)?;
        }
        Ok(())
    }

    /// Fires the event-time timers the watermark passed, then passes the watermark on.
    pub(crate) fn on_watermark<O>(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<O>,
        mut on_timer: impl FnMut(Timestamp, &mut KeyedContext<'_, K>, &mut Collector<O>) -> FnResult,
    ) -> FnResult {
        self.timers.advance_watermark(watermark);
        while let Some(timer) = self.timers.pop_event_timer() {
            self.fire(TimeDomain::EventTime, timer, out, &mut on_timer)?;
        }
        out.emit_watermark(watermark);
        Ok(())
    }

    /// Fires the processing-time timers due at `now`.
    pub(crate) fn on_processing_time<O>(
        &mut self,
        now: Timestamp,
        out: &mut Collector<O>,
        mut on_timer: impl FnMut(Timestamp, &mut KeyedContext<'_, K>, &mut Collector<O>) -> FnResult,
    ) -> FnResult {
        while let Some(timer) = self.timers.pop_processing_timer(now) {
            self.fire(TimeDomain::ProcessingTime, timer, out, &mut on_timer)?;
        }
        Ok(())
    }

    fn fire<O>(
        &mut self,
        domain: TimeDomain,
        FiredTimer { time, key, group, .. }: FiredTimer<K, ()>,
        out: &mut Collector<O>,
        on_timer: &mut impl FnMut(Timestamp, &mut KeyedContext<'_, K>, &mut Collector<O>) -> FnResult,
    ) -> FnResult {
        self.state.set_current_key_in_group(key, group)?;
        // Output of event-time timers carries the timer's time, as in Flink.
        out.set_timestamp((domain == TimeDomain::EventTime).then_some(time));
        let mut ctx = KeyedContext::new(
            &self.info,
            Some(time),
            Some(domain),
            &mut self.state,
            &mut self.timers,
        );
        on_timer(time, &mut ctx, out)
    }

    /// When the earliest processing-time timer is due.
    pub(crate) fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.timers.next_processing_time()
    }
}

/// Calls `function` for every record of `batch`, with its timestamp on `out`.
pub(crate) fn process_each<T, O>(
    batch: &mut Vec<Record<T>>,
    out: &mut Collector<O>,
    info: &SubtaskInfo,
    operator_state: &mut OperatorStateStore,
    mut function: impl FnMut(T, &mut ProcessContext<'_>, &mut Collector<O>) -> FnResult,
) -> FnResult {
    for record in batch.drain(..) {
        out.set_timestamp(record.timestamp);
        function(
            record.value,
            &mut ProcessContext::new(info, record.timestamp, operator_state),
            out,
        )?;
    }
    Ok(())
}
