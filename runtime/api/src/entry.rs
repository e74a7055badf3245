//! The job binary's entry point: parses the command line, loads configuration (defaults, a
//! file, `WEIR__…` environment variables, command-line options, in rising precedence), builds
//! the job and runs it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use std::time::Duration;
use tracing::{error, warn};
use weir_operators::function::UserError;

use weir_memory::MemoryConfig;
use weir_worker::ExecutionConfig;
use weir_worker::cluster::{CoordinatorOptions, Worker, WorkerOptions};

use crate::{Error, Parameters, Result, StreamExecutionEnvironment};

#[derive(Parser, Debug)]
#[command(about = "A Weir streaming job", long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// Without a role, the job runs embedded (`run` is the default).
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Runs the job embedded in this process (coordinator and workers in one).
    Run(RunArgs),
    /// Coordinates the job across workers: waits for their slots, deploys the job's
    /// subtasks, restarts it after failures, and exits with its result.
    Coordinator(CoordinatorArgs),
    /// Offers slots to a coordinator and runs the subtasks it deploys there.
    Worker(WorkerArgs),
}

/// Options of `coordinator`, then those of `run`.
#[derive(Args, Debug)]
struct CoordinatorArgs {
    /// Where workers connect (`host:port`).
    #[arg(long, value_name = "ADDR")]
    bind: String,
    /// Seconds to wait for enough slots before the job fails.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    slot_timeout_secs: u64,
    /// Seconds of silence after which a worker counts as lost.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    heartbeat_timeout_secs: u64,
    #[command(flatten)]
    run: RunArgs,
}

