//! Checkpoint figures, one row per scenario under a header line:
//!
//! 1. Keyed state of a target size, per state backend: a source emits keys `0..N` once (each
//!    creates a `ValueState<Vec<u8>>` of `--value-bytes` pseudo-random bytes, so the state
//!    holds about N × value bytes), then updates them round-robin (a counter in the first 8
//!    bytes) for `--update-secs`, checkpointing every `--interval-ms` into a temporary
//!    directory. Reported: completed checkpoints, those taken at full size (bytes written ≥
//!    N × value bytes) with their median and max duration, the state size of the last
//!    checkpoint, the median bytes those checkpoints wrote (less than their state when
//!    incremental), what is left on disk after the run (the last checkpoint, `retained = 1`),
//!    events/s while the source ran, and the seconds of the whole job (with its final
//!    checkpoint). Backends: `heap`, `rocksdb` (incremental checkpoints) and `rocksdb-full`
//!    (every checkpoint a full copy).
//! 2. The window-count job (see `window-count`) without checkpoints and with a checkpoint
//!    every `--interval-ms`, alternating runs and keeping the best of each; and in the runs
//!    with checkpoints, the share of the process's CPU time the threads writing them took
//!    (`weir-storage`, read from `/proc`): on a shared machine the best runs still move by
//!    more than the overhead, while a share within one run holds steady. Each run's CPU time
//!    by thread name goes to stderr, and the median CPU time of all threads with and without
//!    checkpoints is compared: the work is the same, so the difference is what checkpoints
//!    cost in CPU, storage threads and tasks together.
//!
//! ```text
//! checkpoint-bench [--sizes 100,1000] [--backends heap,rocksdb,rocksdb-full] [--value-bytes 1000]
//!     [--update-secs 20] [--interval-ms 1000] [--parallelism 1]
//!     [--window-events 20000000] [--window-parallelism 2] [--window-keys 1000]
//!     [--window-rounds 2] [--only state|window] [--quick]
//! ```
//!
//! Sizes are in MB (10^6 bytes). `--quick` (10 MB, 2 s of updates, 2 million window events,
//! one round) runs in seconds, for CI; options after it still apply. RocksDB needs the
//! `rocksdb` feature; without it its rows say "not built".

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir::prelude::*;
use weir::{
    CheckpointConfig, CheckpointStats, JobResult, RestartStrategy, STORAGE_THREADS,
    StateBackendKind,
};
use weir_examples::keyed_state::{KEYED_STATE, keyed_state_job};
use weir_examples::thread_cpu::ThreadCpu;
use weir_examples::{list_items, parse_bench_args};

fn main() -> ExitCode {
    weir_examples::exit_code(run())
}

