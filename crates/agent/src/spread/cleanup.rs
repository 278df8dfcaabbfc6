//! Spread mode's litter: member and task Leases of agents and tasks that are gone. Node churn (autoscaling,
//! replaced nodes) would otherwise leave a Lease behind for every departed agent, and each costs every spread
//! agent's watch and list.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};

use super::{Observed, Seen};

/// Deletes member and task Leases that have been expired for longer than 10×LD, with uid and resourceVersion
/// preconditions so a Lease renewed meanwhile is never deleted.
pub async fn cleanup(
    api: &Api<Lease>,
    observed: &Mutex<Observed>,
    now: Instant,
    ld: Duration,
    member_ld: Duration,
) {
    let stale: Vec<(String, Seen)> = {
        let o = observed.lock();
        let old = |s: &Seen, floor: Duration| {
            let term = s.duration.max(floor);
            now > s.observed_at + term * 11
        };
        o.members
            .iter()
            .filter(|(_, s)| old(s, member_ld))
            .chain(o.tasks.iter().filter(|(_, s)| old(s, ld)))
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    };
    for (name, seen) in stale {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(seen.uid.clone()),
                resource_version: Some(seen.resource_version.clone()),
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {
                tracing::info!(lease = %name, "deleted a spread Lease expired for over 10 lease durations")
            }
            Err(e) => {
                tracing::debug!(lease = %name, error = %e, "stale spread Lease not deleted (changed or gone meanwhile)")
            }
        }
    }
}
