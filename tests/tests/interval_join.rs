//! Interval joins through the runtime: bounds, exclusive ends, late records to side outputs,
//! failures, and Apache Flink's conformance cases of kind `interval_join`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weir::Data;
use weir::prelude::*;
use weir_tests::{config, sorted};

/// `(key, timestamp, value)`, as in the conformance cases' CSV files.
type Event = (String, i64, i64);
/// `(key, left timestamp, right timestamp, left value, right value)`.
type Joined = (String, i64, i64, i64, i64);

/// Emits every joined pair as [`Joined`].
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
        assert_eq!((left.1, right.1), (ctx.left_timestamp(), ctx.right_timestamp()));
        out.collect((left.0, left.1, right.1, left.2, right.2));
        Ok(())
    }
}

/// Pairs each record with the timestamp it carries.
#[derive(Clone)]
struct WithTimestamp;

impl<T: Data> ProcessFunction<T, (T, i64)> for WithTimestamp {
    fn process_element(
        &mut self,
        value: T,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<(T, i64)>,
    ) -> FnResult {
        out.collect((value, ctx.timestamp().expect("joined records carry a timestamp")));
        Ok(())
    }
}

/// Emits `max_ts - delay - 1` after every event (the conformance cases' watermarks).
struct PerEvent {
    delay: i64,
    max: i64,
}

impl<T> WatermarkGenerator<T> for PerEvent {
    fn on_event(&mut self, _: &T, timestamp: i64, output: &mut WatermarkOutput) {
        self.max = self.max.max(timestamp);
        output.emit_watermark(Watermark(self.max.saturating_sub(self.delay).saturating_sub(1)));
    }
    fn on_periodic_emit(&mut self, _: &mut WatermarkOutput) {}
}

/// Per-event watermarks `delay` behind the largest timestamp, taken from the second field.
fn per_event<T: Data>(delay: i64, timestamp: fn(&T) -> i64) -> WatermarkStrategy<T> {
    WatermarkStrategy::for_generator(move || PerEvent { delay, max: i64::MIN })
        .with_timestamp_assigner(move |value, _| timestamp(value))
}

fn event_ts(event: &Event) -> i64 {
    event.1
}

/// `events` as a stream with per-event watermarks, at parallelism 1 so that event time does
/// not depend on how records spread over subtasks.
fn events_with_time(
    env: &mut StreamExecutionEnvironment,
    events: Vec<Event>,
    delay: i64,
) -> DataStream<Event> {
    env.from_collection(events)
        .assign_timestamps_and_watermarks(per_event(delay, event_ts))
        .set_parallelism(1)
}

/// How the join is configured: bounds and which ends are exclusive.
#[derive(Clone, Copy, Debug)]
struct Spec {
    lower: i64,
    upper: i64,
    lower_exclusive: bool,
    upper_exclusive: bool,
}

impl Spec {
    fn inclusive(lower: i64, upper: i64) -> Self {
        Spec { lower, upper, lower_exclusive: false, upper_exclusive: false }
    }

    /// Whether a right record at `right` joins a left one at `left`.
    fn matches(&self, left: i64, right: i64) -> bool {
        let low = left + self.lower;
        let high = left + self.upper;
        (if self.lower_exclusive { right > low } else { right >= low })
            && (if self.upper_exclusive { right < high } else { right <= high })
    }
}

/// Runs the join of `left` and `right` as `spec` says; the joined pairs with the timestamps
/// of their output records, sorted.
fn run_join(
    parallelism: usize,
    left: Vec<Event>,
    right: Vec<Event>,
    delay: i64,
    spec: Spec,
) -> Vec<(Joined, i64)> {
    let mut env = StreamExecutionEnvironment::new(config(parallelism));
    let left = events_with_time(&mut env, left, delay).key_by(|e: &Event| e.0.clone());
    let right = events_with_time(&mut env, right, delay).key_by(|e: &Event| e.0.clone());
    let mut joined = left.interval_join(&right).between(spec.lower, spec.upper);
    if spec.lower_exclusive {
        joined = joined.lower_bound_exclusive();
    }
    if spec.upper_exclusive {
        joined = joined.upper_bound_exclusive();
    }
    let out = joined.process(Pairs).process(WithTimestamp).collect();
    env.execute().unwrap();
    sorted(out.take())
}

