//! The steps of the [state machine](crate::machine), each a few API or REST calls that
//! update the status it is given; the status is written after the step returns.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::info;

use crate::conditions::Health;
use crate::context::{Context, MANAGER};
use crate::crd::{
    Deployment, DesiredState, Phase, Snapshot, StreamJob, StreamJobStatus, Upgrade, UpgradeCause,
    UpgradeMode, UpgradeStep,
};
use crate::machine::{Observed, Step};
use crate::observe::{PodHealth, PodView};
use crate::render::names::Role;
use crate::render::{config, pods, service};
use crate::{Error, Plan, Result};

/// What a step leaves: the health to report and when to look again.
#[derive(Debug)]
pub struct Outcome {
    /// Phase and reason for the conditions.
    pub health: Health,
    /// When to reconcile again.
    pub action: Action,
}

impl Outcome {
    fn new(phase: Phase, reason: &str, message: impl Into<String>, action: Action) -> Self {
        let health = Health { phase, reason: reason.into(), message: message.into() };
        Outcome { health, action }
    }
}

/// Runs `step`, updating `status`.
pub async fn run(
    step: Step,
    observed: &Observed<'_>,
    ctx: &Context,
    status: &mut StreamJobStatus,
) -> Result<Outcome> {
    let job = observed.job;
    let soon = Action::requeue(ctx.settings.step_interval);
    match step {
        Step::Reject(reason) => {
            publish(ctx, job, EventType::Warning, "InvalidSpec", &reason).await;
            Ok(Outcome::new(Phase::Failed, "InvalidSpec", reason, Action::await_change()))
        }
        Step::Deploy { revision, restore } => {
            let plan = plan(observed)?;
            apply_shared(job, ctx).await?;
            let restored_from = restore.clone();
            create_pods(job, ctx, plan, revision, &[], restore.as_deref()).await?;
            status.deployment =
                Some(Deployment { revision, spec_hash: plan.spec_hash.clone(), restored_from });
            status.upgrade = None;
            status.last_checkpoint = None;
            let message = match &restore {
                Some(path) => {
                    format!("revision {revision}: {} workers, restoring {path}", plan.workers)
                }
                None => format!("revision {revision}: {} workers, empty state", plan.workers),
            };
            publish(ctx, job, EventType::Normal, "Deploying", &message).await;
            Ok(Outcome::new(Phase::Deploying, "Deploying", message, soon))
        }
        Step::Converge => converge(observed, ctx, status).await,
        Step::Ended { failed } => {
            let workers = observed.pods.iter().filter(|p| p.role == Role::Worker);
            delete_pods(job, ctx, workers).await?;
            let (phase, reason, message) = if failed {
                (Phase::Failed, "JobFailed", "the job failed; its coordinator pod has the logs")
            } else {
                (Phase::Finished, "JobFinished", "the job finished")
            };
            Ok(Outcome::new(phase, reason, message, Action::await_change()))
        }
        Step::TriggerSavepoint => {
            let view = observed.job_view.ok_or_else(|| unreachable_job(ctx, job))?;
            let (url, format) = (ctx.rest_url(job), job.savepoint_format());
            let location = ctx.job_api.savepoint(&url, &view.name, false, format).await?;
            publish(ctx, job, EventType::Normal, "SavepointTaken", &location).await;
            status.last_savepoint = Some(Snapshot { location, id: None });
            status.savepoint_trigger_nonce = job.spec.savepoint_trigger_nonce;
            Ok(Outcome::new(Phase::Running, "SavepointTaken", "savepoint taken on request", soon))
        }
        Step::BeginTakedown(cause) => {
            let mode = job.spec.upgrade_mode;
            status.upgrade =
                Some(Upgrade { cause, mode, step: UpgradeStep::Stopping, restore_from: None });
            let message = format!("{cause:?} in {mode:?} mode: stopping the job");
            publish(ctx, job, EventType::Normal, reason(cause), &message).await;
            Ok(Outcome::new(Phase::Upgrading, reason(cause), message, soon))
        }
        Step::Stop => stop(observed, ctx, status).await,
        Step::DeletePods => {
            let live: Vec<_> =
                observed.pods.iter().filter(|p| p.health != PodHealth::Terminating).collect();
            delete_pods(job, ctx, live.iter().copied()).await?;
            let upgrade = status.upgrade.as_mut().expect("the machine checked the upgrade");
            if observed.pods.is_empty() {
                upgrade.step = UpgradeStep::Done;
            }
            let cause = upgrade.cause;
            Ok(Outcome::new(Phase::Upgrading, reason(cause), "deleting the old pods", soon))
        }
        Step::Idle => Ok(Outcome::new(
            Phase::Suspended,
            "Suspended",
            "suspended: no pods",
            Action::await_change(),
        )),
        Step::Released => Ok(Outcome::new(
            Phase::Finished,
            "Deleted",
            "stopped for deletion",
            Action::await_change(),
        )),
    }
}

