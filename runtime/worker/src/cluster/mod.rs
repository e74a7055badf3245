//! Running a job as a cluster: a coordinator that schedules subtasks into the slots workers
//! offer and restarts the job when a task or a worker fails, and workers that run their
//! subtasks and exchange records with each other over gRPC streams with credit-based flow
//! control.
//!
//! - [`coordinator`]: the coordinator role (sessions, slot scheduling, failure handling);
//! - [`worker`]: the worker role (deployments, heartbeats, writing its tasks' state);
//! - `targets`: where a worker writes state for each checkpoint and savepoint;
//! - `placement`: which worker holds each slot;
//! - `inbound` / `outbound` / `credit` / `codec`: the data plane.

mod channel_key;
mod codec;
pub mod coordinator;
mod credit;
mod inbound;
mod outbound;
mod placement;
mod session;
mod targets;
mod task_messages;
pub mod worker;

use std::time::Duration;

use tracing::info;
use weir_rpc::tonic::transport::Channel;
use weir_rpc::v1::coordinator_client::CoordinatorClient;

pub use channel_key::ChannelKey;
pub use codec::{FrameSink, FrameSource};
pub(crate) use codec::{TypedFrameSink, TypedFrameSource};
pub use coordinator::{ClusterCoordinator, CoordinatorOptions};
pub use worker::{JobSpec, Worker, WorkerOptions};

use crate::{Error, ExecutionConfig, Result};

/// Network buffer memory of a worker without a memory configuration.
const DEFAULT_NETWORK_BYTES: u64 = 64 << 20;
/// The most credit one channel gets, however large the budget.
const MAX_CHANNEL_WINDOW: u64 = 4 << 20;

/// The credit window of each of a worker's `inbound_channels` remote input channels: the
/// network memory of the memory model (or 64 MiB) shared equally, at most 4 MiB each.
pub(crate) fn network_window(config: &ExecutionConfig, inbound_channels: usize) -> u64 {
    let budget = config
        .memory_breakdown()
        .ok()
        .flatten()
        .map_or(DEFAULT_NETWORK_BYTES, |memory| memory.network.size.0);
    (budget / inbound_channels.max(1) as u64).clamp(1, MAX_CHANNEL_WINDOW)
}

/// HTTP/2 flow-control windows (stream, connection): larger than any channel's credit, so
/// credit, not HTTP/2, decides what is in flight.
pub(crate) fn http2_windows() -> (u32, u32) {
    (8 << 20, 64 << 20)
}

/// The runtime a process's gRPC traffic runs on (two threads named `name`).
pub(crate) fn network_runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the network runtime: {e}")))
}

/// Connects to the coordinator, retrying for a while: workers may start before it.
pub(crate) async fn connect_patiently(address: &str) -> Result<CoordinatorClient<Channel>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let url = format!("http://{address}");
    let mut announced = false;
    loop {
        match CoordinatorClient::connect(url.clone()).await {
            Ok(client) => return Ok(client),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(Error::Cluster(format!(
                    "cannot reach the coordinator at {address} within 60 s: {error}"
                )));
            }
            Err(_) => {
                if !std::mem::replace(&mut announced, true) {
                    info!("waiting for the coordinator at {address}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
