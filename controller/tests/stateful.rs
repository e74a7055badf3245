//! Stateful tests of the controller: the real `Controller` (as the binary runs it) against
//! the emulated API server, with a kubelet that reports pods running and a fake job REST
//! API; each test checks the objects and status the cluster ends up with.

mod apiserver;
mod cluster;
mod harness;
mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams};
use weir_operator::crd::{Phase, StreamJob, UpgradeStep};
use weir_operator::reconcile::FINALIZER;

use cluster::{Cluster, PATIENCE};
use harness::eventually;

/// `examples/NAME.yaml`.
fn example(name: &str) -> StreamJob {
    let path = format!("{}/../examples/{name}.yaml", weir_tests::manifest_dir());
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn phase(job: &StreamJob) -> Option<Phase> {
    job.status.as_ref().and_then(|s| s.phase)
}

fn revision(job: &StreamJob) -> Option<u32> {
    job.status.as_ref().and_then(|s| s.deployment.as_ref()).map(|d| d.revision)
}

fn condition<'a>(job: &'a StreamJob, type_: &str) -> (&'a str, &'a str, &'a str) {
    let conditions = &job.status.as_ref().unwrap().conditions;
    let found = conditions.iter().find(|c| c.type_ == type_).unwrap();
    (found.status.as_str(), found.reason.as_str(), found.message.as_str())
}

/// Waits until `name` runs revision `revision` of its deployment.
async fn running(cluster: &Cluster, name: &str, revision_: u32) -> StreamJob {
    let what = format!("{name} runs revision {revision_}");
    cluster
        .job_when(name, &what, |j| {
            phase(j) == Some(Phase::Running) && revision(j) == Some(revision_)
        })
        .await
}

fn args(pod: &Pod) -> Vec<String> {
    pod.spec.as_ref().unwrap().containers[0].args.clone().unwrap()
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|a| a == flag).map(|i| args[i + 1].as_str())
}

#[tokio::test]
async fn an_applied_job_gets_its_objects_and_becomes_ready() {
    let cluster = Cluster::start().await;
    cluster.apply(&example("window-count")).await;
    let job = running(&cluster, "window-count", 1).await;

    assert_eq!(job.finalizers(), [FINALIZER]);
    let status = job.status.clone().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.parallelism, Some(4));
    assert_eq!(status.job_id.as_deref(), Some("window-count"));
    assert!(status.upgrade.is_none() && status.last_error.is_none());
    assert_eq!(condition(&job, "Ready"), ("True", "JobRunning", "running with parallelism 4"));
    assert_eq!(condition(&job, "Degraded").0, "False");
    let memory = status.memory.unwrap();
    assert_eq!((memory.worker.process.as_str(), memory.worker.slots), ("1 GiB", 2));
    assert_eq!(memory.worker.managed, "0 B");

    let config: ConfigMap = cluster.api().get("window-count-config").await.unwrap();
    let toml = &config.data.unwrap()["weir.toml"];
    assert!(toml.contains("parallelism = 4"), "{toml}");
    let service: Service = cluster.api().get("window-count-coordinator").await.unwrap();
    let selector = service.spec.unwrap().selector.unwrap();
    assert_eq!(selector["weir.dev/role"], "coordinator");

    let pods = cluster.pod_names("weir.dev/job=window-count").await;
    assert_eq!(
        pods,
        ["window-count-r1-coordinator", "window-count-r1-worker-0", "window-count-r1-worker-1"]
    );
    let worker: Pod = cluster.api().get("window-count-r1-worker-1").await.unwrap();
    assert_eq!(worker.owner_references()[0].uid, job.uid().unwrap());
    let limits =
        worker.spec.as_ref().unwrap().containers[0].resources.clone().unwrap().limits.unwrap();
    assert_eq!(limits["memory"].0, (1u64 << 30).to_string());
    assert_eq!(flag(&args(&worker), "--slots"), Some("2"));
    assert_eq!(flag(&args(&worker), "--coordinator"), Some("window-count-coordinator:6123"));
}

#[tokio::test]
async fn invalid_memory_is_degraded_and_creates_nothing() {
    let cluster = Cluster::start().await;
    let mut job = example("window-count");
    job.spec.worker.memory.process_size = weir_memory::ByteSize::mib(128);
    cluster.apply(&job).await;
    let job = cluster
        .job_when("window-count", "the job is failed", |j| phase(j) == Some(Phase::Failed))
        .await;

    let (degraded, reason, message) = condition(&job, "Degraded");
    assert_eq!((degraded, reason), ("True", "InvalidSpec"));
    assert!(message.starts_with("invalid spec: worker memory:"), "{message}");
    assert_eq!(condition(&job, "Ready").0, "False");
    assert!(job.status.as_ref().unwrap().deployment.is_none());
    assert!(cluster.pod_names("weir.dev/job=window-count").await.is_empty());
    assert!(cluster.api::<ConfigMap>().get_opt("window-count-config").await.unwrap().is_none());
    let events = cluster.api::<Event>().list(&ListParams::default()).await.unwrap();
    assert!(
        events.items.iter().any(|e| e.reason.as_deref() == Some("InvalidSpec")),
        "{:?}",
        events.items
    );
}

