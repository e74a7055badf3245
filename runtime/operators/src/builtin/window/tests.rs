//! Unit tests of the window operator against Flink's window semantics.
//!
//! Each test drives one `WindowOperator` directly and checks what a downstream operator would
//! see: records with their timestamps, then the forwarded watermark, in emission order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_state::{AggregateFunction, KeyedRestore};
use weir_types::{CheckpointBarrier, Record, Timestamp, Watermark, WatermarkStatus};

use super::*;
use crate::StateRestore;
use crate::builtin::KeySelector;
use crate::function::FnResult;
use crate::{
    Collector, OneInputOperator, Output, OutputTag, SideOutput, SubtaskInfo, processing_time_now,
};

/// A keyed input record: `(key, value)`.
type Ev = (char, i64);

const MAX: Timestamp = Timestamp::MAX;

/// What reached an output, in order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seen<T> {
    Rec(T, Option<Timestamp>),
    Wm(Timestamp),
}
use Seen::{Rec, Wm};

fn at<T>(value: T, timestamp: Timestamp) -> Seen<T> {
    Rec(value, Some(timestamp))
}

/// An output that remembers what it is given.
struct Recorder<T>(Arc<Mutex<Vec<Seen<T>>>>);

impl<T> Recorder<T> {
    fn new() -> Self {
        Recorder(Arc::new(Mutex::new(Vec::new())))
    }

