//! Recovery and rescale figures of the keyed-state job (see `weir_examples::keyed_state`)
//! run as a coordinator and worker processes of this binary on 127.0.0.1, checkpointing every
//! `--interval-ms` into a temporary directory, per state backend and size:
//!
//! 1. Recovery: once a checkpoint holds the whole state, one worker is killed with SIGKILL and
//!    a replacement started at once (as Kubernetes restarts a pod). Reported, in ms from the
//!    kill: the coordinator saw the worker lost (`detect`), deployed the next attempt once the
//!    replacement offered its slots (`deploy`), every worker read its state (`restored`;
//!    the tasks start when the restart delay is over, counted from `detect`), every keyed
//!    subtask processed a record (`running`, the recovery time: the tables are built from
//!    the state read as the tasks open), and the first checkpoint after the restore completed
//!    (`checkpoint`).
//! 2. Rescale: once a checkpoint holds the whole state, a stop-with-savepoint over the REST
//!    API; when the coordinator has exited, a new coordinator and workers at
//!    `--rescale-to` start from the savepoint. Reported, in ms from the stop request: the
//!    savepoint completed (`savepoint`), the coordinator exited (`stopped`), then, from the
//!    new processes' start: deployed, restored, running; `downtime` is from the stop request
//!    to running. The savepoint is in `--savepoint-format` (`canonical`, the default, or
//!    `native`: RocksDB's own files).
//!
//! Both also report the duration of the full checkpoint waited for (`ckpt_ms`).
//!
//! ```text
//! recovery-bench [--sizes 100,1000] [--backends heap,rocksdb] [--value-bytes 1000]
//!     [--parallelism 2] [--rescale-to 3] [--interval-ms 1000] [--restart-delay-ms MS]
//!     [--heartbeat-timeout-secs SECS] [--savepoint-format canonical|native]
//!     [--only recovery|rescale] [--quick]
//! ```
//!
//! With `RECOVERY_BENCH_LOG=FILE`, the processes' logs are appended to `FILE`. Sizes are in
//! MB (10^6 bytes). Without `--restart-delay-ms` the job restarts with Weir's
//! default strategy (exponential delay from 1 s), and without `--heartbeat-timeout-secs` the
//! coordinator's default (10 s) applies. `--quick` (10 MB, heap) runs in seconds.
//! `recovery-bench coordinator|worker …` runs the job itself in that role (with `--keys N
//! --value-bytes B`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitCode, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use weir::SavepointFormat;
use weir::functions::UserError;
use weir_examples::keyed_state::{KEYED_STATE, keyed_state_job};
use weir_examples::{list_items, parse_bench_args};

/// How long a run may take to fill its state and checkpoint it in full.
const FILL_LIMIT: Duration = Duration::from_secs(900);
/// How long any later step may take.
const STEP_LIMIT: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("coordinator" | "worker" | "run") => weir::main(|env| {
            let parameters = env.parameters();
            let keys: u64 = parameters.get("keys").ok_or("--keys is needed")?.parse()?;
            let value_bytes: usize = parameters.get("value-bytes").unwrap_or("1000").parse()?;
            keyed_state_job(env, keys, value_bytes, Duration::MAX, Arc::default());
            Ok(())
        }),
        _ => weir_examples::exit_code(bench()),
    }
}