#[tokio::test]
async fn a_parallelism_change_takes_a_savepoint_and_replaces_the_pods_from_it() {
    let cluster = Cluster::start().await;
    cluster.apply(&example("exactly-once-s3")).await;
    running(&cluster, "exactly-once", 1).await;
    assert_eq!(cluster.pod_names("weir.dev/job=exactly-once").await.len(), 3);

    cluster.patch_spec("exactly-once", serde_json::json!({ "parallelism": 3 })).await;
    let job = running(&cluster, "exactly-once", 2).await;

    assert_eq!(cluster.job_api.calls(), ["savepoint exactly-once stop=true format=native"]);
    let status = job.status.clone().unwrap();
    let savepoint = "s3://b/savepoints/sp-1";
    assert_eq!(status.last_savepoint.unwrap().location, savepoint);
    assert_eq!(status.deployment.unwrap().restored_from.as_deref(), Some(savepoint));
    assert_eq!((status.observed_generation, status.parallelism), (Some(2), Some(3)));
    assert!(status.upgrade.is_none(), "a finished upgrade is dropped from status");
    let pods = cluster.pod_names("weir.dev/job=exactly-once").await;
    let expected =
        ["coordinator", "worker-0", "worker-1", "worker-2"].map(|p| format!("exactly-once-r2-{p}"));
    assert_eq!(pods, expected);
    let coordinator: Pod = cluster.api().get("exactly-once-r2-coordinator").await.unwrap();
    assert_eq!(flag(&args(&coordinator), "--restore"), Some(savepoint));
    let config: ConfigMap = cluster.api().get("exactly-once-config").await.unwrap();
    assert!(config.data.unwrap()["weir.toml"].contains("parallelism = 3"));
    let events = cluster.api::<Event>().list(&ListParams::default()).await.unwrap();
    let reasons: Vec<_> = events.items.iter().filter_map(|e| e.reason.as_deref()).collect();
    assert!(reasons.contains(&"SavepointTaken") && reasons.contains(&"Upgrading"), "{reasons:?}");
}

#[tokio::test]
async fn a_suspended_job_keeps_its_savepoint_and_resumes_from_it() {
    let cluster = Cluster::start().await;
    cluster.apply(&example("exactly-once-s3")).await;
    running(&cluster, "exactly-once", 1).await;

    cluster.patch_spec("exactly-once", serde_json::json!({ "state": "suspended" })).await;
    let job = cluster
        .job_when("exactly-once", "the job is suspended", |j| phase(j) == Some(Phase::Suspended))
        .await;
    assert!(cluster.pod_names("weir.dev/job=exactly-once").await.is_empty());
    let upgrade = job.status.unwrap().upgrade.unwrap();
    assert_eq!(
        (upgrade.step, upgrade.restore_from.as_deref()),
        (UpgradeStep::Done, Some("s3://b/savepoints/sp-1"))
    );

    cluster.patch_spec("exactly-once", serde_json::json!({ "state": "running" })).await;
    running(&cluster, "exactly-once", 2).await;
    let coordinator: Pod = cluster.api().get("exactly-once-r2-coordinator").await.unwrap();
    assert_eq!(flag(&args(&coordinator), "--restore"), Some("s3://b/savepoints/sp-1"));
    assert_eq!(cluster.pod_names("weir.dev/job=exactly-once").await.len(), 3);
    assert_eq!(cluster.job_api.calls(), ["savepoint exactly-once stop=true format=native"]);
}

#[tokio::test]
async fn a_deleted_job_is_stopped_with_a_savepoint_before_it_and_its_objects_go() {
    let cluster = Cluster::start().await;
    cluster.apply(&example("exactly-once-s3")).await;
    running(&cluster, "exactly-once", 1).await;

    cluster.jobs().delete("exactly-once", &DeleteParams::default()).await.unwrap();
    let jobs = cluster.jobs();
    eventually("the job is gone", PATIENCE, || async {
        jobs.get_opt("exactly-once").await.unwrap().is_none().then_some(())
    })
    .await;

    assert_eq!(cluster.job_api.calls(), ["savepoint exactly-once stop=true format=native"]);
    assert!(cluster.pod_names("weir.dev/job=exactly-once").await.is_empty());
    assert!(cluster.api::<ConfigMap>().get_opt("exactly-once-config").await.unwrap().is_none());
    assert!(cluster.api::<Service>().get_opt("exactly-once-coordinator").await.unwrap().is_none());
}

#[tokio::test]
async fn a_restarted_controller_finishes_an_upgrade_without_a_second_savepoint() {
    let mut cluster = Cluster::start().await;
    cluster.apply(&example("exactly-once-s3")).await;
    running(&cluster, "exactly-once", 1).await;

    let held = cluster.job_api.savepoint_gate.clone().write_owned().await;
    cluster.patch_spec("exactly-once", serde_json::json!({ "parallelism": 3 })).await;
    let job_api = cluster.job_api.clone();
    eventually("the savepoint is in flight", PATIENCE, || async {
        (!job_api.calls().is_empty()).then_some(())
    })
    .await;
    cluster.stop_controller().await;
    let job = cluster.jobs().get("exactly-once").await.unwrap();
    assert_eq!(job.status.unwrap().upgrade.unwrap().step, UpgradeStep::Stopping);
    // The engine finishes the stop-with-savepoint the old controller asked for.
    let savepoint = "s3://b/savepoints/sp-9";
    if let Some(view) = cluster.job_api.view.lock().unwrap().as_mut() {
        view.state = "stopped".into();
        view.stopped_with_savepoint = Some(savepoint.into());
    }
    drop(held);

    cluster.start_controller();
    let job = running(&cluster, "exactly-once", 2).await;
    assert_eq!(cluster.job_api.calls(), ["savepoint exactly-once stop=true format=native"]);
    let status = job.status.unwrap();
    assert_eq!(status.last_savepoint.map(|s| s.location).as_deref(), Some(savepoint));
    assert_eq!(status.deployment.unwrap().restored_from.as_deref(), Some(savepoint));
    assert_eq!(cluster.pod_names("weir.dev/job=exactly-once").await.len(), 4);
}
