//! Inputs that go idle and come back, through whole jobs: what is late and what is not is
//! Flink's answer, whatever the timing of the tasks in between.
//!
//! The sources are scripted: each subtask emits timestamped records, declares itself idle
//! (as a Kafka partition with idleness does) and takes turns with the others through a shared
//! counter, so the order of events across sources is fixed while the tasks downstream see them
//! at their own pace.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use weir::prelude::*;
use weir_tests::config;

/// One step of a scripted source subtask.
#[derive(Clone, Debug)]
enum Step {
    /// Records at `from`, `from + every`, … below `to`, one per poll, a few ms apart; the
    /// source's watermark follows each (`timestamp - 1`).
    Emit { from: i64, to: i64, every: i64 },
    /// Moves the source's watermark to this time without a record (the end of a range).
    WatermarkAt(i64),
    /// Stops holding back event time until the next record.
    Idle,
    /// Waits until the shared turn reaches this value.
    AwaitTurn(usize),
    /// Sets the shared turn.
    Turn(usize),
    /// Waits this long (for idleness to reach the tasks downstream).
    Sleep(Duration),
}

/// A source subtask that plays its script, then ends.
#[derive(Clone)]
struct Script {
    steps: VecDeque<Step>,
    turn: Arc<AtomicUsize>,
    latest: Option<i64>,
    idle: bool,
    sleeping_until: Option<Instant>,
}

impl Script {
    fn new(steps: Vec<Step>, turn: &Arc<AtomicUsize>) -> Self {
        Script {
            steps: steps.into(),
            turn: turn.clone(),
            latest: None,
            idle: false,
            sleeping_until: None,
        }
    }
}

impl SourceFunction<i64> for Script {
    fn poll(&mut self, out: &mut Vec<Record<i64>>, _: usize) -> FnResult<SourcePoll> {
        while let Some(step) = self.steps.front_mut() {
            match step {
                Step::Emit { from, to, every } => {
                    let timestamp = *from;
                    *from += *every;
                    if *from >= *to {
                        self.steps.pop_front();
                    }
                    out.push(Record::with_timestamp(timestamp, timestamp));
                    self.latest = Some(timestamp);
                    self.idle = false;
                    return Ok(SourcePoll::Pending(Duration::from_millis(2)));
                }
                Step::WatermarkAt(watermark) => {
                    self.latest = Some(*watermark + 1);
                    self.steps.pop_front();
                    return Ok(SourcePoll::Pending(Duration::from_millis(2)));
                }
                Step::Idle => self.idle = true,
                Step::AwaitTurn(turn) if self.turn.load(Ordering::SeqCst) < *turn => {
                    return Ok(SourcePoll::Pending(Duration::from_millis(5)));
                }
                Step::AwaitTurn(_) => {}
                Step::Turn(turn) => self.turn.store(*turn, Ordering::SeqCst),
                Step::Sleep(pause) => {
                    let until = *self.sleeping_until.get_or_insert(Instant::now() + *pause);
                    if let Some(left) = until.checked_duration_since(Instant::now()) {
                        return Ok(SourcePoll::Pending(left));
                    }
                    self.sleeping_until = None;
                }
            }
            self.steps.pop_front();
        }
        Ok(SourcePoll::Finished)
    }

    fn watermark(&mut self) -> Option<SourceWatermark> {
        if self.idle {
            return Some(SourceWatermark::Idle);
        }
        self.latest.map(|latest| SourceWatermark::Watermark(Watermark(latest - 1)))
    }
}

/// A scripted source `name` of `scripts.len()` subtasks, subtask `i` playing `scripts[i]`
/// and taking turns through `turn`.
fn scripted(
    env: &mut StreamExecutionEnvironment,
    name: &str,
    turn: &Arc<AtomicUsize>,
    scripts: Vec<Vec<Step>>,
) -> DataStream<i64> {
    let parallelism = scripts.len();
    let scripts: Vec<Script> = scripts.into_iter().map(|s| Script::new(s, turn)).collect();
    env.add_source(name, false, move |info| scripts[info.index].clone())
        .set_parallelism(parallelism)
}

fn emit(from: i64, to: i64) -> Step {
    Step::Emit { from, to, every: 50 }
}

const SETTLE: Duration = Duration::from_millis(300);

