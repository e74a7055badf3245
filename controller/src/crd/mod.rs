//! The `StreamJob` custom resource (`weir.dev/v1alpha1`): what a user asks for.
//!
//! The spec is in this module, the status in [`status`], the schema of the memory settings
//! (which come from `weir-memory`) in [`memory_schema`].

pub mod memory_schema;
pub mod status;

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use weir_memory::MemoryConfig;

pub use status::*;

/// A Weir job on Kubernetes: one coordinator pod and worker pods running the job's image.
// Clippy reads the repeated `type_ = "string"` of the print columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "weir.dev",
    version = "v1alpha1",
    kind = "StreamJob",
    namespaced,
    shortname = "sj",
    category = "weir",
    // The chart templates the CRD so that `helm upgrade` updates it; uninstalling keeps it
    // (and every StreamJob).
    annotation("helm.sh/resource-policy", "keep"),
    status = "StreamJobStatus",
    doc = "A Weir stream processing job: a coordinator and worker pods, upgraded through savepoints",
    scale(
        spec_replicas_path = ".spec.parallelism",
        status_replicas_path = ".status.parallelism",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Parallelism", type_ = "integer", json_path = ".status.parallelism"),
    printcolumn(name = "Desired", type_ = "string", json_path = ".spec.state"),
    printcolumn(name = "Upgrade", type_ = "string", json_path = ".spec.upgradeMode"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new(
    "!has(self.maxParallelism) || self.parallelism <= self.maxParallelism"
).message("parallelism must not exceed maxParallelism"))]
#[x_kube(validation = Rule::new(
    "self.upgradeMode == 'stateless' || has(self.checkpointing)"
).message("upgradeMode savepoint and last-state need checkpointing (its storage holds the savepoints and checkpoints)"))]
#[serde(rename_all = "camelCase")]
pub struct StreamJobSpec {
    /// The container image holding the job binary.
    #[schemars(length(min = 1))]
    pub image: String,
    /// When the image is pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// The job binary's path in the image (default `/job`).
    #[serde(default = "default_command")]
    #[schemars(length(min = 1))]
    pub command: String,
    /// The job's own arguments (`--key value`), given to the coordinator and every worker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The job's default parallelism: subtasks of each operator.
    #[schemars(range(min = 1, max = 32768))]
    pub parallelism: u32,
    /// Key groups: the upper bound of any operator's parallelism (engine default 128). It
    /// cannot change once state exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32768))]
    pub max_parallelism: Option<u32>,
    /// Slots of each worker pod; workers = ceil(parallelism / slotsPerWorker).
    #[serde(default = "default_slots")]
    #[schemars(range(min = 1, max = 1024))]
    pub slots_per_worker: u32,
    /// The coordinator pod's CPU and memory.
    pub coordinator: ProcessSpec,
    /// Each worker pod's CPU and memory (the memory model gets `slotsPerWorker` slots).
    pub worker: ProcessSpec,
    /// Checkpoints: when and where; needed by the savepoint and last-state upgrade modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpointing: Option<CheckpointingSpec>,
    /// Where keyed state lives while the job runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_backend: Option<StateBackend>,
    /// How the job restarts after a failure inside its pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_strategy: Option<RestartStrategy>,
    /// How a spec change reaches the running job.
    #[serde(default)]
    pub upgrade_mode: UpgradeMode,
    /// Whether the job should run.
    #[serde(default)]
    pub state: DesiredState,
    /// The savepoint or checkpoint the first deployment starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_savepoint: Option<String>,
    /// Change it to take a savepoint of the running job (the job keeps running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_nonce: Option<i64>,
    /// Free-form engine settings (`key.sub_key` → value, as the job's `--set`), written to
    /// the job's ConfigMap; the operator's own settings win over these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// The service account of the job's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Merged into every pod the operator creates: metadata labels and annotations, spec
    /// fields, a container named `weir` merged into the job's container, other containers
    /// added as sidecars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "memory_schema::preserve_unknown_object")]
    pub pod_template: Option<serde_json::Value>,
}

/// CPU and memory of one kind of pod.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessSpec {
    /// CPU request and limit (a Kubernetes quantity such as `500m` or `2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// The memory model's settings; `processSize` becomes the pod's memory request and limit.
    #[schemars(schema_with = "memory_schema::memory_config")]
    pub memory: MemoryConfig,
}