/// Every pair `spec` admits, with the later timestamp (what the join must produce when no
/// record is late).
fn expected_pairs(left: &[Event], right: &[Event], spec: Spec) -> Vec<(Joined, i64)> {
    let mut pairs = Vec::new();
    for l in left {
        for r in right.iter().filter(|r| r.0 == l.0 && spec.matches(l.1, r.1)) {
            pairs.push(((l.0.clone(), l.1, r.1, l.2, r.2), l.1.max(r.1)));
        }
    }
    sorted(pairs)
}

fn events(records: &[(&str, i64, i64)]) -> Vec<Event> {
    records.iter().map(|&(k, t, v)| (k.to_string(), t, v)).collect()
}

#[test]
fn joins_records_within_negative_and_positive_bounds() {
    let left = events(&[("a", 1_000, 1), ("b", 1_000, 2), ("a", 2_000, 3), ("a", 5_000, 4)]);
    let right = events(&[
        ("a", 400, 10),
        ("a", 500, 11),
        ("b", 1_400, 12),
        ("b", 1_600, 13),
        ("a", 1_999, 14),
        ("a", 6_000, 15),
    ]);
    // Each side is in timestamp order, so under per-event watermarks no record is late and
    // the result does not depend on how the two inputs interleave.
    for parallelism in [1, 3] {
        // Right records from 500 ms before to 1500 ms after each left record, ends included.
        let got =
            run_join(parallelism, left.clone(), right.clone(), 0, Spec::inclusive(-500, 1_500));
        let pair =
            |k: &str, l: i64, r: i64, lv: i64, rv: i64| ((k.to_string(), l, r, lv, rv), l.max(r));
        assert_eq!(
            got,
            vec![
                pair("a", 1_000, 500, 1, 11),
                pair("a", 1_000, 1_999, 1, 14),
                pair("a", 2_000, 1_999, 3, 14),
                pair("a", 5_000, 6_000, 4, 15),
                pair("b", 1_000, 1_400, 2, 12),
                pair("b", 1_000, 1_600, 2, 13),
            ],
            "parallelism {parallelism}"
        );
    }
}

/// Records with increasing timestamps (so that none is late under per-event watermarks) over
/// a few keys, from a fixed pseudo-random sequence.
fn generated(seed: u64, count: usize) -> Vec<Event> {
    let mut state = seed;
    let mut next = move || {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as i64
    };
    let mut timestamp = 0;
    (0..count)
        .map(|i| {
            timestamp += next() % 7;
            (format!("k{}", next() % 4), timestamp, i as i64)
        })
        .collect()
}

#[test]
fn joins_every_pair_the_bounds_admit_with_inclusive_and_exclusive_ends() {
    let (left, right) = (generated(1, 300), generated(2, 300));
    let specs = [
        Spec::inclusive(-5, 10),
        Spec::inclusive(0, 0),
        Spec::inclusive(3, 8),
        Spec::inclusive(-8, -2),
        Spec { lower: -5, upper: 10, lower_exclusive: true, upper_exclusive: false },
        Spec { lower: -5, upper: 10, lower_exclusive: false, upper_exclusive: true },
        Spec { lower: -3, upper: 3, lower_exclusive: true, upper_exclusive: true },
        Spec { lower: 0, upper: 1, lower_exclusive: true, upper_exclusive: true },
    ];
    for spec in specs {
        let expected = expected_pairs(&left, &right, spec);
        assert!(
            !expected.is_empty() || (spec.lower == 0 && spec.upper == 1),
            "the data exercises {spec:?}"
        );
        for parallelism in [1, 3] {
            let got = run_join(parallelism, left.clone(), right.clone(), 0, spec);
            assert_eq!(got, expected, "{spec:?} at parallelism {parallelism}");
        }
    }
}

/// A right record of another type than the left one.
type Label = (String, i64, String);

/// Emits `(key, left value, label)`.
#[derive(Clone)]
struct Labelled;

impl ProcessJoinFunction<Event, Label, (String, i64, String)> for Labelled {
    fn process_element(
        &mut self,
        left: Event,
        right: Label,
        _ctx: &mut JoinContext,
        out: &mut Collector<(String, i64, String)>,
    ) -> FnResult {
        out.collect((left.0, left.2, right.2));
        Ok(())
    }
}

