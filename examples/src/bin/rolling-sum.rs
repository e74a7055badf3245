//! Keyed rolling sum with state: generated sensor readings, a keyed process function that keeps
//! each sensor's running count and sum in value state and emits the running average.
//!
//! `cargo run --release -p weir-examples --bin rolling-sum -- run --parallelism 2 --events 20`

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use weir::prelude::*;

/// One reading of a sensor.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    value: i64,
}

/// Running totals of one sensor.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Totals {
    count: u64,
    sum: i64,
}

/// Keeps [`Totals`] per sensor and emits `(sensor, count, sum, average)` for every reading.
#[derive(Clone, Default)]
struct RunningTotals {
    totals: Option<ValueState<Totals>>,
}

impl KeyedProcessFunction<String, Reading, (String, u64, i64, f64)> for RunningTotals {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, String>) -> FnResult {
        self.totals = Some(ctx.value_state(&ValueStateDescriptor::new("totals"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        reading: Reading,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<(String, u64, i64, f64)>,
    ) -> FnResult {
        let state = self.totals.as_ref().ok_or("state not registered")?;
        let mut totals = state.value(ctx)?.unwrap_or_default();
        totals.count += 1;
        totals.sum += reading.value;
        let average = totals.sum as f64 / totals.count as f64;
        out.collect((reading.sensor, totals.count, totals.sum, average));
        state.update(ctx, totals)?;
        Ok(())
    }
}

fn main() -> ExitCode {
    weir::main(|env| {
        let params = env.parameters();
        let events: u64 = params.parse_or("events", 20)?;
        let sensors: u64 = params.parse_or("sensors", 3)?;
        env.from_generator(GeneratorConfig::bounded(events), move |i| Reading {
            sensor: format!("sensor-{}", i % sensors),
            value: (i * 7 % 10) as i64,
        })
        .key_by(|reading: &Reading| reading.sensor.clone())
        .process(RunningTotals::default())
        .name("Running Totals")
        .print();
        Ok(())
    })
}
