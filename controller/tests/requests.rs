//! Request-level tests of the reconciler: a `tower-test` mock stands in for the API server,
//! and each scenario checks the exact requests one reconcile sends (paths, queries, bodies)
//! and how it handles errors.

mod support;

use std::sync::Arc;

use http::{Method, Request, Response};
use kube::client::Body;
use kube::{Client, Resource};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};
use weir_operator::context::{Context, Settings};
use weir_operator::crd::StreamJob;
use weir_operator::metrics::Metrics;
use weir_operator::reconcile::{FINALIZER, reconcile};

use support::{FakeJobApi, window_count};

type ApiServer = Handle<Request<Body>, Response<Body>>;

fn context(job_api: FakeJobApi) -> (Arc<Context>, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let metrics = Arc::new(Metrics::default());
    let ctx = Context::new(client, Arc::new(job_api), metrics, Settings::default(), None);
    (Arc::new(ctx), handle)
}

/// Waits for the next request, checks its method and path (with query), answers `status`
/// with `answer`, and returns the request's JSON body (`Null` when empty).
async fn expect(
    server: &mut ApiServer,
    method: Method,
    path: &str,
    status: u16,
    answer: Value,
) -> Value {
    let (request, send) = server.next_request().await.expect("a request");
    assert_eq!(request.method(), method, "{}", request.uri());
    assert_eq!(request.uri().to_string(), path);
    let body = request.into_body().collect_bytes().await.unwrap();
    let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap() };
    let response =
        Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap()));
    send.send_response(response.unwrap());
    body
}

fn with_finalizer(mut job: StreamJob) -> StreamJob {
    job.meta_mut().finalizers = Some(vec![FINALIZER.to_string()]);
    job
}

const JOB: &str = "/apis/weir.dev/v1alpha1/namespaces/jobs/streamjobs/window-count";
const PODS: &str = "/api/v1/namespaces/jobs/pods?&labelSelector=weir.dev%2Fjob%3Dwindow-count";
const APPLY: &str = "?&force=true&fieldManager=weir-operator";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/jobs/events?";

fn pod_list(items: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items })
}

#[tokio::test]
async fn a_new_job_first_gets_the_finalizer() {
    let (ctx, mut server) = context(FakeJobApi::default());
    let job = window_count();
    let reconciling = tokio::spawn(reconcile(Arc::new(job.clone()), ctx));
    let patch =
        expect(&mut server, Method::PATCH, &format!("{JOB}?"), 200, json!(with_finalizer(job)))
            .await;
    assert_eq!(patch[0]["op"], "test", "{patch}");
    assert_eq!(
        patch[1],
        json!({ "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] })
    );
    reconciling.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_job_deploys_its_config_service_and_pods_then_records_the_deployment() {
    let (ctx, mut server) = context(FakeJobApi::default());
    let job = with_finalizer(window_count());
    let reconciling = tokio::spawn(reconcile(Arc::new(job.clone()), ctx));
    expect(&mut server, Method::GET, PODS, 200, pod_list(json!([]))).await;
    let config = expect(
        &mut server,
        Method::PATCH,
        &format!("/api/v1/namespaces/jobs/configmaps/window-count-config{APPLY}"),
        200,
        json!({}),
    )
    .await;
    assert_eq!(config["kind"], "ConfigMap");
    assert!(config["data"]["weir.toml"].as_str().unwrap().contains("parallelism = 4"));
    assert_eq!(config["metadata"]["ownerReferences"][0]["uid"], "uid-7");
    let service = expect(
        &mut server,
        Method::PATCH,
        &format!("/api/v1/namespaces/jobs/services/window-count-coordinator{APPLY}"),
        200,
        json!({}),
    )
    .await;
    assert_eq!(
        service["spec"]["selector"],
        json!({ "weir.dev/job": "window-count", "weir.dev/role": "coordinator" })
    );
    let coordinator = expect(
        &mut server,
        Method::PATCH,
        &format!("/api/v1/namespaces/jobs/pods/window-count-r1-coordinator{APPLY}"),
        200,
        json!({}),
    )
    .await;
    let container = &coordinator["spec"]["containers"][0];
    assert_eq!(container["command"], json!(["/usr/local/bin/window-count"]));
    assert_eq!(container["resources"]["limits"], json!({ "cpu": "500m", "memory": "536870912" }));
    for worker in 0..2 {
        let pod = expect(
            &mut server,
            Method::PATCH,
            &format!("/api/v1/namespaces/jobs/pods/window-count-r1-worker-{worker}{APPLY}"),
            200,
            json!({}),
        )
        .await;
        assert_eq!(pod["spec"]["containers"][0]["args"][4], "2", "two slots per worker");
    }
    let event = expect(&mut server, Method::POST, EVENTS, 201, json!({})).await;
    assert_eq!(event["reason"], "Deploying");
    let status =
        expect(&mut server, Method::PATCH, &format!("{JOB}/status{APPLY}"), 200, json!(job)).await;
    let status = &status["status"];
    assert_eq!(status["phase"], "Deploying");
    assert_eq!(status["deployment"]["revision"], 1);
    assert_eq!(status["selector"], "weir.dev/job=window-count");
    assert_eq!(status["memory"]["worker"]["slots"], 2);
    assert_eq!(status["memory"]["worker"]["managed"], "0 B");
    let types: Vec<_> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].clone(), c["status"].clone()))
        .collect();
    assert_eq!(
        types,
        [
            (json!("Ready"), json!("False")),
            (json!("Progressing"), json!("True")),
            (json!("Degraded"), json!("False"))
        ]
    );
    reconciling.await.unwrap().unwrap();
}

