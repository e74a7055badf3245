//! An emulated Kubernetes API server for tests: an HTTP server on 127.0.0.1 that a real
//! `kube::Client` talks to, holding objects in memory. No real kube-apiserver can be
//! installed here, and `kube-fake-client` needs kube 4, so the controller's stateful tests
//! and the end-to-end test run against this.
//!
//! It covers what the operator uses, the way the API server does it:
//! - namespaced create, get, list (every namespace too), replace, patch and delete of
//!   StreamJobs (with the `/status` subresource), Pods and Services (with `/status`),
//!   ConfigMaps, Secrets, Events (core and `events.k8s.io/v1`) and Leases;
//! - `labelSelector` (equality and set-based) and `fieldSelector` on `metadata.name` and
//!   `metadata.namespace`;
//! - `?watch=true`: `ADDED`/`MODIFIED`/`DELETED` in version order, resumed after a
//!   `resourceVersion` (or starting with the current objects), ending at `timeoutSeconds`;
//! - one cluster-wide `resourceVersion` that every write increments, writes that change
//!   nothing keep it; `409 Conflict` for a write with an outdated version; `uid`,
//!   `creationTimestamp`, `metadata.generation` counted on changes outside metadata and
//!   status (StreamJobs); the status subresource ignoring everything but status and the
//!   main resource ignoring status;
//! - JSON patch (a failed `test` is `422`), JSON merge patch, and server-side apply with a
//!   `fieldManager`: applied fields merge into the object, fields the manager applied before
//!   and dropped are removed unless another applier owns them, `managedFields` records each
//!   applier's fields (`FieldsV1`);
//! - finalizers: a delete sets `deletionTimestamp` and the object stays until its last
//!   finalizer is removed; no new finalizer once deleting; a pod on a node (`spec.nodeName`)
//!   is deleted gracefully, its kubelet finishing the delete;
//! - garbage collection: removing an object deletes the objects whose `ownerReferences`
//!   name its uid (background propagation; `Orphan` leaves them);
//! - failures as `Status` bodies: 404 NotFound, 409 AlreadyExists and Conflict, 422
//!   Invalid, 400, 405, 415.
//!
//! Not covered: schema validation, defaulting and pruning of CRDs (and CEL rules), apply
//! conflicts (every apply acts as forced), ownership taken by non-apply writes, lists merged
//! by key in apply (lists are atomic), strategic merge patch, pagination (`limit` is
//! ignored), `resourceVersionMatch`, bookmarks and `sendInitialEvents`, `410 Gone` (the
//! whole history is kept), watch events for objects that stop matching a selector,
//! foreground deletion, cluster-scoped resources, discovery, authentication and admission.

pub mod errors;
pub mod patch;
pub mod resources;
pub mod routes;
pub mod selector;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;

use store::Store;

/// A running emulator; stops when dropped.
pub struct ApiServer {
    /// Where it listens.
    pub addr: SocketAddr,
    server: JoinHandle<()>,
}

impl ApiServer {
    /// Starts an empty API server on a free port of 127.0.0.1.
    pub async fn start() -> ApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let router = routes::router(Arc::new(Store::default()));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("the API server runs");
        });
        ApiServer { addr, server }
    }

    /// A client of this server, with default namespace `default`.
    pub fn client(&self) -> kube::Client {
        let url = format!("http://{}", self.addr).parse().expect("a valid URL");
        kube::Client::try_from(kube::Config::new(url)).expect("a client")
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
