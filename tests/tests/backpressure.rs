//! A slow sink backpressures a fast unbounded source: records in flight stay bounded by the
//! channel capacities instead of piling up in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use weir::prelude::*;

#[test]
fn slow_sink_bounds_records_in_flight() {
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let batch_size = 64;
    let config = ExecutionConfig {
        parallelism: 1,
        batch_size,
        channel_capacity: 2,
        progress_interval_ms: 0,
        ..Default::default()
    };
    let mut env = StreamExecutionEnvironment::new(config);
    let counter = produced.clone();
    env.from_generator(GeneratorConfig::unbounded(), |i| i)
        .map(move |i| {
            counter.fetch_add(1, Ordering::Relaxed);
            i
        })
        .rebalance()
        .process(SlowSink {
            produced: produced.clone(),
            consumed: consumed.clone(),
            max_in_flight: max_in_flight.clone(),
        })
        .discard();
    let error = env.execute().expect_err("the sink stops the job").to_string();
    assert!(error.contains("slow sink done"), "{error}");

    // In flight at most: the channel (2 batches), the writer's open batch, the batch the
    // source is filling and the batch the sink is working through.
    let bound = 5 * batch_size as u64;
    let observed = max_in_flight.load(Ordering::Relaxed);
    assert!(observed <= bound, "{observed} records in flight, bound {bound}");
    let total = produced.load(Ordering::Relaxed);
    assert!(total <= consumed.load(Ordering::Relaxed) + bound, "source ran ahead: {total}");
}

/// Takes 1 ms per record and stops the job after 400 records (~0.4 s, in which an unthrottled
/// generator would produce millions).
#[derive(Clone)]
struct SlowSink {
    produced: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    max_in_flight: Arc<AtomicU64>,
}

impl ProcessFunction<u64, u64> for SlowSink {
    fn process_element(
        &mut self,
        _value: u64,
        _ctx: &mut ProcessContext<'_>,
        _out: &mut Collector<u64>,
    ) -> FnResult {
        std::thread::sleep(Duration::from_millis(1));
        let consumed = self.consumed.fetch_add(1, Ordering::Relaxed) + 1;
        let in_flight = self.produced.load(Ordering::Relaxed).saturating_sub(consumed);
        self.max_in_flight.fetch_max(in_flight, Ordering::Relaxed);
        if consumed >= 400 {
            return Err("slow sink done".into());
        }
        Ok(())
    }
}
