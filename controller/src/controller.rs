//! The kube-rs `Controller`: watches StreamJobs and the pods, ConfigMaps and Services they
//! own, and runs [`reconcile`](crate::reconcile::reconcile) for each change.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::runtime::Controller;
use kube::runtime::watcher::Config;
use kube::{Api, Client, Resource};
use tracing::{info, warn};

use crate::context::Context;
use crate::crd::StreamJob;
use crate::reconcile::{error_policy, reconcile};

/// Runs the controller over `namespace` (every namespace when `None`) until the watches end.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let jobs: Api<StreamJob> = api(&client, namespace);
    let owned = Config::default().labels("app.kubernetes.io/managed-by=weir-operator");
    Controller::new(jobs, Config::default().any_semantic())
        .owns::<Pod>(api(&client, namespace), owned.clone())
        .owns::<ConfigMap>(api(&client, namespace), owned.clone())
        .owns::<Service>(api(&client, namespace), owned)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((job, _)) => info!(job = %job.name, "reconciled"),
                Err(error) => warn!(%error, "reconcile error"),
            }
        })
        .await;
}

/// An API of `K` in `namespace`, or in every namespace.
fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}
