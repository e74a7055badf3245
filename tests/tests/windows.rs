//! Window functions, triggers and assigners through the runtime (the event-time boundaries,
//! lateness and merging rules are also checked against Flink's recorded cases by the
//! conformance runner).

use std::time::Duration;

use weir::prelude::*;
use weir_tests::{EveryEvent, config, sorted};

type Event = (String, i64, i64);

fn events() -> Vec<Event> {
    [
        ("a", 1_000, 1),
        ("b", 2_000, 10),
        ("a", 4_000, 2),
        ("a", 12_000, 3),
        ("b", 3_000, 20),
        ("a", 9_999, 4),
    ]
    .into_iter()
    .map(|(k, t, v)| (k.to_string(), t, v))
    .collect()
}

fn timestamped(env: &mut StreamExecutionEnvironment) -> DataStream<Event> {
    env.from_collection(events()).assign_timestamps_and_watermarks(
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(5))
            .with_timestamp_assigner(|(_, ts, _): &Event, _| *ts),
    )
}

/// Formats `key start..end [sorted values]` from all records of a window.
#[derive(Clone)]
struct Describe;

impl ProcessWindowFunction<Event, String, String, TimeWindow> for Describe {
    fn process(
        &mut self,
        key: &String,
        ctx: &WindowContext<'_, TimeWindow>,
        elements: Vec<Event>,
        out: &mut Collector<String>,
    ) -> FnResult {
        let values: Vec<i64> = sorted(elements.iter().map(|(_, _, v)| *v).collect());
        out.collect(format!("{key} {}..{} {values:?}", ctx.window().start, ctx.window().end));
        Ok(())
    }
}

#[test]
fn tumbling_reduce_aggregate_and_process_agree() {
    for parallelism in [1, 3] {
        let mut env = StreamExecutionEnvironment::new(config(parallelism));
        let windowed = timestamped(&mut env)
            .key_by(|(key, _, _): &Event| key.clone())
            .window(TumblingEventTimeWindows::of(Duration::from_secs(10)));
        let reduced = windowed.reduce(|a, b| (a.0, a.1.max(b.1), a.2 + b.2)).collect();
        let described = windowed.process(Describe).collect();
        env.execute().unwrap();
        let sums: Vec<(String, i64)> =
            sorted(reduced.take().into_iter().map(|(k, _, v)| (k, v)).collect());
        assert_eq!(
            sums,
            vec![("a".into(), 3), ("a".into(), 7), ("b".into(), 30)],
            "parallelism {parallelism}"
        );
        assert_eq!(
            sorted(described.take()),
            vec!["a 0..10000 [1, 2, 4]", "a 10000..20000 [3]", "b 0..10000 [10, 20]"]
        );
    }
}

#[test]
fn window_results_carry_the_window_end_as_timestamp() {
    #[derive(Clone)]
    struct StampOf;
    impl ProcessFunction<Event, (String, i64)> for StampOf {
        fn process_element(
            &mut self,
            value: Event,
            ctx: &mut ProcessContext<'_>,
            out: &mut Collector<(String, i64)>,
        ) -> FnResult {
            out.collect((value.0, ctx.timestamp().unwrap()));
            Ok(())
        }
    }
    let mut env = StreamExecutionEnvironment::new(config(1));
    let out = timestamped(&mut env)
        .key_by(|(key, _, _): &Event| key.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(10)))
        .reduce(|a, _| a)
        .process(StampOf)
        .collect();
    env.execute().unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![("a".into(), 9_999), ("a".into(), 19_999), ("b".into(), 9_999)]
    );
}

#[test]
fn count_windows_fire_every_n_records_per_key() {
    let mut env = StreamExecutionEnvironment::new(config(2));
    let out = env
        .from_collection((0..=20).collect::<Vec<i64>>())
        .key_by(|x| x % 2)
        .count_window(3)
        .reduce(|a, b| a + b)
        .collect();
    env.execute().unwrap();
    // Evens 0..=20 (11 records) and odds 1..=19 (10 records): three full windows each; the
    // remainders (18, 20 and 19) never fire.
    assert_eq!(sorted(out.take()), vec![6, 9, 24, 27, 42, 45]);
}