    fn take(&self) -> Vec<Seen<T>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl<T> Clone for Recorder<T> {
    fn clone(&self) -> Self {
        Recorder(self.0.clone())
    }
}

impl<T: Send> Output<T> for Recorder<T> {
    fn push_batch(&mut self, batch: &mut Vec<Record<T>>) -> crate::Result<()> {
        self.0.lock().unwrap().extend(batch.drain(..).map(|r| Rec(r.value, r.timestamp)));
        Ok(())
    }
    fn push_watermark(&mut self, watermark: Watermark) -> crate::Result<()> {
        self.0.lock().unwrap().push(Wm(watermark.timestamp()));
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

/// An opened operator with a collector whose late-data side output is recorded.
struct Harness<Op: OneInputOperator> {
    op: Op,
    out: Collector<Op::Out>,
    main: Recorder<Op::Out>,
    late: Recorder<Op::In>,
}

fn subtask() -> SubtaskInfo {
    SubtaskInfo::new("Window", 0, 1, 128)
}

impl<Op> Harness<Op>
where
    Op: OneInputOperator,
    Op::In: Send + 'static,
    Op::Out: Send + 'static,
{
    fn open(op: Op) -> Self {
        Self::restored(op, StateRestore::default())
    }

    fn restored(mut op: Op, restore: StateRestore) -> Self {
        op.initialize_state(&subtask(), restore).expect("state initializes");
        op.open(&subtask()).expect("the operator opens");
        let late = Recorder::new();
        let (main, late_output) =
            (Recorder::new(), SideOutput::new(&late_tag(), Box::new(late.clone())));
        let out =
            Collector::sending_to(Box::new(main.clone()), Default::default(), vec![late_output]);
        Harness { op, out, main, late }
    }

    /// Hands what was collected on, as the chain does after each call, and returns it.
    fn drain(&mut self) -> Vec<Seen<Op::Out>> {
        self.out.emit().expect("recording never fails");
        self.main.take()
    }

    fn element(&mut self, value: Op::In, timestamp: Timestamp) -> Vec<Seen<Op::Out>> {
        let mut batch = vec![Record::with_timestamp(value, timestamp)];
        self.op.process_batch(&mut batch, &mut self.out).expect("the record is processed");
        self.drain()
    }

    /// Processes `records` (value, timestamp) as one batch.
    fn batch(&mut self, records: &[(Op::In, Timestamp)]) -> Vec<Seen<Op::Out>>
    where
        Op::In: Clone,
    {
        let mut batch: Vec<_> =
            records.iter().map(|(v, t)| Record::with_timestamp(v.clone(), *t)).collect();
        self.op.process_batch(&mut batch, &mut self.out).expect("the batch is processed");
        self.drain()
    }

    fn watermark(&mut self, time: Timestamp) -> Vec<Seen<Op::Out>> {
        self.op.process_watermark(Watermark(time), &mut self.out).expect("the watermark works");
        assert_eq!(self.out.watermarks(), vec![Watermark(time)], "forwarded exactly once");
        self.drain()
    }

    fn processing_time(&mut self, now: Timestamp) -> Vec<Seen<Op::Out>> {
        self.op.on_processing_time(now, &mut self.out).expect("the timers run");
        self.drain()
    }

    /// Records sent to the late-data side output (watermarks left out).
    fn late(&self) -> Vec<Seen<Op::In>> {
        self.late.take().into_iter().filter(|seen| matches!(seen, Rec(..))).collect()
    }

    fn late_values(&self) -> Vec<Op::In> {
        self.late()
            .into_iter()
            .filter_map(|s| if let Rec(v, _) = s { Some(v) } else { None })
            .collect()
    }
}

fn late_tag<T>() -> OutputTag<T> {
    OutputTag::new("late")
}

fn by_key() -> KeySelector<Ev, char> {
    Arc::new(|event: &Ev| event.0)
}

fn sum() -> ReduceContents<Ev> {
    ReduceContents::new(|a: Ev, b: Ev| (a.0, a.1 + b.1))
}

/// Appends the new value's digit: the result shows the order the records were reduced in.
fn digits() -> ReduceContents<Ev> {
    ReduceContents::new(|a: Ev, b: Ev| (a.0, a.1.wrapping_mul(10).wrapping_add(b.1)))
}

/// A window operator over `Ev` keyed by the char, with the assigner's default trigger unless
/// one is given, and late data sent to the side output "late".
fn window<A, C, E, Out>(
    assigner: A,
    trigger: Option<Box<dyn Trigger<Ev, A::W>>>,
    contents: C,
    emit: E,
    allowed_lateness: Timestamp,
) -> WindowOperator<char, Ev, A, C, E, Out>
where
    A: WindowAssigner<Ev>,
    C: WindowContents<Ev>,
    E: WindowEmit<char, A::W, C::Acc, Out>,
{
    let trigger = trigger.unwrap_or_else(|| assigner.default_trigger());
    let settings = WindowSettings { allowed_lateness, late_data: Some(late_tag()) };
    WindowOperator::new(by_key(), assigner, trigger, contents, emit, settings)
}

type ReduceOp<A> = WindowOperator<char, Ev, A, ReduceContents<Ev>, PassThrough, Ev>;

fn reduce<A: WindowAssigner<Ev>>(assigner: A, lateness: Timestamp) -> Harness<ReduceOp<A>> {
    Harness::open(window(assigner, None, sum(), PassThrough, lateness))
}

type ProcessOp<A> =
    WindowOperator<char, Ev, A, ListContents<Ev>, ProcessContents<Vec<Ev>, Ev, Describe>, String>;

fn process<A>(
    assigner: A,
    trigger: Option<Box<dyn Trigger<Ev, TimeWindow>>>,
) -> Harness<ProcessOp<A>>
where
    A: WindowAssigner<Ev, W = TimeWindow>,
{
    let emit = ProcessContents::new(Describe { watermark: false }, |all: Vec<Ev>| all);
    Harness::open(window(assigner, trigger, ListContents::default(), emit, 0))
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Describes a window as `key start..end [sorted values]` (and the watermark when asked).
#[derive(Clone)]
struct Describe {
    watermark: bool,
}

impl ProcessWindowFunction<Ev, String, char, TimeWindow> for Describe {
    fn process(
        &mut self,
        key: &char,
        ctx: &WindowContext<'_, TimeWindow>,
        elements: Vec<Ev>,
        out: &mut Collector<String>,
    ) -> FnResult {
        let window = ctx.window();
        let mut values: Vec<i64> = elements.iter().map(|(_, v)| *v).collect();
        values.sort();
        let mut text = format!("{key} {}..{} {values:?}", window.start, window.end);
        if self.watermark {
            text.push_str(&format!(" wm={}", ctx.current_watermark()));
        }
        out.collect(text);
        Ok(())
    }
}

/// Counts and sums the values.
struct CountSum;

impl AggregateFunction<Ev, (i64, i64), (i64, i64)> for CountSum {
    fn create_accumulator(&self) -> (i64, i64) {
        (0, 0)
    }
    fn add(&self, (_, value): Ev, acc: &mut (i64, i64)) {
        *acc = (acc.0 + 1, acc.1 + value);
    }
    fn get_result(&self, acc: &(i64, i64)) -> (i64, i64) {
        *acc
    }
    fn merge(&self, a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

/// Fires (and purges) once the watermark reaches the timestamp of a record of the window.
/// Keeps Flink's default `canMerge() == false`.
#[derive(Clone)]
struct FireAtRecordTime;

impl<W: Window> Trigger<Ev, W> for FireAtRecordTime {
    fn on_element(
        &mut self,
        _: &Ev,
        timestamp: Timestamp,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        ctx.register_event_time_timer(window, timestamp);
        Ok(TriggerResult::Continue)
    }
    fn on_event_time(
        &mut self,
        _: Timestamp,
        _: &W,
        _: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        Ok(TriggerResult::FireAndPurge)
    }
    fn on_processing_time(
        &mut self,
        _: Timestamp,
        _: &W,
        _: &mut TriggerContext<'_, W>,
    ) -> FnResult<TriggerResult> {
        Ok(TriggerResult::Continue)
    }
    fn clear(&mut self, _: &W, _: &mut TriggerContext<'_, W>) -> FnResult {
        Ok(())
    }
}

#[test]
fn tumbling_reduce_fires_when_the_watermark_reaches_end_minus_one() {
    let mut h = reduce(TumblingEventTimeWindows::of(millis(10)), 0);
    assert_eq!(h.element(('a', 1), 0), vec![]);
    assert_eq!(h.element(('a', 2), 9), vec![]);
    assert_eq!(h.element(('b', 8), 3), vec![]);
    assert_eq!(h.element(('a', 4), 10), vec![]);
    assert_eq!(h.watermark(8), vec![Wm(8)], "window [0, 10) is not complete before 9");
    let fired = h.watermark(9);
    // Both keys' windows end at 9: Flink fires timers of equal time in no defined order, but
    // always before forwarding the watermark.
    assert_eq!(fired.last(), Some(&Wm(9)));
    let mut results = fired[..fired.len() - 1].to_vec();
    results.sort();
    assert_eq!(results, vec![at(('a', 3), 9), at(('b', 8), 9)]);
    assert_eq!(h.watermark(18), vec![Wm(18)]);
    assert_eq!(h.watermark(25), vec![at(('a', 4), 19), Wm(25)]);
    assert_eq!(h.watermark(100), vec![Wm(100)], "each window fires once");
}

#[test]
fn sliding_aggregate_fires_every_window_in_end_order() {
    let aggregate: Arc<dyn AggregateFunction<Ev, (i64, i64), (i64, i64)>> = Arc::new(CountSum);
    let op = window(
        SlidingEventTimeWindows::of(millis(10), millis(5)),
        None,
        AggregateContents::new(aggregate.clone()),
        AggregateResult(aggregate),
        0,
    );
    let mut h = Harness::open(op);
    h.element(('a', 1), 3); // [-5, 5) and [0, 10)
    h.element(('a', 2), 7); // [0, 10) and [5, 15)
    h.element(('a', 4), 12); // [5, 15) and [10, 20)
    assert_eq!(h.watermark(4), vec![at((1, 1), 4), Wm(4)]);
    assert_eq!(
        h.watermark(20),
        vec![at((2, 3), 9), at((2, 6), 14), at((1, 4), 19), Wm(20)],
        "timers fire in time order, then the watermark is forwarded"
    );
}

#[test]
fn process_and_reduce_with_process_see_key_window_and_watermark() {
    let describe = Describe { watermark: true };
    let all = ProcessContents::new(describe.clone(), |all: Vec<Ev>| all);
    let tumbling = TumblingEventTimeWindows::of(millis(10));
    let mut h = Harness::open(window(tumbling, None, ListContents::default(), all, 0));
    h.element(('a', 2), 1);
    h.element(('a', 1), 8);
    h.element(('b', 5), 12);
    assert_eq!(h.watermark(15), vec![at("a 0..10 [1, 2] wm=15".to_string(), 9), Wm(15)]);

    let one = ProcessContents::new(describe, |one: Ev| vec![one]);
    let mut h = Harness::open(window(tumbling, None, sum(), one, 0));
    h.element(('a', 2), 1);
    h.element(('a', 1), 8);
    assert_eq!(h.watermark(9), vec![at("a 0..10 [3] wm=9".to_string(), 9), Wm(9)]);
}

#[test]
fn late_records_within_the_allowed_lateness_refire_the_window() {
    let mut h = reduce(TumblingEventTimeWindows::of(millis(10)), 5);
    h.element(('a', 1), 2);
    assert_eq!(h.watermark(9), vec![at(('a', 1), 9), Wm(9)]);
    // EventTimeTrigger fires at once for a window whose end the watermark has passed.
    assert_eq!(h.element(('a', 2), 5), vec![at(('a', 3), 9)]);
    assert_eq!(h.watermark(13), vec![Wm(13)], "the cleanup timer (9 + 5) does not fire early");
    assert_eq!(h.element(('a', 4), 0), vec![at(('a', 7), 9)]);
    assert!(h.late().is_empty());
    // At 14 = end - 1 + lateness the window's state is dropped, without firing again.
    assert_eq!(h.watermark(14), vec![Wm(14)]);
    assert_eq!(h.element(('a', 8), 9), vec![], "9 + 5 <= 14: too late");
    assert_eq!(h.late_values(), vec![('a', 8)]);
    // The next window is unaffected.
    assert_eq!(h.element(('a', 16), 10), vec![]);
    assert_eq!(h.watermark(19), vec![at(('a', 16), 19), Wm(19)]);
    assert!(h.late().is_empty());
}

#[test]
fn a_record_whose_timestamp_plus_lateness_equals_the_watermark_is_late() {
    let mut h = reduce(TumblingEventTimeWindows::of(millis(10)), 0);
    h.watermark(9);
    assert_eq!(h.element(('a', 1), 9), vec![], "window [0, 10) is already cleaned up");
    assert_eq!(h.late_values(), vec![('a', 1)]);
    assert_eq!(h.element(('a', 2), 10), vec![]);
    assert!(h.late().is_empty());
    assert_eq!(h.watermark(19), vec![at(('a', 2), 19), Wm(19)]);

    // Without a side output, late records are dropped.
    let op = WindowOperator::new(
        by_key(),
        TumblingEventTimeWindows::of(millis(10)),
        Box::new(EventTimeTrigger),
        sum(),
        PassThrough,
        WindowSettings::default(),
    );
    let mut h = Harness::open(op);
    h.watermark(9);
    assert_eq!(h.element(('a', 1), 9), vec![]);
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)]);
    assert!(h.late().is_empty());
}

#[test]
fn late_side_output_only_takes_records_too_late_for_every_window() {
    let mut h = reduce(SlidingEventTimeWindows::of(millis(10), millis(5)), 0);
    h.watermark(12);
    // 7 is behind the watermark, and [0, 10) is gone, but [5, 15) is still open.
    assert_eq!(h.element(('a', 1), 7), vec![]);
    assert!(h.late().is_empty(), "Flink side-outputs only records no window took");
    assert_eq!(h.watermark(14), vec![at(('a', 1), 14), Wm(14)]);
    // 4 belongs to [-5, 5) and [0, 10), both gone.
    assert_eq!(h.element(('a', 2), 4), vec![]);
    assert_eq!(h.late_values(), vec![('a', 2)]);
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)]);
}

