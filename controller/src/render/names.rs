//! Names and labels of the objects a StreamJob owns, and the owner reference they carry.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::ObjectMeta;

use crate::crd::StreamJob;

/// Label: the StreamJob a pod belongs to.
pub const JOB_LABEL: &str = "weir.dev/job";
/// Label: `coordinator` or `worker`.
pub const ROLE_LABEL: &str = "weir.dev/role";
/// Label: the deployment revision a pod belongs to.
pub const REVISION_LABEL: &str = "weir.dev/revision";
/// The port workers reach the coordinator on.
pub const RPC_PORT: i32 = 6123;
/// The port of the coordinator's REST API.
pub const REST_PORT: i32 = 8081;

/// The role of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The job's coordinator.
    Coordinator,
    /// A worker offering slots.
    Worker,
}

impl Role {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Worker => "worker",
        }
    }
}

/// The StreamJob's name.
pub fn job_name(job: &StreamJob) -> String {
    job.metadata.name.clone().unwrap_or_default()
}

/// The ConfigMap holding the engine's settings.
pub fn config_map_name(job: &StreamJob) -> String {
    format!("{}-config", job_name(job))
}

/// The coordinator's Service (and the host name workers and the operator use).
pub fn service_name(job: &StreamJob) -> String {
    format!("{}-coordinator", job_name(job))
}

/// A pod of `revision`: the revision in the name keeps new pods clear of terminating ones.
pub fn pod_name(job: &StreamJob, revision: u32, role: Role, index: Option<u32>) -> String {
    match index {
        Some(i) => format!("{}-r{revision}-{}-{i}", job_name(job), role.as_str()),
        None => format!("{}-r{revision}-{}", job_name(job), role.as_str()),
    }
}

/// The label selector of all the job's pods.
pub fn job_selector(job: &StreamJob) -> String {
    format!("{JOB_LABEL}={}", job_name(job))
}

/// Labels of every object the job owns; pods add their role and revision.
pub fn labels(job: &StreamJob, pod: Option<(Role, u32)>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (JOB_LABEL.to_string(), job_name(job)),
        ("app.kubernetes.io/managed-by".to_string(), "weir-operator".to_string()),
    ]);
    if let Some((role, revision)) = pod {
        labels.insert(ROLE_LABEL.to_string(), role.as_str().to_string());
        labels.insert(REVISION_LABEL.to_string(), revision.to_string());
    }
    labels
}

/// Metadata of an owned object: name, namespace, labels, and the job as controller owner
/// (so that deleting the job garbage-collects it and its changes wake the controller).
pub fn owned_meta(job: &StreamJob, name: String, pod: Option<(Role, u32)>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: job.metadata.namespace.clone(),
        labels: Some(labels(job, pod)),
        owner_references: owner_reference(job).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

fn owner_reference(job: &StreamJob) -> Option<OwnerReference> {
    job.controller_owner_ref(&())
}
