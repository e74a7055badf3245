//! Watermarks and timers through the runtime: keyed event-time timers, idleness, parallel
//! watermark alignment.

use std::time::Duration;

use weir::prelude::*;
use weir_tests::{EveryEvent, config, sorted};

/// Counts records per key and registers an event-time timer `delay` after each record; the
/// timer emits `(key, timer time, count when it fires)`.
#[derive(Clone)]
struct CountWithTimeout {
    delay: i64,
    count: Option<ValueState<u64>>,
}

impl KeyedProcessFunction<String, (String, i64), (String, i64, u64)> for CountWithTimeout {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, String>) -> FnResult {
        self.count = Some(ctx.value_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        _value: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        _out: &mut Collector<(String, i64, u64)>,
    ) -> FnResult {
        let count = self.count.as_ref().unwrap();
        let next = count.value(ctx)?.unwrap_or(0) + 1;
        count.update(ctx, next)?;
        let time = ctx.timestamp().unwrap() + self.delay;
        ctx.timer_service().register_event_time_timer(time);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<(String, i64, u64)>,
    ) -> FnResult {
        assert_eq!(ctx.time_domain(), Some(TimeDomain::EventTime));
        let count = self.count.as_ref().unwrap().value(ctx)?.unwrap_or(0);
        out.collect((ctx.key().clone(), timestamp, count));
        Ok(())
    }
}

fn events() -> Vec<(String, i64)> {
    [("a", 1_000), ("b", 1_500), ("a", 1_200), ("a", 4_000), ("b", 1_500), ("a", 9_000)]
        .into_iter()
        .map(|(k, t)| (k.to_string(), t))
        .collect()
}

#[test]
fn event_time_timers_fire_when_the_watermark_passes_them() {
    for parallelism in [1, 3] {
        let mut env = StreamExecutionEnvironment::new(config(parallelism));
        let out = env
            .from_collection(events())
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(500))
                    .with_timestamp_assigner(|(_, ts), _| *ts),
            )
            .key_by(|(key, _)| key.clone())
            .process(CountWithTimeout { delay: 2_000, count: None })
            .collect();
        env.execute().unwrap();
        // Timers at ts+2000, deduplicated per key and time; counts as of the firing moment.
        // With a 200 ms periodic watermark on a 6-record job the watermark only advances at
        // the end (MAX), so every timer sees the final count.
        assert_eq!(
            sorted(out.take()),
            vec![
                ("a".into(), 3_000, 4),
                ("a".into(), 3_200, 4),
                ("a".into(), 6_000, 4),
                ("a".into(), 11_000, 4),
                ("b".into(), 3_500, 2),
            ],
            "parallelism {parallelism}"
        );
    }
}

#[test]
fn per_event_watermarks_fire_timers_between_records() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let out = env
        .from_collection(events())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_generator(|| EveryEvent(i64::MIN))
                .with_timestamp_assigner(|(_, ts), _| *ts),
        )
        .map(|event| event) // watermarks pass through operators that do not handle them
        .filter(|_| true)
        .key_by(|(key, _)| key.clone())
        .process(CountWithTimeout { delay: 2_000, count: None })
        .collect();
    env.execute().unwrap();
    // Each watermark follows its record: 3999 comes after ("a", 4000) is counted, firing
    // 3000, 3200 (a=3) and 3500 (b=1); the second ("b", 1500) registers 3500 again, which
    // fires with 6000 at 8999, after ("a", 9000) is counted.
    assert_eq!(
        sorted(out.take()),
        vec![
            ("a".into(), 3_000, 3),
            ("a".into(), 3_200, 3),
            ("a".into(), 6_000, 4),
            ("a".into(), 11_000, 4),
            ("b".into(), 3_500, 1),
            ("b".into(), 3_500, 2),
        ]
    );
}

/// Until `until`, emits a record every 20 ms with timestamps 10 s apart (`busy`), or never
/// emits anything (not `busy`), like an empty partition.
struct Ticker {
    busy: bool,
    sent: i64,
    until: std::time::Instant,
}

impl SourceFunction<(String, i64)> for Ticker {
    fn poll(&mut self, out: &mut Vec<Record<(String, i64)>>, _: usize) -> FnResult<SourcePoll> {
        if std::time::Instant::now() >= self.until {
            return Ok(SourcePoll::Finished);
        }
        if self.busy {
            self.sent += 1;
            out.push(Record::new(("busy".to_string(), self.sent * 10_000)));
        }
        Ok(SourcePoll::Pending(Duration::from_millis(20)))
    }
}

