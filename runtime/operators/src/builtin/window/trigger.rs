//! Triggers decide when a window fires and when it is purged (Flink's `Trigger`s).

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_types::Timestamp;

use super::windows::Window;
use crate::TimeDomain;
use crate::function::FnResult;

/// What a trigger wants done with its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerResult {
    /// Nothing now.
    Continue,
    /// Emit the window's contents and keep them.
    Fire,
    /// Drop the window's contents without emitting.
    Purge,
    /// Emit the window's contents, then drop them.
    FireAndPurge,
}

impl TriggerResult {
    /// Whether the window is emitted.
    pub fn is_fire(self) -> bool {
        matches!(self, TriggerResult::Fire | TriggerResult::FireAndPurge)
    }

    /// Whether the window's contents are dropped.
    pub fn is_purge(self) -> bool {
        matches!(self, TriggerResult::Purge | TriggerResult::FireAndPurge)
    }
}

/// Decides when windows fire. One instance per subtask; state per key and window goes through
/// the [`TriggerContext`].
pub trait Trigger<T, W>: Send {
    /// A record was added to `window`.
    fn on_element(
        &mut self,
        element: &T,
        timestamp: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult>;
    /// An event-time timer this trigger registered for `window` fired (default: nothing).
    fn on_event_time(
        &mut self,
        _time: Timestamp,
        _window: &W,
        _ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        Ok(TriggerResult::Continue)
    }
    /// A processing-time timer this trigger registered for `window` fired (default: nothing).
    fn on_processing_time(
        &mut self,
        _time: Timestamp,
        _window: &W,
        _ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        Ok(TriggerResult::Continue)
    }
    /// Whether records that reach one window of one key together (in one batch) may be
    /// added to the window's contents in arrival order and then passed to `on_element` once,
    /// as the first of them, instead of one by one. True for a trigger whose `on_element`
    /// ignores the record and its timestamp, counts nothing, and returns `Continue` for a
    /// window that ends after the current watermark; the operator passes a record one by one
    /// when one of its windows does not. With event time, grouped records may wait for the
    /// next watermark, checkpoint or processing-time callback, and `on_element` runs for
    /// them then. Default `false`.
    fn batches_elements(&self) -> bool {
        false
    }
    /// Whether the trigger works with merging (session) windows.
    fn can_merge(&self) -> bool {
        false
    }
    /// `ctx.merged_windows()` were merged into `window`: move their trigger state and timers.
    fn on_merge(&mut self, _window: &W, _ctx: &mut TriggerContext<'_, W>) -> FnResult {
        Err("this trigger does not support merging windows".into())
    }
    /// `window` is being removed: delete its timers and state.
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult;
}

/// What the window operator lends a trigger, for the current key.
pub(crate) trait TriggerAccess<W> {
    fn register_timer(&mut self, domain: TimeDomain, window: &W, time: Timestamp);
    fn delete_timer(&mut self, domain: TimeDomain, window: &W, time: Timestamp);
    fn watermark(&self) -> Timestamp;
    fn state(&self, name: &str, window: &W) -> FnResult<Option<Vec<u8>>>;
    fn set_state(&mut self, name: &str, window: &W, bytes: Option<Vec<u8>>) -> FnResult;
}

/// Timers and per-window state of the current key, for triggers.
pub struct TriggerContext<'a, W> {
    access: &'a mut dyn TriggerAccess<W>,
    merged: &'a [W],
    first_element: bool,
}

impl<'a, W: Window> TriggerContext<'a, W> {
    pub(crate) fn new(
        access: &'a mut dyn TriggerAccess<W>,
        merged: &'a [W],
        first_element: bool,
    ) -> Self {
        TriggerContext { access, merged, first_element }
    }

    /// In `on_element`: whether the element started the window's contents (a new window, one
    /// purged before, or a merging window). When it did not, timers the trigger registered
    /// for earlier elements of the window are still registered.
    pub fn is_first_element(&self) -> bool {
        self.first_element
    }

    /// Calls `on_event_time` for `window` once the watermark reaches `time`.
    pub fn register_event_time_timer(&mut self, window: &W, time: Timestamp) {
        self.access.register_timer(TimeDomain::EventTime, window, time);
    }

    /// Calls `on_processing_time` for `window` once the wall clock reaches `time`.
    pub fn register_processing_time_timer(&mut self, window: &W, time: Timestamp) {
        self.access.register_timer(TimeDomain::ProcessingTime, window, time);
    }

    /// Deletes an event-time timer of `window`.
    pub fn delete_event_time_timer(&mut self, window: &W, time: Timestamp) {
        self.access.delete_timer(TimeDomain::EventTime, window, time);
    }

