//! Controlling a job that runs in the background: savepoints, stop-with-savepoint, cancel,
//! and its result (Flink's `JobClient`).

use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use weir_types::SavepointFormat;

use crate::{Error, JobResult, JobStatus, Result};

/// What a job is asked to do while it runs.
#[derive(Debug)]
pub enum JobCommand {
    /// Take a savepoint as `options` say.
    Savepoint {
        /// Where it goes, in which format, and whether the job stops after it.
        options: SavepointOptions,
        /// Gets the savepoint's location or why it failed.
        reply: Sender<std::result::Result<String, String>>,
    },
    /// Stop every task now, without a savepoint.
    Cancel,
}

/// What a savepoint is asked for with (Flink's savepoint and stop requests); also the JSON
/// body of the REST API's `POST /jobs/{name}/savepoints`, every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SavepointOptions {
    /// Where it goes, else the configured `checkpointing.savepoint_dir`.
    pub dir: Option<String>,
    /// Stop the job once it is complete.
    pub stop: bool,
    /// How keyed state is laid out in it.
    pub format: SavepointFormat,
}

/// Commands to a running job, cloneable so that several callers (the REST API among them)
/// can take savepoints or cancel it without owning it.
#[derive(Clone, Debug)]
pub struct JobControl {
    job_name: String,
    commands: Sender<JobCommand>,
}

impl JobControl {
    /// Takes a savepoint under `dir` (or the configured `checkpointing.savepoint_dir`) and
    /// returns its location once it is complete; the job goes on.
    pub fn trigger_savepoint(&self, dir: Option<&str>) -> Result<String> {
        self.savepoint(SavepointOptions { dir: dir.map(str::to_string), ..Default::default() })
    }

    /// Takes a savepoint, then stops the job; returns the savepoint's location. The job's
    /// result ([`JobClient::wait`]) names it too.
    pub fn stop_with_savepoint(&self, dir: Option<&str>) -> Result<String> {
        let dir = dir.map(str::to_string);
        self.savepoint(SavepointOptions { dir, stop: true, ..Default::default() })
    }

    /// Takes a savepoint as `options` say; blocks until it is complete (its location) or
    /// failed.
    pub fn savepoint(&self, options: SavepointOptions) -> Result<String> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let command = JobCommand::Savepoint { options, reply };
        let gone = || Error::Savepoint {
            job: self.job_name.clone(),
            reason: "the job is no longer running".to_string(),
        };
        self.commands.send(command).map_err(|_| gone())?;
        match answer.recv().map_err(|_| gone())? {
            Ok(location) => Ok(location),
            Err(reason) => Err(Error::Savepoint { job: self.job_name.clone(), reason }),
        }
    }

    /// Cancels the job; [`JobClient::wait`] then reports it cancelled.
    pub fn cancel(&self) {
        let _ = self.commands.send(JobCommand::Cancel);
    }
}

/// A job running on its own thread.
pub struct JobClient {
    control: JobControl,
    status: JobStatus,
    thread: JoinHandle<Result<JobResult>>,
}

impl JobClient {
    /// Runs `drive` on a thread named `thread`, with the commands this client sends and the
    /// status it reads; records `drive`'s result in the status when the job ends.
    pub(crate) fn spawn<F>(job_name: &str, thread: &str, drive: F) -> Result<Self>
    where
        F: FnOnce(&crossbeam_channel::Receiver<JobCommand>, &JobStatus) -> Result<JobResult>
            + Send
            + 'static,
    {
        let (commands, control) = crossbeam_channel::unbounded();
        let status = JobStatus::new(job_name);
        let driver_status = status.clone();
        let thread = std::thread::Builder::new()
            .name(thread.to_string())
            .spawn(move || {
                let result = drive(&control, &driver_status);
                driver_status.ended(&result);
                result
            })
            .map_err(|source| Error::Spawn { task: thread.to_string(), source })?;
        let control = JobControl { job_name: job_name.to_string(), commands };
        Ok(JobClient { control, status, thread })
    }

    /// Commands to the job that outlive this client's borrow.
    pub fn control(&self) -> JobControl {
        self.control.clone()
    }

    /// The job's live status.
    pub fn status(&self) -> JobStatus {
        self.status.clone()
    }

    /// Takes a savepoint under `dir` (or the configured `checkpointing.savepoint_dir`) and
    /// returns its location once it is complete; the job goes on.
    pub fn trigger_savepoint(&self, dir: Option<&str>) -> Result<String> {
        self.control.trigger_savepoint(dir)
    }

    /// Takes a savepoint, then stops the job; returns the savepoint's location. The job's
    /// result ([`Self::wait`]) names it too.
    pub fn stop_with_savepoint(&self, dir: Option<&str>) -> Result<String> {
        self.control.stop_with_savepoint(dir)
    }

    /// Takes a savepoint as `options` say (where, in which format, whether to stop); returns
    /// its location once it is complete.
    pub fn savepoint(&self, options: SavepointOptions) -> Result<String> {
        self.control.savepoint(options)
    }

    /// Cancels the job; [`Self::wait`] then reports it cancelled.
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// Waits for the job to end.
    pub fn wait(self) -> Result<JobResult> {
        self.thread.join().unwrap_or_else(|_| {
            Err(Error::JobFailed {
                job: self.control.job_name,
                restarts: 0,
                source: weir_operators::Error::Runtime("the job's driver thread panicked".into()),
            })
        })
    }
}