/// Checkpoint settings.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointingSpec {
    /// Checkpoint every this many milliseconds.
    #[schemars(range(min = 10))]
    pub interval_ms: u64,
    /// Delivery guarantee of the checkpoints.
    #[serde(default)]
    pub mode: CheckpointMode,
    /// Where checkpoints go: an `s3://bucket/prefix` or `file:///path` URL.
    #[schemars(regex(pattern = r"^(s3|file)://.+"))]
    pub storage: String,
    /// Where savepoints go (default `{storage}/savepoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(s3|file)://.+"))]
    pub savepoint_storage: Option<String>,
    /// The format of the savepoints the operator takes (upgrades and
    /// `savepointTriggerNonce`), as Flink's `kubernetes.operator.savepoint.format.type`.
    #[serde(default)]
    pub savepoint_format: SavepointFormat,
    /// Complete checkpoints kept.
    #[serde(default = "default_retained")]
    #[schemars(range(min = 1, max = 100))]
    pub retained: u32,
    /// How the pods reach S3 (the endpoint and credentials the engine must be given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,
}

/// S3 access of the job's pods.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// The endpoint URL (for S3-compatible stores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// A Secret with keys `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// When images are pulled (the container's `imagePullPolicy`).
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Every time a pod starts.
    Always,
    /// When the node does not have it.
    IfNotPresent,
    /// Never: the image must be on the node.
    Never,
}

/// Checkpoint delivery guarantee.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointMode {
    /// Aligned barriers.
    #[default]
    ExactlyOnce,
    /// Unaligned barriers without in-flight records.
    AtLeastOnce,
}

/// Where keyed state lives.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StateBackend {
    /// Hash maps on the heap.
    Heap,
    /// RocksDB on the pod's disk (the image must be built with the `rocksdb` feature).
    Rocksdb,
}

/// How the job restarts after a failure inside its pods: the engine's `restart` setting.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[x_kube(validation = Rule::new(
    "self.strategy != 'fixed-delay' || (has(self.attempts) && has(self.delayMs))"
).message("fixed-delay needs attempts and delayMs"))]
#[x_kube(validation = Rule::new(
    "self.strategy != 'failure-rate' || (has(self.maxFailures) && has(self.intervalMs) && has(self.delayMs))"
).message("failure-rate needs maxFailures, intervalMs and delayMs"))]
#[serde(rename_all = "camelCase")]
pub struct RestartStrategy {
    /// Which strategy.
    pub strategy: RestartKind,
    /// Restarts allowed (`fixed-delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Wait before each restart (`fixed-delay`, `failure-rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Failures allowed within `intervalMs` (`failure-rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u32>,
    /// The sliding interval (`failure-rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
}

/// The engine's restart strategies.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RestartKind {
    /// Fail the job at the first failure.
    None,
    /// Restart up to `attempts` times, `delayMs` apart.
    FixedDelay,
    /// Restart while fewer than `maxFailures` happened within `intervalMs`.
    FailureRate,
    /// The engine's default with checkpoints: exponential delay, bounded.
    ExponentialDelay,
}

/// How a spec change reaches a running job.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// Cancel and start again from empty state (or `initialSavepoint`).
    #[default]
    Stateless,
    /// Stop with a savepoint, record it in status, redeploy from it.
    Savepoint,
    /// Cancel and redeploy from the latest complete checkpoint in storage.
    LastState,
}

/// How keyed state is laid out in a savepoint.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SavepointFormat {
    /// Backend-independent: any state backend restores it.
    #[default]
    Canonical,
    /// The state backend's own files (RocksDB's SST files): much faster to take and restore
    /// with large RocksDB state; only the same backend restores it.
    Native,
}

/// Whether the job should run.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DesiredState {
    /// Pods up, job running.
    #[default]
    Running,
    /// No pods; the state is kept as the upgrade mode says, for a later resume.
    Suspended,
}

fn default_command() -> String {
    "/job".to_string()
}

fn default_slots() -> u32 {
    1
}

fn default_retained() -> u32 {
    1
}

impl StreamJob {
    /// The format of the savepoints the operator takes of this job.
    pub fn savepoint_format(&self) -> SavepointFormat {
        self.spec.checkpointing.as_ref().map(|c| c.savepoint_format).unwrap_or_default()
    }

    /// Where savepoints of this job go, if it has checkpoint storage.
    pub fn savepoint_storage(&self) -> Option<String> {
        let checkpointing = self.spec.checkpointing.as_ref()?;
        Some(checkpointing.savepoint_storage.clone().unwrap_or_else(|| {
            format!("{}/savepoints", checkpointing.storage.trim_end_matches('/'))
        }))
    }
}

/// The CustomResourceDefinition as YAML, as `crds/streamjob.yaml` holds it.
pub fn crd_yaml() -> crate::Result<String> {
    use kube::CustomResourceExt;
    serde_yaml::to_string(&StreamJob::crd())
        .map_err(|e| crate::Error::Serialize { what: "the CRD", message: e.to_string() })
}
