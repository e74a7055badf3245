//! Leader election over a `coordination.k8s.io` Lease, so that only one operator replica
//! reconciles: take the Lease when it is free or expired, renew it while leading; a replica
//! that cannot renew stops leading. Writes carry the resource version, so two replicas
//! racing for the Lease cannot both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tracing::info;

use crate::Result;

/// One replica's claim on the Lease.
#[derive(Debug, Clone)]
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl Elector {
    /// Claims Lease `name` through `api` as `identity`, for `duration` per renewal.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Elector { api, name: name.into(), identity: identity.into(), duration }
    }

    /// Waits until this replica leads.
    pub async fn acquire(&self) -> Result<()> {
        while !self.try_lead().await? {
            tokio::time::sleep(self.duration / 3).await;
        }
        info!(identity = %self.identity, lease = %self.name, "leading");
        Ok(())
    }

    /// Renews the Lease every third of its duration; returns when leadership is lost.
    pub async fn keep(&self) -> Result<()> {
        loop {
            tokio::time::sleep(self.duration / 3).await;
            if !self.try_lead().await? {
                return Ok(());
            }
        }
    }

    /// Takes or renews the Lease; whether this replica leads now.
    pub async fn try_lead(&self) -> Result<bool> {
        let now = Timestamp::now();
        let lease = self.api.get_opt(&self.name).await?;
        let Some(mut next) = claim(lease.as_ref(), &self.identity, now, self.duration) else {
            return Ok(false);
        };
        next.metadata.name = Some(self.name.clone());
        let written = match lease {
            None => self.api.create(&PostParams::default(), &next).await,
            Some(_) => self.api.replace(&self.name, &PostParams::default(), &next).await,
        };
        match written {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

/// The Lease `identity` writes to lead from `now`, or `None` while another holder's Lease
/// is still valid. Keeps the resource version of `current`.
pub fn claim(
    current: Option<&Lease>,
    identity: &str,
    now: Timestamp,
    duration: Duration,
) -> Option<Lease> {
    let spec = current.and_then(|l| l.spec.clone()).unwrap_or_default();
    let holder = spec.holder_identity.as_deref();
    let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(renewed), Some(seconds)) => {
            renewed.0 + SignedDuration::from_secs(i64::from(seconds)) < now
        }
        _ => true,
    };
    let ours = holder == Some(identity);
    if !ours && holder.is_some() && !expired {
        return None;
    }
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    let metadata = match current {
        Some(lease) => lease.metadata.clone(),
        None => ObjectMeta::default(),
    };
    Some(Lease {
        metadata,
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.into()),
            lease_duration_seconds: Some(seconds),
            acquire_time: if ours { spec.acquire_time } else { Some(MicroTime(now)) },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(15);

    fn lease_of(holder: &str, renewed: Timestamp) -> Lease {
        claim(None, holder, renewed, TTL).unwrap()
    }

    #[test]
    fn a_free_lease_is_taken_and_a_valid_one_is_not() {
        let now = Timestamp::now();
        let taken = claim(None, "a", now, TTL).unwrap();
        assert_eq!(taken.spec.as_ref().unwrap().holder_identity.as_deref(), Some("a"));
        assert!(claim(Some(&lease_of("b", now)), "a", now, TTL).is_none());
    }

    #[test]
    fn an_expired_lease_changes_hands_and_counts_the_transition() {
        let then = Timestamp::now();
        let later = then + SignedDuration::from_secs(16);
        let taken = claim(Some(&lease_of("b", then)), "a", later, TTL).unwrap();
        let spec = taken.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(2));
    }

    #[test]
    fn the_holder_renews_and_keeps_its_acquire_time() {
        let then = Timestamp::now();
        let mut lease = lease_of("a", then);
        lease.metadata.resource_version = Some("7".into());
        let later = then + SignedDuration::from_secs(5);
        let renewed = claim(Some(&lease), "a", later, TTL).unwrap();
        assert_eq!(renewed.metadata.resource_version.as_deref(), Some("7"));
        let spec = renewed.spec.unwrap();
        assert_eq!(spec.acquire_time, Some(MicroTime(then)));
        assert_eq!(spec.renew_time, Some(MicroTime(later)));
    }
}