/// What to measure.
#[derive(Debug)]
struct Options {
    sizes_mb: Vec<u64>,
    backends: Vec<String>,
    value_bytes: u64,
    parallelism: usize,
    rescale_to: usize,
    interval_ms: u64,
    restart_delay_ms: Option<u64>,
    heartbeat_timeout_secs: Option<u64>,
    savepoint_format: SavepointFormat,
    only: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, UserError> {
        let mut options = Options {
            sizes_mb: vec![100, 1000],
            backends: vec!["heap".into(), "rocksdb".into()],
            value_bytes: 1000,
            parallelism: 2,
            rescale_to: 3,
            interval_ms: 1000,
            restart_delay_ms: None,
            heartbeat_timeout_secs: None,
            savepoint_format: SavepointFormat::Canonical,
            only: None,
        };
        parse_bench_args(args, |arg, value| {
            let Some(value) = value else {
                options.sizes_mb = vec![10];
                options.backends = vec!["heap".into()];
                return Ok(true);
            };
            match arg {
                "--sizes" => {
                    options.sizes_mb =
                        list_items(value).map(str::parse).collect::<Result<_, _>>()?
                }
                "--backends" => options.backends = list_items(value).map(str::to_string).collect(),
                "--value-bytes" => options.value_bytes = value.parse()?,
                "--parallelism" => options.parallelism = value.parse()?,
                "--rescale-to" => options.rescale_to = value.parse()?,
                "--interval-ms" => options.interval_ms = value.parse()?,
                "--restart-delay-ms" => options.restart_delay_ms = Some(value.parse()?),
                "--heartbeat-timeout-secs" => {
                    options.heartbeat_timeout_secs = Some(value.parse()?);
                }
                "--savepoint-format" => options.savepoint_format = value.parse()?,
                "--only" if value == "recovery" || value == "rescale" => {
                    options.only = Some(value.to_string());
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if options.value_bytes < 8 {
            return Err("--value-bytes must be at least 8 (the update counter)".into());
        }
        if options.parallelism < 2 || options.rescale_to == 0 || options.interval_ms == 0 {
            return Err("--parallelism must be at least 2 (one worker is killed), \
                        --rescale-to and --interval-ms positive"
                .into());
        }
        Ok(options)
    }

    fn runs(&self, part: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == part)
    }

    fn keys(&self, size_mb: u64) -> u64 {
        (size_mb * 1_000_000).div_ceil(self.value_bytes).max(1)
    }

    /// The coordinator's arguments for `backend` and `size_mb` at `parallelism`, checkpoints
    /// under `dir`, starting from `restore` if given.
    fn coordinator_args(
        &self,
        backend: &str,
        size_mb: u64,
        parallelism: usize,
        dir: &Path,
        restore: Option<&str>,
    ) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--parallelism".into(),
            parallelism.to_string(),
            "--state-backend".into(),
            backend.into(),
            "--checkpoint-dir".into(),
            dir.to_string_lossy().into_owned(),
            "--checkpoint-interval-ms".into(),
            self.interval_ms.to_string(),
        ];
        if let Some(delay) = self.restart_delay_ms {
            for setting in
                ["restart.strategy=fixed-delay", "restart.attempts=10", "restart.delay_ms="]
            {
                let value = if setting.ends_with('=') { delay.to_string() } else { String::new() };
                args.extend(["--set".to_string(), format!("{setting}{value}")]);
            }
        }
        if let Some(secs) = self.heartbeat_timeout_secs {
            args.extend(["--heartbeat-timeout-secs".to_string(), secs.to_string()]);
        }
        if let Some(savepoint) = restore {
            args.extend(["--restore".to_string(), savepoint.to_string()]);
        }
        args.extend([
            "--keys".to_string(),
            self.keys(size_mb).to_string(),
            "--value-bytes".to_string(),
            self.value_bytes.to_string(),
        ]);
        args
    }
}

fn bench() -> Result<(), UserError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = Options::parse(&args)?;
    let restart = options
        .restart_delay_ms
        .map_or("default".to_string(), |delay| format!("fixed-delay {delay} ms"));
    if options.runs("recovery") {
        println!(
            "recovery-bench recovery parallelism={} interval_ms={} value_bytes={} restart={restart} \
             (ms from the kill)",
            options.parallelism, options.interval_ms, options.value_bytes
        );
        let columns = ["ckpt_ms", "detect", "deploy", "restored", "running", "checkpoint"];
        table(&options, &columns, recovery_row)?;
    }
    if options.runs("rescale") {
        println!(
            "recovery-bench rescale parallelism={}->{} interval_ms={} value_bytes={} \
             savepoint_format={:?} (savepoint and stopped: ms from the stop request; deployed, \
             restored, running: ms from the new start)",
            options.parallelism,
            options.rescale_to,
            options.interval_ms,
            options.value_bytes,
            options.savepoint_format,
        );
        let columns =
            ["ckpt_ms", "savepoint", "stopped", "deployed", "restored", "running", "downtime"];
        table(&options, &columns, rescale_row)?;
    }
    Ok(())
}