    /// Deletes a processing-time timer of `window`.
    pub fn delete_processing_time_timer(&mut self, window: &W, time: Timestamp) {
        self.access.delete_timer(TimeDomain::ProcessingTime, window, time);
    }

    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.access.watermark()
    }

    /// In `on_merge`: the windows merged into the new one.
    pub fn merged_windows(&self) -> &[W] {
        self.merged
    }

    /// The trigger's state `name` for `window` and the current key.
    pub fn state<V: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        window: &W,
    ) -> FnResult<Option<V>> {
        match self.access.state(name, window)? {
            Some(bytes) => Ok(Some(postcard::from_bytes(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Sets the trigger's state `name` for `window` (`None` removes it).
    pub fn set_state<V: Serialize>(
        &mut self,
        name: &str,
        window: &W,
        value: Option<&V>,
    ) -> FnResult {
        let bytes = value.map(postcard::to_allocvec).transpose()?;
        self.access.set_state(name, window, bytes)
    }
}

/// Fires when the watermark passes the window's end, and again for each late record within
/// the allowed lateness (Flink's `EventTimeTrigger`).
#[derive(Clone, Copy, Debug, Default)]
pub struct EventTimeTrigger;

impl<T, W: Window> Trigger<T, W> for EventTimeTrigger {
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        if window.max_timestamp() <= ctx.current_watermark() {
            return Ok(TriggerResult::Fire);
        }
        // Registered with the window's first element; again would only find it there.
        if ctx.is_first_element() {
            ctx.register_event_time_timer(window, window.max_timestamp());
        }
        Ok(TriggerResult::Continue)
    }

    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &W,
        _: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        Ok(if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        })
    }

    fn batches_elements(&self) -> bool {
        true
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult {
        if window.max_timestamp() > ctx.current_watermark() {
            ctx.register_event_time_timer(window, window.max_timestamp());
        }
        Ok(())
    }

    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult {
        ctx.delete_event_time_timer(window, window.max_timestamp());
        Ok(())
    }
}

/// Fires when the wall clock passes the window's end (Flink's `ProcessingTimeTrigger`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessingTimeTrigger;

impl<T, W: Window> Trigger<T, W> for ProcessingTimeTrigger {
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        ctx.register_processing_time_timer(window, window.max_timestamp());
        Ok(TriggerResult::Continue)
    }

    fn batches_elements(&self) -> bool {
        true
    }

    fn on_processing_time(
        &mut self,
        _: Timestamp,
        _: &W,
        _: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        Ok(TriggerResult::Fire)
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult {
        ctx.register_processing_time_timer(window, window.max_timestamp());
        Ok(())
    }

    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult {
        ctx.delete_processing_time_timer(window, window.max_timestamp());
        Ok(())
    }
}

/// Fires every `count` records of a window (Flink's `CountTrigger`).
#[derive(Clone, Copy, Debug)]
pub struct CountTrigger {
    count: u64,
}

impl CountTrigger {
    /// Fires once a window holds `count` records since it last fired.
    pub fn of(count: u64) -> Self {
        CountTrigger { count }
    }
}

const COUNT_STATE: &str = "count";

impl<T, W: Window> Trigger<T, W> for CountTrigger {
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        let seen = ctx.state::<u64>(COUNT_STATE, window)?.unwrap_or(0) + 1;
        if seen >= self.count {
            ctx.set_state::<u64>(COUNT_STATE, window, None)?;
            return Ok(TriggerResult::Fire);
        }
        ctx.set_state(COUNT_STATE, window, Some(&seen))?;
        Ok(TriggerResult::Continue)
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult {
        let mut total = 0;
        for merged in ctx.merged_windows().to_vec() {
            total += ctx.state::<u64>(COUNT_STATE, &merged)?.unwrap_or(0);
            ctx.set_state::<u64>(COUNT_STATE, &merged, None)?;
        }
        ctx.set_state(COUNT_STATE, window, Some(&total))
    }

    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult {
        ctx.set_state::<u64>(COUNT_STATE, window, None)
    }
}

/// Purges the window whenever the inner trigger fires (Flink's `PurgingTrigger`).
#[derive(Clone, Debug)]
pub struct PurgingTrigger<Inner> {
    inner: Inner,
}

impl<Inner> PurgingTrigger<Inner> {
    /// Wraps `inner`, turning each `Fire` into `FireAndPurge`.
    pub fn of(inner: Inner) -> Self {
        PurgingTrigger { inner }
    }
}

fn purging(result: TriggerResult) -> TriggerResult {
    if result.is_fire() { TriggerResult::FireAndPurge } else { result }
}

impl<T, W: Window, Inner: Trigger<T, W>> Trigger<T, W> for PurgingTrigger<Inner> {
    fn on_element(
        &mut self,
        element: &T,
        timestamp: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        self.inner.on_element(element, timestamp, window, ctx).map(purging)
    }

    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        self.inner.on_event_time(time, window, ctx).map(purging)
    }

    fn on_processing_time(
        &mut self,
        time: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        self.inner.on_processing_time(time, window, ctx).map(purging)
    }

    fn batches_elements(&self) -> bool {
        self.inner.batches_elements()
    }

    fn can_merge(&self) -> bool {
        self.inner.can_merge()
    }

    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult {
        self.inner.on_merge(window, ctx)
    }

    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, W>) -> FnResult {
        self.inner.clear(window, ctx)
    }
}

/// The default trigger of global windows: never fires.
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverTrigger;

impl<T, W: Window> Trigger<T, W> for NeverTrigger {
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        _: &W,
        _: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        Ok(TriggerResult::Continue)
    }

    fn batches_elements(&self) -> bool {
        true
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, _: &W, _: &mut TriggerContext<'_, W>) -> FnResult {
        Ok(())
    }

    fn clear(&mut self, _: &W, _: &mut TriggerContext<'_, W>) -> FnResult {
        Ok(())
    }
}
