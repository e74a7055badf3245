//! The interval join of two keyed streams (Flink's `IntervalJoinOperator`).
//!
//! Every record is buffered per key and timestamp in keyed state, and joined with the
//! buffered records of the other side whose timestamps lie within the bounds, relative to the
//! left record's timestamp: a left record at `t` meets right records at `t + lower ..= t +
//! upper`. Each buffered timestamp gets an event-time cleanup timer at the last time a record
//! of the other side could still join it; records older than the watermark are late, dropped
//! or sent to a side output.

use std::marker::PhantomData;

use weir_state::{KeyedState, MapState, MapStateDescriptor, OperatorStateStore};
use weir_types::{CheckpointBarrier, Data, Key, Record, Timestamp, Watermark};

use super::KeySelector;
use super::keyed::{keyed_state_for, snapshot_keyed};
use crate::function::{FnResult, ProcessJoinFunction};
use crate::{
    Collector, FiredTimer, OperatorSnapshot, OutputTag, RuntimeContext, StateRestore, SubtaskInfo,
    TimeDomain, TimerService, TwoInputOperator,
};

/// What a [`ProcessJoinFunction`] learns about the pair it is called with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinContext {
    left_timestamp: Timestamp,
    right_timestamp: Timestamp,
}

impl JoinContext {
    /// The context of a pair with these timestamps.
    pub fn new(left_timestamp: Timestamp, right_timestamp: Timestamp) -> Self {
        JoinContext { left_timestamp, right_timestamp }
    }

    /// The left record's timestamp.
    pub fn left_timestamp(&self) -> Timestamp {
        self.left_timestamp
    }

    /// The right record's timestamp.
    pub fn right_timestamp(&self) -> Timestamp {
        self.right_timestamp
    }

    /// The timestamp of what the function emits: the larger of the two.
    pub fn timestamp(&self) -> Timestamp {
        self.left_timestamp.max(self.right_timestamp)
    }
}

/// Which input a buffer, a record or a cleanup timer belongs to (the timers' namespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
enum Side {
    Left,
    Right,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// The bounds after exclusive ends were moved inwards by one millisecond, as Flink does.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    lower: Timestamp,
    upper: Timestamp,
}

/// Bounds, bound inclusivity and late-data outputs of an interval join.
pub struct IntervalJoinSettings<L, R> {
    lower_bound: Timestamp,
    upper_bound: Timestamp,
    lower_inclusive: bool,
    upper_inclusive: bool,
    left_late: Option<OutputTag<L>>,
    right_late: Option<OutputTag<R>>,
}

impl<L, R> Clone for IntervalJoinSettings<L, R> {
    fn clone(&self) -> Self {
        IntervalJoinSettings {
            left_late: self.left_late.clone(),
            right_late: self.right_late.clone(),
            ..*self
        }
    }
}

impl<L, R> IntervalJoinSettings<L, R> {
    /// Right records at `t + lower_bound ..= t + upper_bound` of a left record at `t`
    /// (milliseconds, both ends inclusive).
    pub fn new(lower_bound: Timestamp, upper_bound: Timestamp) -> Self {
        IntervalJoinSettings {
            lower_bound,
            upper_bound,
            lower_inclusive: true,
            upper_inclusive: true,
            left_late: None,
            right_late: None,
        }
    }

    /// Excludes the lower bound: right records must be later than `t + lower_bound`.
    pub fn lower_bound_exclusive(self) -> Self {
        IntervalJoinSettings { lower_inclusive: false, ..self }
    }

    /// Excludes the upper bound: right records must be earlier than `t + upper_bound`.
    pub fn upper_bound_exclusive(self) -> Self {
        IntervalJoinSettings { upper_inclusive: false, ..self }
    }

    /// Sends late left records to the side output `tag` instead of dropping them.
    pub fn side_output_left_late_data(self, tag: OutputTag<L>) -> Self {
        IntervalJoinSettings { left_late: Some(tag), ..self }
    }

    /// Sends late right records to the side output `tag` instead of dropping them.
    pub fn side_output_right_late_data(self, tag: OutputTag<R>) -> Self {
        IntervalJoinSettings { right_late: Some(tag), ..self }
    }
}

