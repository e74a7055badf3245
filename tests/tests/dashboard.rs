//! The web dashboard in real headless Chromium (Debian's, driven over WebDriver by its
//! chromedriver): a running job's graph is drawn, a vertex behind a throttled sink turns from
//! idle to backpressured, a savepoint triggered with the button appears in the checkpoint
//! list, and an injected failure appears under exceptions. Screenshots of each view go to
//! `$CARGO_TARGET_DIR/dashboard-screenshots/` (else `target/`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use weir::time::WatermarkStrategy;
use weir::{
    CheckpointConfig, ExecutionConfig, GeneratorConfig, RestConfig, RestartStrategy,
    StreamExecutionEnvironment,
};
use weir_tests::services::{Browser, free_port};

/// The sink takes 5 ms per record once set (the source makes 400 a second).
static THROTTLE: AtomicBool = AtomicBool::new(false);
/// The next record fails the sink once when set.
static FAIL: AtomicBool = AtomicBool::new(false);

const LIMIT: Duration = Duration::from_secs(15);

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(weir_tests::manifest_dir()).join("../target"), PathBuf::from);
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A script answering the `data-load` (idle, busy or backpressured) of the vertex `name`
/// when `expected` is `None`, else whether it is `expected`.
fn load_of(name: &str, expected: Option<&str>) -> String {
    let load = "v && v.getAttribute('data-load')";
    let answer = expected.map_or(load.to_string(), |e| format!("{load} === '{e}'"));
    format!(
        "const v = document.querySelector('#job-graph g.vertex[data-name=\"{name}\"]');
             return {answer};"
    )
}

#[test]
fn the_dashboard_shows_graph_backpressure_savepoints_and_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let config = ExecutionConfig {
        parallelism: 1,
        batch_size: 16,
        channel_capacity: 2,
        progress_interval_ms: 0,
        checkpointing: CheckpointConfig {
            interval_ms: 500,
            dir: dir.path().join("checkpoints").display().to_string(),
            savepoint_dir: Some(dir.path().join("savepoints").display().to_string()),
            ..Default::default()
        },
        rest: RestConfig { bind: Some(addr.clone()) },
        restart: Some(RestartStrategy::FixedDelay { attempts: 3, delay_ms: 100 }),
        ..Default::default()
    };
    let mut env = StreamExecutionEnvironment::new(config);
    env.set_job_name("dashboard-job");
    let strategy = WatermarkStrategy::for_monotonous_timestamps()
        .with_timestamp_assigner(|value: &u64, _| *value as i64);
    env.from_generator(GeneratorConfig::unbounded().with_rate(400.0), |i| i)
        .assign_timestamps_and_watermarks(strategy)
        .rebalance()
        .map(|value| {
            if FAIL.swap(false, Ordering::SeqCst) {
                panic!("injected failure at record {value}");
            }
            if THROTTLE.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            value
        })
        .discard();
    let client = env.execute_async().unwrap();
    let browser = Browser::start().unwrap();
    let shots = screenshots();
    let url = format!("http://{addr}/");

    browser.goto(&format!("{url}#overview")).unwrap();
    let script = "const t = document.querySelector('#jobs-table');
                  return t && t.textContent.includes('running') && t.textContent;";
    browser.wait_for("the running job", script, LIMIT).unwrap();
    browser.screenshot(&shots.join("overview.png")).unwrap();

    browser.goto(&format!("{url}#graph")).unwrap();
    let script = "return document.querySelectorAll('#job-graph g.vertex').length === 4 &&
                  document.querySelectorAll('#job-graph g.edge').length === 3;";
    browser.wait_for("the job graph", script, LIMIT).unwrap();
    let source = "Source: Data Generator";
    let before = browser.wait_for("the source's load", &load_of(source, None), LIMIT).unwrap();
    assert_eq!(before, "idle", "the source keeps up before the sink is throttled");
    THROTTLE.store(true, Ordering::Relaxed);
    let backpressured = load_of(source, Some("backpressured"));
    browser.wait_for("a backpressured source", &backpressured, LIMIT).unwrap();
    browser.wait_for("a busy sink", &load_of("Map", Some("busy")), LIMIT).unwrap();
    // The vertex is an SVG group: click it in the page (WebDriver clicks aim at HTML boxes).
    let click = "document.querySelector('#job-graph g.vertex[data-name=\"Map\"]')
                 .dispatchEvent(new MouseEvent('click', { bubbles: true }));";
    browser.eval(click, json!([])).unwrap();
    let script = "const t = document.querySelector('#subtasks-table');
                  return t && t.querySelectorAll('tr').length === 2;";
    browser.wait_for("the subtask table", script, LIMIT).unwrap();
    browser.screenshot(&shots.join("graph.png")).unwrap();
    THROTTLE.store(false, Ordering::Relaxed);

    browser.goto(&format!("{url}#checkpoints")).unwrap();
    browser
        .wait_for("the button", "return !!document.querySelector('#trigger-savepoint');", LIMIT)
        .unwrap();
    browser.click("#trigger-savepoint").unwrap();
    let script =
        "return document.querySelectorAll('#checkpoints-table tr[data-kind=savepoint]').length > 0
                  && document.querySelector('#latest-savepoint').textContent !== 'none'
                  && document.querySelector('#savepoint-result').textContent.startsWith('savepoint taken');";
    browser.wait_for("the savepoint in the list", script, LIMIT).unwrap();
    browser.screenshot(&shots.join("checkpoints.png")).unwrap();

    FAIL.store(true, Ordering::SeqCst);
    browser.goto(&format!("{url}#exceptions")).unwrap();
    let script = "const t = document.querySelector('#exceptions-table');
                  return t && t.textContent.includes('injected failure') && t.textContent;";
    let shown = browser.wait_for("the injected failure", script, LIMIT).unwrap();
    assert!(shown.as_str().unwrap().contains("Map (1/1)"), "the operator is named: {shown}");
    let restarts =
        browser.eval("return document.querySelector('#restarts').textContent;", json!([])).unwrap();
    assert_eq!(restarts, "restarts 1 · restarts left 2");
    browser.screenshot(&shots.join("exceptions.png")).unwrap();

    client.cancel();
    assert!(client.wait().is_err(), "a cancelled job ends with an error");
}
