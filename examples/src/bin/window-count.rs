//! The anchor workload, as `../shared/anchors/flink/WindowCount.java` runs it on Flink:
//! EVENTS generated events, key = i % KEYS, event time = i ms, keyed tumbling 10 s
//! event-time windows counting per key, results discarded.
//!
//! `window-count EVENTS PARALLELISM KEYS` runs it embedded and prints one line of figures,
//! as the Flink anchor does. With a role first, it runs as any job binary does, with the job's
//! arguments `--events N --keys K`:
//! `window-count coordinator --bind ADDR -p 2 --events N --keys K` and
//! `window-count worker --coordinator ADDR --slots 1`.

use std::process::ExitCode;

use weir::prelude::*;

fn main() -> ExitCode {
    let role = std::env::args().nth(1);
    if role.as_deref().is_some_and(|r| ["run", "coordinator", "worker"].contains(&r)) {
        return weir::main(|env| {
            let events = env.parameters().required("events")?.parse()?;
            let keys = env.parameters().required("keys")?.parse()?;
            weir_examples::window_count(env, events, keys);
            Ok(())
        });
    }
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