fn reason(cause: UpgradeCause) -> &'static str {
    match cause {
        UpgradeCause::SpecChange => "Upgrading",
        UpgradeCause::Suspend => "Suspending",
        UpgradeCause::Delete => "Deleting",
    }
}

fn plan<'a>(observed: &Observed<'a>) -> Result<&'a Plan> {
    observed.plan.clone().map_err(Error::InvalidSpec)
}

fn unreachable_job(ctx: &Context, job: &StreamJob) -> Error {
    Error::JobApi { url: ctx.rest_url(job), message: "the job is not reachable".into() }
}

/// Stops the job as the recorded upgrade mode says, and records where its state is.
async fn stop(
    observed: &Observed<'_>,
    ctx: &Context,
    status: &mut StreamJobStatus,
) -> Result<Outcome> {
    let job = observed.job;
    let upgrade = status.upgrade.clone().expect("the machine checked the upgrade");
    let url = ctx.rest_url(job);
    if upgrade.mode == UpgradeMode::Savepoint && observed.job_view.is_none() {
        let coordinator_up = observed
            .pods
            .iter()
            .any(|pod| pod.role == Role::Coordinator && pod.health == PodHealth::Running);
        if coordinator_up {
            // Its REST API did not answer this once: try again rather than fall back to the
            // last checkpoint while the job runs (an upgrade in savepoint mode takes one).
            return Err(unreachable_job(ctx, job));
        }
    }
    let running = observed.job_view.filter(|view| view.is_running());
    let restore_from = match (upgrade.mode, observed.job_view, running) {
        (UpgradeMode::Savepoint, Some(view), _) if view.stopped_with_savepoint.is_some() => {
            // Stopped by an earlier call whose answer was lost (a restarted controller, a
            // connection closed as the job stopped): its savepoint is this upgrade's.
            let location = view.stopped_with_savepoint.clone();
            status.last_savepoint =
                location.clone().map(|location| Snapshot { location, id: None });
            location
        }
        (UpgradeMode::Savepoint, _, Some(view)) => {
            let format = job.savepoint_format();
            let location = ctx.job_api.savepoint(&url, &view.name, true, format).await?;
            publish(ctx, job, EventType::Normal, "SavepointTaken", &location).await;
            status.last_savepoint = Some(Snapshot { location: location.clone(), id: None });
            Some(location)
        }
        (UpgradeMode::Stateless, _, running) => {
            if let Some(view) = running {
                ctx.job_api.cancel(&url, &view.name).await?;
            }
            None
        }
        (_, _, running) => {
            // last-state, or a savepoint that cannot be taken because the job is not up:
            // the engine restores the newest complete checkpoint in storage.
            if let Some(view) = running {
                ctx.job_api.cancel(&url, &view.name).await?;
            }
            Some("latest".to_string())
        }
    };
    info!(job = %job.name_any(), ?restore_from, "job stopped");
    let message = format!(
        "job stopped; the next deployment restores {}",
        restore_from.as_deref().unwrap_or("nothing")
    );
    status.upgrade = Some(Upgrade { step: UpgradeStep::Deleting, restore_from, ..upgrade });
    Ok(Outcome::new(
        Phase::Upgrading,
        reason(upgrade.cause),
        message,
        Action::requeue(ctx.settings.step_interval),
    ))
}