#[test]
fn global_window_with_a_custom_trigger() {
    /// Fires when a record's value is negative, then purges.
    #[derive(Clone)]
    struct OnNegative;
    impl Trigger<i64, GlobalWindow> for OnNegative {
        fn on_element(
            &mut self,
            element: &i64,
            _: i64,
            _: &GlobalWindow,
            _: &mut TriggerContext<'_, GlobalWindow>,
        ) -> FnResult<TriggerResult> {
            Ok(if *element < 0 { TriggerResult::FireAndPurge } else { TriggerResult::Continue })
        }
        fn on_event_time(
            &mut self,
            _: i64,
            _: &GlobalWindow,
            _: &mut TriggerContext<'_, GlobalWindow>,
        ) -> FnResult<TriggerResult> {
            Ok(TriggerResult::Continue)
        }
        fn on_processing_time(
            &mut self,
            _: i64,
            _: &GlobalWindow,
            _: &mut TriggerContext<'_, GlobalWindow>,
        ) -> FnResult<TriggerResult> {
            Ok(TriggerResult::Continue)
        }
        fn clear(
            &mut self,
            _: &GlobalWindow,
            _: &mut TriggerContext<'_, GlobalWindow>,
        ) -> FnResult {
            Ok(())
        }
    }
    let mut env = StreamExecutionEnvironment::new(config(1));
    let out = env
        .from_collection(vec![1i64, 2, -1, 5, -10, 7])
        .window_all(GlobalWindows::create())
        .trigger(OnNegative)
        .reduce(|a, b| a + b)
        .collect();
    env.execute().unwrap();
    assert_eq!(out.take(), vec![2, -5], "7 stays in a window that never fires");
}

#[test]
fn window_all_runs_as_one_subtask() {
    let mut env = StreamExecutionEnvironment::new(config(4));
    let out = timestamped(&mut env)
        .window_all(TumblingEventTimeWindows::of(Duration::from_secs(10)))
        .aggregate(Counter)
        .collect();
    let plan = env.execution_plan().unwrap();
    assert!(plan.contains("\nWindow x1\n"), "{plan}");
    env.execute().unwrap();
    assert_eq!(sorted(out.take()), vec![1, 5]);
}

#[derive(Clone)]
struct Counter;

impl AggregateFunction<Event, u64, u64> for Counter {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, _: Event, acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

#[test]
fn processing_time_windows_fire_on_the_wall_clock() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let out = env
        .from_generator(GeneratorConfig::bounded(50).with_rate(100.0), |i| i)
        .key_by(|_| 0u8)
        .window(TumblingProcessingTimeWindows::of(Duration::from_millis(100)))
        .reduce(|a, b| a + b)
        .collect();
    env.execute().unwrap();
    let sums = out.take();
    // ~0.5 s of input in 100 ms windows: several firings, every record counted once, and
    // windows still open at the end of input are not fired (as in Flink).
    assert!(sums.len() >= 3, "{sums:?}");
    assert!(sums.iter().sum::<u64>() <= (0..50).sum::<u64>());
}

#[test]
fn session_windows_with_count_and_late_side_output() {
    let late = OutputTag::<Event>::new("late");
    let mut env = StreamExecutionEnvironment::new(config(1));
    let input: Vec<Event> =
        [("s", 0, 1), ("s", 400, 1), ("s", 900, 1), ("s", 5_000, 1), ("s", 100, 1)]
            .into_iter()
            .map(|(k, t, v)| (k.to_string(), t, v))
            .collect();
    let sessions = env
        .from_collection(input)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_generator(|| EveryEvent(i64::MIN))
                .with_timestamp_assigner(|(_, ts, _): &Event, _| *ts),
        )
        .key_by(|(key, _, _): &Event| key.clone())
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(500)))
        .side_output_late_data(late.clone())
        .process(Describe);
    let late_records = sessions.get_side_output(&late).collect();
    let out = sessions.collect();
    env.execute().unwrap();
    // 0, 400 and 900 merge into one session [0, 1400); 5000 opens another and moves the
    // watermark to 4999, which fires [0, 1400). 100 arrives after that: late.
    assert_eq!(sorted(out.take()), vec!["s 0..1400 [1, 1, 1]", "s 5000..5500 [1]"]);
    assert_eq!(late_records.take(), vec![("s".to_string(), 100, 1)]);
}
