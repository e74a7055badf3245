//! The job of the cluster tests: `--events N` generated numbers (unbounded without it),
//! keyed by `i % --keys`, a rolling count per key printed as `key count` by the sink. With
//! `--sink-rate R` each sink subtask takes at most R records per second; with `--payload B`
//! every record carries B bytes, so that records piling up would show in memory.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use weir::prelude::*;

fn main() -> ExitCode {
    weir::main(|env| {
        let parameters = env.parameters();
        let events: Option<u64> = parameters.get("events").map(str::parse).transpose()?;
        let keys: u64 = parameters.get("keys").unwrap_or("100").parse()?;
        let payload: usize = parameters.get("payload").unwrap_or("0").parse()?;
        let sink_rate: Option<f64> = parameters.get("sink-rate").map(str::parse).transpose()?;
        let generator = events.map_or_else(GeneratorConfig::unbounded, GeneratorConfig::bounded);
        env.from_generator(generator, move |i| (i % keys, "x".repeat(payload)))
            .key_by(|(key, _)| *key)
            .process(RollingCount { count: None, sink_rate, throttle: None })
            .print();
        Ok(())
    })
}

/// Counts records per key and emits `key count`, at most `sink_rate` records per second.
#[derive(Clone)]
struct RollingCount {
    count: Option<ValueState<u64>>,
    sink_rate: Option<f64>,
    /// When this subtask started and how many records it took since.
    throttle: Option<(Instant, u64)>,
}

impl KeyedProcessFunction<u64, (u64, String), String> for RollingCount {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, u64>) -> FnResult {
        self.count = Some(ctx.value_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (key, _payload): (u64, String),
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut Collector<String>,
    ) -> FnResult {
        if let Some(rate) = self.sink_rate {
            let (start, taken) = self.throttle.get_or_insert_with(|| (Instant::now(), 0));
            *taken += 1;
            let due = start.checked_add(Duration::from_secs_f64(*taken as f64 / rate));
            if let Some(wait) = due.and_then(|due| due.checked_duration_since(Instant::now())) {
                std::thread::sleep(wait);
            }
        }
        let state = self.count.as_ref().expect("opened");
        let count = state.value(ctx)?.unwrap_or(0) + 1;
        state.update(ctx, count)?;
        out.collect(format!("{key} {count}"));
        Ok(())
    }
}
