//! The window operator (Flink's `WindowOperator`): contents per key and window, triggers,
//! cleanup after the allowed lateness, late records to a side output, session merging.

use std::marker::PhantomData;

use weir_state::{KeyedState, NamespacedValueState, ValueState, ValueStateDescriptor};
use weir_types::{CheckpointBarrier, Data, Key, Record, Timestamp, Watermark};

use super::assigner::WindowAssigner;
use super::contents::{WindowContents, WindowContext, WindowEmit};
use super::groups::WindowGroups;
use super::merging::MergingWindowSet;
use super::trigger::{Trigger, TriggerAccess, TriggerContext, TriggerResult};
use super::windows::Window;
use crate::builtin::KeySelector;
use crate::builtin::keyed::{keyed_state_for, snapshot_keyed};
use crate::function::FnResult;
use crate::{
    Collector, OneInputOperator, OperatorSnapshot, OutputTag, StateRestore, SubtaskInfo,
    TimeDomain, TimerService, processing_time_now,
};

/// At most this many records wait in groups for the next watermark (see
/// [`WindowOperator::process_grouped`]), and at most [`MAX_WAITING_BYTES`] of them.
const MAX_WAITING: usize = 1 << 16;

/// At most this many bytes of records (their in-memory size) wait in groups.
const MAX_WAITING_BYTES: usize = 4 << 20;

/// Lateness handling of a window operator.
#[derive(Clone)]
pub struct WindowSettings<T> {
    /// How long after a window's end late records still update (and re-fire) it, in ms.
    pub allowed_lateness: Timestamp,
    /// Where records too late for every window go; dropped when `None`.
    pub late_data: Option<OutputTag<T>>,
}

impl<T> Default for WindowSettings<T> {
    fn default() -> Self {
        WindowSettings { allowed_lateness: 0, late_data: None }
    }
}

/// Keyed state and timers of a running window operator subtask.
struct Running<K, W, Acc> {
    info: SubtaskInfo,
    state: KeyedState<K>,
    timers: TimerService<K, W>,
    contents: NamespacedValueState<W, Acc>,
    merging: ValueState<Vec<(W, W)>>,
    trigger_state: NamespacedValueState<(W, String), Vec<u8>>,
    windows: Vec<W>,
}

/// Windows records of a keyed stream.
pub struct WindowOperator<K, T, A: WindowAssigner<T>, C: WindowContents<T>, E, Out> {
    key_selector: KeySelector<T, K>,
    assigner: A,
    trigger: Box<dyn Trigger<T, A::W>>,
    contents: C,
    emit: E,
    settings: WindowSettings<T>,
    running: Option<Running<K, A::W, C::Acc>>,
    /// Whether records are grouped by key and window per batch (see
    /// [`Trigger::batches_elements`]); they are not for merging windows.
    grouped: bool,
    groups: WindowGroups<K, A::W, T>,
    _out: PhantomData<fn() -> Out>,
}

impl<K, T, A, C, E, Out> WindowOperator<K, T, A, C, E, Out>
where
    K: Key,
    T: Data,
    A: WindowAssigner<T>,
    C: WindowContents<T>,
    E: WindowEmit<K, A::W, C::Acc, Out>,
{
    /// Windows records by `key_selector` with `assigner`, firing with `trigger`, keeping
    /// `contents` and emitting with `emit`.
    pub fn new(
        key_selector: KeySelector<T, K>,
        assigner: A,
        trigger: Box<dyn Trigger<T, A::W>>,
        contents: C,
        emit: E,
        settings: WindowSettings<T>,
    ) -> Self {
        WindowOperator {
            key_selector,
            assigner,
            trigger,
            contents,
            emit,
            settings,
            running: None,
            grouped: false,
            groups: WindowGroups::default(),
            _out: PhantomData,
        }
    }

    fn event_time(&self) -> bool {
        self.assigner.is_event_time()
    }

    /// When a window's state is dropped: its end plus the allowed lateness (event time).
    fn cleanup_time(&self, window: &A::W) -> Timestamp {
        if self.event_time() {
            window.max_timestamp().saturating_add(self.settings.allowed_lateness)
        } else {
            window.max_timestamp()
        }
    }

    fn domain(&self) -> TimeDomain {
        if self.event_time() { TimeDomain::EventTime } else { TimeDomain::ProcessingTime }
    }
}

/// What triggers may touch, for the current key.
struct TriggerAccessor<'a, K, W> {
    state: &'a mut KeyedState<K>,
    timers: &'a mut TimerService<K, W>,
    trigger_state: &'a NamespacedValueState<(W, String), Vec<u8>>,
}

