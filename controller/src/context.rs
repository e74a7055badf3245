//! What every reconcile shares: the Kubernetes client, the job REST client, the event
//! recorder, the metrics and the settings.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::crd::StreamJob;
use crate::jobapi::JobApi;
use crate::metrics::Metrics;
use crate::render::names::{self, REST_PORT};

/// The field manager of everything the operator applies, and its event reporter.
pub const MANAGER: &str = "weir-operator";

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often a running job is polled through its REST API.
    pub poll_interval: Duration,
    /// How soon to look again while a step is under way.
    pub step_interval: Duration,
    /// The coordinator's REST URL; `{service}` and `{namespace}` are replaced.
    pub rest_url_template: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: Duration::from_secs(15),
            step_interval: Duration::from_secs(2),
            rest_url_template: format!("http://{{service}}.{{namespace}}.svc:{REST_PORT}"),
        }
    }
}

/// Shared by every reconcile.
#[derive(Clone)]
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// The jobs' REST API.
    pub job_api: Arc<dyn JobApi>,
    /// Publishes Kubernetes events.
    pub recorder: Recorder,
    /// The controller's metrics.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub settings: Settings,
}

impl Context {
    /// A context with an event recorder reporting as `instance` (the operator's pod).
    pub fn new(
        client: Client,
        job_api: Arc<dyn JobApi>,
        metrics: Arc<Metrics>,
        settings: Settings,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter { controller: MANAGER.into(), instance };
        let recorder = Recorder::new(client.clone(), reporter);
        Context { client, job_api, recorder, metrics, settings }
    }

    /// The REST URL of `job`'s coordinator.
    pub fn rest_url(&self, job: &StreamJob) -> String {
        let namespace = job.metadata.namespace.as_deref().unwrap_or_default();
        (self.settings.rest_url_template)
            .replace("{service}", &names::service_name(job))
            .replace("{namespace}", namespace)
    }
}
