//! Weir's Kubernetes operator.
//!
//! A user `kubectl apply`s a [`StreamJob`](crd::StreamJob); the controller turns it into an
//! owned ConfigMap (the engine's settings), a coordinator pod with a Service, and worker
//! pods sized by the memory model (`weir-memory`), and keeps them converged: on a spec change
//! it stops the job as the upgrade mode says (savepoint, latest checkpoint or nothing),
//! records where the state is in the status first, and redeploys from it.
//!
//! - [`crd`]: the resource, its spec and status;
//! - [`error`]: the crate's error type.

pub mod crd;
pub mod error;

pub use error::{Error, Result};
