//! The lifecycle as a state machine: from what is recorded in status and what is observed,
//! the one next step. Pure, so every transition is tested without an API server. Status is
//! written after each step, so a restarted operator resumes where the last one stopped.
//!
//! ```text
//! (nothing) ──Deploy──▶ deployed ──spec change / suspend / delete──▶ Stopping
//!     ▲                    │ ▲ Converge, TriggerSavepoint           │ savepoint, or
//!     │                    ▼ │ (pods replaced, nonce savepoints)    │ latest checkpoint,
//!  Deploy (restore) ◀── Done ◀──────── Deleting ◀───────────────────┘ or nothing; recorded
//! ```

use crate::crd::{DesiredState, StreamJob, Upgrade, UpgradeCause, UpgradeStep};
use crate::jobapi::JobView;
use crate::observe::{PodHealth, PodView};
use crate::plan::Plan;
use crate::render::names::Role;

/// What the controller knows when it decides.
#[derive(Debug)]
pub struct Observed<'a> {
    /// The StreamJob (spec and recorded status).
    pub job: &'a StreamJob,
    /// Its plan, or why it has none (invalid settings).
    pub plan: Result<&'a Plan, String>,
    /// Whether the StreamJob is being deleted.
    pub deleting: bool,
    /// Its pods.
    pub pods: &'a [PodView],
    /// The job as its coordinator reports it, if reachable.
    pub job_view: Option<&'a JobView>,
}

/// The next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The spec cannot be deployed and nothing runs: say why, create nothing.
    Reject(String),
    /// Create the ConfigMap, Service and pods of a new revision.
    Deploy {
        /// The new revision.
        revision: u32,
        /// What the job restores from.
        restore: Option<String>,
    },
    /// Keep the deployed revision whole: create missing pods, remove lost and stray ones.
    Converge,
    /// The job ended by itself (finished or failed): remove its workers, keep the
    /// coordinator pod for its logs.
    Ended {
        /// Whether it failed.
        failed: bool,
    },
    /// Take a savepoint of the running job for a new `savepointTriggerNonce`.
    TriggerSavepoint,
    /// Record that the running job is being taken down, and why.
    BeginTakedown(UpgradeCause),
    /// Stop the job as the upgrade mode says and record where its state is.
    Stop,
    /// Delete the pods of the stopped job; record `Done` once they are gone.
    DeletePods,
    /// Nothing runs and nothing should (suspended).
    Idle,
    /// Deleting, and nothing runs any more: the finalizer may go.
    Released,
}

/// The next step for `observed`.
pub fn decide(observed: &Observed<'_>) -> Step {
    let job = observed.job;
    let status = job.status.clone().unwrap_or_default();
    match (&status.deployment, &status.upgrade) {
        (_, Some(Upgrade { step: UpgradeStep::Stopping, .. })) => Step::Stop,
        (_, Some(Upgrade { step: UpgradeStep::Deleting, .. })) => Step::DeletePods,
        (Some(deployment), None) => {
            let plan_hash = observed.plan.as_ref().ok().map(|plan| plan.spec_hash.as_str());
            let cause = if observed.deleting {
                Some(UpgradeCause::Delete)
            } else if job.spec.state == DesiredState::Suspended {
                Some(UpgradeCause::Suspend)
            } else if plan_hash.is_some_and(|hash| hash != deployment.spec_hash) {
                Some(UpgradeCause::SpecChange)
            } else {
                None
            };
            if let Some(cause) = cause {
                return Step::BeginTakedown(cause);
            }
            let coordinator = observed
                .pods
                .iter()
                .find(|p| p.role == Role::Coordinator && p.revision == deployment.revision);
            match coordinator.map(|p| p.health) {
                Some(PodHealth::Succeeded) => Step::Ended { failed: false },
                Some(PodHealth::JobFailed) => Step::Ended { failed: true },
                _ if nonce_pending(job) && observed.job_view.is_some_and(JobView::is_running) => {
                    Step::TriggerSavepoint
                }
                _ => Step::Converge,
            }
        }
        (deployment, upgrade) => {
            if observed.deleting {
                return Step::Released;
            }
            if job.spec.state == DesiredState::Suspended {
                return Step::Idle;
            }
            if let Err(reason) = &observed.plan {
                return Step::Reject(reason.clone());
            }
            let revision = deployment.as_ref().map_or(1, |d| d.revision + 1);
            let restore = match upgrade {
                Some(upgrade) => upgrade.restore_from.clone(),
                None => job.spec.initial_savepoint.clone(),
            };
            Step::Deploy { revision, restore }
        }
    }
}