#[test]
fn purging_count_trigger_makes_count_windows_on_global_windows() {
    let trigger: Box<dyn Trigger<Ev, GlobalWindow>> =
        Box::new(PurgingTrigger::of(CountTrigger::of(3)));
    let mut h =
        Harness::open(window(GlobalWindows::create(), Some(trigger), sum(), PassThrough, 0));
    assert_eq!(h.element(('a', 1), 0), vec![]);
    assert_eq!(h.element(('b', 10), 0), vec![]);
    assert_eq!(h.element(('a', 2), 0), vec![]);
    assert_eq!(h.element(('a', 3), 0), vec![at(('a', 6), MAX)], "the global window ends at MAX");
    assert_eq!(h.element(('a', 4), 0), vec![]);
    assert_eq!(h.element(('b', 20), 0), vec![]);
    assert_eq!(h.element(('a', 5), 0), vec![]);
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)], "partial count windows never fire");
    assert_eq!(h.element(('a', 6), 0), vec![at(('a', 15), MAX)], "purged: only 4 + 5 + 6");
    assert_eq!(h.element(('b', 30), 0), vec![at(('b', 60), MAX)]);
    assert!(h.late().is_empty(), "global windows are never late");
}

#[test]
fn count_trigger_without_purge_refires_with_all_contents() {
    let trigger: Box<dyn Trigger<Ev, GlobalWindow>> = Box::new(CountTrigger::of(2));
    let mut h =
        Harness::open(window(GlobalWindows::create(), Some(trigger), sum(), PassThrough, 0));
    assert_eq!(h.element(('a', 1), 0), vec![]);
    assert_eq!(h.element(('a', 2), 0), vec![at(('a', 3), MAX)]);
    assert_eq!(h.element(('a', 3), 0), vec![], "the count restarts after firing");
    assert_eq!(h.element(('a', 4), 0), vec![at(('a', 10), MAX)]);
}