#[test]
fn an_idle_input_does_not_hold_back_the_watermark() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let strategy = WatermarkStrategy::for_monotonous_timestamps()
        .with_timestamp_assigner(|(_, ts): &(String, i64), _| *ts)
        .with_idleness(Duration::from_millis(100));
    let until = std::time::Instant::now() + Duration::from_millis(3_000);
    let busy = env
        .add_source("busy", true, move |_| Ticker { busy: true, sent: 0, until })
        .assign_timestamps_and_watermarks(strategy.clone());
    // The empty input never has a record: it goes idle instead of pinning the minimum at MIN,
    // while the busy input stays active (a record every 20 ms, idleness after 100 ms).
    let empty = env
        .add_source("empty", true, move |_| Ticker { busy: false, sent: 0, until })
        .assign_timestamps_and_watermarks(strategy);
    let started = std::time::Instant::now();
    let fired_at = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = fired_at.clone();
    busy.union(&[empty])
        .key_by(|(key, _)| key.clone())
        .process(CountWithTimeout { delay: -5_000, count: None })
        .map(move |fired| {
            seen.lock().unwrap().get_or_insert(started.elapsed());
            fired
        })
        .discard();
    env.execute().unwrap();
    let fired_at = fired_at.lock().unwrap().expect("the timer fired");
    assert!(
        fired_at < Duration::from_millis(1_000),
        "fired after {fired_at:?}, not before the end"
    );
}

/// Remembers the latest price per product; an order arms a timer 1 s later that emits the
/// order with the price known by then.
#[derive(Clone, Default)]
struct PriceAtDeadline {
    price: Option<ValueState<i64>>,
    orders: Option<ListState<i64>>,
}

impl KeyedCoProcessFunction<String, (String, i64), (String, i64), (String, i64, i64)>
    for PriceAtDeadline
{
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, String>) -> FnResult {
        self.price = Some(ctx.value_state(&ValueStateDescriptor::new("price"))?);
        self.orders = Some(ctx.list_state(&ListStateDescriptor::new("orders"))?);
        Ok(())
    }

    fn process_element1(
        &mut self,
        (_, ts): (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        _: &mut Collector<(String, i64, i64)>,
    ) -> FnResult {
        self.orders.as_ref().unwrap().add(ctx, ts)?;
        ctx.timer_service().register_event_time_timer(ts + 1_000);
        Ok(())
    }

    fn process_element2(
        &mut self,
        (_, price): (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        _: &mut Collector<(String, i64, i64)>,
    ) -> FnResult {
        self.price.as_ref().unwrap().update(ctx, price)?;
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<(String, i64, i64)>,
    ) -> FnResult {
        let price = self.price.as_ref().unwrap().value(ctx)?.unwrap_or(-1);
        let orders = self.orders.as_ref().unwrap();
        for order in orders.get(ctx)? {
            if order + 1_000 == timestamp {
                out.collect((ctx.key().clone(), order, price));
            }
        }
        Ok(())
    }
}

#[test]
fn keyed_co_process_timers_fire_on_the_combined_watermark() {
    let mut env = StreamExecutionEnvironment::new(config(1));
    let strategy = || {
        WatermarkStrategy::for_generator(|| EveryEvent(i64::MIN))
            .with_timestamp_assigner(|(_, ts): &(String, i64), _| *ts)
    };
    let orders = env
        .from_collection(vec![("x".to_string(), 1_000), ("x".to_string(), 5_000)])
        .assign_timestamps_and_watermarks(strategy());
    // Prices carry their time in the value's place: (product, price) at event time = price.
    let prices = env
        .from_collection(vec![
            ("x".to_string(), 1_500),
            ("x".to_string(), 5_800),
            ("x".to_string(), 9_000),
        ])
        .assign_timestamps_and_watermarks(strategy());
    let out = orders
        .key_by(|(key, _)| key.clone())
        .connect(&prices.key_by(|(key, _)| key.clone()))
        .process(PriceAtDeadline::default())
        .collect();
    env.execute().unwrap();
    // The timer at 2000 needs both inputs past 2000: prices pass it only with the price at
    // 5800 (watermark 5799, emitted after that record), so the order at 1000 sees 5800 or,
    // when the prices input ran ahead, 9000 — never 1500 or none, which a timer fired on one
    // input's watermark would see. The timer at 6000 waits for the price at 9000.
    let fired = sorted(out.take());
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert!([5_800, 9_000].contains(&fired[0].2), "{fired:?}");
    assert_eq!(fired[1], ("x".into(), 5_000, 9_000));
}
