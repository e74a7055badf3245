//! The REST API over real HTTP, against a slow unbounded job with checkpoints.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use weir::{
    CheckpointConfig, ExecutionConfig, GeneratorConfig, RestConfig, RestartStrategy,
    StreamExecutionEnvironment, time::WatermarkStrategy,
};

const JOB: &str = "rest-job";

/// A job summing an endless, rate-limited stream per key, checkpointing every 100 ms into
/// `dir`; with `fail_once`, a task fails once (the first time it sees record 500 with the flag
/// unset) and the job restarts.
fn slow_job(
    dir: &Path,
    rest: RestConfig,
    fail_once: Option<&'static AtomicBool>,
) -> StreamExecutionEnvironment {
    let config = ExecutionConfig {
        parallelism: 2,
        progress_interval_ms: 0,
        checkpointing: CheckpointConfig {
            interval_ms: 100,
            dir: dir.display().to_string(),
            ..Default::default()
        },
        rest,
        restart: Some(RestartStrategy::FixedDelay { attempts: 2, delay_ms: 10 }),
        ..Default::default()
    };
    let mut env = StreamExecutionEnvironment::new(config);
    env.set_job_name(JOB);
    env.from_generator(GeneratorConfig::unbounded().with_rate(2_000.0), |i| (i % 7, i))
        .map(move |(key, i)| {
            if i == 500 && fail_once.is_some_and(|flag| !flag.swap(true, Ordering::SeqCst)) {
                panic!("record 500 fails once");
            }
            (key, i)
        })
        .key_by(|(key, _): &(u64, u64)| *key)
        .reduce(|(key, a), (_, b)| (key, a + b))
        .collect();
    env
}

/// A client of the API at `base`.
struct Api {
    http: Client,
    base: String,
}

impl Api {
    fn new(addr: impl std::fmt::Display) -> Self {
        let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Api { http, base: format!("http://{addr}") }
    }

    fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}{path}", self.base)).send().unwrap();
        (response.status(), response.json().unwrap())
    }

    fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = self.http.post(format!("{}{path}", self.base));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().unwrap();
        (response.status(), response.json().unwrap())
    }

    fn text(&self, path: &str) -> String {
        let response = self.http.get(format!("{}{path}", self.base)).send().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().unwrap()
    }

    /// Polls `path` until `done` holds for its answer; fails after 20 s.
    fn until(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(path);
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never showed {what}: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Records out of the job's source, over its subtasks.
fn source_records_out(job: &Value) -> u64 {
    let source = &job["vertices"][0];
    let subtasks = source["subtasks"].as_array().unwrap();
    assert_eq!(subtasks.len() as u64, source["parallelism"].as_u64().unwrap());
    let sum: u64 = subtasks.iter().map(|s| s["records_out"].as_u64().unwrap()).sum();
    assert_eq!(sum, source["records_out"].as_u64().unwrap(), "the total is the subtasks' sum");
    sum
}

/// Where a `file://` location is on disk.
fn local(location: &str) -> &Path {
    Path::new(location.strip_prefix("file://").unwrap_or(location))
}

#[test]
fn status_checkpoints_metrics_savepoint_and_cancel_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let client = slow_job(&dir.path().join("checkpoints"), RestConfig::default(), None)
        .execute_async()
        .unwrap();
    let server =
        weir_rest::serve(weir_rest::bind("127.0.0.1:0").unwrap(), (&client).into()).unwrap();
    let api = Api::new(server.local_addr());

    assert_eq!(api.get("/health"), (StatusCode::OK, json!({ "status": "ok" })));
    let jobs = api.until("/jobs", "the job running", |jobs| jobs["jobs"][0]["state"] == "running");
    let listed = &jobs["jobs"][0];
    assert_eq!(listed["name"], JOB);
    assert_eq!(listed["restarts"], 0);
    assert!(listed["start_time_ms"].as_u64().unwrap() > 1_700_000_000_000, "{listed}");

    let path = format!("/jobs/{JOB}");
    let first = api.until(&path, "records", |job| source_records_out(job) > 0);
    std::thread::sleep(Duration::from_millis(300));
    let (status, second) = api.get(&path);
    assert_eq!(status, StatusCode::OK);
    assert!(source_records_out(&second) > source_records_out(&first), "{first}\n{second}");
    assert!(second["duration_ms"].as_u64() > first["duration_ms"].as_u64());
    assert_eq!(second["vertices"].as_array().unwrap().len(), 4, "{second}");
    assert_eq!(second["last_failure"], Value::Null);

    let checkpoints_path = format!("/jobs/{JOB}/checkpoints");
    let checkpoints =
        api.until(&checkpoints_path, "2 checkpoints", |c| c["completed"].as_u64() >= Some(2));
    let first_checkpoint = &checkpoints["history"][0];
    assert_eq!(first_checkpoint["kind"], "checkpoint");
    assert_eq!(first_checkpoint["status"], "completed");
    assert!(first_checkpoint["state_size"].as_u64().unwrap() > 0, "{first_checkpoint}");
    assert!(first_checkpoint["duration_ms"].is_u64() && first_checkpoint["unaligned"].is_boolean());
    let location = first_checkpoint["location"].as_str().unwrap();
    assert!(location.contains(&format!("{JOB}/chk-")), "{location}");

    let metrics = api.text("/metrics");
    let scrape =
        prometheus_parse::Scrape::parse(metrics.lines().map(|l| Ok(l.to_string()))).unwrap();
    let records_in: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "weir_records_in_total" && s.labels.get("job") == Some(JOB))
        .collect();
    assert_eq!(records_in.len(), 4 * 2, "one per subtask of each operator:\n{metrics}");
    assert!(records_in.iter().all(|s| s.labels.get("operator").is_some()));
    assert!(records_in.iter().any(|s| s.labels.get("subtask") == Some("1")));
    let value = |name: &str| {
        let sample = scrape.samples.iter().find(|s| s.metric == name).unwrap();
        match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    assert!(
        records_in
            .iter()
            .any(|s| matches!(s.value, prometheus_parse::Value::Counter(v) if v > 0.0))
    );
    assert!(value("weir_checkpoints_completed") >= 2.0, "{metrics}");
    assert_eq!(value("weir_job_restarts_total"), 0.0);
    assert!(value("weir_last_checkpoint_size_bytes") > 0.0, "{metrics}");

    let savepoints_path = format!("/jobs/{JOB}/savepoints");
    let (status, body) = api.post(&savepoints_path, None);
    assert_eq!(status, StatusCode::CONFLICT, "no savepoint dir is configured: {body}");
    assert!(body["error"].as_str().unwrap().contains("savepoint_dir"), "{body}");
    let savepoints = dir.path().join("savepoints");
    let (status, body) =
        api.post(&savepoints_path, Some(json!({ "dir": savepoints.display().to_string() })));
    assert_eq!(status, StatusCode::OK, "{body}");
    let location = body["location"].as_str().unwrap().to_string();
    assert!(local(&location).join("_metadata").is_file(), "{location}");
    // The driver publishes the savepoint to the status just after it answers the request.
    api.until(&checkpoints_path, "the savepoint", |c| c["latest_savepoint"] == location.as_str());

    let (status, body) = api.get("/jobs/no-such-job");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({ "error": "no job named 'no-such-job'" }));
    assert_eq!(api.post("/jobs/no-such-job/cancel", None).0, StatusCode::NOT_FOUND);
    let (status, body) = api.post(&savepoints_path, Some(json!({ "stop": "yes" })));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api.post(&savepoints_path, Some(json!({ "format": "fast" })));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("unknown variant `fast`"), "{body}");

    let (status, _) = api.post(&format!("/jobs/{JOB}/cancel"), None);
    assert_eq!(status, StatusCode::ACCEPTED);
    let error = client.wait().unwrap_err();
    assert!(error.to_string().contains("cancel"), "{error}");
    let (_, job) = api.get(&path);
    assert_eq!(job["state"], "cancelled", "{job}");
    let (status, _) = api.post(&savepoints_path, Some(json!({ "dir": "/tmp" })));
    assert_eq!(status, StatusCode::CONFLICT, "an ended job takes no savepoint");
}

#[test]
fn stop_with_savepoint_over_http_ends_the_job_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let client = slow_job(&dir.path().join("checkpoints"), RestConfig::default(), None)
        .execute_async()
        .unwrap();
    let server =
        weir_rest::serve(weir_rest::bind("127.0.0.1:0").unwrap(), (&client).into()).unwrap();
    let api = Api::new(server.local_addr());
    api.until(&format!("/jobs/{JOB}"), "records", |job| source_records_out(job) > 0);

    let body = json!({ "dir": dir.path().join("savepoints").display().to_string(), "stop": true });
    let (status, body) = api.post(&format!("/jobs/{JOB}/savepoints"), Some(body));
    assert_eq!(status, StatusCode::OK, "{body}");
    let location = body["location"].as_str().unwrap();
    let result = client.wait().unwrap();
    assert_eq!(result.savepoint.as_deref(), Some(location));
    let job = api.until(&format!("/jobs/{JOB}"), "stopped", |job| job["state"] == "stopped");
    assert_eq!(job["stopped_with_savepoint"], location);
    let duration = job["duration_ms"].as_u64();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(api.get(&format!("/jobs/{JOB}")).1["duration_ms"].as_u64(), duration);
}

