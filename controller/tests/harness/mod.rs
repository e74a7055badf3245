//! What the tests against the emulated API server share: the controller run as the binary
//! runs it, and waiting until a condition holds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_operator::context::{Context, Settings};
use weir_operator::jobapi::JobApi;
use weir_operator::metrics::Metrics;

/// Logs of the tests (`RUST_LOG`), once per test binary.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::from_default_env();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// Runs the controller over every namespace (the binary's default) on a task.
pub fn run_controller(
    client: Client,
    job_api: Arc<dyn JobApi>,
    settings: Settings,
) -> JoinHandle<()> {
    let metrics = Arc::new(Metrics::default());
    let ctx = Context::new(client, job_api, metrics, settings, Some("test".into()));
    tokio::spawn(weir_operator::controller::run(Arc::new(ctx), None))
}

/// Waits until `check` returns something, looking again every 20 ms; fails after `patience`.
pub async fn eventually<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