/// Options of `worker`; the job's arguments and settings come from the coordinator.
#[derive(Args, Debug)]
struct WorkerArgs {
    /// The coordinator's `host:port`.
    #[arg(long, value_name = "ADDR")]
    coordinator: String,
    /// Slots offered: each runs one subtask of every operator.
    #[arg(long, value_name = "N", default_value_t = 1)]
    slots: u32,
    /// Where the data plane listens for other workers (`host:port`; port 0 picks one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    data_bind: String,
    /// The data plane's address as other workers reach it (default: the bound one).
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
    /// A TOML file whose `memory` section sizes this worker's process; every other setting
    /// comes from the coordinator.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides one setting of this worker's `memory` (`--set memory.processSize=2g`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Engine options of `run`; everything after them is passed to the job as parameters.
#[derive(Args, Debug, Default)]
struct RunArgs {
    /// Default parallelism (operators and `env.set_parallelism` in code take precedence).
    #[arg(short, long)]
    parallelism: Option<usize>,
    /// A TOML file with execution settings (see `ExecutionConfig`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides one setting: `--set batch_size=512` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Where checkpoints go (a path, `file://` or `s3://` URL): `checkpointing.dir`.
    #[arg(long, value_name = "URL")]
    checkpoint_dir: Option<String>,
    /// Checkpoint every this many milliseconds: `checkpointing.interval_ms`.
    #[arg(long, value_name = "MS")]
    checkpoint_interval_ms: Option<u64>,
    /// `heap` or `rocksdb`: `state_backend`.
    #[arg(long, value_name = "BACKEND")]
    state_backend: Option<String>,
    /// Start from a savepoint or checkpoint path, or `latest` (the latest complete
    /// checkpoint under the checkpoint dir): `checkpointing.restore`.
    #[arg(long, short = 's', value_name = "PATH|latest")]
    restore: Option<String>,
    /// Let a restore drop state of operators the job no longer has.
    #[arg(long)]
    allow_non_restored_state: bool,
    /// Serve the REST API on `host:port`: `rest.bind`.
    #[arg(long, value_name = "ADDR")]
    rest_bind: Option<String>,
    /// The job's own arguments, e.g. `--input words.txt`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "JOB ARGS")]
    job_args: Vec<String>,
}

/// Runs a job binary in one of three roles:
///
/// - `JOB [run] [--parallelism N] [--config FILE] [--set k=v]… [JOB ARGS…]` runs it embedded;
/// - `JOB coordinator --bind ADDR [options of run] [JOB ARGS…]` coordinates it across workers;
/// - `JOB worker --coordinator ADDR --slots N` offers slots to a coordinator, and builds the
///   job from the arguments and settings the coordinator hands it.
///
/// `job` builds the job on the environment; `main` then executes it, prints a summary to
/// standard error and returns the exit code (non-zero when the job failed).
///
/// ```no_run
/// use weir::prelude::*;
///
/// fn main() -> std::process::ExitCode {
///     weir::main(|env| {
///         env.from_collection(vec![1, 2, 3]).map(|x| x * 2).print();
///         Ok(())
///     })
/// }
/// ```
pub fn main<F>(job: F) -> ExitCode
where
    F: FnOnce(&mut StreamExecutionEnvironment) -> Result<(), UserError>,
{
    init_logging();
    let cli = Cli::parse_from(hoist_engine_options(std::env::args().collect()));
    let outcome = match cli.role {
        Some(Role::Run(args)) => run(args, job),
        None => run(cli.run, job),
        Some(Role::Coordinator(args)) => coordinate(args, job),
        Some(Role::Worker(args)) => work(&args, job),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            error!("{failure}");
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the settings in `args` and builds the job on an environment with them.
fn build<F>(args: RunArgs, job: F) -> Result<StreamExecutionEnvironment, UserError>
where
    F: FnOnce(&mut StreamExecutionEnvironment) -> Result<(), UserError>,
{
    build_with(load_config(&args)?, args.job_args, job)
}

/// Builds the job on an environment with `config` and the job's own arguments.
fn build_with<F>(
    config: ExecutionConfig,
    job_args: Vec<String>,
    job: F,
) -> Result<StreamExecutionEnvironment, UserError>
where
    F: FnOnce(&mut StreamExecutionEnvironment) -> Result<(), UserError>,
{
    let parameters = Parameters::from_args(job_args)?;
    let mut env = StreamExecutionEnvironment::with_parameters(config, parameters);
    job(&mut env)?;
    Ok(env)
}

fn coordinate<F>(args: CoordinatorArgs, job: F) -> Result<(), UserError>
where
    F: FnOnce(&mut StreamExecutionEnvironment) -> Result<(), UserError>,
{
    let mut options = CoordinatorOptions::new(&args.bind, args.run.job_args.clone());
    options.slot_timeout = Duration::from_secs(args.slot_timeout_secs);
    options.heartbeat_timeout = Duration::from_secs(args.heartbeat_timeout_secs);
    let mut config = load_config(&args.run)?;
    if config.rest.bind.is_none() {
        config.rest.bind = Some(default_rest_bind(&args.bind)?);
    }
    let result = build_with(config, args.run.job_args, job)?.execute_coordinated(options)?;
    eprint!("{result}");
    Ok(())
}

/// Where a coordinator bound to `bind` serves its REST API and web UI unless told: the same
/// host, the next port (`0.0.0.0:6123` → `0.0.0.0:6124`; port 0 picks any free port).
fn rest_bind_beside(bind: &str) -> Result<String, UserError> {
    let invalid = || format!("--bind {bind}: expected host:port");
    let (host, port) = bind.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let next = match port {
        0 => 0,
        port => port.checked_add(1).ok_or_else(|| {
            format!("--bind {bind}: no port after it for the REST API; pass --rest-bind")
        })?,
    };
    Ok(format!("{host}:{next}"))
}

/// The REST address of a coordinator not told one: beside its gRPC port, or any free port
/// of the same host (with a warning) when that one is taken.
fn default_rest_bind(bind: &str) -> Result<String, UserError> {
    let beside = rest_bind_beside(bind)?;
    if std::net::TcpListener::bind(&beside).is_ok() {
        return Ok(beside);
    }
    let (host, _) = beside.rsplit_once(':').expect("host:port");
    warn!("{beside} is taken: the REST API and web UI take another port (see 'web UI:')");
    Ok(format!("{host}:0"))
}

fn work<F>(args: &WorkerArgs, job: F) -> Result<(), UserError>
where
    F: FnOnce(&mut StreamExecutionEnvironment) -> Result<(), UserError>,
{
    let local = RunArgs {
        config: args.config.clone(),
        overrides: args.overrides.clone(),
        ..RunArgs::default()
    };
    let own_memory = load_config(&local)?
        .memory
        .map(|memory| MemoryConfig { slots: memory.slots.or(Some(args.slots)), ..memory });
    let options = WorkerOptions {
        coordinator: args.coordinator.clone(),
        slots: args.slots,
        data_bind: args.data_bind.clone(),
        advertise: args.advertise.clone(),
        memory: own_memory.clone(),
    };
    let (worker, mut spec) = Worker::connect(&options).map_err(Error::from)?;
    if own_memory.is_some() {
        spec.config.memory = own_memory;
    }
    let parameters = Parameters::from_args(spec.job_args)?;
    let mut env = StreamExecutionEnvironment::with_parameters(spec.config, parameters);
    job(&mut env)?;
    env.serve_as_worker(worker)?;
    Ok(())
}

fn run<F>(args: RunArgs, job: F) -> Result<(), UserError>
where
    F: FnOnce(&mut StreamExecutionEnvironment) -> Result<(), UserError>,
{
    let result = build(args, job)?.execute()?;
    eprint!("{result}");
    Ok(())
}

fn load_config(args: &RunArgs) -> Result<ExecutionConfig> {
    let mut figment = Figment::from(Serialized::defaults(ExecutionConfig::default()));
    if let Some(path) = &args.config {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(Env::prefixed("WEIR__").split("__"));
    for assignment in &args.overrides {
        let (key, value) =
            assignment.split_once('=').ok_or_else(|| Error::SetSyntax(assignment.clone()))?;
        let value: figment::value::Value =
            value.parse().map_err(|_| Error::SetSyntax(assignment.clone()))?;
        figment = figment.merge(Serialized::default(key.trim(), value));
    }
    if let Some(parallelism) = args.parallelism {
        figment = figment.merge(Serialized::default("parallelism", parallelism));
    }
    if let Some(dir) = &args.checkpoint_dir {
        figment = figment.merge(Serialized::default("checkpointing.dir", dir));
    }
    if let Some(interval) = args.checkpoint_interval_ms {
        figment = figment.merge(Serialized::default("checkpointing.interval_ms", interval));
    }
    if let Some(backend) = &args.state_backend {
        figment = figment.merge(Serialized::default("state_backend", backend));
    }
    if let Some(restore) = &args.restore {
        figment = figment.merge(Serialized::default("checkpointing.restore", restore));
    }
    if let Some(bind) = &args.rest_bind {
        figment = figment.merge(Serialized::default("rest.bind", bind));
    }
    if args.allow_non_restored_state {
        figment =
            figment.merge(Serialized::default("checkpointing.allow_non_restored_state", true));
    }
    figment.extract().map_err(|e| Error::Config(Box::new(e)))
}

/// Engine options that take a value, and those that do not.
const ENGINE_OPTIONS_WITH_VALUE: [&str; 12] = [
    "--bind",
    "--slot-timeout-secs",
    "--heartbeat-timeout-secs",
    "--parallelism",
    "-p",
    "--config",
    "--set",
    "--checkpoint-dir",
    "--checkpoint-interval-ms",
    "--state-backend",
    "--restore",
    "--rest-bind",
];
const ENGINE_FLAGS: [&str; 1] = ["--allow-non-restored-state"];

/// Engine options may also come after the job's own arguments (`--events 10
/// --checkpoint-dir /tmp/c`): moves them (with their values) in front of the job's
/// arguments, keeping the role and everything else in order. A worker takes no job
/// arguments, so its options (`--config`, `--set`) stay behind its role.
fn hoist_engine_options(args: Vec<String>) -> Vec<String> {
    if args.get(1).is_some_and(|role| role == "worker") {
        return args;
    }
    let mut args = args.into_iter();
    let mut front: Vec<String> = args.next().into_iter().collect();
    let mut rest: Vec<String> = args.collect();
    if rest.first().is_some_and(|first| first == "run" || first == "coordinator") {
        front.push(rest.remove(0));
    }
    let mut job = Vec::new();
    let mut rest = rest.into_iter();
    while let Some(arg) = rest.next() {
        let name = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
        if ENGINE_FLAGS.contains(&name)
            || (arg.contains('=') && ENGINE_OPTIONS_WITH_VALUE.contains(&name))
        {
            front.push(arg);
        } else if ENGINE_OPTIONS_WITH_VALUE.contains(&name) {
            front.push(arg);
            front.extend(rest.next());
        } else {
            job.push(arg);
        }
    }
    front.extend(job);
    front
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coordinator_serves_its_rest_api_on_the_port_after_its_grpc_port() {
        assert_eq!(rest_bind_beside("0.0.0.0:6123").unwrap(), "0.0.0.0:6124");
        assert_eq!(rest_bind_beside("[::1]:7000").unwrap(), "[::1]:7001");
        assert_eq!(rest_bind_beside("127.0.0.1:0").unwrap(), "127.0.0.1:0");
        let error = rest_bind_beside("127.0.0.1:65535").unwrap_err().to_string();
        assert!(error.contains("pass --rest-bind"), "{error}");
        let error = rest_bind_beside("localhost").unwrap_err().to_string();
        assert!(error.contains("expected host:port"), "{error}");
    }

    fn args(parallelism: Option<usize>, overrides: &[&str]) -> RunArgs {
        RunArgs {
            parallelism,
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            ..RunArgs::default()
        }
    }

    #[test]
    fn command_line_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weir.toml");
        std::fs::write(&file, "parallelism = 3\nbatch_size = 64\n").unwrap();
        let mut run = args(None, &["channel_capacity=2"]);
        run.config = Some(file.clone());
        let config = load_config(&run).unwrap();
        assert_eq!((config.parallelism, config.batch_size, config.channel_capacity), (3, 64, 2));
        run.parallelism = Some(5);
        assert_eq!(load_config(&run).unwrap().parallelism, 5);
        assert_eq!(load_config(&args(None, &[])).unwrap(), ExecutionConfig::default());
    }

    #[test]
    fn engine_options_among_job_arguments_reach_the_config() {
        let argv = [
            "job",
            "run",
            "--events",
            "10",
            "--checkpoint-dir",
            "/tmp/c",
            "--set",
            "checkpointing.retained=3",
            "--checkpoint-interval-ms=50",
            "--restore",
            "latest",
            "--allow-non-restored-state",
            "-p",
            "3",
            "--state-backend",
            "heap",
            "--verbose",
            "--rest-bind",
            "127.0.0.1:8081",
        ];
        let cli = Cli::parse_from(hoist_engine_options(argv.map(String::from).to_vec()));
        let Some(Role::Run(run)) = cli.role else { panic!("the run role is kept") };
        assert_eq!(run.job_args, ["--events", "10", "--verbose"]);
        let config = load_config(&run).unwrap();
        assert_eq!(config.parallelism, 3);
        assert_eq!(config.checkpointing.dir, "/tmp/c");
        assert_eq!(config.checkpointing.interval_ms, 50);
        assert_eq!(config.checkpointing.retained, 3);
        assert_eq!(config.checkpointing.restore.as_deref(), Some("latest"));
        assert!(config.checkpointing.allow_non_restored_state);
        assert_eq!(config.rest.bind.as_deref(), Some("127.0.0.1:8081"));
        let restart = ["restart.strategy=fixed-delay", "restart.attempts=4", "restart.delay_ms=5"];
        let config = load_config(&args(None, &restart)).unwrap();
        assert_eq!(
            config.restart,
            Some(weir_worker::RestartStrategy::FixedDelay { attempts: 4, delay_ms: 5 })
        );
    }

    #[test]
    fn a_taken_port_beside_the_grpc_port_gives_way_to_any_free_port() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let bind = format!("127.0.0.1:{}", port - 1);
        assert_eq!(default_rest_bind(&bind).unwrap(), "127.0.0.1:0");
        drop(taken);
        assert_eq!(default_rest_bind(&bind).unwrap(), format!("127.0.0.1:{port}"));
    }

    #[test]
    fn a_worker_keeps_its_config_and_settings() {
        let argv = ["job", "worker", "--coordinator", "c:6123", "--slots", "2"];
        let argv = [&argv[..], &["--config", "/etc/weir/weir.toml", "--set", "memory.slots=2"]];
        let cli = Cli::parse_from(hoist_engine_options(
            argv.concat().into_iter().map(String::from).collect(),
        ));
        let Some(Role::Worker(worker)) = cli.role else { panic!("the worker role is kept") };
        assert_eq!(worker.config, Some(PathBuf::from("/etc/weir/weir.toml")));
        assert_eq!((worker.slots, worker.overrides), (2, vec!["memory.slots=2".to_string()]));
    }

    #[test]
    fn bad_settings_are_reported() {
        let unknown = load_config(&args(None, &["no_such_setting=1"])).unwrap_err();
        assert!(unknown.to_string().contains("no_such_setting"), "{unknown}");
        let wrong_type = load_config(&args(None, &["parallelism=many"])).unwrap_err();
        assert!(wrong_type.to_string().contains("parallelism"), "{wrong_type}");
        assert!(matches!(load_config(&args(None, &["parallelism"])), Err(Error::SetSyntax(_))));
        let mut missing = args(None, &[]);
        missing.config = Some(PathBuf::from("/nonexistent/weir.toml"));
        assert!(load_config(&missing).is_err());
    }
}
