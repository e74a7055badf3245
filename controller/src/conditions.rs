//! The standard conditions (`Ready`, `Progressing`, `Degraded`) of a phase, keeping each
//! condition's transition time while its status stays the same.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{Phase, StreamJobStatus};

/// What the conditions say: the phase, and the reason and message of the latest change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The job's phase.
    pub phase: Phase,
    /// A CamelCase reason (`Deploying`, `SavepointUpgrade`, `InvalidSpec`, …).
    pub reason: String,
    /// For people.
    pub message: String,
}

/// The three conditions of `health` at `generation`; `degraded` when an error is recorded.
pub fn conditions(
    health: &Health,
    status: &StreamJobStatus,
    generation: Option<i64>,
) -> Vec<Condition> {
    let error = status.last_error.as_deref();
    let ready = health.phase == Phase::Running;
    let progressing = matches!(health.phase, Phase::Deploying | Phase::Upgrading);
    let degraded = health.phase == Phase::Failed || error.is_some();
    let (steady_reason, degraded_message) = match error {
        Some(error) => (health.reason.as_str(), error),
        None => ("Healthy", ""),
    };
    let make = |type_: &str, value: bool, reason: &str, message: &str| {
        let status_text = if value { "True" } else { "False" };
        let unchanged = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status_text)
            .map(|c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_string(),
            status: status_text.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time: unchanged.unwrap_or_else(|| Time(Timestamp::now())),
        }
    };
    vec![
        make("Ready", ready, &health.reason, &health.message),
        make("Progressing", progressing, &health.reason, &health.message),
        make("Degraded", degraded, steady_reason, degraded_message),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(phase: Phase, reason: &str) -> Health {
        Health { phase, reason: reason.into(), message: String::new() }
    }

    #[test]
    fn each_phase_sets_the_three_conditions() {
        let status = StreamJobStatus::default();
        let running = conditions(&health(Phase::Running, "JobRunning"), &status, Some(4));
        let values: Vec<_> =
            running.iter().map(|c| (c.type_.as_str(), c.status.as_str())).collect();
        assert_eq!(values, [("Ready", "True"), ("Progressing", "False"), ("Degraded", "False")]);
        assert_eq!(running[0].observed_generation, Some(4));
        let failing = StreamJobStatus { last_error: Some("boom".into()), ..status };
        let upgrading = conditions(&health(Phase::Upgrading, "SavepointUpgrade"), &failing, None);
        assert_eq!(upgrading[1].status, "True");
        assert_eq!((upgrading[2].status.as_str(), upgrading[2].message.as_str()), ("True", "boom"));
    }

    #[test]
    fn transition_times_stay_while_the_status_does() {
        let first =
            conditions(&health(Phase::Running, "JobRunning"), &StreamJobStatus::default(), None);
        let status = StreamJobStatus { conditions: first.clone(), ..StreamJobStatus::default() };
        std::thread::sleep(std::time::Duration::from_millis(2));
        let again = conditions(&health(Phase::Running, "JobRunning"), &status, None);
        assert_eq!(again[0].last_transition_time, first[0].last_transition_time);
        let down = conditions(&health(Phase::Deploying, "Deploying"), &status, None);
        assert_ne!(down[0].last_transition_time, first[0].last_transition_time);
    }
}
