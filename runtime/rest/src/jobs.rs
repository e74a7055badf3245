//! The jobs the API serves: each job's live status and the commands it takes.

use std::sync::{Arc, PoisonError, RwLock};

use weir_worker::{JobControl, JobStatus};

use crate::{Error, Result};

/// One job the API serves.
#[derive(Clone, Debug)]
pub struct ServedJob {
    /// Its live status.
    pub status: JobStatus,
    /// Savepoints and cancel.
    pub control: JobControl,
}

/// The jobs the API serves, shared with whoever adds jobs; clones share the list.
#[derive(Clone, Debug, Default)]
pub struct Jobs(Arc<RwLock<Vec<ServedJob>>>);

impl Jobs {
    /// No jobs yet.
    pub fn new() -> Self {
        Jobs::default()
    }

    /// Serves one more job.
    pub fn add(&self, status: JobStatus, control: JobControl) {
        let mut jobs = self.0.write().unwrap_or_else(PoisonError::into_inner);
        jobs.push(ServedJob { status, control });
    }

    /// Every job, in the order they were added.
    pub fn all(&self) -> Vec<ServedJob> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The job called `name` (the latest added, if several share it).
    pub fn get(&self, name: &str) -> Result<ServedJob> {
        let jobs = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let job = jobs.iter().rev().find(|job| job.status.name() == name);
        job.cloned().ok_or_else(|| Error::UnknownJob(name.to_string()))
    }
}

impl From<&weir_worker::JobClient> for Jobs {
    fn from(client: &weir_worker::JobClient) -> Self {
        let jobs = Jobs::new();
        jobs.add(client.status(), client.control());
        jobs
    }
}
