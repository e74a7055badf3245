//! `StreamJobStatus`: what the operator observed and did, written with server-side apply.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a `StreamJob`.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamJobStatus {
    /// Where the job is in its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `Ready`, `Progressing` and `Degraded`, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The job's name as its coordinator reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The parallelism of the deployed job (the scale subresource's replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// Label selector of the job's pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// What is deployed now, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// An upgrade, suspend or delete in progress, or the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    /// The latest savepoint the operator took or saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint: Option<Snapshot>,
    /// The latest completed checkpoint the coordinator reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<Snapshot>,
    /// The `savepointTriggerNonce` last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_nonce: Option<i64>,
    /// The last error, cleared when the job is healthy again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How each pod's memory is divided (by the memory model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<PodMemory>,
}

/// Where the job is in its life.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Pods are being created or the job is starting.
    Deploying,
    /// The job runs.
    Running,
    /// A spec change is being rolled out.
    Upgrading,
    /// No pods, by request.
    Suspended,
    /// The job ended by itself.
    Finished,
    /// The job failed and is not restarted, or the spec cannot be deployed.
    Failed,
}

/// One deployment of the job: pods started together from one spec and one restore point.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Counts deployments; part of the pod names, so new pods never clash with old ones.
    pub revision: u32,
    /// The hash of the spec fields that shape the pods.
    pub spec_hash: String,
    /// The savepoint or checkpoint the job was started from (`latest`: the newest complete
    /// checkpoint in storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
}

/// An upgrade, suspend or delete: the state machine's progress, recorded before each step.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Upgrade {
    /// Why the running job is being taken down.
    pub cause: UpgradeCause,
    /// The upgrade mode in force when it started.
    pub mode: crate::crd::UpgradeMode,
    /// The step reached.
    pub step: UpgradeStep,
    /// Where the next deployment restores from (once known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
}

/// Why a running job is taken down.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeCause {
    /// The spec changed (image, parallelism, resources, …).
    SpecChange,
    /// `state: suspended`.
    Suspend,
    /// The StreamJob is being deleted.
    Delete,
}

/// The steps of taking down a running job.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeStep {
    /// Stopping the job (with a savepoint in `savepoint` mode).
    Stopping,
    /// The restore point is recorded; the old pods are being deleted.
    Deleting,
    /// Old pods gone; the new deployment (if any) is created next.
    Done,
}

/// A savepoint or checkpoint.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Where it is.
    pub location: String,
    /// The checkpoint id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// The memory breakdown of the coordinator and worker pods.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PodMemory {
    /// The coordinator pod.
    pub coordinator: MemoryStatus,
    /// Each worker pod.
    pub worker: MemoryStatus,
}

/// One pod's memory, as the memory model divides it.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStatus {
    /// The pod's memory limit.
    pub process: String,
    /// Runtime overhead.
    pub runtime_overhead: String,
    /// Network buffers.
    pub network: String,
    /// Managed memory (RocksDB).
    pub managed: String,
    /// Task memory (user code and heap state).
    pub task: String,
    /// Slots in the pod.
    pub slots: u32,
}

impl From<&weir_memory::MemoryBreakdown> for MemoryStatus {
    fn from(memory: &weir_memory::MemoryBreakdown) -> Self {
        MemoryStatus {
            process: memory.process.to_string(),
            runtime_overhead: memory.runtime_overhead.size.to_string(),
            network: memory.network.size.to_string(),
            managed: memory.managed.size.to_string(),
            task: memory.task.size.to_string(),
            slots: memory.slots,
        }
    }
}
