//! What the controller sees of a job's pods: role, revision, worker index and how each pod
//! is doing, read from labels, names and pod status.

use k8s_openapi::api::core::v1::Pod;

use crate::render::names::{REVISION_LABEL, ROLE_LABEL, Role};

/// The engine's exit code when the job itself failed (its restart strategy gave up).
pub const JOB_FAILED_EXIT_CODE: i32 = 1;

/// How a pod is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodHealth {
    /// Not running yet.
    Pending,
    /// Running.
    Running,
    /// Exited 0: the job finished.
    Succeeded,
    /// Exited with the job-failed code: the job failed for good.
    JobFailed,
    /// Gone another way (killed, evicted, out of memory, node lost): to be replaced.
    Lost,
    /// Being deleted.
    Terminating,
}

/// One of the job's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// Its name.
    pub name: String,
    /// Coordinator or worker.
    pub role: Role,
    /// The deployment revision it belongs to.
    pub revision: u32,
    /// A worker's index.
    pub index: Option<u32>,
    /// How it is doing.
    pub health: PodHealth,
}

impl PodView {
    /// The view of `pod`, if it carries the operator's labels.
    pub fn of(pod: &Pod) -> Option<PodView> {
        let labels = pod.metadata.labels.as_ref()?;
        let role = match labels.get(ROLE_LABEL)?.as_str() {
            "coordinator" => Role::Coordinator,
            "worker" => Role::Worker,
            _ => return None,
        };
        let revision = labels.get(REVISION_LABEL)?.parse().ok()?;
        let name = pod.metadata.name.clone()?;
        let index = match role {
            Role::Worker => name.rsplit('-').next()?.parse().ok(),
            Role::Coordinator => None,
        };
        Some(PodView { name, role, revision, index, health: health(pod) })
    }
}

fn health(pod: &Pod) -> PodHealth {
    if pod.metadata.deletion_timestamp.is_some() {
        return PodHealth::Terminating;
    }
    let status = pod.status.as_ref();
    let exit_code = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|statuses| statuses.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|state| state.terminated.as_ref())
        .map(|terminated| terminated.exit_code);
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => PodHealth::Running,
        Some("Succeeded") => PodHealth::Succeeded,
        Some("Failed") if exit_code == Some(JOB_FAILED_EXIT_CODE) => PodHealth::JobFailed,
        Some("Failed") | Some("Unknown") => PodHealth::Lost,
        _ => PodHealth::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str, exit_code: Option<i32>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "wc-r2-worker-3",
                "labels": { "weir.dev/role": "worker", "weir.dev/revision": "2" },
            },
            "status": {
                "phase": phase,
                "containerStatuses": exit_code.map(|code| vec![serde_json::json!({
                    "name": "weir", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 0, "state": { "terminated": { "exitCode": code } },
                })]),
            },
        }))
        .unwrap()
    }

    #[test]
    fn labels_name_and_status_give_the_view() {
        let view = PodView::of(&pod("Running", None)).unwrap();
        assert_eq!((view.role, view.revision, view.index), (Role::Worker, 2, Some(3)));
        assert_eq!(view.health, PodHealth::Running);
        assert_eq!(health(&pod("Failed", Some(1))), PodHealth::JobFailed);
        assert_eq!(health(&pod("Failed", Some(137))), PodHealth::Lost);
        assert_eq!(health(&pod("Succeeded", Some(0))), PodHealth::Succeeded);
        assert_eq!(health(&pod("Pending", None)), PodHealth::Pending);
    }
}
