//! End to end: the real controller against the emulated API server, a node running the
//! pods it creates as processes of the real `exactly-once` job binary on 127.0.0.1, the job
//! REST API reached over HTTP through the Service, and checkpoints and savepoints in a real
//! S3-compatible server (moto). The job runs to its end through every upgrade, and its
//! committed output must equal that of an uninterrupted run. The job binary is the one built
//! next to this test (`cargo build -p weir-examples --bin exactly-once`, in the same profile).

mod apiserver;
mod harness;
mod node;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use weir_examples::exactly_once::{ExactlyOnceJob, committed_lines, difference};
use weir_operator::context::Settings;
use weir_operator::crd::{Phase, SavepointFormat, StreamJob};
use weir_operator::jobapi::{HttpJobApi, JobApi, JobView};
use weir_tests::services::S3Server;

use node::Node;
use node::network::Network;

const NAMESPACE: &str = "jobs";
const JOB: &str = "exactly-once";
/// Starting processes, taking savepoints and restoring them takes a while.
const PATIENCE: Duration = Duration::from_secs(90);
/// The job's events: at [`STEP_RATE`] it runs 100 s, far longer than the upgrades take, so
/// it is still running when the last one speeds it up.
const EVENTS: u64 = 200_000;
/// Events per second while the test upgrades, kills and suspends the job.
const STEP_RATE: f64 = 2_000.0;
/// Events per second of the last revision, which runs the job to its end in a few seconds.
const FINAL_RATE: f64 = 50_000.0;

/// The job REST API through the cluster network: `http://SERVICE.NAMESPACE.svc:PORT`
/// resolved to the Service's port on 127.0.0.1.
struct ServiceJobApi {
    http: HttpJobApi,
    network: Arc<Network>,
}

#[async_trait]
impl JobApi for ServiceJobApi {
    async fn observe(&self, base: &str) -> weir_operator::Result<JobView> {
        self.http.observe(&self.network.resolve_url(base)).await
    }

    async fn savepoint(
        &self,
        base: &str,
        name: &str,
        stop: bool,
        format: SavepointFormat,
    ) -> weir_operator::Result<String> {
        self.http.savepoint(&self.network.resolve_url(base), name, stop, format).await
    }

    async fn cancel(&self, base: &str, name: &str) -> weir_operator::Result<()> {
        self.http.cancel(&self.network.resolve_url(base), name).await
    }
}

