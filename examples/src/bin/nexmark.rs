//! Runs Nexmark queries one after another and prints their throughput as a table.
//!
//! `nexmark --queries q0,q5 --events 10000000 --parallelism 2 [--events-per-second 10000]`
//!
//! Prints a header, `query events secs events_per_sec cores events_per_sec_per_core`, then one
//! row per query; `cores` is the process's CPU time during the query over its wall time.
//! Without `--queries`, runs them all.

use std::process::ExitCode;

use weir::connectors::nexmark::NexmarkConfig;
use weir::prelude::*;
use weir_examples::nexmark::{Query, Throughput, measure};

fn main() -> ExitCode {
    weir_examples::exit_code(run())
}

/// Prints each query's row as soon as it is measured.
fn run() -> Result<(), UserError> {
    let params = Parameters::from_args(std::env::args().skip(1))?;
    let queries = match params.get("queries") {
        Some(names) => names.split(',').map(str::parse).collect::<Result<Vec<Query>, _>>()?,
        None => Query::ALL.to_vec(),
    };
    let events: u64 = params.parse_or("events", 10_000_000)?;
    let parallelism: usize = params.parse_or("parallelism", 1)?;
    let events_per_second = params.parse_or("events-per-second", 10_000)?;
    if events == 0 || parallelism == 0 {
        return Err("--events and --parallelism must be at least 1".into());
    }
    let config = ExecutionConfig { parallelism, progress_interval_ms: 0, ..Default::default() };
    let nexmark =
        NexmarkConfig { max_events: Some(events), events_per_second, ..Default::default() };
    println!("{}", Throughput::HEADER);
    for query in queries {
        println!("{}", measure(query, config.clone(), nexmark.clone())?.row());
    }
    Ok(())
}
