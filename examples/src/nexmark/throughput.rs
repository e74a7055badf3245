//! Measuring a query: events per second of wall time and per core of CPU time.

use std::time::Instant;

use cpu_time::ProcessTime;
use weir::ExecutionConfig;
use weir::connectors::nexmark::NexmarkConfig;
use weir::prelude::{StreamExecutionEnvironment, UserError};

use super::Query;

/// Name of the Nexmark source operator, whose output count proves every event was generated.
const SOURCE: &str = "Source: Nexmark Source";

/// What one run of a query took.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// The query run.
    pub query: Query,
    /// Events generated and processed.
    pub events: u64,
    /// Wall-clock seconds of the job.
    pub secs: f64,
    /// CPU seconds the process consumed meanwhile.
    pub cpu_secs: f64,
}

impl Throughput {
    /// Column names of [`Self::row`].
    pub const HEADER: &str = "query events secs events_per_sec cores events_per_sec_per_core";

    /// The figures as one whitespace-separated row under [`Self::HEADER`].
    pub fn row(&self) -> String {
        format!(
            "{} {} {:.2} {:.0} {:.2} {:.0}",
            self.query,
            self.events,
            self.secs,
            self.events as f64 / self.secs,
            self.cpu_secs / self.secs,
            self.events as f64 / self.cpu_secs,
        )
    }
}

/// Runs `query` over the events `nexmark` generates, with `config`, and measures it; fails
/// unless the source emitted `nexmark.max_events` events.
pub fn measure(
    query: Query,
    config: ExecutionConfig,
    nexmark: NexmarkConfig,
) -> Result<Throughput, UserError> {
    let events = nexmark.max_events.ok_or("a measured run needs a bounded number of events")?;
    let mut env = StreamExecutionEnvironment::new(config);
    query.discarding_results(&env.nexmark(nexmark)?);
    let (wall, cpu) = (Instant::now(), ProcessTime::now());
    let result = env.execute()?;
    let (secs, cpu_secs) = (wall.elapsed().as_secs_f64(), cpu.elapsed().as_secs_f64());
    let generated = result.operator(SOURCE).map_or(0, |source| source.records_out);
    if generated != events {
        return Err(format!("{query}: the source emitted {generated} of {events} events").into());
    }
    Ok(Throughput { query, events, secs, cpu_secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_bounded_run_and_refuses_an_endless_one() {
        let config =
            ExecutionConfig { parallelism: 2, progress_interval_ms: 0, ..Default::default() };
        let nexmark = NexmarkConfig { max_events: Some(5_000), ..Default::default() };
        let throughput = measure(Query::Q5, config.clone(), nexmark.clone()).unwrap();
        assert_eq!((throughput.query, throughput.events), (Query::Q5, 5_000));
        let row = throughput.row();
        assert_eq!(row.split_whitespace().count(), Throughput::HEADER.split_whitespace().count());
        assert!(row.starts_with("q5 5000 "), "{row}");
        let endless = NexmarkConfig { max_events: None, ..nexmark };
        let error = measure(Query::Q0, config, endless).unwrap_err().to_string();
        assert!(error.contains("bounded number of events"), "{error}");
    }
}
