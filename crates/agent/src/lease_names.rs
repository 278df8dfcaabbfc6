//! What a policy [`LeaseName`] puts into an election: the labels and annotations every write carries, and the
//! owner check that refuses a Lease made for something else. One place for the three kinds of Lease (election,
//! task, member), so none of them can forget the check.

use leasehold_lease::{ElectionConfig, OwnerCheck};
use leasehold_policy::lease_name::LeaseName;

/// Adds `name`'s labels and annotations to `ec`, and its run-time collision check
/// ([`LeaseName::check_existing`]): two raw names whose Lease names collide (a task `x` and an election namespace
/// `task-x`, say) stop with an error naming both instead of sharing one Lease.
pub(crate) fn apply(mut ec: ElectionConfig, name: &LeaseName) -> ElectionConfig {
    for (k, v) in name.labels() {
        ec = ec.label(k, v);
    }
    for (k, v) in name.annotations() {
        ec = ec.annotation(k, v);
    }
    let name = name.clone();
    ec.owner_check(OwnerCheck::new(move |labels, annotations| {
        name.check_existing(labels, annotations)
            .map_err(|e| e.to_string())
    }))
}
