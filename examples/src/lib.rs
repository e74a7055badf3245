//! Pieces shared by the example jobs.

pub mod exactly_once;
pub mod keyed_state;
pub mod nexmark;
pub mod thread_cpu;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use weir::functions::UserError;
use weir::prelude::{
    GeneratorConfig, OperatorSettings, StreamExecutionEnvironment, TumblingEventTimeWindows,
    WatermarkStrategy,
};
use weir::{DataStream, ExecutionConfig, JobResult};

/// Prints the lines a tool produced and exits 0, or prints its error and exits 1.
pub fn print_lines(result: Result<Vec<String>, UserError>) -> ExitCode {
    exit_code(result.map(|lines| {
        for line in lines {
            println!("{line}");
        }
    }))
}

/// The exit code of a binary whose work ended with `result`, printing the error if any.
pub fn exit_code(result: Result<(), UserError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The word count pipeline: lines in, every rolling `(word, count)` update out.
pub fn word_count(lines: DataStream<String>) -> DataStream<(String, u64)> {
    lines
        .flat_map(|line: String| tokenize(&line))
        .name("Tokenizer")
        .map(|word| (word, 1u64))
        .key_by(|(word, _)| word.clone())
        .sum(|(_, count)| count)
        .name("Count")
}

/// The window-count anchor job (`../shared/anchors/flink/WindowCount.java`): `events`
/// generated events, key = i % `keys`, event time = i ms, keyed tumbling 10 s event-time
/// windows counting per key (the operator named `Window`), results discarded.
pub fn window_count(env: &mut StreamExecutionEnvironment, events: u64, keys: u64) {
    env.from_generator(GeneratorConfig::bounded(events), |i| i)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|i: &u64, _| *i as i64),
        )
        .map(move |i| (i % keys, 1u64))
        .key_by(|(key, _)| *key)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(10)))
        .reduce(|a, b| (a.0, a.1 + b.1))
        .discard();
}

/// Runs [`window_count`] with `config`; returns the job's result and its wall-clock seconds,
/// or an error unless the window operator saw every event.
pub fn run_window_count(
    config: ExecutionConfig,
    events: u64,
    keys: u64,
) -> Result<(JobResult, f64), UserError> {
    let mut env = StreamExecutionEnvironment::new(config);
    window_count(&mut env, events, keys);
    let start = Instant::now();
    let result = env.execute()?;
    let secs = start.elapsed().as_secs_f64();
    let windowed = result.operator("Window").map_or(0, |o| o.records_in);
    if windowed != events {
        return Err(format!("the window operator saw {windowed} of {events} events").into());
    }
    Ok((result, secs))
}

/// Reads a benchmark's command line: `--quick` alone, every other option with a value; `set`
/// takes each (`None` for `--quick`) and says whether it knows it.
pub fn parse_bench_args(
    args: &[String],
    mut set: impl FnMut(&str, Option<&str>) -> Result<bool, UserError>,
) -> Result<(), UserError> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--quick" => None,
            _ => Some(args.next().ok_or_else(|| format!("{arg} needs a value"))?.as_str()),
        };
        if !set(arg, value)? {
            let value = value.unwrap_or_default();
            return Err(format!("unknown option {arg} {value} (see the doc)").into());
        }
    }
    Ok(())
}

/// The items of a comma-separated option value, trimmed, empty ones left out.
pub fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Splits a line into lower-case words the way Flink's WordCount example does: on every
/// non-alphanumeric character, dropping empty tokens.
pub fn tokenize(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_non_word_characters() {
        assert_eq!(tokenize("To be, or NOT to-be!"), ["to", "be", "or", "not", "to", "be"]);
        assert!(tokenize("  ,; ").is_empty());
    }
}
