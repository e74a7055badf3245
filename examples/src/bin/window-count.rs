//! The anchor workload, as `../shared/anchors/flink/WindowCount.java` runs it on Flink:
//! EVENTS generated events, key = i % KEYS, event time = i ms, keyed tumbling 10 s
//! event-time windows counting per key, results discarded.
//!
//! `window-count EVENTS PARALLELISM KEYS`

use std::process::ExitCode;

use weir::prelude::*;

fn main() -> ExitCode {
    weir_examples::print_lines(run().map(|line| vec![line]))
}

fn run() -> Result<String, UserError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [events, parallelism, keys] = args.as_slice() else {
        return Err("usage: window-count EVENTS PARALLELISM KEYS".into());
    };
    let (events, parallelism, keys): (u64, usize, u64) =
        (events.parse()?, parallelism.parse()?, keys.parse()?);
    let config = ExecutionConfig { parallelism, progress_interval_ms: 0, ..Default::default() };
    let (_, secs) = weir_examples::run_window_count(config, events, keys)?;
    Ok(format!(
        "weir window-count events={events} parallelism={parallelism} keys={keys} secs={secs:.2} events_per_sec={:.0}",
        events as f64 / secs
    ))
}
