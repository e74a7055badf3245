//! Throughput benchmark of the engine core: generator → map → key_by → rolling sum → discard.
//!
//! `cargo run --release -p weir-examples --bin pipeline-bench -- --events 20000000 --parallelism 2 --keys 10000`
//!
//! Prints one line with wall time, events/s, cores used (process CPU time / wall time) and
//! events/s per core.

use std::process::ExitCode;
use std::time::Instant;

use cpu_time::ProcessTime;
use weir::prelude::*;

fn main() -> ExitCode {
    weir_examples::print_lines(run().map(|line| vec![line]))
}

fn run() -> Result<String, UserError> {
    let params = Parameters::from_args(std::env::args().skip(1))?;
    let events: u64 = params.parse_or("events", 20_000_000)?;
    let parallelism: usize = params.parse_or("parallelism", 2)?;
    let keys: u64 = params.parse_or("keys", 10_000)?;
    let config = ExecutionConfig { parallelism, progress_interval_ms: 0, ..Default::default() };
    let mut env = StreamExecutionEnvironment::new(config);
    env.from_generator(GeneratorConfig::bounded(events), |i| i)
        .map(move |i| (i % keys, 1u64))
        .key_by(|(key, _)| *key)
        .sum(|(_, count)| count)
        .discard();
    let (wall, cpu) = (Instant::now(), ProcessTime::now());
    let result = env.execute()?;
    let (secs, cpu_secs) = (wall.elapsed().as_secs_f64(), cpu.elapsed().as_secs_f64());
    let summed = result.operator("Keyed Aggregation").map_or(0, |o| o.records_in);
    if summed != events {
        return Err(format!("the rolling sum saw {summed} of {events} events").into());
    }
    let cores = cpu_secs / secs;
    Ok(format!(
        "weir pipeline-bench events={events} parallelism={parallelism} keys={keys} secs={secs:.2} \
         events_per_sec={:.0} cores={cores:.2} events_per_sec_per_core={:.0}",
        events as f64 / secs,
        events as f64 / cpu_secs,
    ))
}