/// What a subtask runs with once open.
struct JoinRuntime<K, L, R> {
    info: SubtaskInfo,
    state: KeyedState<K>,
    timers: TimerService<K, Side>,
    left_buffer: MapState<Timestamp, Vec<L>>,
    right_buffer: MapState<Timestamp, Vec<R>>,
}

/// Joins two keyed streams on key and time: a left record at `t` is paired with every right
/// record of the same key at `t + lower ..= t + upper` (ends inclusive unless made exclusive),
/// and the pair goes to a [`ProcessJoinFunction`] with the larger timestamp as its output's.
///
/// Both inputs must carry event timestamps. A record whose timestamp is below the current
/// watermark is late: it joins nothing and goes to the side output set for its input, if any.
pub struct IntervalJoinOperator<K, L, R, O, F> {
    function: F,
    left_key: KeySelector<L, K>,
    right_key: KeySelector<R, K>,
    settings: IntervalJoinSettings<L, R>,
    operator_state: OperatorStateStore,
    runtime: Option<JoinRuntime<K, L, R>>,
    _output: PhantomData<fn() -> O>,
}

impl<K, L, R, O, F> IntervalJoinOperator<K, L, R, O, F>
where
    K: Key,
    L: Data,
    R: Data,
    F: ProcessJoinFunction<L, R, O>,
{
    /// Joins left records with right records of the same key (by `left_key` and
    /// `right_key`) as `settings` say. `open` fails unless the lower bound is at most the
    /// upper bound.
    pub fn new(
        function: F,
        left_key: KeySelector<L, K>,
        right_key: KeySelector<R, K>,
        settings: IntervalJoinSettings<L, R>,
    ) -> Self {
        IntervalJoinOperator {
            function,
            left_key,
            right_key,
            settings,
            operator_state: OperatorStateStore::new(),
            runtime: None,
            _output: PhantomData,
        }
    }

    /// The bounds with exclusive ends moved inwards by one, so that both are inclusive.
    fn bounds(&self) -> Bounds {
        let settings = &self.settings;
        Bounds {
            lower: if settings.lower_inclusive {
                settings.lower_bound
            } else {
                settings.lower_bound.saturating_add(1)
            },
            upper: if settings.upper_inclusive {
                settings.upper_bound
            } else {
                settings.upper_bound.saturating_sub(1)
            },
        }
    }
}

/// One input as the join loop sees it: its buffer, the other side's buffer, and the bounds
/// of the other side's timestamps relative to this side's.
struct Input<'a, K, T, U> {
    side: Side,
    key: &'a KeySelector<T, K>,
    ours: &'a MapState<Timestamp, Vec<T>>,
    theirs: &'a MapState<Timestamp, Vec<U>>,
    relative_lower: Timestamp,
    relative_upper: Timestamp,
    late: Option<&'a OutputTag<T>>,
}