/// What to measure.
#[derive(Debug)]
struct Options {
    sizes_mb: Vec<u64>,
    backends: Vec<String>,
    value_bytes: u64,
    update_secs: u64,
    interval_ms: u64,
    parallelism: usize,
    window_events: u64,
    window_parallelism: usize,
    window_keys: u64,
    window_rounds: usize,
    only: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, UserError> {
        let mut options = Options {
            sizes_mb: vec![100, 1000],
            backends: vec!["heap".into(), "rocksdb".into(), "rocksdb-full".into()],
            value_bytes: 1000,
            update_secs: 20,
            interval_ms: 1000,
            parallelism: 1,
            window_events: 20_000_000,
            window_parallelism: 2,
            window_keys: 1000,
            window_rounds: 2,
            only: None,
        };
        parse_bench_args(args, |arg, value| {
            let Some(value) = value else {
                options.sizes_mb = vec![10];
                options.update_secs = 2;
                options.window_events = 2_000_000;
                options.window_rounds = 1;
                return Ok(true);
            };
            match arg {
                "--sizes" => {
                    options.sizes_mb =
                        list_items(value).map(str::parse).collect::<Result<_, _>>()?
                }
                "--backends" => options.backends = list_items(value).map(str::to_string).collect(),
                "--value-bytes" => options.value_bytes = value.parse()?,
                "--update-secs" => options.update_secs = value.parse()?,
                "--interval-ms" => options.interval_ms = value.parse()?,
                "--parallelism" => options.parallelism = value.parse()?,
                "--window-events" => options.window_events = value.parse()?,
                "--window-parallelism" => options.window_parallelism = value.parse()?,
                "--window-keys" => options.window_keys = value.parse()?,
                "--window-rounds" => options.window_rounds = value.parse()?,
                "--only" if value == "state" || value == "window" => {
                    options.only = Some(value.to_string());
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if options.value_bytes < 8 {
            return Err("--value-bytes must be at least 8 (the update counter)".into());
        }
        if options.interval_ms == 0 || options.window_keys == 0 || options.window_rounds == 0 {
            return Err("--interval-ms, --window-keys and --window-rounds must be positive".into());
        }
        Ok(options)
    }

    fn runs(&self, part: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == part)
    }
}

fn run() -> Result<(), UserError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = Options::parse(&args)?;
    if options.runs("state") {
        keyed_state_scenarios(&options)?;
    }
    if options.runs("window") {
        window_count_comparison(&options)?;
    }
    Ok(())
}

/// Prints the keyed-state rows, one per size and backend, as each finishes.
fn keyed_state_scenarios(options: &Options) -> Result<(), UserError> {
    println!(
        "checkpoint-bench keyed-state value_bytes={} interval_ms={} update_secs={} parallelism={}",
        options.value_bytes, options.interval_ms, options.update_secs, options.parallelism
    );
    println!(
        "{:<12} {:>8} {:>8} {:>6} {:>5} {:>9} {:>7} {:>8} {:>10} {:>8} {:>10} {:>14} {:>6}",
        "backend",
        "state_MB",
        "keys",
        "ckpts",
        "full",
        "median_ms",
        "max_ms",
        "last_MB",
        "written_MB",
        "disk_MB",
        "events",
        "events_per_sec",
        "secs"
    );
    for name in &options.backends {
        let (kind, incremental) = match name.as_str() {
            "rocksdb-full" => ("rocksdb", false),
            other => (other, true),
        };
        let backend: StateBackendKind = match kind.parse() {
            Ok(backend) => backend,
            Err(_) if name.eq_ignore_ascii_case("rocksdb") => {
                println!("rocksdb: not built (build with --features rocksdb)");
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        for &size_mb in &options.sizes_mb {
            println!("{}", keyed_state_row(options, name, backend, incremental, size_mb)?);
        }
    }
    Ok(())
}

/// Runs the keyed-state job for `size_mb` of state on `backend` (with incremental
/// checkpoints where it takes them, if `incremental`); returns its row, labelled `label`.
fn keyed_state_row(
    options: &Options,
    label: &str,
    backend: StateBackendKind,
    incremental: bool,
    size_mb: u64,
) -> Result<String, UserError> {
    let keys = (size_mb * 1_000_000).div_ceil(options.value_bytes).max(1);
    let payload = keys * options.value_bytes;
    let dir = tempfile::tempdir()?;
    let mut env = StreamExecutionEnvironment::new(ExecutionConfig {
        parallelism: options.parallelism,
        progress_interval_ms: 0,
        state_backend: backend,
        checkpointing: CheckpointConfig {
            incremental,
            ..checkpoint_config(options.interval_ms, dir.path())
        },
        restart: Some(RestartStrategy::None),
        ..Default::default()
    });
    let update_for = Duration::from_secs(options.update_secs);
    let active = Arc::new(Mutex::new(Duration::ZERO));
    let value_bytes = options.value_bytes as usize;
    keyed_state_job(&mut env, keys, value_bytes, update_for, Arc::clone(&active));
    let start = Instant::now();
    let result = env.execute()?;
    let secs = start.elapsed().as_secs_f64();
    let events = result.operator(KEYED_STATE).map_or(0, |o| o.records_in);
    let active = active.lock().map_err(|_| "poisoned")?.as_secs_f64();
    let completed = completed(&result)?;
    let last = completed.last().ok_or("no checkpoint completed")?.state_size;
    if last < payload {
        return Err(format!("the last checkpoint holds {last} bytes, below {payload}").into());
    }
    let full: Vec<_> = completed.iter().filter(|c| c.state_size >= payload).collect();
    let mut durations: Vec<Duration> = full.iter().map(|c| c.duration).collect();
    durations.sort();
    let mut written: Vec<u64> = full.iter().map(|c| c.incremental_size).collect();
    written.sort();
    let ms = |d: Option<&Duration>| d.map_or(0, Duration::as_millis);
    Ok(format!(
        "{:<12} {:>8} {:>8} {:>6} {:>5} {:>9} {:>7} {:>8.1} {:>10.1} {:>8.1} {:>10} {:>14.0} {:>6.1}",
        label,
        size_mb,
        keys,
        completed.len(),
        full.len(),
        ms(durations.get(durations.len() / 2)),
        ms(durations.last()),
        last as f64 / 1e6,
        written.get(written.len() / 2).copied().unwrap_or(0) as f64 / 1e6,
        dir_bytes(dir.path())? as f64 / 1e6,
        events,
        events as f64 / active,
        secs
    ))
}

/// Checkpoints every `interval_ms` into `dir`, keeping the last one.
fn checkpoint_config(interval_ms: u64, dir: &Path) -> CheckpointConfig {
    CheckpointConfig {
        interval_ms,
        dir: dir.to_string_lossy().into_owned(),
        retained: 1,
        ..Default::default()
    }
}

/// The completed checkpoints of a run; an error if one failed.
fn completed(result: &JobResult) -> Result<Vec<&CheckpointStats>, UserError> {
    if let Some(failed) = result.checkpoints.iter().find(|c| c.failure.is_some()) {
        return Err(format!("checkpoint {} failed: {:?}", failed.id, failed.failure).into());
    }
    Ok(result.checkpoints.iter().collect())
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total += if kind.is_dir() { dir_bytes(&entry.path())? } else { entry.metadata()?.len() };
    }
    Ok(total)
}

/// Runs window-count without checkpoints and with them, alternating, and prints the best
/// events/s of each and their ratio.
fn window_count_comparison(options: &Options) -> Result<(), UserError> {
    let (events, parallelism, keys) =
        (options.window_events, options.window_parallelism, options.window_keys);
    let interval = options.interval_ms;
    println!(
        "checkpoint-bench window-count events={events} parallelism={parallelism} keys={keys} \
         rounds={} (alternating, best of each)",
        options.window_rounds
    );
    println!("{:<11} {:>14} {:>6}  runs_events_per_sec", "checkpoints", "events_per_sec", "ckpts");
    let mut rates: [Vec<(f64, usize)>; 2] = [Vec::new(), Vec::new()];
    let mut storage_shares = Vec::new();
    // Each run's CPU time of all threads (clock ticks), without and with checkpoints.
    let mut cpu_ticks: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..options.window_rounds {
        for ((with_checkpoints, rates), ticks) in
            [false, true].into_iter().zip(&mut rates).zip(&mut cpu_ticks)
        {
            let dir = tempfile::tempdir()?;
            let checkpointing = if with_checkpoints {
                checkpoint_config(interval, dir.path())
            } else {
                CheckpointConfig::default()
            };
            let config = ExecutionConfig {
                parallelism,
                progress_interval_ms: 0,
                checkpointing,
                restart: Some(RestartStrategy::None),
                ..Default::default()
            };
            let cpu = ThreadCpu::start();
            let (result, secs) = weir_examples::run_window_count(config, events, keys)?;
            let threads = cpu.stop();
            ticks.push(threads.ticks(""));
            let by_name: Vec<String> =
                threads.by_name().iter().map(|(name, ticks)| format!("{name}={ticks}")).collect();
            eprintln!(
                "CPU ticks by thread ({} checkpoints): {}",
                if with_checkpoints { "with" } else { "without" },
                by_name.join(" ")
            );
            let checkpoints = completed(&result)?;
            if with_checkpoints {
                storage_shares.extend(threads.share(STORAGE_THREADS));
                // What each checkpoint held and wrote, MB, and how long it took.
                let each: Vec<String> = (checkpoints.iter())
                    .map(|c| {
                        let mb = |bytes: u64| bytes as f64 / 1e6;
                        let (size, written) = (mb(c.state_size), mb(c.incremental_size));
                        format!("{size:.0}/{written:.0}MB/{}ms", c.duration.as_millis())
                    })
                    .collect();
                eprintln!("checkpoints (state/written/duration): {}", each.join(" "));
            }
            rates.push((events as f64 / secs, checkpoints.len()));
        }
    }
    let best = |runs: &[(f64, usize)]| {
        runs.iter().copied().fold((0.0, 0), |best, run| if run.0 > best.0 { run } else { best })
    };
    let labels = ["none".to_string(), format!("{interval}ms")];
    for (label, runs) in labels.iter().zip(&rates) {
        let (rate, checkpoints) = best(runs);
        let all: Vec<String> = runs.iter().map(|(rate, _)| format!("{rate:.0}")).collect();
        println!("{label:<11} {rate:>14.0} {checkpoints:>6}  {}", all.join(","));
    }
    let (none, with) = (best(&rates[0]).0, best(&rates[1]).0);
    println!(
        "overhead: none/{interval}ms = {:.3} ({:+.1} % events/s with checkpoints)",
        none / with,
        (with / none - 1.0) * 100.0
    );
    let [without, with] = cpu_ticks.each_ref().map(|ticks| median(ticks).unwrap_or(0));
    if without > 0 {
        let list = |ticks: &[u64]| ticks.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        println!(
            "CPU ticks of all threads: median {without} without, {with} with checkpoints \
             ({:+.1} %; runs {} / {})",
            (with as f64 / without as f64 - 1.0) * 100.0,
            list(&cpu_ticks[0]),
            list(&cpu_ticks[1])
        );
    }
    if let Some(share) = median(&storage_shares) {
        let percent: Vec<String> =
            storage_shares.iter().map(|share| format!("{:.1}", share * 100.0)).collect();
        println!(
            "storage threads' share of the CPU with checkpoints: median {:.1} % (runs {})",
            share * 100.0,
            percent.join(",")
        );
    }
    Ok(())
}

/// The middle of `values` (the upper one of the two middles of an even count).
fn median<T: Copy + PartialOrd>(values: &[T]) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sorted.get(sorted.len() / 2).copied()
}
