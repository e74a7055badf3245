//! The job's REST API on its coordinator, as the controller uses it: observe the job, take
//! a savepoint (and stop), cancel. A trait, so that tests can stand in for the job.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::crd::{SavepointFormat, Snapshot};
use crate::{Error, Result};

/// What the coordinator reports about its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    /// The job's name (its id in the REST API).
    pub name: String,
    /// `created`, `running`, `restarting`, `finished`, `failed`, `cancelled` or `stopped`.
    pub state: String,
    /// Where the savepoint is, when the job was stopped with one.
    pub stopped_with_savepoint: Option<String>,
    /// The latest completed checkpoint, if any.
    pub last_checkpoint: Option<Snapshot>,
}

impl JobView {
    /// Whether the job is up (running or restarting after a failure).
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "created" | "running" | "restarting")
    }
}

/// The calls the controller makes; `base` is the coordinator's REST URL.
#[async_trait]
pub trait JobApi: Send + Sync {
    /// The coordinator's job (`GET /jobs`, `/jobs/{name}`, `/jobs/{name}/checkpoints`).
    async fn observe(&self, base: &str) -> Result<JobView>;
    /// Takes a savepoint of job `name` in `format` (`POST /jobs/{name}/savepoints`), stopping
    /// the job after it when `stop`; returns where it is.
    async fn savepoint(
        &self,
        base: &str,
        name: &str,
        stop: bool,
        format: SavepointFormat,
    ) -> Result<String>;
    /// Cancels job `name` (`POST /jobs/{name}/cancel`).
    async fn cancel(&self, base: &str, name: &str) -> Result<()>;
}

/// [`JobApi`] over HTTP.
#[derive(Debug, Clone)]
pub struct HttpJobApi {
    client: reqwest::Client,
    savepoint_timeout: Duration,
}

impl HttpJobApi {
    /// A client whose savepoint calls wait up to `savepoint_timeout`, and other calls 10 s.
    pub fn new(savepoint_timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::JobApi { url: String::new(), message: e.to_string() })?;
        Ok(HttpJobApi { client, savepoint_timeout })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T> {
        let error = |message: String| Error::JobApi { url: url.to_string(), message };
        let response = request.send().await.map_err(|e| error(e.to_string()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| error(e.to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(body);
            return Err(error(format!("{status}: {message}")));
        }
        serde_json::from_str(&body).map_err(|e| error(format!("unexpected answer: {e}")))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: String) -> Result<T> {
        self.call(self.client.get(&url), &url).await
    }
}

#[derive(Deserialize)]
struct JobList {
    jobs: Vec<JobDetails>,
}

#[derive(Deserialize)]
struct JobDetails {
    name: String,
    state: String,
    #[serde(default)]
    stopped_with_savepoint: Option<String>,
}

#[derive(Deserialize)]
struct Checkpoints {
    history: Vec<Checkpoint>,
}

#[derive(Deserialize)]
struct Checkpoint {
    id: u64,
    kind: String,
    status: String,
    location: String,
}

#[derive(Deserialize)]
struct SavepointTaken {
    location: String,
}

#[async_trait]
impl JobApi for HttpJobApi {
    async fn observe(&self, base: &str) -> Result<JobView> {
        let list: JobList = self.get(format!("{base}/jobs")).await?;
        let Some(first) = list.jobs.into_iter().next() else {
            return Err(Error::JobApi { url: base.into(), message: "serves no job".into() });
        };
        let details: JobDetails = self.get(format!("{base}/jobs/{}", first.name)).await?;
        let checkpoints: Checkpoints =
            self.get(format!("{base}/jobs/{}/checkpoints", first.name)).await?;
        let last_checkpoint = (checkpoints.history.into_iter().rev())
            .find(|c| c.kind == "checkpoint" && c.status == "completed")
            .map(|c| Snapshot { location: c.location, id: Some(c.id) });
        Ok(JobView {
            name: details.name,
            state: details.state,
            stopped_with_savepoint: details.stopped_with_savepoint,
            last_checkpoint,
        })
    }

    async fn savepoint(
        &self,
        base: &str,
        name: &str,
        stop: bool,
        format: SavepointFormat,
    ) -> Result<String> {
        let url = format!("{base}/jobs/{name}/savepoints");
        let request = (self.client.post(&url))
            .timeout(self.savepoint_timeout)
            .json(&serde_json::json!({ "stop": stop, "format": format }));
        let taken: SavepointTaken = self.call(request, &url).await?;
        Ok(taken.location)
    }

    async fn cancel(&self, base: &str, name: &str) -> Result<()> {
        let url = format!("{base}/jobs/{name}/cancel");
        let _: serde_json::Value = self.call(self.client.post(&url), &url).await?;
        Ok(())
    }
}
