//! `weir`: Weir's command line. Each subcommand lives in its own module with its arguments
//! (a clap `Args` struct) and a `run` that writes to standard output; `main` parses, runs,
//! and turns errors into `error: …` on standard error and an exit code.

mod api;
mod jobs;
mod memory;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Weir's command line.
#[derive(Parser)]
#[command(name = "weir", version, about = "Weir's command line", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Print how a process's memory divides into runtime overhead, network, managed and task
    /// memory, or why the settings cannot work and how to fix them.
    Memory(memory::MemoryArgs),
    /// List, inspect, savepoint, stop or cancel jobs through their REST API.
    Jobs(jobs::JobsArgs),
}

impl Command {
    fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        match self {
            Self::Memory(args) => args.run(out),
            Self::Jobs(args) => args.run(out),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run(&mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit_code(&error)
        }
    }
}

/// 2 for settings that cannot work (as for arguments clap rejects), 1 for other failures.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    if error.is::<weir_memory::MemoryError>() { ExitCode::from(2) } else { ExitCode::FAILURE }
}