/// Prints the column names `columns` after `backend` and `state_MB`, then the figures `row`
/// gives for each backend and size, as each is measured.
fn table(
    options: &Options,
    columns: &[&str],
    row: fn(&Options, &str, u64) -> Result<Vec<u128>, UserError>,
) -> Result<(), UserError> {
    let widths: Vec<usize> = columns.iter().map(|column| column.len().max(7)).collect();
    let cells = |cells: Vec<String>| -> String {
        let cells = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:>width$}"));
        cells.collect::<Vec<_>>().join(" ")
    };
    let names = cells(columns.iter().map(|column| column.to_string()).collect());
    println!("{:<8} {:>8} {names}", "backend", "state_MB");
    for backend in &options.backends {
        for &size_mb in &options.sizes_mb {
            let figures = row(options, backend, size_mb)?;
            let figures = cells(figures.iter().map(u128::to_string).collect());
            println!("{backend:<8} {size_mb:>8} {figures}");
        }
    }
    Ok(())
}

/// Kills a worker of a job holding `size_mb` of state on `backend`; returns the recovery
/// figures.
fn recovery_row(options: &Options, backend: &str, size_mb: u64) -> Result<Vec<u128>, UserError> {
    let dir = tempfile::tempdir()?;
    let args = options.coordinator_args(backend, size_mb, options.parallelism, dir.path(), None);
    let mut cluster = Cluster::start(&args, options.parallelism)?;
    let checkpoint_ms = cluster.full_checkpoint(options, size_mb)?;
    let killed = cluster.kill(1)?;
    cluster.add_worker()?;
    let since = |at: Instant| at.duration_since(killed).as_millis();
    let logs = &cluster.logs;
    let detected = logs.nth(killed, 1, "a lost worker", |l| l.coordinator_says("worker lost"))?;
    let deployed = logs.nth(killed, 1, "the redeploy", |l| {
        l.coordinator_says("deployed") && l.text.contains("attempt=2 ")
    })?;
    let restored = logs.nth(killed, options.parallelism, "workers restored", |l| {
        l.worker_says("deploying") && l.text.contains("attempt=2 ")
    })?;
    let running = logs.nth(killed, options.parallelism, "subtasks running", Line::processing)?;
    let checkpointed =
        logs.nth(deployed, 1, "a checkpoint", |l| l.coordinator_says("checkpoint complete"))?;
    Ok(vec![
        checkpoint_ms.into(),
        since(detected),
        since(deployed),
        since(restored),
        since(running),
        since(checkpointed),
    ])
}

/// Stops a job holding `size_mb` of state on `backend` with a savepoint and starts it from
/// there at `--rescale-to`; returns the rescale figures.
fn rescale_row(options: &Options, backend: &str, size_mb: u64) -> Result<Vec<u128>, UserError> {
    let dir = tempfile::tempdir()?;
    let args = options.coordinator_args(backend, size_mb, options.parallelism, dir.path(), None);
    let mut cluster = Cluster::start(&args, options.parallelism)?;
    let checkpoint_ms = cluster.full_checkpoint(options, size_mb)?;
    let requested = Instant::now();
    let savepoint =
        cluster.stop_with_savepoint(&dir.path().join("savepoints"), options.savepoint_format)?;
    let saved = Instant::now();
    cluster.wait_for_exit()?;
    let stopped = Instant::now();
    drop(cluster);
    let restarted = Instant::now();
    let args = options.coordinator_args(
        backend,
        size_mb,
        options.rescale_to,
        dir.path(),
        Some(&savepoint),
    );
    let cluster = Cluster::start(&args, options.rescale_to)?;
    let logs = &cluster.logs;
    let deployed = logs.nth(restarted, 1, "the deploy", |l| l.coordinator_says("deployed"))?;
    let restored = logs
        .nth(restarted, options.rescale_to, "workers restored", |l| l.worker_says("deploying"))?;
    let running = logs.nth(restarted, options.rescale_to, "subtasks running", Line::processing)?;
    let ms = |from: Instant, to: Instant| to.duration_since(from).as_millis();
    Ok(vec![
        checkpoint_ms.into(),
        ms(requested, saved),
        ms(requested, stopped),
        ms(restarted, deployed),
        ms(restarted, restored),
        ms(restarted, running),
        ms(requested, running),
    ])
}