impl<K: Key, T: Data, U: Data> Input<'_, K, T, U> {
    /// Buffers and joins every record of `batch`; `join(ours, theirs, our_ts, their_ts, out)`
    /// calls the user function with the pair in left/right order.
    fn process<O>(
        &self,
        batch: &mut Vec<Record<T>>,
        state: &mut KeyedState<K>,
        timers: &mut TimerService<K, Side>,
        info: &SubtaskInfo,
        out: &mut Collector<O>,
        mut join: impl FnMut(T, U, Timestamp, Timestamp, &mut Collector<O>) -> FnResult,
    ) -> FnResult {
        for record in batch.drain(..) {
            let timestamp = match record.timestamp {
                Some(timestamp) if timestamp != Timestamp::MIN => timestamp,
                _ => {
                    return Err(format!(
                        "interval join '{}' received a {} record without a timestamp: the \
                         inputs of an interval join need meaningful event timestamps (assign \
                         them with assign_timestamps_and_watermarks)",
                        info.operator_name,
                        self.side.name()
                    )
                    .into());
                }
            };
            // Flink's `isLate`: strictly below the watermark.
            if timestamp < timers.watermark().timestamp() {
                if let Some(tag) = self.late {
                    out.set_timestamp(Some(timestamp));
                    out.output(tag, record.value);
                }
                continue;
            }
            state.set_current_key((self.key)(&record.value))?;

            let mut bucket = self.ours.get(state, &timestamp)?.unwrap_or_default();
            bucket.push(record.value.clone());
            self.ours.put(state, timestamp, bucket)?;

            let low = timestamp.saturating_add(self.relative_lower);
            let high = timestamp.saturating_add(self.relative_upper);
            let mut buckets = self.theirs.entries(state)?;
            buckets.retain(|(their_timestamp, _)| (low..=high).contains(their_timestamp));
            buckets.sort_unstable_by_key(|(their_timestamp, _)| *their_timestamp);
            for (their_timestamp, values) in buckets {
                for value in values {
                    out.set_timestamp(Some(timestamp.max(their_timestamp)));
                    join(record.value.clone(), value, timestamp, their_timestamp, out)?;
                }
            }

            let cleanup = if self.relative_upper > 0 {
                timestamp.saturating_add(self.relative_upper)
            } else {
                timestamp
            };
            let key = state.current_key_in_group().expect("the key was set above");
            timers.register(TimeDomain::EventTime, key, &self.side, cleanup);
        }
        Ok(())
    }
}