#[tokio::test]
async fn impossible_memory_is_reported_in_status_and_creates_nothing() {
    let (ctx, mut server) = context(FakeJobApi::default());
    let mut job = with_finalizer(window_count());
    job.spec.worker.memory.process_size = weir_memory::ByteSize::mib(128);
    let reconciling = tokio::spawn(reconcile(Arc::new(job.clone()), ctx));
    expect(&mut server, Method::GET, PODS, 200, pod_list(json!([]))).await;
    let event = expect(&mut server, Method::POST, EVENTS, 201, json!({})).await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("InvalidSpec"))
    );
    let status =
        expect(&mut server, Method::PATCH, &format!("{JOB}/status{APPLY}"), 200, json!(job)).await;
    let status = &status["status"];
    assert_eq!(status["phase"], "Failed");
    let error = status["lastError"].as_str().unwrap();
    assert!(error.contains("worker memory") && error.contains("fix:"), "{error}");
    assert_eq!(status["conditions"][2]["status"], "True");
    assert_eq!(status["conditions"][2]["reason"], "InvalidSpec");
    assert!(status.get("deployment").is_none());
    reconciling.await.unwrap().unwrap();
}

/// A deployed job (revision 1) whose coordinator pod runs, with an upgrade at `upgrade`.
fn deployed(upgrade: Option<Value>) -> (StreamJob, Value) {
    let mut job = with_finalizer(window_count());
    let hash = weir_operator::Plan::of(&job).unwrap().spec_hash;
    job.status = serde_json::from_value(json!({
        "deployment": { "revision": 1, "specHash": hash },
        "upgrade": upgrade,
    }))
    .unwrap();
    let pods = pod_list(json!([{
        "metadata": { "name": "window-count-r1-coordinator", "labels": { "weir.dev/role": "coordinator", "weir.dev/revision": "1" } },
        "status": { "phase": "Running" },
    }]));
    (job, pods)
}

