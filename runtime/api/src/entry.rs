//! The job binary's entry point: parses the command line, loads configuration (defaults, a
//! file, `WEIR__…` environment variables, command-line options, in rising precedence), builds
//! the job and runs it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use tracing::error;
use weir_operators::function::UserError;
use weir_worker::ExecutionConfig;

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
    /// The job's own arguments, e.g. `--input words.txt`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "JOB ARGS")]
    job_args: Vec<String>,
}

/// Runs a job binary: `JOB [run] [--parallelism N] [--config FILE] [--set k=v]… [JOB ARGS…]`.
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
    let cli = Cli::parse();
    let args = match cli.role {
        Some(Role::Run(args)) => args,
        None => cli.run,
    };
    match run(args, job) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            error!("{failure}");
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn run<F>(args: RunArgs, job: F) -> Result<(), UserError>
where
    F: FnOnce(&mut StreamExecutionEnvironment) -> Result<(), UserError>,
{
    let config = load_config(&args)?;
    let parameters = Parameters::from_args(args.job_args)?;
    let mut env = StreamExecutionEnvironment::with_parameters(config, parameters);
    job(&mut env)?;
    let result = env.execute()?;
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
    figment.extract().map_err(|e| Error::Config(Box::new(e)))
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
