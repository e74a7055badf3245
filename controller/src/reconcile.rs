//! One reconcile of a StreamJob: through the finalizer, observe the pods and the job, let
//! the [state machine](crate::machine) pick the next step, run it, and write the status
//! with server-side apply.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event};
use kube::{Api, ResourceExt};
use tracing::{info, warn};

use crate::context::{Context, MANAGER};
use crate::crd::{Phase, StreamJob, StreamJobStatus};
use crate::machine::{self, Observed, Step};
use crate::observe::{PodHealth, PodView};
use crate::plan::Plan;
use crate::render::names::{self, Role};
use crate::steps::{self, Outcome};
use crate::{Error, Result, conditions};

/// The finalizer that lets the operator stop the job (with a savepoint when configured)
/// before the StreamJob goes.
pub const FINALIZER: &str = "weir.dev/stop-job";

/// Reconciles `job`; the controller calls it for every change and requeue.
pub async fn reconcile(job: Arc<StreamJob>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    let namespace = job.namespace().ok_or_else(|| Error::NoNamespace(job.name_any()))?;
    let api: Api<StreamJob> = Api::namespaced(ctx.client.clone(), &namespace);
    let being_deleted = job.metadata.deletion_timestamp.is_some()
        && job.finalizers().iter().any(|f| f == FINALIZER);
    let result = if being_deleted {
        take_down(&api, job, &ctx).await
    } else {
        finalizer::finalizer(&api, FINALIZER, job, |event| async {
            let deleting = matches!(event, Event::Cleanup(_));
            let (Event::Apply(job) | Event::Cleanup(job)) = event;
            run(&job, &ctx, deleting).await.map(|(action, _)| action)
        })
        .await
        .map_err(finalizer_error)
    };
    ctx.metrics.reconcile_finished(started.elapsed());
    result
}

/// One step of taking a deleted job down. kube's `finalizer()` removes the finalizer as soon
/// as one cleanup succeeds, but stopping the job and deleting its pods takes several
/// reconciles, so the finalizer goes through it only once the machine releases the job.
async fn take_down(api: &Api<StreamJob>, job: Arc<StreamJob>, ctx: &Context) -> Result<Action> {
    let (action, released) = run(&job, ctx, true).await?;
    if !released {
        return Ok(action);
    }
    finalizer::finalizer(api, FINALIZER, job, |_| async { Ok(Action::await_change()) })
        .await
        .map_err(finalizer_error)
}

fn finalizer_error(error: finalizer::Error<Error>) -> Error {
    match error {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    }
}

/// What the controller does after a failed reconcile: count it and retry soon.
pub fn error_policy(job: Arc<StreamJob>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(job = %job.name_any(), %error, "reconcile failed");
    ctx.metrics.reconcile_failed(error);
    Action::requeue(ctx.settings.step_interval * 5)
}

/// One step for `job`, then its status; with whether the job is released for deletion.
async fn run(job: &StreamJob, ctx: &Context, deleting: bool) -> Result<(Action, bool)> {
    let namespace = job.namespace().ok_or_else(|| Error::NoNamespace(job.name_any()))?;
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let listed = pod_api.list(&ListParams::default().labels(&names::job_selector(job))).await?;
    let pods: Vec<PodView> = listed.items.iter().filter_map(PodView::of).collect();
    let plan = Plan::of(job);
    let deployed = job.status.as_ref().and_then(|s| s.deployment.as_ref()).map(|d| d.revision);
    let coordinator_up = pods.iter().any(|p| {
        p.role == Role::Coordinator
            && Some(p.revision) == deployed
            && p.health == PodHealth::Running
    });
    let job_view = if coordinator_up {
        match ctx.job_api.observe(&ctx.rest_url(job)).await {
            Ok(view) => Some(view),
            Err(error) => {
                warn!(job = %job.name_any(), %error, "job REST API not reachable");
                None
            }
        }
    } else {
        None
    };
    let observed = Observed {
        job,
        plan: plan.as_ref().map_err(ToString::to_string),
        deleting,
        pods: &pods,
        job_view: job_view.as_ref(),
    };
    let step = machine::decide(&observed);
    info!(job = %job.name_any(), ?step, "reconciling");
    let mut status = job.status.clone().unwrap_or_default();
    if let Some(view) = &job_view {
        status.job_id = Some(view.name.clone());
        if view.last_checkpoint.is_some() {
            status.last_checkpoint = view.last_checkpoint.clone();
        }
    }
    if let Ok(plan) = &plan {
        status.memory = Some(plan.memory_status());
    }
    status.selector = Some(names::job_selector(job));
    let released = step == Step::Released;
    match steps::run(step, &observed, ctx, &mut status).await {
        Ok(Outcome { health, action }) => {
            status.last_error = (health.phase == Phase::Failed).then(|| health.message.clone());
            write_status(job, ctx, status, &health).await?;
            Ok(if released { (Action::await_change(), true) } else { (action, false) })
        }
        Err(error) => {
            status.last_error = Some(error.to_string());
            let phase = status.phase.unwrap_or(Phase::Deploying);
            let health = conditions::Health {
                phase,
                reason: error.reason().to_string(),
                message: error.to_string(),
            };
            write_status(job, ctx, status, &health).await?;
            Err(error)
        }
    }
}

/// Writes `status` with server-side apply, if it changed.
async fn write_status(
    job: &StreamJob,
    ctx: &Context,
    mut status: StreamJobStatus,
    health: &conditions::Health,
) -> Result<()> {
    let generation = job.metadata.generation;
    status.phase = Some(health.phase);
    status.observed_generation = generation;
    status.parallelism = status.deployment.as_ref().map(|_| job.spec.parallelism);
    status.conditions = conditions::conditions(health, &status, generation);
    if job.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let namespace = job.namespace().ok_or_else(|| Error::NoNamespace(job.name_any()))?;
    let api: Api<StreamJob> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": "weir.dev/v1alpha1",
        "kind": "StreamJob",
        "status": status,
    });
    let params = PatchParams::apply(MANAGER).force();
    api.patch_status(&job.name_any(), &params, &Patch::Apply(patch)).await?;
    Ok(())
}