#[test]
fn sessions_merge_contents_and_bridge_sessions_firing_once() {
    let mut h = process(EventTimeSessionWindows::with_gap(millis(10)), None);
    h.element(('a', 1), 0); // [0, 10)
    h.element(('a', 2), 30); // [30, 40)
    h.element(('a', 3), 15); // [15, 25)
    h.element(('a', 4), 22); // [22, 32) joins [15, 25) and [30, 40) into [15, 40)
    h.element(('a', 5), 5); // [5, 15) overlaps [0, 10) and touches [15, 40): [0, 40)
    h.element(('b', 9), 3);
    assert_eq!(h.watermark(9), vec![Wm(9)], "the timer of merged-away [0, 10) is gone");
    assert_eq!(h.watermark(12), vec![at("b 3..13 [9]".to_string(), 12), Wm(12)]);
    assert_eq!(h.watermark(38), vec![Wm(38)], "nor do those of [15, 25) or [30, 40) fire");
    assert_eq!(h.watermark(39), vec![at("a 0..40 [1, 2, 3, 4, 5]".to_string(), 39), Wm(39)]);
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)]);
}

#[test]
fn a_late_record_may_extend_a_session_backwards_past_the_watermark() {
    let mut h = process(EventTimeSessionWindows::with_gap(millis(10)), None);
    h.element(('a', 1), 100);
    h.watermark(105);
    // [95, 105) alone would be late, but it merges into [95, 110), which is not.
    assert_eq!(h.element(('a', 2), 95), vec![]);
    assert!(h.late().is_empty());
    // [80, 90) is late and touches no session.
    assert_eq!(h.element(('a', 3), 80), vec![]);
    assert_eq!(h.late_values(), vec![('a', 3)]);
    assert_eq!(h.watermark(108), vec![Wm(108)]);
    assert_eq!(h.watermark(109), vec![at("a 95..110 [1, 2]".to_string(), 109), Wm(109)]);
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)]);
}