/// A coordinator (process 0) and workers of one slot each, all this binary.
struct Cluster {
    processes: Vec<Child>,
    logs: Arc<Logs>,
    address: String,
    rest: String,
}

impl Cluster {
    /// Starts the coordinator with `args` and `workers` workers.
    fn start(args: &[String], workers: usize) -> Result<Self, UserError> {
        let mut coordinator = Command::new(std::env::current_exe()?)
            .args(["coordinator", "--bind", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let logs = Arc::new(Logs::default());
        logs.follow(0, coordinator.stderr.take().ok_or("no standard error")?);
        let mut cluster =
            Cluster { processes: vec![coordinator], logs, address: "".into(), rest: "".into() };
        let start = Instant::now();
        let after = |text: &str, line: &str| {
            let at = line.find(text).map(|i| i + text.len());
            at.map(|at| line[at..].trim().trim_end_matches('/').to_string())
        };
        let (_, listening) =
            cluster.logs.nth_within(start, 1, STEP_LIMIT, "the coordinator's address", |l| {
                l.coordinator_says("coordinator: listening on ")
            })?;
        cluster.address = after("listening on ", &listening).ok_or("no address")?;
        let (_, web) = cluster.logs.nth_within(start, 1, STEP_LIMIT, "the REST address", |l| {
            l.coordinator_says("web UI: ")
        })?;
        cluster.rest = after("web UI: ", &web).ok_or("no REST address")?;
        for _ in 0..workers {
            cluster.add_worker()?;
        }
        Ok(cluster)
    }

    /// Starts a worker of one slot.
    fn add_worker(&mut self) -> Result<(), UserError> {
        let mut worker = Command::new(std::env::current_exe()?)
            .args(["worker", "--coordinator", &self.address, "--slots", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        self.logs.follow(self.processes.len(), worker.stderr.take().ok_or("no standard error")?);
        self.processes.push(worker);
        Ok(())
    }

    /// Kills process `index` with SIGKILL; returns when.
    fn kill(&mut self, index: usize) -> Result<Instant, UserError> {
        let process = self.processes.get_mut(index).ok_or("no such process")?;
        process.kill()?;
        let killed = Instant::now();
        process.wait()?;
        Ok(killed)
    }

    /// Waits for the first checkpoint holding the whole state; returns its duration in ms.
    fn full_checkpoint(&self, options: &Options, size_mb: u64) -> Result<u64, UserError> {
        let payload = options.keys(size_mb) * options.value_bytes;
        let start = Instant::now();
        let (_, line) = self.logs.nth_within(start, 1, FILL_LIMIT, "a full checkpoint", |l| {
            l.coordinator_says("job failed")
                || l.coordinator_says("checkpoint complete")
                    && l.field("bytes").is_some_and(|bytes| bytes >= payload)
        })?;
        if line.contains("job failed") {
            return Err(format!("before its state was checkpointed: {line}").into());
        }
        Ok(field(&line, "duration_ms").ok_or("no duration_ms")?)
    }

    /// Takes a savepoint in `format` under `dir` over the REST API and stops the job; returns
    /// its path.
    fn stop_with_savepoint(
        &self,
        dir: &Path,
        format: SavepointFormat,
    ) -> Result<String, UserError> {
        let client = reqwest::blocking::Client::builder().timeout(STEP_LIMIT).build()?;
        let jobs: serde_json::Value = client.get(format!("{}/jobs", self.rest)).send()?.json()?;
        let name = jobs["jobs"][0]["name"].as_str().ok_or("no job listed")?;
        let body = serde_json::json!({ "dir": dir, "stop": true, "format": format });
        let response =
            client.post(format!("{}/jobs/{name}/savepoints", self.rest)).json(&body).send()?;
        let status = response.status();
        let taken: serde_json::Value = response.json()?;
        match taken["location"].as_str() {
            Some(location) if status.is_success() => Ok(location.to_string()),
            _ => Err(format!("the savepoint failed ({status}): {taken}").into()),
        }
    }

    /// Waits for the coordinator to exit, successfully.
    fn wait_for_exit(&mut self) -> Result<(), UserError> {
        let deadline = Instant::now() + STEP_LIMIT;
        while Instant::now() < deadline {
            if let Some(status) = self.processes[0].try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("the coordinator exited with {status}:\n{}", self.logs.of(0)?)
                        .into())
                };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let log: Vec<String> = (0..self.processes.len())
            .map(|process| Ok(format!("process {process}:\n{}", self.logs.of(process)?)))
            .collect::<Result<_, UserError>>()?;
        Err(format!(
            "the coordinator did not exit within {STEP_LIMIT:?}; the log:\n{}",
            log.join("\n")
        )
        .into())
    }
}

impl Drop for Cluster {
    /// Stops the processes; with `RECOVERY_BENCH_LOG` set, appends their logs to that file.
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
        let Some(path) = std::env::var_os("RECOVERY_BENCH_LOG") else { return };
        let logs = (0..self.processes.len()).filter_map(|process| {
            Some(format!("process {process}:\n{}\n", self.logs.of(process).ok()?))
        });
        let appended = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(
            |mut file| logs.into_iter().try_for_each(|log| file.write_all(log.as_bytes())),
        );
        if let Err(error) = appended {
            eprintln!("could not write the logs to {}: {error}", Path::new(&path).display());
        }
    }
}

/// A line of standard error of process `process` (0 the coordinator), when it arrived.
struct Line {
    at: Instant,
    process: usize,
    text: String,
}

impl Line {
    fn coordinator_says(&self, text: &str) -> bool {
        self.process == 0 && self.text.contains(text)
    }

    fn worker_says(&self, text: &str) -> bool {
        self.process > 0 && self.text.contains(text)
    }

    /// A keyed subtask processes its first record.
    fn processing(&self) -> bool {
        self.worker_says(&format!("{KEYED_STATE}: processing records"))
    }

    fn field(&self, name: &str) -> Option<u64> {
        field(&self.text, name)
    }
}

/// The value of the numeric field `name=` of a log line.
fn field(text: &str, name: &str) -> Option<u64> {
    let at = text.find(&format!(" {name}="))? + name.len() + 2;
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The standard error of a cluster's processes, line by line, as it arrives.
#[derive(Default)]
struct Logs {
    lines: Mutex<Vec<Line>>,
    arrived: Condvar,
}

impl Logs {
    /// Collects the lines of `stderr`, of process `process`, on a thread of its own.
    fn follow(self: &Arc<Self>, process: usize, stderr: ChildStderr) {
        let logs = Arc::clone(self);
        std::thread::spawn(move || {
            for text in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = Line { at: Instant::now(), process, text };
                if let Ok(mut lines) = logs.lines.lock() {
                    lines.push(line);
                }
                logs.arrived.notify_all();
            }
        });
    }

    /// [`Logs::nth_within`] the step limit.
    fn nth(
        &self,
        since: Instant,
        n: usize,
        what: &str,
        matches: impl Fn(&Line) -> bool,
    ) -> Result<Instant, UserError> {
        Ok(self.nth_within(since, n, STEP_LIMIT, what, matches)?.0)
    }

    /// When the `n`th line arrived since `since` that `matches`, and its text; waits for it
    /// up to `limit`.
    fn nth_within(
        &self,
        since: Instant,
        n: usize,
        limit: Duration,
        what: &str,
        matches: impl Fn(&Line) -> bool,
    ) -> Result<(Instant, String), UserError> {
        let deadline = Instant::now() + limit;
        let mut lines = self.lines.lock().map_err(|_| "poisoned")?;
        loop {
            let mut found = lines.iter().filter(|l| l.at >= since && matches(l));
            if let Some(line) = found.nth(n.saturating_sub(1)) {
                return Ok((line.at, line.text.clone()));
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                let log: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
                return Err(
                    format!("no {what} within {limit:?}; the log:\n{}", log.join("\n")).into()
                );
            };
            lines = self.arrived.wait_timeout(lines, left).map_err(|_| "poisoned")?.0;
        }
    }

    /// What process `process` printed so far.
    fn of(&self, process: usize) -> Result<String, UserError> {
        let lines = self.lines.lock().map_err(|_| "poisoned")?;
        let text: Vec<&str> =
            lines.iter().filter(|l| l.process == process).map(|l| l.text.as_str()).collect();
        Ok(text.join("\n"))
    }
}