impl<K: Key, W: Window> TriggerAccess<W> for TriggerAccessor<'_, K, W> {
    fn register_timer(&mut self, domain: TimeDomain, window: &W, time: Timestamp) {
        let key = self.state.current_key_in_group().expect("key set before triggers run");
        self.timers.register(domain, key, window, time);
    }

    fn delete_timer(&mut self, domain: TimeDomain, window: &W, time: Timestamp) {
        let key = self.state.current_key().expect("key set before triggers run");
        self.timers.delete(domain, key, window, time);
    }

    fn watermark(&self) -> Timestamp {
        self.timers.watermark().timestamp()
    }

    fn state(&self, name: &str, window: &W) -> FnResult<Option<Vec<u8>>> {
        Ok(self.trigger_state.get(self.state, &(window.clone(), name.to_string()))?)
    }

    fn set_state(&mut self, name: &str, window: &W, bytes: Option<Vec<u8>>) -> FnResult {
        let namespace = (window.clone(), name.to_string());
        match bytes {
            Some(bytes) => self.trigger_state.put(self.state, &namespace, bytes)?,
            None => drop(self.trigger_state.remove(self.state, &namespace)?),
        }
        Ok(())
    }
}

impl<K, T, A, C, E, Out> WindowOperator<K, T, A, C, E, Out>
where
    K: Key,
    T: Data,
    A: WindowAssigner<T>,
    C: WindowContents<T>,
    E: WindowEmit<K, A::W, C::Acc, Out>,
{
    fn running(&mut self) -> &mut Running<K, A::W, C::Acc> {
        self.running.as_mut().expect("opened before processing")
    }

    /// Runs `call` on the trigger with a context for the current key (`first_element`: see
    /// [`TriggerContext::is_first_element`]).
    fn with_trigger<R>(
        &mut self,
        merged: &[A::W],
        first_element: bool,
        call: impl FnOnce(&mut dyn Trigger<T, A::W>, &mut TriggerContext<'_, A::W>) -> FnResult<R>,
    ) -> FnResult<R> {
        let running = self.running.as_mut().expect("opened before processing");
        let mut access = TriggerAccessor {
            state: &mut running.state,
            timers: &mut running.timers,
            trigger_state: &running.trigger_state,
        };
        let mut ctx = TriggerContext::new(&mut access, merged, first_element);
        call(self.trigger.as_mut(), &mut ctx)
    }

    fn watermark(&self) -> Timestamp {
        self.running.as_ref().map_or(Timestamp::MIN, |r| r.timers.watermark().timestamp())
    }

    fn is_window_late(&self, window: &A::W) -> bool {
        self.event_time() && self.cleanup_time(window) <= self.watermark()
    }

    /// Adds `first`, then `rest`, to the contents of `state_window`; returns whether the
    /// contents were new.
    fn add_to(
        &mut self,
        state_window: &A::W,
        first: T,
        mut rest: impl Iterator<Item = T>,
    ) -> FnResult<bool> {
        let contents = &self.contents;
        let running = self.running.as_mut().expect("opened before processing");
        let mut pending = Some(first);
        running.contents.modify(&mut running.state, state_window, |acc| {
            if let Some(value) = pending.take() {
                contents.add(acc, value);
                rest.by_ref().for_each(|value| contents.add(acc, value));
            }
        })?;
        match pending {
            Some(value) => {
                let mut acc = contents.first(value);
                rest.for_each(|value| contents.add(&mut acc, value));
                running.contents.put(&mut running.state, state_window, acc)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Runs the trigger for `element`, just added to `window`, and returns what it says.
    fn trigger_on_element(
        &mut self,
        window: &A::W,
        (element, timestamp): (&T, Timestamp),
        first_element: bool,
    ) -> FnResult<TriggerResult> {
        let result = self.with_trigger(&[], first_element, |trigger, ctx| {
            trigger.on_element(element, timestamp, window, ctx)
        })?;
        // A window's cleanup timer is registered with its state; merged windows are new
        // windows whose state may already exist.
        if first_element {
            self.register_cleanup_timer(window);
        }
        Ok(result)
    }

    /// Applies a trigger result: emit `window` from `state_window`'s contents, then purge.
    fn apply(
        &mut self,
        result: TriggerResult,
        window: &A::W,
        state_window: &A::W,
        out: &mut Collector<Out>,
    ) -> FnResult {
        if result == TriggerResult::Continue {
            return Ok(());
        }
        let watermark = self.watermark();
        let running = self.running.as_mut().expect("opened before processing");
        // A firing purge takes the contents out in one lookup.
        let contents = match (result.is_fire(), result.is_purge()) {
            (false, false) => return Ok(()),
            (false, true) => {
                running.contents.remove(&mut running.state, state_window)?;
                return Ok(());
            }
            (true, true) => running.contents.remove(&mut running.state, state_window)?,
            (true, false) => running.contents.get(&running.state, state_window)?,
        };
        if let Some(acc) = contents {
            let key = running.state.current_key().expect("key set").clone();
            out.set_timestamp(Some(window.max_timestamp()));
            let ctx = WindowContext::new(window, watermark);
            self.emit.emit(&key, &ctx, acc, out)?;
        }
        Ok(())
    }

    fn register_cleanup_timer(&mut self, window: &A::W) {
        let cleanup = self.cleanup_time(window);
        if cleanup == Timestamp::MAX {
            return; // global windows are never cleaned up
        }
        let domain = self.domain();
        let running = self.running();
        let key = running.state.current_key_in_group().expect("key set");
        running.timers.register(domain, key, window, cleanup);
    }

    fn delete_cleanup_timer(&mut self, window: &A::W) {
        let (cleanup, domain) = (self.cleanup_time(window), self.domain());
        let running = self.running();
        let key = running.state.current_key().expect("key set").clone();
        running.timers.delete(domain, &key, window, cleanup);
    }

    fn load_merging(&mut self) -> FnResult<MergingWindowSet<A::W>> {
        let running = self.running();
        Ok(MergingWindowSet::from_mapping(
            running.merging.value(&running.state)?.unwrap_or_default(),
        ))
    }

    fn store_merging(&mut self, set: MergingWindowSet<A::W>) -> FnResult {
        let running = self.running();
        let mapping = set.into_mapping();
        if mapping.is_empty() {
            running.merging.clear(&mut running.state)?;
        } else {
            running.merging.update(&mut running.state, mapping)?;
        }
        Ok(())
    }

    /// Windows `value`: `assign_time` places it (event time, or the wall clock for
    /// processing-time assigners); triggers and the late-data output see the record's own
    /// `timestamp` (`Timestamp::MIN` without one), as in Flink.
    fn process_record(
        &mut self,
        value: T,
        assign_time: Timestamp,
        timestamp: Timestamp,
        out: &mut Collector<Out>,
    ) -> FnResult {
        let mut windows = std::mem::take(&mut self.running().windows);
        windows.clear();
        self.assigner.assign_windows(&value, assign_time, &mut windows);
        let mut set = if self.assigner.is_merging() { Some(self.load_merging()?) } else { None };
        let mut skipped = true;
        for window in windows.drain(..) {
            let (window, state_window) = match set.as_mut() {
                Some(set) => {
                    let window = self.add_merging_window(set, window)?;
                    if self.is_window_late(&window) {
                        set.retire(&window);
                        continue;
                    }
                    let state_window = set.state_window(&window).expect("added above");
                    (window, state_window)
                }
                None if self.is_window_late(&window) => continue,
                None => (window.clone(), window),
            };
            skipped = false;
            let created = self.add_to(&state_window, value.clone(), std::iter::empty())?;
            let first_element = created || set.is_some();
            let result = self.trigger_on_element(&window, (&value, timestamp), first_element)?;
            self.apply(result, &window, &state_window, out)?;
        }
        self.running().windows = windows;
        if let Some(set) = set {
            self.store_merging(set)?;
        }
        let late = self.event_time()
            && timestamp.saturating_add(self.settings.allowed_lateness) <= self.watermark();
        if skipped
            && late
            && let Some(tag) = &self.settings.late_data
        {
            out.set_timestamp(Some(timestamp));
            out.output(tag, value);
        }
        Ok(())
    }

    /// Adds `window` to the key's merging set; merges contents, trigger state and timers of
    /// windows that merge.
    fn add_merging_window(
        &mut self,
        set: &mut MergingWindowSet<A::W>,
        window: A::W,
    ) -> FnResult<A::W> {
        let assigner = self.assigner.clone();
        set.add_window(window, &assigner, |result, merged, state_result, merged_states| {
            if self.event_time() && result.max_timestamp().saturating_add(self.settings.allowed_lateness) <= self.watermark() {
                return Err(format!(
                    "the end of event-time window {result:?} cannot become earlier than the current watermark {} by merging",
                    self.watermark()
                )
                .into());
            }
            self.with_trigger(merged, false, |trigger, ctx| trigger.on_merge(result, ctx))?;
            for window in merged {
                self.with_trigger(&[], false, |trigger, ctx| trigger.clear(window, ctx))?;
                self.delete_cleanup_timer(window);
            }
            let contents = self.contents.clone();
            let running = self.running();
            for state_window in merged_states {
                if let Some(acc) = running.contents.remove(&mut running.state, state_window)? {
                    let mut pending = Some(acc);
                    running.contents.modify(&mut running.state, state_result, |existing| {
                        if let Some(acc) = pending.take() {
                            contents.merge(existing, acc);
                        }
                    })?;
                    if let Some(acc) = pending {
                        running.contents.put(&mut running.state, state_result, acc)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Where a record is windowed (its event time, or the wall clock for processing-time
    /// assigners) and the timestamp triggers and the late-data output see.
    fn record_times(&self, record: &Record<T>) -> FnResult<(Timestamp, Timestamp)> {
        let assign_time = match (self.event_time(), record.timestamp) {
            (true, Some(timestamp)) => timestamp,
            (true, None) => {
                return Err("event-time windows need record timestamps: call \
                            assign_timestamps_and_watermarks before the window"
                    .into());
            }
            (false, _) => processing_time_now(),
        };
        Ok((assign_time, record.timestamp.unwrap_or(Timestamp::MIN)))
    }

    /// Windows a batch with records grouped by key and window: the records of a group reach
    /// the window's contents and the trigger together, later. A record that fires a window
    /// or is late (a window of it ends at or before the watermark) goes alone, after the
    /// groups before it, so every window sees its records in arrival order.
    ///
    /// With event time, groups wait across batches (up to [`MAX_WAITING`] records and
    /// [`MAX_WAITING_BYTES`]) until something could see them: a watermark, a checkpoint,
    /// processing time.
    /// Processing-time windows are added at the end of each batch, so that their timers are
    /// registered before the task asks for the next deadline.
    fn process_grouped(
        &mut self,
        batch: &mut Vec<Record<T>>,
        groups: &mut WindowGroups<K, A::W, T>,
        out: &mut Collector<Out>,
    ) -> FnResult {
        let watermark = self.watermark();
        let mut windows = std::mem::take(&mut self.running().windows);
        for record in batch.drain(..) {
            let (assign_time, timestamp) = self.record_times(&record)?;
            let key = (self.key_selector)(&record.value);
            windows.clear();
            self.assigner.assign_windows(&record.value, assign_time, &mut windows);
            if windows.is_empty() || windows.iter().any(|w| w.max_timestamp() <= watermark) {
                self.add_groups(groups)?;
                self.running().state.set_current_key(key)?;
                self.running().windows = std::mem::take(&mut windows);
                self.process_record(record.value, assign_time, timestamp, out)?;
                windows = std::mem::take(&mut self.running().windows);
                continue;
            }
            let last = windows.pop().expect("checked above");
            for window in windows.drain(..) {
                groups.push(key.clone(), window, timestamp, record.value.clone());
            }
            groups.push(key, last, timestamp, record.value);
        }
        self.running().windows = windows;
        let limit = (MAX_WAITING_BYTES / size_of::<T>().max(1)).min(MAX_WAITING);
        if !self.event_time() || groups.len() >= limit {
            self.add_groups(groups)?;
        }
        Ok(())
    }

    /// Adds each group's records to its window and runs the trigger, group by group. The
    /// windows end after the watermark, where a trigger that batches elements continues.
    fn add_groups(&mut self, groups: &mut WindowGroups<K, A::W, T>) -> FnResult {
        groups.drain(|key, window, timestamp, records| {
            self.running().state.set_current_key(key)?;
            let first = records.next().expect("a group holds a record");
            let element = first.clone();
            let created = self.add_to(&window, first, records)?;
            match self.trigger_on_element(&window, (&element, timestamp), created)? {
                TriggerResult::Continue => Ok(()),
                result => Err(format!(
                    "a trigger that batches elements returned {result:?} for window {window:?}, \
                     which ends after the watermark"
                )
                .into()),
            }
        })
    }

    /// Adds the records waiting in groups, if any.
    fn add_waiting(&mut self) -> FnResult {
        if self.groups.len() == 0 {
            return Ok(());
        }
        let mut groups = std::mem::take(&mut self.groups);
        let result = self.add_groups(&mut groups);
        self.groups = groups;
        result
    }

    fn on_timer(
        &mut self,
        domain: TimeDomain,
        time: Timestamp,
        window: A::W,
        out: &mut Collector<Out>,
    ) -> FnResult {
        let mut set = if self.assigner.is_merging() { Some(self.load_merging()?) } else { None };
        let state_window = match &set {
            Some(set) => match set.state_window(&window) {
                Some(state_window) => state_window,
                None => return Ok(()), // merged away or already cleaned up
            },
            None => window.clone(),
        };
        let result = self.with_trigger(&[], false, |trigger, ctx| match domain {
            TimeDomain::EventTime => trigger.on_event_time(time, &window, ctx),
            TimeDomain::ProcessingTime => trigger.on_processing_time(time, &window, ctx),
        })?;
        let cleanup = domain == self.domain() && time == self.cleanup_time(&window);
        // The contents go at cleanup anyway: purge as part of the firing.
        let result = match result {
            TriggerResult::Fire if cleanup => TriggerResult::FireAndPurge,
            other => other,
        };
        self.apply(result, &window, &state_window, out)?;
        if cleanup {
            if !result.is_purge() {
                let running = self.running();
                running.contents.remove(&mut running.state, &state_window)?;
            }
            self.with_trigger(&[], false, |trigger, ctx| trigger.clear(&window, ctx))?;
            if let Some(set) = set.as_mut() {
                set.retire(&window);
            }
        }
        if let Some(set) = set {
            self.store_merging(set)?;
        }
        Ok(())
    }
}

impl<K, T, A, C, E, Out> OneInputOperator for WindowOperator<K, T, A, C, E, Out>
where
    K: Key,
    T: Data,
    A: WindowAssigner<T>,
    C: WindowContents<T>,
    E: WindowEmit<K, A::W, C::Acc, Out>,
    Out: 'static,
{
    type In = T;
    type Out = Out;

    fn initialize_state(&mut self, info: &SubtaskInfo, restore: StateRestore) -> FnResult {
        if self.assigner.is_merging() && !self.trigger.can_merge() {
            return Err("the trigger cannot be used with merging (session) windows".into());
        }
        self.grouped = !self.assigner.is_merging() && self.trigger.batches_elements();
        let (mut state, timers) = keyed_state_for(info, restore.keyed)?;
        let contents = state.namespaced_value_state("window-contents")?;
        let merging = state.value_state(&ValueStateDescriptor::new("merging-windows"))?;
        let trigger_state = state.namespaced_value_state("trigger-state")?;
        self.running = Some(Running {
            info: info.clone(),
            state,
            timers,
            contents,
            merging,
            trigger_state,
            windows: Vec::new(),
        });
        Ok(())
    }

    fn snapshot_state(&mut self, barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        self.add_waiting()?;
        let running = self.running.as_mut().expect("state initialized before snapshots");
        snapshot_keyed(&running.info, &mut running.state, &mut running.timers, barrier)
    }

    fn process_batch(&mut self, batch: &mut Vec<Record<T>>, out: &mut Collector<Out>) -> FnResult {
        if self.grouped && self.groups.pays() {
            let mut groups = std::mem::take(&mut self.groups);
            let result = self.process_grouped(batch, &mut groups, out);
            self.groups = groups;
            return result;
        }
        self.add_waiting()?;
        for record in batch.drain(..) {
            let (assign_time, timestamp) = self.record_times(&record)?;
            let key = (self.key_selector)(&record.value);
            self.running().state.set_current_key(key)?;
            self.process_record(record.value, assign_time, timestamp, out)?;
        }
        Ok(())
    }

    fn process_watermark(&mut self, watermark: Watermark, out: &mut Collector<Out>) -> FnResult {
        self.add_waiting()?;
        self.running().timers.advance_watermark(watermark);
        while let Some(timer) = self.running().timers.pop_event_timer() {
            self.running().state.set_current_key_in_group(timer.key, timer.group)?;
            self.on_timer(TimeDomain::EventTime, timer.time, timer.namespace, out)?;
        }
        out.emit_watermark(watermark);
        Ok(())
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector<Out>) -> FnResult {
        self.add_waiting()?;
        while let Some(timer) = self.running().timers.pop_processing_timer(now) {
            self.running().state.set_current_key_in_group(timer.key, timer.group)?;
            self.on_timer(TimeDomain::ProcessingTime, timer.time, timer.namespace, out)?;
        }
        Ok(())
    }

    fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.running.as_ref().and_then(|r| r.timers.next_processing_time())
    }
}