#[test]
fn a_late_record_merging_into_a_fired_session_refires_it_once() {
    let describe = ProcessContents::new(Describe { watermark: false }, |all: Vec<Ev>| all);
    let sessions = EventTimeSessionWindows::with_gap(millis(10));
    let mut h = Harness::open(window(sessions, None, ListContents::default(), describe, 20));
    h.element(('a', 1), 100);
    assert_eq!(h.watermark(112), vec![at("a 100..110 [1]".to_string(), 109), Wm(112)]);
    // Merges into [95, 110), whose end the watermark has passed: fires now, sets no timer.
    assert_eq!(h.element(('a', 2), 95), vec![at("a 95..110 [1, 2]".to_string(), 109)]);
    assert_eq!(h.watermark(128), vec![Wm(128)]);
    assert_eq!(h.watermark(129), vec![Wm(129)], "cleaned up at 109 + 20 without firing");
    assert_eq!(h.element(('a', 3), 99), vec![], "[99, 109) is late and its session gone");
    assert_eq!(h.late_values(), vec![('a', 3)]);
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)]);
}

#[test]
fn count_trigger_on_sessions_adds_the_counts_of_merged_windows() {
    let trigger: Box<dyn Trigger<Ev, TimeWindow>> = Box::new(CountTrigger::of(3));
    let mut h = process(EventTimeSessionWindows::with_gap(millis(10)), Some(trigger));
    assert_eq!(h.element(('a', 1), 0), vec![]);
    assert_eq!(h.element(('a', 2), 20), vec![]);
    // [10, 20) touches both: counts 1 + 1 merge, and this record makes 3.
    assert_eq!(h.element(('a', 3), 10), vec![at("a 0..30 [1, 2, 3]".to_string(), 29)]);
    assert_eq!(h.element(('a', 4), 25), vec![], "the count restarted at the firing");
    assert_eq!(h.element(('a', 5), 40), vec![]);
    assert_eq!(
        h.element(('a', 6), 33),
        vec![at("a 0..50 [1, 2, 3, 4, 5, 6]".to_string(), 49)],
        "[0, 35) with count 1 and [40, 50) with count 1 merge, plus this record"
    );
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)], "a count trigger ignores time");
}

