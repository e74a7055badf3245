//! Weir's Kubernetes operator.
//!
//! A user `kubectl apply`s a [`StreamJob`](crd::StreamJob); the controller turns it into an
//! owned ConfigMap (the engine's settings), a coordinator pod with a Service, and worker pods
//! sized by the memory model (`weir-memory`), and keeps them converged: on a spec change it
//! stops the job as the upgrade mode says (savepoint, latest checkpoint or nothing), records
//! where the state is in the status first, and redeploys from it.
//!
//! - [`crd`]: the resource, its spec and status;
//! - [`plan`]: worker count, memory breakdowns and the spec hash, or why the spec is invalid;
//! - [`render`]: the owned objects, as pure functions;
//! - [`observe`]: what the pods say; [`jobapi`]: what the job's REST API says;
//! - [`machine`]: the lifecycle state machine; [`steps`]: the calls of each step;
//! - [`reconcile`]: one reconcile (finalizer, status by server-side apply);
//!   [`conditions`]: `Ready`, `Progressing`, `Degraded`;
//! - [`controller`]: the kube-rs `Controller`; [`context`]: what reconciles share;
//!   [`metrics`]: Prometheus metrics; [`leader`]: leader election over a Lease;
//! - [`error`]: the crate's error type.

pub mod conditions;
pub mod context;
pub mod controller;
pub mod crd;
pub mod error;
pub mod jobapi;
pub mod leader;
pub mod machine;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod steps;
#[cfg(test)]
mod testing;

pub use error::{Error, Result};
pub use plan::Plan;