impl<K, L, R, O, F> TwoInputOperator for IntervalJoinOperator<K, L, R, O, F>
where
    K: Key,
    L: Data,
    R: Data,
    F: ProcessJoinFunction<L, R, O>,
{
    type In1 = L;
    type In2 = R;
    type Out = O;

    fn initialize_state(&mut self, info: &SubtaskInfo, restore: StateRestore) -> FnResult {
        if self.settings.lower_bound > self.settings.upper_bound {
            return Err(format!(
                "interval join '{}': the lower bound ({} ms) must not be greater than the \
                 upper bound ({} ms)",
                info.operator_name, self.settings.lower_bound, self.settings.upper_bound
            )
            .into());
        }
        let (mut state, timers) = keyed_state_for(info, restore.keyed)?;
        let left_buffer = state.map_state(&MapStateDescriptor::new("interval-join-left"))?;
        let right_buffer = state.map_state(&MapStateDescriptor::new("interval-join-right"))?;
        self.operator_state.restore(restore.operator);
        self.runtime =
            Some(JoinRuntime { info: info.clone(), state, timers, left_buffer, right_buffer });
        Ok(())
    }

    fn open(&mut self, info: &SubtaskInfo) -> FnResult {
        self.function.open(&mut RuntimeContext::new(info, &mut self.operator_state))
    }

    fn snapshot_state(&mut self, barrier: CheckpointBarrier) -> FnResult<OperatorSnapshot> {
        let runtime = self.runtime.as_mut().expect("state initialized before snapshots");
        let mut snapshot =
            snapshot_keyed(&runtime.info, &mut runtime.state, &mut runtime.timers, barrier)?;
        snapshot.lists = self.operator_state.snapshot()?;
        Ok(snapshot)
    }

    fn process_batch1(&mut self, batch: &mut Vec<Record<L>>, out: &mut Collector<O>) -> FnResult {
        let bounds = self.bounds();
        let runtime = self.runtime.as_mut().expect("opened before processing");
        let function = &mut self.function;
        let input = Input {
            side: Side::Left,
            key: &self.left_key,
            ours: &runtime.left_buffer,
            theirs: &runtime.right_buffer,
            relative_lower: bounds.lower,
            relative_upper: bounds.upper,
            late: self.settings.left_late.as_ref(),
        };
        input.process(
            batch,
            &mut runtime.state,
            &mut runtime.timers,
            &runtime.info,
            out,
            |left, right, left_ts, right_ts, out| {
                function.process_element(left, right, &mut JoinContext::new(left_ts, right_ts), out)
            },
        )
    }

    fn process_batch2(&mut self, batch: &mut Vec<Record<R>>, out: &mut Collector<O>) -> FnResult {
        let bounds = self.bounds();
        let runtime = self.runtime.as_mut().expect("opened before processing");
        let function = &mut self.function;
        let input = Input {
            side: Side::Right,
            key: &self.right_key,
            ours: &runtime.right_buffer,
            theirs: &runtime.left_buffer,
            relative_lower: bounds.upper.saturating_neg(),
            relative_upper: bounds.lower.saturating_neg(),
            late: self.settings.right_late.as_ref(),
        };
        input.process(
            batch,
            &mut runtime.state,
            &mut runtime.timers,
            &runtime.info,
            out,
            |right, left, right_ts, left_ts, out| {
                function.process_element(left, right, &mut JoinContext::new(left_ts, right_ts), out)
            },
        )
    }

    /// Removes the buffers whose cleanup time the watermark passed, then passes it on.
    fn process_watermark(&mut self, watermark: Watermark, out: &mut Collector<O>) -> FnResult {
        let bounds = self.bounds();
        let runtime = self.runtime.as_mut().expect("opened before processing");
        runtime.timers.advance_watermark(watermark);
        while let Some(FiredTimer { time, key, group, namespace: side }) =
            runtime.timers.pop_event_timer()
        {
            runtime.state.set_current_key_in_group(key, group)?;
            match side {
                Side::Left => {
                    let bucket =
                        if bounds.upper <= 0 { time } else { time.saturating_sub(bounds.upper) };
                    runtime.left_buffer.remove(&mut runtime.state, &bucket)?;
                }
                Side::Right => {
                    let bucket =
                        if bounds.lower <= 0 { time.saturating_add(bounds.lower) } else { time };
                    runtime.right_buffer.remove(&mut runtime.state, &bucket)?;
                }
            }
        }
        out.emit_watermark(watermark);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use weir_types::WatermarkStatus;

    use super::*;
    use crate::{DiscardOutput, Output, SideOutput};

    type Event = (String, i64);
    type Joined = (String, i64, i64, i64, i64, i64);

    /// Emits `(key, left_ts, right_ts, context timestamp, left value, right value)`.
    #[derive(Clone)]
    struct Pairs;

    impl ProcessJoinFunction<Event, Event, Joined> for Pairs {
        fn process_element(
            &mut self,
            left: Event,
            right: Event,
            ctx: &mut JoinContext,
            out: &mut Collector<Joined>,
        ) -> FnResult {
            assert_eq!(left.0, right.0, "pairs share their key");
            out.collect((
                left.0,
                ctx.left_timestamp(),
                ctx.right_timestamp(),
                ctx.timestamp(),
                left.1,
                right.1,
            ));
            Ok(())
        }
    }

    type Operator = IntervalJoinOperator<String, Event, Event, Joined, Pairs>;

    fn settings(lower: i64, upper: i64) -> IntervalJoinSettings<Event, Event> {
        IntervalJoinSettings::new(lower, upper)
    }

    fn operator(settings: IntervalJoinSettings<Event, Event>) -> Operator {
        let key: KeySelector<Event, String> = Arc::new(|(key, _): &Event| key.clone());
        IntervalJoinOperator::new(Pairs, key.clone(), key, settings)
    }

    fn info() -> SubtaskInfo {
        SubtaskInfo::new("IntervalJoin", 0, 1, 128)
    }

    fn opened(op: Operator) -> Operator {
        let mut op = op;
        op.initialize_state(&info(), StateRestore::default()).unwrap();
        op.open(&info()).unwrap();
        op
    }

    /// Records `(key, value)` at the given timestamps.
    fn batch(records: &[(&str, i64, i64)]) -> Vec<Record<Event>> {
        records
            .iter()
            .map(|&(key, ts, value)| Record::with_timestamp((key.to_string(), value), ts))
            .collect()
    }

    fn left(op: &mut Operator, out: &mut Collector<Joined>, records: &[(&str, i64, i64)]) {
        op.process_batch1(&mut batch(records), out).unwrap();
    }

    fn right(op: &mut Operator, out: &mut Collector<Joined>, records: &[(&str, i64, i64)]) {
        op.process_batch2(&mut batch(records), out).unwrap();
    }

    /// The joined values with their record timestamps, sorted.
    fn taken(out: &mut Collector<Joined>) -> Vec<(Joined, Option<Timestamp>)> {
        let mut records: Vec<_> =
            out.take_records().into_iter().map(|r| (r.value, r.timestamp)).collect();
        records.sort();
        records
    }

    fn joined(key: &str, l: i64, r: i64, lv: i64, rv: i64) -> (Joined, Option<Timestamp>) {
        ((key.to_string(), l, r, l.max(r), lv, rv), Some(l.max(r)))
    }

    /// `(timestamp, records)` per buffered timestamp, sorted.
    type Counts = Vec<(i64, usize)>;

    /// Buffered records of `key` per side.
    fn buffered(op: &mut Operator, key: &str) -> (Counts, Counts) {
        let runtime = op.runtime.as_mut().unwrap();
        runtime.state.set_current_key(key.to_string()).unwrap();
        let count = |entries: Vec<(i64, Vec<Event>)>| {
            let mut counts: Vec<_> = entries.into_iter().map(|(ts, v)| (ts, v.len())).collect();
            counts.sort();
            counts
        };
        (
            count(runtime.left_buffer.entries(&runtime.state).unwrap()),
            count(runtime.right_buffer.entries(&runtime.state).unwrap()),
        )
    }

    #[test]
    fn joins_pairs_within_inclusive_bounds_in_both_arrival_orders() {
        let mut op = opened(operator(settings(-2, 1)));
        let mut out = Collector::default();
        // Right first, then left: the left record at 10 meets right records at 8..=11.
        right(&mut op, &mut out, &[("a", 7, 1), ("a", 8, 2), ("a", 11, 3), ("a", 12, 4)]);
        right(&mut op, &mut out, &[("b", 10, 5)]);
        assert!(out.is_empty());
        left(&mut op, &mut out, &[("a", 10, 100)]);
        assert_eq!(taken(&mut out), vec![joined("a", 10, 8, 100, 2), joined("a", 10, 11, 100, 3)]);
        // Left first, then right: right records at 9 and 12 meet the left record at 10.
        right(&mut op, &mut out, &[("a", 9, 6), ("a", 13, 7), ("b", 9, 8)]);
        assert_eq!(taken(&mut out), vec![joined("a", 10, 9, 100, 6)]);
        // Two left records of one timestamp share a bucket and both join.
        left(&mut op, &mut out, &[("b", 11, 200), ("b", 11, 201)]);
        assert_eq!(
            taken(&mut out),
            vec![
                joined("b", 11, 9, 200, 8),
                joined("b", 11, 9, 201, 8),
                joined("b", 11, 10, 200, 5),
                joined("b", 11, 10, 201, 5),
            ]
        );
        assert_eq!(buffered(&mut op, "b").0, vec![(11, 2)]);
    }

    #[test]
    fn exclusive_bounds_move_the_ends_inwards() {
        let mut op = opened(operator(settings(-2, 2).lower_bound_exclusive()));
        let mut out = Collector::default();
        right(&mut op, &mut out, &[("a", 8, 1), ("a", 9, 2), ("a", 12, 3), ("a", 13, 4)]);
        left(&mut op, &mut out, &[("a", 10, 0)]);
        assert_eq!(taken(&mut out), vec![joined("a", 10, 9, 0, 2), joined("a", 10, 12, 0, 3)]);

        let mut op = opened(operator(settings(-2, 2).upper_bound_exclusive()));
        right(&mut op, &mut out, &[("a", 8, 1), ("a", 9, 2), ("a", 12, 3)]);
        left(&mut op, &mut out, &[("a", 10, 0)]);
        assert_eq!(taken(&mut out), vec![joined("a", 10, 8, 0, 1), joined("a", 10, 9, 0, 2)]);

        // Both ends of a one-millisecond interval excluded: nothing can join.
        let mut op =
            opened(operator(settings(0, 1).lower_bound_exclusive().upper_bound_exclusive()));
        right(&mut op, &mut out, &[("a", 10, 1), ("a", 11, 2)]);
        left(&mut op, &mut out, &[("a", 10, 0)]);
        assert!(out.is_empty());
    }

    #[test]
    fn positive_and_negative_only_bounds() {
        // Right records strictly after the left one.
        let mut op = opened(operator(settings(1, 3)));
        let mut out = Collector::default();
        left(&mut op, &mut out, &[("a", 10, 0)]);
        right(&mut op, &mut out, &[("a", 10, 1), ("a", 11, 2), ("a", 13, 3), ("a", 14, 4)]);
        assert_eq!(taken(&mut out), vec![joined("a", 10, 11, 0, 2), joined("a", 10, 13, 0, 3)]);

        // Right records strictly before the left one; the output takes the left timestamp.
        let mut op = opened(operator(settings(-3, -1)));
        left(&mut op, &mut out, &[("a", 10, 0)]);
        right(&mut op, &mut out, &[("a", 6, 1), ("a", 7, 2), ("a", 9, 3), ("a", 10, 4)]);
        assert_eq!(taken(&mut out), vec![joined("a", 10, 7, 0, 2), joined("a", 10, 9, 0, 3)]);
    }

    #[test]
    fn the_watermark_cleans_up_buffers_and_is_passed_on() {
        let mut op = opened(operator(settings(-2, 3)));
        let mut out = Collector::default();
        left(&mut op, &mut out, &[("a", 10, 0), ("a", 20, 1)]);
        right(&mut op, &mut out, &[("a", 10, 2), ("a", 30, 3)]);
        out.take_records();
        assert_eq!(buffered(&mut op, "a"), (vec![(10, 1), (20, 1)], vec![(10, 1), (30, 1)]));

        // Left buffers live until ts + upper (the last right record that joins them), right
        // buffers until ts - lower (the last left record that joins them).
        op.process_watermark(Watermark(11), &mut out).unwrap();
        assert_eq!(out.watermarks(), vec![Watermark(11)]);
        assert_eq!(buffered(&mut op, "a"), (vec![(10, 1), (20, 1)], vec![(10, 1), (30, 1)]));
        op.process_watermark(Watermark(12), &mut out).unwrap();
        assert_eq!(buffered(&mut op, "a"), (vec![(10, 1), (20, 1)], vec![(30, 1)]));
        op.process_watermark(Watermark(13), &mut out).unwrap();
        assert_eq!(buffered(&mut op, "a"), (vec![(20, 1)], vec![(30, 1)]));
        // Right at 10 is gone: a left record at 13 (not late) no longer meets it.
        left(&mut op, &mut out, &[("a", 13, 4)]);
        assert!(out.is_empty());
        // Right at 30 joins a left record at 28 before the watermark passes 32.
        left(&mut op, &mut out, &[("a", 28, 5)]);
        assert_eq!(taken(&mut out), vec![joined("a", 28, 30, 5, 3)]);

        op.process_watermark(Watermark::MAX, &mut out).unwrap();
        assert_eq!(buffered(&mut op, "a"), (vec![], vec![]));
        assert_eq!(op.runtime.as_ref().unwrap().timers.len(TimeDomain::EventTime), 0);
        assert_eq!(
            out.watermarks(),
            vec![Watermark(11), Watermark(12), Watermark(13), Watermark::MAX]
        );
    }

    #[test]
    fn cleanup_times_follow_flink_for_one_sided_bounds() {
        // upper <= 0: left buffers go when the watermark reaches their own timestamp.
        let mut op = opened(operator(settings(-5, -1)));
        let mut out = Collector::default();
        left(&mut op, &mut out, &[("a", 10, 0)]);
        // lower > 0: right buffers likewise.
        let mut both = opened(operator(settings(1, 5)));
        right(&mut both, &mut out, &[("a", 10, 0)]);
        op.process_watermark(Watermark(9), &mut out).unwrap();
        both.process_watermark(Watermark(9), &mut out).unwrap();
        assert_eq!(buffered(&mut op, "a"), (vec![(10, 1)], vec![]));
        assert_eq!(buffered(&mut both, "a"), (vec![], vec![(10, 1)]));
        op.process_watermark(Watermark(10), &mut out).unwrap();
        both.process_watermark(Watermark(10), &mut out).unwrap();
        assert_eq!(buffered(&mut op, "a"), (vec![], vec![]));
        assert_eq!(buffered(&mut both, "a"), (vec![], vec![]));
    }

    type Received = Arc<Mutex<Vec<Record<Event>>>>;

    /// An output that keeps what it receives.
    struct Shared(Received);

    impl Output<Event> for Shared {
        fn push_batch(&mut self, batch: &mut Vec<Record<Event>>) -> crate::Result<()> {
            self.0.lock().unwrap().append(batch);
            Ok(())
        }
        fn push_watermark(&mut self, _: Watermark) -> crate::Result<()> {
            Ok(())
        }
        fn push_watermark_status(&mut self, _: WatermarkStatus) -> crate::Result<()> {
            Ok(())
        }
        fn flush(&mut self) -> crate::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> crate::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn late_records_are_dropped_or_sent_to_their_side_outputs() {
        let left_tag = OutputTag::<Event>::new("late-left");
        let right_tag = OutputTag::<Event>::new("late-right");
        let (late_left, late_right) = (Arc::default(), Arc::default());
        let sides = vec![
            SideOutput::new(&left_tag, Box::new(Shared(Arc::clone(&late_left)))),
            SideOutput::new(&right_tag, Box::new(Shared(Arc::clone(&late_right)))),
        ];
        let mut out = Collector::sending_to(Box::new(DiscardOutput), Arc::default(), sides);
        let mut op = opened(operator(
            settings(-10, 10)
                .side_output_left_late_data(left_tag)
                .side_output_right_late_data(right_tag),
        ));
        left(&mut op, &mut out, &[("a", 100, 0)]);
        op.process_watermark(Watermark(50), &mut out).unwrap();
        // At the watermark is not late (Flink: `timestamp < watermark`).
        right(&mut op, &mut out, &[("a", 49, 1), ("a", 50, 2), ("a", 95, 3)]);
        left(&mut op, &mut out, &[("a", 40, 4), ("a", 55, 5)]);
        assert_eq!(
            taken(&mut out),
            vec![joined("a", 55, 50, 5, 2), joined("a", 100, 95, 0, 3)],
            "late records join nothing"
        );
        assert_eq!(buffered(&mut op, "a"), (vec![(55, 1), (100, 1)], vec![(50, 1), (95, 1)]));
        out.emit().unwrap();
        let values = |side: &Received| {
            side.lock().unwrap().iter().map(|r| (r.value.1, r.timestamp)).collect::<Vec<_>>()
        };
        assert_eq!(values(&late_left), vec![(4, Some(40))]);
        assert_eq!(values(&late_right), vec![(1, Some(49))]);

        // Without side outputs, late records are dropped.
        let mut op = opened(operator(settings(-10, 10)));
        let mut out = Collector::default();
        op.process_watermark(Watermark(50), &mut out).unwrap();
        left(&mut op, &mut out, &[("a", 45, 0)]);
        right(&mut op, &mut out, &[("a", 46, 0)]);
        assert!(out.is_empty());
        assert_eq!(buffered(&mut op, "a"), (vec![], vec![]));
    }

    #[test]
    fn records_without_timestamps_fail_naming_the_operator() {
        let mut op = opened(operator(settings(0, 1)));
        let mut out = Collector::default();
        let error = op
            .process_batch1(&mut vec![Record::new(("a".to_string(), 1))], &mut out)
            .unwrap_err()
            .to_string();
        assert!(error.contains("'IntervalJoin'") && error.contains("left"), "{error}");
        let error = op
            .process_batch2(
                &mut vec![Record::with_timestamp(("a".to_string(), 1), Timestamp::MIN)],
                &mut out,
            )
            .unwrap_err()
            .to_string();
        assert!(error.contains("right record without a timestamp"), "{error}");
    }

    #[test]
    fn the_lower_bound_must_not_exceed_the_upper_bound() {
        let start = |mut op: Operator| op.initialize_state(&info(), StateRestore::default());
        let error = start(operator(settings(5, 4))).unwrap_err().to_string();
        assert!(error.contains("'IntervalJoin'") && error.contains("lower bound"), "{error}");
        assert!(start(operator(settings(5, 5))).is_ok());
    }
}