/// Where this test's profile keeps the workspace's binaries.
fn binaries() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let binary = dir.join(JOB);
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p weir-examples --bin {JOB}` in this profile",
        binary.display()
    );
    dir
}

/// What the job does: [`EVENTS`] events at [`STEP_RATE`], committed into `output`.
fn definition(output: &Path) -> ExactlyOnceJob {
    ExactlyOnceJob {
        events: EVENTS,
        keys: 10,
        rate: Some(STEP_RATE),
        output: output.to_path_buf(),
        fail_at: Default::default(),
    }
}

/// The job binary's arguments for `job`.
fn args(job: &ExactlyOnceJob) -> Value {
    let rate = job.rate.expect("the test's job has a rate");
    let output = job.output.display();
    json!([
        "--events",
        job.events.to_string(),
        "--keys",
        job.keys.to_string(),
        "--rate",
        rate.to_string(),
        "--output",
        output.to_string(),
    ])
}

/// `examples/exactly-once-s3.yaml` running `definition` with its storage in `s3`, on heap
/// state (the binary may be built without RocksDB) and at a test's pace.
fn job(s3: &S3Server, definition: &ExactlyOnceJob) -> Value {
    let path = format!("{}/../examples/exactly-once-s3.yaml", weir_tests::manifest_dir());
    let mut job: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let spec = &mut job["spec"];
    spec["args"] = args(definition);
    spec["stateBackend"] = "heap".into();
    spec["worker"]["memory"] = json!({ "processSize": "1g" });
    spec["checkpointing"]["intervalMs"] = 500.into();
    spec["checkpointing"]["storage"] = s3.url(JOB).into();
    spec["checkpointing"]["s3"]["endpoint"] = s3.endpoint().into();
    job
}

struct World {
    client: Client,
    node: Node,
    _s3: S3Server,
    /// Where the job's sink commits its files.
    output: tempfile::TempDir,
    controller: tokio::task::JoinHandle<()>,
    _server: apiserver::ApiServer,
}

impl Drop for World {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

impl World {
    fn jobs(&self) -> Api<StreamJob> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    async fn patch_spec(&self, spec: Value) {
        let patch = Patch::Merge(json!({ "spec": spec }));
        self.jobs().patch(JOB, &PatchParams::default(), &patch).await.unwrap();
    }

    async fn job_when(&self, what: &str, condition: impl Fn(&StreamJob) -> bool) -> StreamJob {
        let jobs = self.jobs();
        harness::eventually(what, PATIENCE, || async {
            jobs.get_opt(JOB).await.unwrap().filter(|j| condition(j))
        })
        .await
    }

    /// Waits until revision `revision` runs and has completed a checkpoint.
    async fn running(&self, revision: u32) -> StreamJob {
        self.job_when(&format!("revision {revision} runs and checkpoints"), |j| {
            let status = j.status.clone().unwrap_or_default();
            status.phase == Some(Phase::Running)
                && status.deployment.is_some_and(|d| d.revision == revision)
                && status.last_checkpoint.is_some()
        })
        .await
    }

    async fn pods(&self) -> Vec<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        let listed =
            pods.list(&ListParams::default().labels(&format!("weir.dev/job={JOB}"))).await.unwrap();
        let mut names: Vec<String> =
            listed.items.into_iter().filter_map(|p| p.metadata.name).collect();
        names.sort();
        names
    }

    /// What the job does, writing into this world's output directory.
    fn definition(&self) -> ExactlyOnceJob {
        definition(&self.output.path().join("out"))
    }

    /// The restore location the coordinator of `revision` last reported deploying from.
    fn restored(&self, revision: u32) -> Option<String> {
        let log = self.node.log(&format!("{JOB}-r{revision}-coordinator"));
        let line = log.lines().rev().find(|l| l.contains(" deployed "))?;
        let location = line.split("restore=").nth(1)?.split_whitespace().next()?;
        Some(location.to_string())
    }
}

async fn start() -> World {
    harness::init_logging();
    let binaries = binaries();
    let s3 = tokio::task::spawn_blocking(S3Server::start).await.unwrap().expect("moto starts");
    let server = apiserver::ApiServer::start().await;
    let client = server.client();
    let node = Node::start(client.clone(), NAMESPACE, binaries);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("s3-credentials".into()),
            ..Default::default()
        },
        data: Some(
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
                .into_iter()
                .map(|k| (k.to_string(), ByteString(b"test".to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let http = HttpJobApi::new(Duration::from_secs(60)).unwrap();
    let job_api = Arc::new(ServiceJobApi { http, network: node.network.clone() });
    let settings = Settings {
        poll_interval: Duration::from_millis(500),
        step_interval: Duration::from_millis(200),
        ..Settings::default()
    };
    let controller = harness::run_controller(client.clone(), job_api, settings);
    let output = tempfile::tempdir().unwrap();
    let world = World { client, node, _s3: s3, output, controller, _server: server };
    let body = job(&world._s3, &world.definition());
    world.jobs().patch(JOB, &PatchParams::apply("kubectl"), &Patch::Apply(body)).await.unwrap();
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_rescales_through_a_savepoint_recovers_from_a_crash_and_suspends() {
    let world = start().await;
    world.running(1).await;
    assert_eq!(
        world.pods().await,
        ["coordinator", "worker-0", "worker-1"].map(|p| format!("{JOB}-r1-{p}"))
    );

    // parallelism 2 → 3: a savepoint in S3, new pods restored from it.
    world.patch_spec(json!({ "parallelism": 3 })).await;
    let job = world.running(2).await;
    let status = job.status.unwrap();
    let savepoint = status.last_savepoint.unwrap().location;
    assert!(savepoint.starts_with("s3://weir-test/exactly-once/savepoints/"), "{savepoint}");
    assert_eq!(status.deployment.unwrap().restored_from.as_deref(), Some(savepoint.as_str()));
    assert_eq!(
        world.pods().await,
        ["coordinator", "worker-0", "worker-1", "worker-2"].map(|p| format!("{JOB}-r2-{p}"))
    );
    assert_eq!(world.restored(2).as_deref(), Some(savepoint.as_str()));
    let worker = world.node.log(&format!("{JOB}-r2-worker-2"));
    assert!(worker.contains(&format!("restoring from {savepoint}")), "{worker}");

    // last-state: a killed coordinator comes back from the latest checkpoint in S3.
    world.patch_spec(json!({ "upgradeMode": "last-state" })).await;
    let checkpoint = job_checkpoint(&world).await;
    world.node.kill(&format!("{JOB}-r2-coordinator"));
    let what = "a new coordinator restores a checkpoint";
    let restored = harness::eventually(what, PATIENCE, || async {
        world.restored(2).filter(|restored| restored.contains("/chk-"))
    })
    .await;
    assert!(restored.starts_with("s3://weir-test/exactly-once/"), "{restored} after {checkpoint}");
    world.running(2).await;

    // suspended, then running: no pods, then a new revision from the latest checkpoint.
    world.patch_spec(json!({ "state": "suspended" })).await;
    world
        .job_when("the job is suspended", |j| {
            j.status.as_ref().and_then(|s| s.phase) == Some(Phase::Suspended)
        })
        .await;
    assert!(world.pods().await.is_empty());
    world.patch_spec(json!({ "state": "running" })).await;
    world.running(3).await;
    let restored = world.restored(3).unwrap();
    assert!(
        restored.starts_with("s3://weir-test/exactly-once/") && restored.contains("/chk-"),
        "{restored}"
    );

    // A faster rate (in last-state mode, a new revision from the latest checkpoint) runs the
    // job to its end: what it committed through all of the above is what an uninterrupted
    // run commits, every line exactly once.
    let fast = ExactlyOnceJob { rate: Some(FINAL_RATE), ..world.definition() };
    world.patch_spec(json!({ "args": args(&fast) })).await;
    let job = world
        .job_when("the job finishes", |j| {
            j.status.as_ref().and_then(|s| s.phase) == Some(Phase::Finished)
        })
        .await;
    assert_eq!(job.status.unwrap().deployment.map(|d| d.revision), Some(4));
    let restored = world.restored(4).unwrap();
    assert!(restored.contains("/chk-"), "{restored}");
    let got = committed_lines(&fast.output).expect("the output directory is readable");
    let want = fast.expected_lines();
    assert!(got == want, "{} of {} lines: {}", got.len(), want.len(), difference(&got, &want));
}

/// The latest checkpoint the controller recorded.
async fn job_checkpoint(world: &World) -> String {
    let job = world.running(2).await;
    job.status.unwrap().last_checkpoint.unwrap().location
}