/// Per-second counts of keyed per-second counts: a second window stage fed by the first's
/// results, whose timestamps are their window's last millisecond.
#[test]
fn two_stage_windows_count_everything_through_idle_and_active_phases() {
    let mut env = StreamExecutionEnvironment::new(config(2));
    // Each phase's records are later than everything before it, so none is late whichever
    // order the tasks see the phases in: subtask 0 emits seconds 0–9, subtask 1 seconds 10–19
    // while subtask 0 is idle, both idle (every task downstream goes idle and flushes), then
    // subtask 0 comes back with 20–29 and subtask 1 with 30–39. Each phase ends with its
    // range's watermark, so no window stays open across an idle phase: the results of such a
    // window could be late downstream, as in Flink (its first-stage subtasks wake up one after
    // the other, and the second stage may pass the window on the first one's watermark).
    let scripts = vec![
        vec![emit(0, 10_000), Step::Turn(1), Step::Idle, Step::AwaitTurn(2), emit(20_000, 30_000)]
            .into_iter()
            .chain([Step::WatermarkAt(29_999), Step::Turn(3), Step::Idle, Step::AwaitTurn(4)])
            .collect(),
        vec![Step::AwaitTurn(1), emit(10_000, 20_000), Step::WatermarkAt(19_999), Step::Idle]
            .into_iter()
            .chain([Step::Sleep(SETTLE), Step::Turn(2), Step::AwaitTurn(3), emit(30_000, 40_000)])
            .chain([Step::Turn(4)])
            .collect(),
    ];
    let turn = Arc::new(AtomicUsize::new(0));
    let counts = scripted(&mut env, "phases", &turn, scripts)
        .map(|ts| (ts % 7, ts / 1_000, 1u64))
        .key_by(|(key, second, _)| (*key, *second))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce(|a, b| (a.0, a.1, a.2 + b.2))
        .key_by(|(_, second, _)| *second)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce(|a, b| (a.0, a.1, a.2 + b.2))
        .collect();
    env.execute().unwrap();
    let per_second: BTreeMap<i64, u64> =
        counts.take().into_iter().map(|(_, second, count)| (second, count)).collect();
    let expected: BTreeMap<i64, u64> = (0..40).map(|second| (second, 20)).collect();
    assert_eq!(per_second, expected);
}

/// Notes, for each record of the second input, whether the watermark had already passed it.
#[derive(Clone)]
struct LatenessOfSecond;

impl KeyedCoProcessFunction<u8, i64, i64, (i64, i64)> for LatenessOfSecond {
    fn process_element1(
        &mut self,
        _: i64,
        _: &mut KeyedContext<'_, u8>,
        _: &mut Collector<(i64, i64)>,
    ) -> FnResult {
        Ok(())
    }

    fn process_element2(
        &mut self,
        ts: i64,
        ctx: &mut KeyedContext<'_, u8>,
        out: &mut Collector<(i64, i64)>,
    ) -> FnResult {
        out.collect((ts, ctx.timer_service().current_watermark()));
        Ok(())
    }
}

/// Two connected inputs that are both idle hold event time where it was: unlike the channels
/// of one input, Flink does not flush across the inputs of a two-input operator, so the input
/// that comes back first is not late against the other's progress.
#[test]
fn connected_inputs_both_idle_do_not_make_the_one_that_comes_back_late() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let turn = Arc::new(AtomicUsize::new(0));
    let ahead = scripted(
        &mut env,
        "ahead",
        &turn,
        vec![vec![
            Step::AwaitTurn(1),
            emit(0, 10_000),
            Step::Idle,
            Step::Turn(2),
            Step::AwaitTurn(4),
        ]],
    );
    let behind = scripted(
        &mut env,
        "behind",
        &turn,
        vec![vec![
            emit(0, 5_000),
            Step::Turn(1),
            // Stays active at 4 999 while the other input runs to 9 999, so the task's watermark
            // is 4 998 when both go idle.
            Step::AwaitTurn(2),
            Step::Idle,
            Step::Sleep(SETTLE),
            emit(5_000, 10_000),
            Step::Turn(4),
        ]],
    );
    let seen =
        ahead.key_by(|_| 0u8).connect(&behind.key_by(|_| 0u8)).process(LatenessOfSecond).collect();
    env.execute().unwrap();
    let late: Vec<(i64, i64)> =
        seen.take().into_iter().filter(|&(ts, watermark)| ts <= watermark).collect();
    assert_eq!(late, [], "records of the second input the watermark had passed");
}
