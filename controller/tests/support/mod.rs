//! Shared by the controller tests: a StreamJob from the examples and a job REST API that
//! the tests script.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use weir_operator::Result;
use weir_operator::crd::{SavepointFormat, StreamJob};
use weir_operator::jobapi::{JobApi, JobView};

/// `examples/window-count.yaml` in namespace `jobs`, as the API server returns it.
pub fn window_count() -> StreamJob {
    let path = format!("{}/../examples/window-count.yaml", weir_tests::manifest_dir());
    let mut job: StreamJob = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    job.metadata.namespace = Some("jobs".into());
    job.metadata.uid = Some("uid-7".into());
    job.metadata.generation = Some(1);
    job.metadata.resource_version = Some("1".into());
    job
}

/// A job REST API answering from `state`; records the calls.
#[derive(Default, Clone)]
pub struct FakeJobApi {
    /// What `observe` answers (`None`: unreachable).
    pub view: Arc<Mutex<Option<JobView>>>,
    /// Calls made: `savepoint {name} stop=… format=…` and `cancel`.
    pub calls: Arc<Mutex<Vec<String>>>,
    /// Savepoints complete only while this is not write-locked (a test holds it to keep a
    /// savepoint in flight).
    pub savepoint_gate: Arc<tokio::sync::RwLock<()>>,
}

impl FakeJobApi {
    /// A job named `window-count` in `state`.
    pub fn with_state(state: &str) -> Self {
        let api = FakeJobApi::default();
        api.set_state(state);
        api
    }

    /// Sets the job's state.
    pub fn set_state(&self, state: &str) {
        self.start_as("window-count", state);
    }

    /// A new job `name` in `state`, as a coordinator that starts reports it.
    pub fn start_as(&self, name: &str, state: &str) {
        *self.view.lock().unwrap() = Some(JobView {
            name: name.into(),
            state: state.into(),
            stopped_with_savepoint: None,
            last_checkpoint: None,
        });
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl JobApi for FakeJobApi {
    async fn observe(&self, base: &str) -> Result<JobView> {
        self.view.lock().unwrap().clone().ok_or_else(|| weir_operator::Error::JobApi {
            url: base.into(),
            message: "connection refused".into(),
        })
    }

    async fn savepoint(
        &self,
        _: &str,
        name: &str,
        stop: bool,
        format: SavepointFormat,
    ) -> Result<String> {
        let format = serde_json::to_value(format).unwrap();
        let format = format.as_str().unwrap();
        self.calls.lock().unwrap().push(format!("savepoint {name} stop={stop} format={format}"));
        let _open = self.savepoint_gate.read().await;
        let location = "s3://b/savepoints/sp-1".to_string();
        if stop {
            let mut view = self.view.lock().unwrap();
            if let Some(view) = view.as_mut() {
                view.state = "stopped".into();
                view.stopped_with_savepoint = Some(location.clone());
            }
        }
        Ok(location)
    }

    async fn cancel(&self, _: &str, name: &str) -> Result<()> {
        self.calls.lock().unwrap().push(format!("cancel {name}"));
        if let Some(view) = self.view.lock().unwrap().as_mut() {
            view.state = "cancelled".into();
        }
        Ok(())
    }
}
