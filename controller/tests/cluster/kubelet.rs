//! A kubelet for the stateful tests: it runs no containers but writes the pod status a real
//! kubelet would once the container runs, and "starts" the fake job when a coordinator pod
//! comes up (what the job binary would report through its REST API).

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tracing::info;
use weir_operator::render::names::{JOB_LABEL, ROLE_LABEL};

use crate::support::FakeJobApi;

/// Reports every new pod of `pods` running, until the watch fails.
pub async fn run(pods: Api<Pod>, job_api: FakeJobApi) {
    let stream = watcher(pods.clone(), watcher::Config::default()).applied_objects();
    futures::pin_mut!(stream);
    while let Some(pod) = stream.try_next().await.expect("the kubelet's watch") {
        let started = pod.status.as_ref().and_then(|s| s.phase.as_ref()).is_some();
        if started || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if labels.get(ROLE_LABEL).map(String::as_str) == Some("coordinator") {
            job_api.start_as(&labels[JOB_LABEL], "running");
        }
        let status = json!({ "status": {
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": "True" }],
            "containerStatuses": [{
                "name": "weir", "image": "weir", "imageID": "", "ready": true, "restartCount": 0,
                "started": true, "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } },
            }],
        }});
        match pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await {
            Ok(_) => info!(pod = %name, "running"),
            // Deleted before it started.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => panic!("the kubelet cannot report {name}: {error}"),
        }
    }
}