#[tokio::test]
async fn a_savepoint_upgrade_stops_the_job_with_a_savepoint_and_records_it_before_deleting_pods() {
    let job_api = FakeJobApi::with_state("running");
    let (ctx, mut server) = context(job_api.clone());
    let upgrade = json!({ "cause": "SpecChange", "mode": "savepoint", "step": "Stopping" });
    let (job, pods) = deployed(Some(upgrade));
    let reconciling = tokio::spawn(reconcile(Arc::new(job.clone()), ctx));
    expect(&mut server, Method::GET, PODS, 200, pods).await;
    let event = expect(&mut server, Method::POST, EVENTS, 201, json!({})).await;
    assert_eq!(event["reason"], "SavepointTaken");
    let status =
        expect(&mut server, Method::PATCH, &format!("{JOB}/status{APPLY}"), 200, json!(job)).await;
    assert_eq!(job_api.calls(), ["savepoint window-count stop=true format=canonical"]);
    let status = &status["status"];
    assert_eq!(status["upgrade"]["step"], "Deleting");
    assert_eq!(status["upgrade"]["restoreFrom"], "s3://b/savepoints/sp-1");
    assert_eq!(status["lastSavepoint"]["location"], "s3://b/savepoints/sp-1");
    assert_eq!(status["phase"], "Upgrading");
    reconciling.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_savepoint_upgrade_waits_for_a_running_job_whose_api_did_not_answer() {
    let job_api = FakeJobApi::default(); // the coordinator's REST API does not answer
    let (ctx, mut server) = context(job_api.clone());
    let upgrade = json!({ "cause": "SpecChange", "mode": "savepoint", "step": "Stopping" });
    let (job, pods) = deployed(Some(upgrade));
    let reconciling = tokio::spawn(reconcile(Arc::new(job.clone()), ctx));
    expect(&mut server, Method::GET, PODS, 200, pods).await;
    let status =
        expect(&mut server, Method::PATCH, &format!("{JOB}/status{APPLY}"), 200, json!(job)).await;
    let status = &status["status"];
    assert_eq!(status["upgrade"]["step"], "Stopping", "no fallback to the last checkpoint");
    assert!(status["upgrade"]["restoreFrom"].is_null(), "{status}");
    assert!(status["lastError"].as_str().unwrap().contains("not reachable"), "{status}");
    assert!(job_api.calls().is_empty());
    let error = reconciling.await.unwrap().unwrap_err();
    assert_eq!(error.reason(), "JobApiError");
}

#[tokio::test]
async fn a_last_state_upgrade_cancels_and_restores_the_latest_checkpoint() {
    let job_api = FakeJobApi::with_state("running");
    let (ctx, mut server) = context(job_api.clone());
    let upgrade = json!({ "cause": "SpecChange", "mode": "last-state", "step": "Stopping" });
    let (job, pods) = deployed(Some(upgrade));
    let reconciling = tokio::spawn(reconcile(Arc::new(job.clone()), ctx));
    expect(&mut server, Method::GET, PODS, 200, pods).await;
    let status =
        expect(&mut server, Method::PATCH, &format!("{JOB}/status{APPLY}"), 200, json!(job)).await;
    assert_eq!(job_api.calls(), ["cancel window-count"]);
    assert_eq!(status["status"]["upgrade"]["restoreFrom"], "latest");
    reconciling.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_api_error_fails_the_reconcile_and_is_recorded_in_status() {
    let (ctx, mut server) = context(FakeJobApi::default());
    let job = with_finalizer(window_count());
    let reconciling = tokio::spawn(reconcile(Arc::new(job.clone()), ctx));
    expect(&mut server, Method::GET, PODS, 200, pod_list(json!([]))).await;
    let conflict = json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict" });
    expect(
        &mut server,
        Method::PATCH,
        &format!("/api/v1/namespaces/jobs/configmaps/window-count-config{APPLY}"),
        409,
        conflict,
    )
    .await;
    let status =
        expect(&mut server, Method::PATCH, &format!("{JOB}/status{APPLY}"), 200, json!(job)).await;
    assert!(status["status"]["lastError"].as_str().unwrap().contains("conflict"), "{status}");
    assert_eq!(status["status"]["conditions"][2]["status"], "True");
    let error = reconciling.await.unwrap().unwrap_err();
    assert_eq!(error.reason(), "KubeError");
}

#[tokio::test]
async fn a_deleted_job_that_runs_nothing_releases_its_finalizer() {
    let (ctx, mut server) = context(FakeJobApi::default());
    let mut job = with_finalizer(window_count());
    job.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let reconciling = tokio::spawn(reconcile(Arc::new(job.clone()), ctx));
    expect(&mut server, Method::GET, PODS, 200, pod_list(json!([]))).await;
    expect(&mut server, Method::PATCH, &format!("{JOB}/status{APPLY}"), 200, json!(job)).await;
    let patch = expect(&mut server, Method::PATCH, &format!("{JOB}?"), 200, json!(job)).await;
    assert_eq!(patch[1], json!({ "op": "remove", "path": "/metadata/finalizers/0" }));
    reconciling.await.unwrap().unwrap();
}
