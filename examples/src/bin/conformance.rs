//! Conformance runner: runs one of Flink's recorded event-time cases as a Weir job and prints
//! its output lines (`../shared/conformance/README.md` has the contract).
//!
//! `conformance CASE.properties EVENTS.csv [RIGHT.csv]`

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use weir::prelude::*;

/// One input line: `key,timestamp_ms,value`.
type Event = (String, i64, i64);

fn main() -> ExitCode {
    weir_examples::print_lines(run())
}

fn run() -> Result<Vec<String>, UserError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [properties, events, rest @ ..] = args.as_slice() else {
        return Err("usage: conformance CASE.properties EVENTS.csv [RIGHT.csv]".into());
    };
    let case = Case::load(properties)?;
    let config = ExecutionConfig { progress_interval_ms: 0, ..Default::default() };
    let mut env = StreamExecutionEnvironment::new(config);
    let left = timestamped(&mut env, read_events(events)?, case.millis("out_of_orderness_ms")?);
    let lines = match case.get("kind")? {
        "window" => window_job(&case, left)?,
        "timer" => timer_job(&case, left)?,
        "interval_join" => {
            let right_path = rest.first().ok_or("interval_join needs RIGHT.csv")?;
            let right = timestamped(
                &mut env,
                read_events(right_path)?,
                case.millis("out_of_orderness_ms")?,
            );
            join_job(&case, left, right)?
        }
        other => return Err(format!("unknown case kind {other}").into()),
    };
    env.execute()?;
    Ok(lines.take())
}

/// The case's settings.
struct Case(HashMap<String, String>);

impl Case {
    fn load(path: &str) -> Result<Case, UserError> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let pairs = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()));
        Ok(Case(pairs.collect()))
    }

    fn get(&self, name: &str) -> Result<&str, UserError> {
        self.0.get(name).map(String::as_str).ok_or_else(|| format!("case has no {name}").into())
    }

    fn millis(&self, name: &str) -> Result<i64, UserError> {
        Ok(self.get(name)?.parse()?)
    }

    fn duration(&self, name: &str) -> Result<Duration, UserError> {
        Ok(Duration::from_millis(self.millis(name)?.try_into()?))
    }
}

fn read_events(path: &str) -> Result<Vec<Event>, UserError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut fields = line.split(',');
            let mut next = || fields.next().ok_or_else(|| format!("bad line {line:?} in {path}"));
            Ok((next()?.to_string(), next()?.trim().parse()?, next()?.trim().parse()?))
        })
        .collect()
}

/// Emits `max_timestamp_seen - out_of_orderness - 1` after every event.
struct PerEventWatermarks {
    max_seen: i64,
    out_of_orderness: i64,
}

impl WatermarkGenerator<Event> for PerEventWatermarks {
    fn on_event(&mut self, _: &Event, timestamp: i64, output: &mut WatermarkOutput) {
        self.max_seen = self.max_seen.max(timestamp);
        output.emit_watermark(Watermark(self.max_seen.saturating_sub(self.out_of_orderness + 1)));
    }

    fn on_periodic_emit(&mut self, _: &mut WatermarkOutput) {}
}

fn timestamped(
    env: &mut StreamExecutionEnvironment,
    events: Vec<Event>,
    out_of_orderness: i64,
) -> DataStream<Event> {
    let strategy = WatermarkStrategy::for_generator(move || PerEventWatermarks {
        max_seen: i64::MIN,
        out_of_orderness,
    })
    .with_timestamp_assigner(|(_, ts, _): &Event, _| *ts);
    env.from_collection(events).assign_timestamps_and_watermarks(strategy)
}

/// Count and sum of `value` per window.
#[derive(Clone)]
struct CountAndSum;