#[test]
fn processing_time_tumbling_windows_fire_on_processing_timers() {
    const DAY: Timestamp = 86_400_000;
    let mut h = reduce(TumblingProcessingTimeWindows::of(millis(DAY as u64)), 0);
    let before = processing_time_now();
    h.element(('a', 1), 5); // the record's timestamp plays no part
    h.element(('a', 2), 5);
    let deadline = h.op.next_processing_deadline().expect("a timer at the window's end");
    assert_eq!((deadline + 1) % DAY, 0, "windows align to the epoch");
    assert!(before < deadline + 1 && deadline + 1 - DAY <= processing_time_now());
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)], "event time does not fire them");
    assert_eq!(h.processing_time(deadline - 1), vec![]);
    assert_eq!(h.processing_time(deadline), vec![at(('a', 3), deadline)]);
    assert_eq!(h.op.next_processing_deadline(), None, "trigger and cleanup timers are done");
    assert_eq!(h.processing_time(deadline + DAY), vec![]);
    assert!(h.late().is_empty(), "processing-time records are never late");
}

#[test]
fn sessions_refuse_a_trigger_that_cannot_merge() {
    let trigger: Box<dyn Trigger<Ev, TimeWindow>> = Box::new(FireAtRecordTime);
    let sessions = EventTimeSessionWindows::with_gap(millis(10));
    let mut op = window(sessions, Some(trigger), sum(), PassThrough, 0);
    let error = op
        .initialize_state(&subtask(), StateRestore::default())
        .expect_err("Flink rejects the combination")
        .to_string();
    assert!(error.contains("merging"), "{error}");
    // The same trigger is fine for windows that never merge.
    let trigger: Box<dyn Trigger<Ev, TimeWindow>> = Box::new(FireAtRecordTime);
    let tumbling = TumblingEventTimeWindows::of(millis(10));
    let mut op = window(tumbling, Some(trigger), sum(), PassThrough, 0);
    assert!(op.initialize_state(&subtask(), StateRestore::default()).is_ok());
}

#[test]
fn event_time_windows_need_record_timestamps() {
    let mut h = reduce(TumblingEventTimeWindows::of(millis(10)), 0);
    let error =
        h.op.process_batch(&mut vec![Record::new(('a', 1))], &mut h.out)
            .expect_err("no timestamp to window by")
            .to_string();
    assert!(error.contains("assign_timestamps_and_watermarks"), "{error}");
}

#[test]
fn the_max_watermark_fires_everything_and_leaves_nothing_behind() {
    let mut h = reduce(TumblingEventTimeWindows::of(millis(10)), 5);
    h.element(('a', 1), 1);
    h.element(('b', 2), 12);
    h.element(('a', 4), 25);
    h.element(('a', 8), 3);
    assert_eq!(
        h.watermark(MAX),
        vec![at(('a', 9), 9), at(('b', 2), 19), at(('a', 4), 29), Wm(MAX)]
    );
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)], "no timer and no window is left");
    assert_eq!(h.element(('a', 16), 30), vec![], "every window is late now");
    assert_eq!(h.late_values(), vec![('a', 16)]);
    assert_eq!(h.watermark(MAX), vec![Wm(MAX)]);
}

// Deviations from Flink.

#[test]
fn late_records_keep_their_timestamp_on_the_side_output() {
    let mut h = reduce(TumblingEventTimeWindows::of(millis(10)), 0);
    h.element(('a', 1), 3);
    assert_eq!(h.watermark(9), vec![at(('a', 1), 9), Wm(9)]);
    h.element(('a', 2), 4);
    h.element(('b', 3), 5);
    // Flink's WindowOperator.sideOutput emits the late StreamRecord itself, timestamp included.
    assert_eq!(h.late(), vec![at(('a', 2), 4), at(('b', 3), 5)]);
}

