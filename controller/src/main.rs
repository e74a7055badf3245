//! `weir-operator`: runs the StreamJob controller once this replica leads, and serves
//! `/metrics` and `/healthz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use clap::Parser;
use kube::{Api, Client};
use tracing::info;
use weir_operator::context::{Context, Settings};
use weir_operator::jobapi::HttpJobApi;
use weir_operator::leader::Elector;
use weir_operator::metrics::Metrics;

/// Weir's Kubernetes operator.
#[derive(Parser, Debug)]
#[command(name = "weir-operator", version, about)]
struct Args {
    /// Watch StreamJobs in this namespace only (default: every namespace).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Where `/metrics` and `/healthz` are served.
    #[arg(long, env = "METRICS_BIND", default_value = "0.0.0.0:8080")]
    metrics_bind: SocketAddr,
    /// The Lease that elects the leading replica.
    #[arg(long, default_value = "weir-operator-leader")]
    lease_name: String,
    /// The Lease's namespace (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the Lease (its pod name).
    #[arg(long, env = "POD_NAME", default_value = "weir-operator")]
    identity: String,
    /// Seconds between polls of a running job's REST API.
    #[arg(long, default_value_t = 15)]
    poll_interval_secs: u64,
    /// Seconds a stop-with-savepoint may take.
    #[arg(long, default_value_t = 600)]
    savepoint_timeout_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let client = Client::try_default().await.context("cannot reach the Kubernetes API")?;
    let metrics = Arc::new(Metrics::default());
    serve_metrics(args.metrics_bind, metrics.clone()).await?;
    let settings = Settings {
        poll_interval: Duration::from_secs(args.poll_interval_secs),
        ..Settings::default()
    };
    let job_api = Arc::new(HttpJobApi::new(Duration::from_secs(args.savepoint_timeout_secs))?);
    let ctx = Context::new(client.clone(), job_api, metrics, settings, Some(args.identity.clone()));
    let leases = Api::namespaced(client, &args.lease_namespace);
    let elector = Elector::new(leases, &args.lease_name, &args.identity, Duration::from_secs(15));
    elector.acquire().await?;
    tokio::select! {
        () = weir_operator::controller::run(Arc::new(ctx), args.namespace.as_deref()) => {
            info!("controller stopped");
        }
        lost = elector.keep() => {
            lost?;
            anyhow::bail!("lost the leader Lease {}; exiting so that one replica leads", args.lease_name);
        }
    }
    Ok(())
}

/// Serves `/metrics` and `/healthz` on a task of its own.
async fn serve_metrics(bind: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let router = Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot serve metrics on {bind}"))?;
    info!(%bind, "serving /metrics and /healthz");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(())
}