/// Emits its phases one after the other, each after `gate` opened for it.
#[derive(Clone)]
struct PhasedSource<T> {
    phases: Vec<Vec<T>>,
    next: usize,
    gate: Arc<AtomicBool>,
}

impl<T: Data> SourceFunction<T> for PhasedSource<T> {
    fn poll(&mut self, out: &mut Vec<Record<T>>, _max: usize) -> FnResult<SourcePoll> {
        let Some(phase) = self.phases.get(self.next) else {
            return Ok(SourcePoll::Finished);
        };
        if self.next > 0 && !self.gate.load(Ordering::SeqCst) {
            return Ok(SourcePoll::Pending(Duration::from_millis(2)));
        }
        out.extend(phase.iter().cloned().map(Record::new));
        self.next += 1;
        Ok(SourcePoll::Ready)
    }
}

/// Opens `gate` when the event time of its input reaches `at` (its first record registers
/// the timer).
#[derive(Clone)]
struct EventTimeProbe {
    at: i64,
    gate: Arc<AtomicBool>,
}

impl<T> KeyedProcessFunction<u8, T, ()> for EventTimeProbe {
    fn process_element(
        &mut self,
        _: T,
        ctx: &mut KeyedContext<'_, u8>,
        _: &mut Collector<()>,
    ) -> FnResult {
        ctx.timer_service().register_event_time_timer(self.at);
        Ok(())
    }

    fn on_timer(
        &mut self,
        _: i64,
        _: &mut KeyedContext<'_, u8>,
        _: &mut Collector<()>,
    ) -> FnResult {
        self.gate.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn late_records_go_to_the_side_outputs() {
    for parallelism in [1, 3] {
        let mut env = StreamExecutionEnvironment::new(config(parallelism));
        let gate = Arc::new(AtomicBool::new(false));
        // Phase one of each side joins ("a", 1000) and ends at 10 000, so that event time
        // reaches 9 999; phase two only starts once the join has passed that watermark on
        // (seen by the probe downstream), which makes records below 9 999 late for certain.
        let left_phases = vec![
            events(&[("a", 1_000, 1), ("b", 2_000, 2), ("a", 10_000, 3)]),
            events(&[("a", 9_998, 4), ("b", 9_999, 5), ("b", 20_000, 6)]),
        ];
        let label = |k: &str, t, l: &str| (k.to_string(), t, l.to_string());
        let right_phases = vec![
            vec![label("a", 1_000, "r1"), label("b", 2_500, "r2"), label("c", 10_000, "r3")],
            vec![label("a", 5_000, "r4"), label("a", 9_999, "r5"), label("b", 19_999, "r6")],
        ];
        let (left_gate, right_gate) = (gate.clone(), gate.clone());
        let left = env
            .add_source("left", true, move |_| PhasedSource {
                phases: left_phases.clone(),
                next: 0,
                gate: left_gate.clone(),
            })
            .assign_timestamps_and_watermarks(per_event(0, event_ts))
            .set_parallelism(1)
            .key_by(|e: &Event| e.0.clone());
        let right = env
            .add_source("right", true, move |_| PhasedSource {
                phases: right_phases.clone(),
                next: 0,
                gate: right_gate.clone(),
            })
            .assign_timestamps_and_watermarks(per_event(0, |l: &Label| l.1))
            .set_parallelism(1)
            .key_by(|l: &Label| l.0.clone());
        let (late_left, late_right) =
            (OutputTag::<Event>::new("late-left"), OutputTag::<Label>::new("late-right"));
        let joined = left
            .interval_join(&right)
            .between(-1_000, 1_000)
            .side_output_left_late_data(late_left.clone())
            .side_output_right_late_data(late_right.clone())
            .process(Labelled);
        joined.key_by(|_| 0u8).process(EventTimeProbe { at: 9_999, gate: gate.clone() }).discard();
        let out = joined.collect();
        let late_left = joined.get_side_output(&late_left).process(WithTimestamp).collect();
        let late_right = joined.get_side_output(&late_right).process(WithTimestamp).collect();
        env.execute().unwrap();
        assert!(gate.load(Ordering::SeqCst), "the probe saw event time pass 9 999");
        assert_eq!(
            sorted(out.take()),
            vec![
                ("a".into(), 1, "r1".into()),
                ("a".into(), 3, "r5".into()),
                ("b".into(), 2, "r2".into()),
                ("b".into(), 6, "r6".into()),
            ],
            "parallelism {parallelism}"
        );
        // At the watermark is not late, as in Flink: (b, 9 999) on the left and (a, 9 999)
        // on the right are joined like any other record.
        assert_eq!(
            sorted(late_left.take()),
            vec![(("a".into(), 9_998, 4), 9_998)],
            "parallelism {parallelism}"
        );
        assert_eq!(
            sorted(late_right.take()),
            vec![(("a".into(), 5_000, "r4".into()), 5_000)],
            "parallelism {parallelism}"
        );
    }
}

#[test]
fn records_without_timestamps_fail_the_job_naming_the_join() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let left = env.from_collection(events(&[("a", 1, 1)])).key_by(|e: &Event| e.0.clone());
    let right = env.from_collection(events(&[("a", 1, 2)])).key_by(|e: &Event| e.0.clone());
    left.interval_join(&right).between(0, 0).process(Pairs).discard();
    let error = env.execute().expect_err("the job must fail").to_string();
    assert!(error.contains("operator 'IntervalJoin' (subtask 1/1) failed"), "{error}");
    assert!(error.contains("without a timestamp"), "{error}");
}

#[test]
#[should_panic(expected = "must not be greater than the upper bound")]
fn the_lower_bound_must_not_exceed_the_upper_bound() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let left = env.from_collection(events(&[("a", 1, 1)])).key_by(|e: &Event| e.0.clone());
    let _ = left.interval_join(&left).between(10, 5);
}

