//! A cluster for the controller's stateful tests: the emulated API server, a kubelet that
//! reports pods running, a fake job REST API, and the controller run as the binary runs it.

pub mod kubelet;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use tokio::task::JoinHandle;
use weir_operator::context::Settings;
use weir_operator::crd::StreamJob;

use crate::apiserver::ApiServer;
use crate::harness;
use crate::support::FakeJobApi;

/// The namespace the tests' jobs live in.
pub const NAMESPACE: &str = "jobs";
/// How long a condition may take to hold.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The emulated cluster and the controller running against it.
pub struct Cluster {
    /// The job REST API the controller talks to.
    pub job_api: FakeJobApi,
    client: Client,
    controller: Option<JoinHandle<()>>,
    kubelet: JoinHandle<()>,
    // Last: dropped after the tasks using it are aborted.
    _server: ApiServer,
}

impl Cluster {
    /// An empty cluster with its kubelet running, and the controller.
    pub async fn start() -> Cluster {
        harness::init_logging();
        let server = ApiServer::start().await;
        let client = server.client();
        let job_api = FakeJobApi::default();
        let kubelet =
            tokio::spawn(kubelet::run(Api::namespaced(client.clone(), NAMESPACE), job_api.clone()));
        let mut cluster = Cluster { job_api, client, controller: None, kubelet, _server: server };
        cluster.start_controller();
        cluster
    }

    /// Starts the controller (over every namespace, as the binary does by default).
    pub fn start_controller(&mut self) {
        let settings = Settings {
            poll_interval: Duration::from_millis(200),
            step_interval: Duration::from_millis(50),
            ..Settings::default()
        };
        let job_api = Arc::new(self.job_api.clone());
        self.controller = Some(harness::run_controller(self.client.clone(), job_api, settings));
    }

    /// Stops the controller wherever it is, as a crash would.
    pub async fn stop_controller(&mut self) {
        if let Some(controller) = self.controller.take() {
            controller.abort();
            assert!(controller.await.unwrap_err().is_cancelled());
        }
    }

    /// The StreamJobs of the namespace.
    pub fn jobs(&self) -> Api<StreamJob> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// An API of `K` in the namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// Applies `job` as `kubectl apply --server-side` does.
    pub async fn apply(&self, job: &StreamJob) {
        let mut body = serde_json::to_value(job).unwrap();
        body["metadata"] = serde_json::json!({ "name": job.metadata.name });
        let params = PatchParams::apply("kubectl");
        self.jobs()
            .patch(job.metadata.name.as_deref().unwrap(), &params, &Patch::Apply(body))
            .await
            .unwrap();
    }

    /// Changes `job`'s spec with a merge patch, as `kubectl patch --type merge` does.
    pub async fn patch_spec(&self, job: &str, spec: Value) {
        let patch = serde_json::json!({ "spec": spec });
        self.jobs().patch(job, &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    }

    /// The names of the namespace's pods with `labels`, sorted.
    pub async fn pod_names(&self, labels: &str) -> Vec<String> {
        let pods = self.api::<Pod>().list(&ListParams::default().labels(labels)).await.unwrap();
        let mut names: Vec<String> =
            pods.items.into_iter().filter_map(|p| p.metadata.name).collect();
        names.sort();
        names
    }

    /// Waits until `job` exists and `condition` holds for it; returns it.
    pub async fn job_when(
        &self,
        job: &str,
        what: &str,
        condition: impl Fn(&StreamJob) -> bool,
    ) -> StreamJob {
        let jobs = self.jobs();
        harness::eventually(what, PATIENCE, || async {
            jobs.get_opt(job).await.unwrap().filter(|j| condition(j))
        })
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kubelet.abort();
        if let Some(controller) = &self.controller {
            controller.abort();
        }
    }
}