#[test]
fn triggers_of_global_windows_see_the_record_timestamp() {
    let trigger: Box<dyn Trigger<Ev, GlobalWindow>> = Box::new(FireAtRecordTime);
    let mut h =
        Harness::open(window(GlobalWindows::create(), Some(trigger), sum(), PassThrough, 0));
    h.element(('a', 1), 5);
    assert_eq!(h.watermark(4), vec![Wm(4)]);
    // Flink calls trigger.onElement(value, element.getTimestamp(), window, ctx).
    assert_eq!(h.watermark(5), vec![at(('a', 1), MAX), Wm(5)]);
}

#[test]
fn a_batch_reaches_each_window_in_arrival_order_around_records_that_fire_or_are_late() {
    let assigner = TumblingEventTimeWindows::of(millis(10));
    let mut h = Harness::open(window(assigner, None, digits(), PassThrough, 100));
    h.element(('a', 1), 2);
    assert_eq!(h.watermark(9), vec![at(('a', 1), 9), Wm(9)]);
    let fired = h.batch(&[
        (('a', 2), 12),
        (('b', 5), 13),
        (('a', 3), 5),    // [0, 10) ended: fires again at once
        (('c', 7), -200), // too late for [-200, -190) even with the lateness
        (('a', 4), 15),
        (('b', 6), 11),
        (('a', 8), 6),
    ]);
    assert_eq!(fired, vec![at(('a', 13), 9), at(('a', 138), 9)]);
    assert_eq!(h.late_values(), vec![('c', 7)]);
    let mut fired = h.watermark(19);
    assert_eq!(fired.pop(), Some(Wm(19)));
    fired.sort();
    assert_eq!(fired, vec![at(('a', 24), 19), at(('b', 56), 19)]);
}

#[test]
fn batches_give_what_records_one_by_one_give() {
    // A fixed pseudo-random stream of records, some late, with watermarks between batches.
    let mut seed = 0x2545_f491_u64;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let (mut batches, mut watermark) = (Vec::new(), 0);
    for _ in 0..60 {
        let batch: Vec<(Ev, Timestamp)> = (0..next(40))
            .map(|_| {
                let key = (b'a' + next(4) as u8) as char;
                let timestamp = watermark + next(80) as i64 - 45;
                ((key, next(10) as i64), timestamp)
            })
            .collect();
        watermark += next(15) as i64;
        batches.push((batch, watermark));
    }
    let run = |one_by_one: bool| {
        let assigner = SlidingEventTimeWindows::of(millis(20), millis(5));
        let mut h = Harness::open(window(assigner, None, digits(), PassThrough, 7));
        let mut seen = Vec::new();
        for (batch, watermark) in &batches {
            if one_by_one {
                batch.iter().for_each(|(value, t)| seen.extend(h.element(*value, *t)));
            } else {
                seen.extend(h.batch(batch));
            }
            seen.extend(h.watermark(*watermark));
        }
        seen.extend(h.watermark(MAX));
        (seen, h.late_values())
    };
    let (grouped, one_by_one) = (run(false), run(true));
    assert!(grouped.0.len() > 200 && grouped.1.len() > 20, "the stream fires and has late data");
    assert_eq!(grouped, one_by_one);
}

#[test]
fn records_waiting_for_the_watermark_are_in_a_checkpoint() {
    let open = || window(TumblingEventTimeWindows::of(millis(10)), None, digits(), PassThrough, 0);
    let mut h = Harness::open(open());
    assert_eq!(h.batch(&[(('a', 1), 1), (('b', 3), 3), (('a', 2), 2)]), vec![]);
    let snapshot = h.op.snapshot_state(CheckpointBarrier::checkpoint(1, 0)).unwrap();
    let blocks = snapshot.keyed.encode_groups().unwrap();
    let keyed = KeyedRestore::decode(blocks.into_iter().map(|(g, b)| (g, b.into()))).unwrap();
    let mut restored = Harness::restored(open(), StateRestore { keyed, ..Default::default() });
    let mut fired = restored.watermark(9);
    assert_eq!(fired.pop(), Some(Wm(9)));
    fired.sort();
    assert_eq!(fired, vec![at(('a', 12), 9), at(('b', 3), 9)]);
}