/// Whether the spec asks for a savepoint not taken yet.
fn nonce_pending(job: &StreamJob) -> bool {
    let recorded = job.status.as_ref().and_then(|s| s.savepoint_trigger_nonce);
    job.spec.savepoint_trigger_nonce.is_some() && job.spec.savepoint_trigger_nonce != recorded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Deployment, StreamJobStatus, UpgradeMode};
    use crate::testing::stream_job;

    fn deployed(job: &mut StreamJob, plan: &Plan) {
        job.status = Some(StreamJobStatus {
            deployment: Some(Deployment {
                revision: 2,
                spec_hash: plan.spec_hash.clone(),
                restored_from: None,
            }),
            ..StreamJobStatus::default()
        });
    }

    fn decide_for(job: &StreamJob, pods: &[PodView], view: Option<&JobView>) -> Step {
        let plan = Plan::of(job).map_err(|e| e.to_string());
        decide(&Observed {
            job,
            plan: plan.as_ref().map_err(Clone::clone),
            deleting: false,
            pods,
            job_view: view,
        })
    }

    fn coordinator(health: PodHealth) -> PodView {
        PodView { name: "c".into(), role: Role::Coordinator, revision: 2, index: None, health }
    }

    #[test]
    fn a_new_job_deploys_revision_one_from_its_initial_savepoint() {
        let mut job = stream_job();
        job.spec.initial_savepoint = Some("s3://b/sp".into());
        let step = decide_for(&job, &[], None);
        assert_eq!(step, Step::Deploy { revision: 1, restore: Some("s3://b/sp".into()) });
    }

    #[test]
    fn invalid_memory_is_rejected_before_any_pod() {
        let mut job = stream_job();
        job.spec.coordinator.memory.process_size = weir_memory::ByteSize::mib(100);
        assert!(
            matches!(decide_for(&job, &[], None), Step::Reject(r) if r.contains("coordinator memory"))
        );
    }

    #[test]
    fn a_spec_change_starts_a_takedown_and_a_suspend_too() {
        let mut job = stream_job();
        let plan = Plan::of(&job).unwrap();
        deployed(&mut job, &plan);
        assert_eq!(decide_for(&job, &[], None), Step::Converge);
        job.spec.parallelism = 3;
        assert_eq!(decide_for(&job, &[], None), Step::BeginTakedown(UpgradeCause::SpecChange));
        job.spec.parallelism = 2;
        job.spec.state = DesiredState::Suspended;
        assert_eq!(decide_for(&job, &[], None), Step::BeginTakedown(UpgradeCause::Suspend));
    }

    #[test]
    fn takedown_steps_follow_the_recorded_step_then_redeploy_from_the_restore_point() {
        let mut job = stream_job();
        let plan = Plan::of(&job).unwrap();
        deployed(&mut job, &plan);
        let mut upgrade = Upgrade {
            cause: UpgradeCause::SpecChange,
            mode: UpgradeMode::Savepoint,
            step: UpgradeStep::Stopping,
            restore_from: None,
        };
        let with = |job: &mut StreamJob, upgrade: &Upgrade| {
            job.status.as_mut().unwrap().upgrade = Some(upgrade.clone());
        };
        with(&mut job, &upgrade);
        assert_eq!(decide_for(&job, &[], None), Step::Stop);
        upgrade.step = UpgradeStep::Deleting;
        upgrade.restore_from = Some("s3://b/sp-7".into());
        with(&mut job, &upgrade);
        assert_eq!(decide_for(&job, &[], None), Step::DeletePods);
        upgrade.step = UpgradeStep::Done;
        with(&mut job, &upgrade);
        let step = decide_for(&job, &[], None);
        assert_eq!(step, Step::Deploy { revision: 3, restore: Some("s3://b/sp-7".into()) });
        job.spec.state = DesiredState::Suspended;
        assert_eq!(decide_for(&job, &[], None), Step::Idle);
    }

    #[test]
    fn an_ended_coordinator_ends_the_job_and_a_lost_one_is_replaced() {
        let mut job = stream_job();
        let plan = Plan::of(&job).unwrap();
        deployed(&mut job, &plan);
        let step = decide_for(&job, &[coordinator(PodHealth::Succeeded)], None);
        assert_eq!(step, Step::Ended { failed: false });
        let step = decide_for(&job, &[coordinator(PodHealth::JobFailed)], None);
        assert_eq!(step, Step::Ended { failed: true });
        assert_eq!(decide_for(&job, &[coordinator(PodHealth::Lost)], None), Step::Converge);
    }

    #[test]
    fn a_new_nonce_takes_a_savepoint_of_a_running_job_only() {
        let mut job = stream_job();
        let plan = Plan::of(&job).unwrap();
        deployed(&mut job, &plan);
        job.spec.savepoint_trigger_nonce = Some(1);
        let mut view = JobView {
            name: "wc".into(),
            state: "running".into(),
            stopped_with_savepoint: None,
            last_checkpoint: None,
        };
        let pods = [coordinator(PodHealth::Running)];
        assert_eq!(decide_for(&job, &pods, Some(&view)), Step::TriggerSavepoint);
        view.state = "finished".into();
        assert_eq!(decide_for(&job, &pods, Some(&view)), Step::Converge);
        job.status.as_mut().unwrap().savepoint_trigger_nonce = Some(1);
        view.state = "running".into();
        assert_eq!(decide_for(&job, &pods, Some(&view)), Step::Converge);
    }

    #[test]
    fn deleting_takes_the_job_down_then_releases_it() {
        let mut job = stream_job();
        let plan = Plan::of(&job).unwrap();
        let deleting = |job: &StreamJob| {
            decide(&Observed { job, plan: Ok(&plan), deleting: true, pods: &[], job_view: None })
        };
        assert_eq!(deleting(&job), Step::Released);
        deployed(&mut job, &plan);
        assert_eq!(deleting(&job), Step::BeginTakedown(UpgradeCause::Delete));
    }
}
