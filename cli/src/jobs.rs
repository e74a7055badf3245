//! Job control through the REST API: list jobs, show one, take a savepoint, stop with a
//! savepoint, cancel (Flink's `list`, `savepoint`, `stop`, `cancel`).

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use weir_types::SavepointFormat;

use crate::api::Api;

/// Where the API is, for every job command.
#[derive(Args)]
pub struct JobsArgs {
    /// The REST API's address (`--rest-bind` of the job, later the coordinator's).
    #[arg(long, env = "WEIR_URL", default_value = "http://127.0.0.1:8081", global = true)]
    url: String,
    /// Seconds to wait for an answer (a savepoint waits for its checkpoint).
    #[arg(long, default_value_t = 600, global = true)]
    timeout_secs: u64,
    #[command(subcommand)]
    command: JobCommand,
}

/// What to do.
#[derive(Subcommand)]
enum JobCommand {
    /// The jobs with their state, restarts and uptime.
    List,
    /// One job: state, operators with their records in and out, checkpoints.
    Status {
        /// The job's name.
        job: String,
    },
    /// Take a savepoint; the job goes on. Prints the savepoint's location.
    Savepoint {
        /// The job's name.
        job: String,
        /// Where the savepoint goes (else the job's `checkpointing.savepoint_dir`).
        dir: Option<String>,
        /// `canonical` (any backend restores it) or `native` (the backend's own files:
        /// faster with large RocksDB state, restored by the same backend only).
        #[arg(long = "type", value_name = "FORMAT", default_value = "canonical")]
        format: SavepointFormat,
    },
    /// Take a savepoint, then stop the job. Prints the savepoint's location.
    Stop {
        /// The job's name.
        job: String,
        /// Where the savepoint goes (else the job's `checkpointing.savepoint_dir`).
        #[arg(long)]
        savepoint_dir: Option<String>,
        /// `canonical` (any backend restores it) or `native` (the backend's own files:
        /// faster with large RocksDB state, restored by the same backend only).
        #[arg(long = "type", value_name = "FORMAT", default_value = "canonical")]
        format: SavepointFormat,
    },
    /// Cancel the job without a savepoint.
    Cancel {
        /// The job's name.
        job: String,
    },
}

impl JobsArgs {
    /// Runs the command against the API, writing what it says to `out`.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let api = Api::new(&self.url, Duration::from_secs(self.timeout_secs))?;
        match self.command {
            JobCommand::List => list(&api, out),
            JobCommand::Status { job } => status(&api, &job, out),
            JobCommand::Savepoint { job, dir, format } => {
                savepoint(&api, &job, json!({ "dir": dir, "stop": false, "format": format }), out)
            }
            JobCommand::Stop { job, savepoint_dir, format } => {
                let request = json!({ "dir": savepoint_dir, "stop": true, "format": format });
                savepoint(&api, &job, request, out)
            }
            JobCommand::Cancel { job } => {
                api.post(&format!("/jobs/{job}/cancel"), &json!({}))?;
                writeln!(out, "cancelling {job}")?;
                Ok(())
            }
        }
    }
}

fn list(api: &Api, out: &mut dyn Write) -> anyhow::Result<()> {
    let jobs = api.get("/jobs")?;
    writeln!(out, "{:<24} {:<12} {:>8} {:>10}", "JOB", "STATE", "RESTARTS", "UPTIME_S")?;
    for job in jobs["jobs"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "{:<24} {:<12} {:>8} {:>10.1}",
            text(&job["name"]),
            text(&job["state"]),
            job["restarts"],
            job["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0
        )?;
    }
    Ok(())
}

fn status(api: &Api, job: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let details = api.get(&format!("/jobs/{job}"))?;
    let checkpoints = api.get(&format!("/jobs/{job}/checkpoints"))?;
    writeln!(
        out,
        "{job}: {} for {:.1} s, {} restarts",
        text(&details["state"]),
        details["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0,
        details["restarts"]
    )?;
    if let Some(failure) = details["last_failure"]["message"].as_str() {
        writeln!(out, "last failure: {failure}")?;
    }
    writeln!(
        out,
        "{:<32} {:>11} {:>14} {:>14}",
        "OPERATOR", "PARALLELISM", "RECORDS_IN", "RECORDS_OUT"
    )?;
    for vertex in details["vertices"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "{:<32} {:>11} {:>14} {:>14}",
            text(&vertex["name"]),
            vertex["parallelism"],
            vertex["records_in"],
            vertex["records_out"]
        )?;
    }
    let last = checkpoints["history"].as_array().and_then(|history| history.last());
    writeln!(
        out,
        "checkpoints: {} completed, {} failed; last: {}",
        checkpoints["completed"],
        checkpoints["failed"],
        last.map_or("none".to_string(), |c| {
            format!("{} {} in {} ms", c["id"], text(&c["status"]), c["duration_ms"])
        })
    )?;
    if let Some(savepoint) = checkpoints["latest_savepoint"].as_str() {
        writeln!(out, "latest savepoint: {savepoint}")?;
    }
    Ok(())
}

/// Posts the savepoint `request` for `job` and prints where the savepoint is.
fn savepoint(api: &Api, job: &str, request: Value, out: &mut dyn Write) -> anyhow::Result<()> {
    let answer = api.post(&format!("/jobs/{job}/savepoints"), &request)?;
    writeln!(out, "{}", text(&answer["location"]))?;
    Ok(())
}

/// A JSON string's text, or the value as JSON.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}