impl AggregateFunction<Event, (u64, i64), (u64, i64)> for CountAndSum {
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, (_, _, value): Event, acc: &mut (u64, i64)) {
        acc.0 += 1;
        acc.1 += value;
    }
    fn get_result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
    fn merge(&self, a: (u64, i64), b: (u64, i64)) -> (u64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

/// Formats `window,KEY,START,END,COUNT,SUM`.
#[derive(Clone)]
struct FormatWindow;

impl ProcessWindowFunction<(u64, i64), String, String, TimeWindow> for FormatWindow {
    fn process(
        &mut self,
        key: &String,
        ctx: &WindowContext<'_, TimeWindow>,
        elements: Vec<(u64, i64)>,
        out: &mut Collector<String>,
    ) -> FnResult {
        let window = ctx.window();
        for (count, sum) in elements {
            out.collect(format!("window,{key},{},{},{count},{sum}", window.start, window.end));
        }
        Ok(())
    }
}

fn window_job(
    case: &Case,
    events: DataStream<Event>,
) -> Result<weir::connectors::CollectHandle<String>, UserError> {
    let late = OutputTag::<Event>::new("late");
    let keyed = events.key_by(|(key, _, _): &Event| key.clone());
    let lateness = case.duration("allowed_lateness_ms")?;
    let windows = match case.get("window")? {
        "tumbling" => configure(
            keyed.window(TumblingEventTimeWindows::of(case.duration("size_ms")?)),
            lateness,
            &late,
        ),
        "sliding" => configure(
            keyed.window(SlidingEventTimeWindows::of(
                case.duration("size_ms")?,
                case.duration("slide_ms")?,
            )),
            lateness,
            &late,
        ),
        "session" => configure(
            keyed.window(EventTimeSessionWindows::with_gap(case.duration("gap_ms")?)),
            lateness,
            &late,
        ),
        other => return Err(format!("unknown window {other}").into()),
    };
    let late_lines =
        windows.get_side_output(&late).map(|(key, ts, value)| format!("late,{key},{ts},{value}"));
    Ok(windows.union(&[late_lines]).collect())
}

fn configure<A>(
    windows: weir::WindowedStream<Event, String, A>,
    lateness: Duration,
    late: &OutputTag<Event>,
) -> DataStream<String>
where
    A: WindowAssigner<Event, W = TimeWindow>,
{
    windows
        .allowed_lateness(lateness)
        .side_output_late_data(late.clone())
        .aggregate_with_process(CountAndSum, FormatWindow)
}

/// Counts records per key; a timer `delay` after each record emits the count at firing.
#[derive(Clone)]
struct CountThenFire {
    delay: i64,
    count: Option<ValueState<u64>>,
}

impl KeyedProcessFunction<String, Event, String> for CountThenFire {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, String>) -> FnResult {
        self.count = Some(ctx.value_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (_, ts, _): Event,
        ctx: &mut KeyedContext<'_, String>,
        _: &mut Collector<String>,
    ) -> FnResult {
        let count = self.count.as_ref().ok_or("not opened")?;
        let next = count.value(ctx)?.unwrap_or(0) + 1;
        count.update(ctx, next)?;
        ctx.timer_service().register_event_time_timer(ts + self.delay);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<String>,
    ) -> FnResult {
        let count = self.count.as_ref().ok_or("not opened")?.value(ctx)?.unwrap_or(0);
        out.collect(format!("timer,{},{timestamp},{count}", ctx.key()));
        Ok(())
    }
}

fn timer_job(
    case: &Case,
    events: DataStream<Event>,
) -> Result<weir::connectors::CollectHandle<String>, UserError> {
    let delay = case.millis("timer_delay_ms")?;
    Ok(events
        .key_by(|(key, _, _): &Event| key.clone())
        .process(CountThenFire { delay, count: None })
        .collect())
}

/// Formats `join,KEY,LEFT_TS,RIGHT_TS,LEFT_VALUE,RIGHT_VALUE`.
#[derive(Clone)]
struct FormatJoin;

impl ProcessJoinFunction<Event, Event, String> for FormatJoin {
    fn process_element(
        &mut self,
        (key, left_ts, left_value): Event,
        (_, right_ts, right_value): Event,
        _ctx: &mut JoinContext,
        out: &mut Collector<String>,
    ) -> FnResult {
        out.collect(format!("join,{key},{left_ts},{right_ts},{left_value},{right_value}"));
        Ok(())
    }
}

fn join_job(
    case: &Case,
    left: DataStream<Event>,
    right: DataStream<Event>,
) -> Result<weir::connectors::CollectHandle<String>, UserError> {
    let key = |(key, _, _): &Event| key.clone();
    Ok(left
        .key_by(key)
        .interval_join(&right.key_by(key))
        .between(case.millis("lower_ms")?, case.millis("upper_ms")?)
        .process(FormatJoin)
        .collect())
}