/// Keeps the deployed revision whole and reports how it runs.
async fn converge(
    observed: &Observed<'_>,
    ctx: &Context,
    status: &mut StreamJobStatus,
) -> Result<Outcome> {
    let job = observed.job;
    let plan = plan(observed)?;
    let deployment = status.deployment.clone().expect("the machine checked the deployment");
    let revision = deployment.revision;
    apply_shared(job, ctx).await?;
    let current = |p: &&PodView| {
        p.revision == revision && (p.role == Role::Coordinator || p.index < Some(plan.workers))
    };
    let stray = observed.pods.iter().filter(|p| !current(p) || p.health == PodHealth::Lost);
    delete_pods(job, ctx, stray.filter(|p| p.health != PodHealth::Terminating)).await?;
    let present: Vec<PodView> = observed.pods.iter().filter(current).cloned().collect();
    // A replaced coordinator restores the newest checkpoint once the job has one.
    let restore = match (&status.last_checkpoint, &job.spec.checkpointing) {
        (Some(_), Some(_)) => Some("latest".to_string()),
        _ => deployment.restored_from.clone(),
    };
    create_pods(job, ctx, plan, revision, &present, restore.as_deref()).await?;
    let all_running = present.len() == plan.workers as usize + 1
        && present.iter().all(|p| p.health == PodHealth::Running);
    let job_running = observed.job_view.is_some_and(|view| view.is_running());
    let (phase, reason, message) = if all_running && job_running {
        (Phase::Running, "JobRunning", format!("running with parallelism {}", job.spec.parallelism))
    } else {
        (Phase::Deploying, "PodsStarting", "waiting for the pods and the job to run".to_string())
    };
    if job.spec.state == DesiredState::Running && phase == Phase::Running {
        status.last_error = None;
    }
    Ok(Outcome::new(phase, reason, message, Action::requeue(ctx.settings.poll_interval)))
}

/// Applies the ConfigMap and the coordinator Service.
async fn apply_shared(job: &StreamJob, ctx: &Context) -> Result<()> {
    apply(ctx, job, config::config_map(job)?).await?;
    apply(ctx, job, service::coordinator_service(job)).await
}

/// Creates the pods of `revision` that are not in `present`.
async fn create_pods(
    job: &StreamJob,
    ctx: &Context,
    plan: &Plan,
    revision: u32,
    present: &[PodView],
    restore: Option<&str>,
) -> Result<()> {
    if !present.iter().any(|p| p.role == Role::Coordinator) {
        apply(ctx, job, pods::coordinator(job, plan, revision, restore)?).await?;
    }
    for index in 0..plan.workers {
        if !present.iter().any(|p| p.index == Some(index)) {
            apply(ctx, job, pods::worker(job, plan, revision, index)?).await?;
        }
    }
    Ok(())
}

/// Server-side applies an object the job owns, in the job's namespace.
async fn apply<K>(ctx: &Context, job: &StreamJob, object: K) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let namespace = job.namespace().ok_or_else(|| Error::NoNamespace(job.name_any()))?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = object.name_any();
    let mut value = serde_json::to_value(&object)
        .map_err(|e| Error::Serialize { what: "an owned object", message: e.to_string() })?;
    value["apiVersion"] = K::api_version(&()).into();
    value["kind"] = K::kind(&()).into();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(value)).await?;
    Ok(())
}

/// Deletes these pods (already gone is fine).
async fn delete_pods<'a>(
    job: &StreamJob,
    ctx: &Context,
    pods: impl Iterator<Item = &'a PodView>,
) -> Result<()> {
    let namespace = job.namespace().ok_or_else(|| Error::NoNamespace(job.name_any()))?;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    for pod in pods {
        match api.delete(&pod.name, &DeleteParams::default()).await {
            Ok(_) => info!(pod = %pod.name, "pod deleted"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Publishes an event about `job`; a failure to publish is logged, not fatal.
async fn publish(ctx: &Context, job: &StreamJob, type_: EventType, reason: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &job.object_ref(&())).await {
        tracing::warn!(%error, "cannot publish an event");
    }
}