#[test]
fn rest_bind_serves_the_api_of_a_job_started_by_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let rest = RestConfig { bind: Some(addr.clone()) };
    let client = slow_job(dir.path(), rest, None).execute_async().unwrap();
    let api = Api::new(&addr);
    let jobs = api.until("/jobs", "the job", |jobs| jobs["jobs"][0]["name"] == JOB);
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    client.cancel();
    assert!(client.wait().is_err());
    api.until(&format!("/jobs/{JOB}"), "cancelled", |job| job["state"] == "cancelled");
}

#[test]
fn a_restart_shows_in_the_state_restarts_failures_and_metrics() {
    static FAILED: AtomicBool = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let client =
        slow_job(dir.path(), RestConfig::default(), Some(&FAILED)).execute_async().unwrap();
    let server =
        weir_rest::serve(weir_rest::bind("127.0.0.1:0").unwrap(), (&client).into()).unwrap();
    let api = Api::new(server.local_addr());
    let path = format!("/jobs/{JOB}");
    let job =
        api.until(&path, "a restart", |job| job["restarts"] == 1 && job["state"] == "running");
    assert_eq!(job["failure_count"], 1);
    let failure = &job["last_failure"];
    assert!(failure["message"].as_str().unwrap().contains("record 500 fails once"), "{job}");
    assert!(failure["time_ms"].as_u64() >= job["start_time_ms"].as_u64(), "{job}");
    assert!(
        api.text("/metrics").contains(&format!("weir_job_restarts_total{{job=\"{JOB}\"}} 1\n"))
    );
    client.cancel();
    assert!(client.wait().is_err());
}

#[test]
fn load_watermarks_edges_exceptions_workers_and_the_dashboard_over_http() {
    static FAILED: AtomicBool = AtomicBool::new(false);
    let config = ExecutionConfig {
        parallelism: 1,
        batch_size: 64,
        progress_interval_ms: 0,
        restart: Some(RestartStrategy::FixedDelay { attempts: 3, delay_ms: 10 }),
        ..Default::default()
    };
    let mut env = StreamExecutionEnvironment::new(config);
    env.set_job_name(JOB);
    let strategy = WatermarkStrategy::for_monotonous_timestamps()
        .with_timestamp_assigner(|value: &u64, _| *value as i64);
    // An unthrottled source feeding a sink that takes 1 ms per record: the source is
    // backpressured and the sink busy.
    env.from_generator(GeneratorConfig::unbounded(), |i| i)
        .assign_timestamps_and_watermarks(strategy)
        .rebalance()
        .map(|value| {
            if value == 100 && !FAILED.swap(true, Ordering::SeqCst) {
                panic!("record 100 fails once");
            }
            std::thread::sleep(Duration::from_millis(1));
            value
        })
        .discard();
    let client = env.execute_async().unwrap();
    let server =
        weir_rest::serve(weir_rest::bind("127.0.0.1:0").unwrap(), (&client).into()).unwrap();
    let api = Api::new(server.local_addr());
    let path = format!("/jobs/{JOB}");
    let job = api.until(&path, "a backpressured source, a busy sink and watermarks", |job| {
        job["restarts"] == 1
            && job["vertices"][0]["backpressured_ratio"].as_f64() > Some(0.5)
            && job["vertices"][2]["busy_ratio"].as_f64() > Some(0.5)
            && job["vertices"][2]["watermark"].as_i64() > Some(0)
    });
    let names: Vec<&str> =
        job["vertices"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "source, timestamps, map, sink: {names:?}");
    let edges = &job["edges"];
    assert_eq!(
        edges[0],
        json!({ "source": 0, "target": 1, "partitioning": "FORWARD", "chained": true })
    );
    assert_eq!(
        edges[1],
        json!({ "source": 1, "target": 2, "partitioning": "REBALANCE", "chained": false })
    );
    let map = &job["vertices"][2];
    let subtask = &map["subtasks"][0];
    let shares =
        ["busy_ratio", "backpressured_ratio", "idle_ratio"].map(|r| subtask[r].as_f64().unwrap());
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 0.01, "{subtask}");
    assert_eq!(map["watermark_held_back_by"]["name"], names[1], "{map}");

    let (status, exceptions) = api.get(&format!("{path}/exceptions"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (exceptions["restarts"].as_u64(), exceptions["restarts_remaining"].as_u64()),
        (Some(1), Some(2))
    );
    let failure = &exceptions["history"][0];
    assert!(failure["message"].as_str().unwrap().contains("record 100 fails once"), "{failure}");
    assert_eq!(failure["operator"], "Map (1/1)");

    let (_, workers) = api.get("/workers");
    assert_eq!(workers["workers"].as_array().unwrap().len(), 1, "{workers}");
    assert_eq!(workers["workers"][0]["slots"], 1);

    assert!(api.text("/").contains("<title>Weir</title>"));
    assert!(api.text("/app.js").contains("/jobs/"), "the page's script reads the API");
    client.cancel();
    assert!(client.wait().is_err());
}