/// Where Flink's conformance cases are, if this machine has them.
fn conformance_cases() -> Option<PathBuf> {
    let dir = std::env::var_os("WEIR_CONFORMANCE_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/conformance/cases"));
    dir.is_dir().then_some(dir)
}

fn read_events(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.trim().split(',').collect();
            assert_eq!(fields.len(), 3, "{}: bad line {line:?}", path.display());
            (fields[0].to_string(), fields[1].parse().unwrap(), fields[2].parse().unwrap())
        })
        .collect()
}

fn read_properties(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn flink_conformance_cases_of_interval_joins() {
    let Some(dir) = conformance_cases() else {
        eprintln!(
            "note: no conformance cases (/work/shared/conformance/cases or \
             $WEIR_CONFORMANCE_CASES); skipped"
        );
        return;
    };
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("case.properties").is_file())
        .collect();
    cases.sort();
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for case in cases {
        let properties = read_properties(&case.join("case.properties"));
        if properties.get("kind").map(String::as_str) != Some("interval_join") {
            continue;
        }
        let number = |name: &str| -> i64 {
            properties
                .get(name)
                .unwrap_or_else(|| panic!("{}: no {name}", case.display()))
                .parse()
                .unwrap()
        };
        let spec = Spec::inclusive(number("lower_ms"), number("upper_ms"));
        let delay = number("out_of_orderness_ms");
        let left = read_events(&case.join("events.csv"));
        let right = read_events(&case.join("right.csv"));
        let mut expected: Vec<String> = std::fs::read_to_string(case.join("expected.txt"))
            .unwrap()
            .lines()
            .filter(|line| line.starts_with("join,"))
            .map(str::to_string)
            .collect();
        expected.sort();
        for parallelism in [1, 3] {
            let mut got: Vec<String> =
                run_join(parallelism, left.clone(), right.clone(), delay, spec)
                    .into_iter()
                    .map(|((key, lt, rt, lv, rv), _)| format!("join,{key},{lt},{rt},{lv},{rv}"))
                    .collect();
            got.sort();
            let name = format!("{} (parallelism {parallelism})", case.display());
            if got == expected {
                passed.push(name);
            } else {
                eprintln!(
                    "{name}: {} lines expected, {} produced; first difference: {:?}",
                    expected.len(),
                    got.len(),
                    expected.iter().zip(&got).find(|(e, g)| e != g)
                );
                failed.push(name);
            }
        }
    }
    eprintln!("interval join conformance: {} passed, {} failed", passed.len(), failed.len());
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(!passed.is_empty(), "no case of kind interval_join in {}", dir.display());
}
