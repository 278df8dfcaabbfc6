//! A follower whose watch has not yet shown the winner's acquire reads the Lease at its turn instead of writing.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use leasehold_apiserver::PartitionMode;
use leasehold_lease::{CANDIDATES_ANNOTATION, RELEASED_BY_ANNOTATION};
use serde_json::json;

use crate::harness::*;

/// J for the follower: long enough for the test's own steps to fit before its turn (its rank puts it near the end
/// of the line), and shorter than LD, so that the third party's term, which nobody renews, is still running then.
const SPREAD: Duration = Duration::from_millis(1500);

/// With thousands of watchers, a winner's write can reach a follower's watch after that follower's turn has come.
/// Here the follower's watch is frozen right after it saw the release, and a third party then acquires the Lease.
/// The follower stands behind the front of the line (the Lease estimates 100,000 candidates), so at its turn it
/// reads the Lease, sees the new holder and writes nothing: without the read it would have written in vain (409) and
/// then read anyway. Counted by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_watch_lags_reads_instead_of_writing() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let leader = cluster.candidate("node-a", "1").await?;
    leader.wait_leading(settle()).await?;
    let follower = cluster
        .candidate_with("node-b", "1", |c| c.takeover_spread(SPREAD))
        .await?;
    cluster
        .leases()
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {CANDIDATES_ANNOTATION: "100000"}}})),
        )
        .await?;
    until("the follower sees the leader", settle(), || {
        follower.state().holder() == Some(leader.user.as_str())
    })
    .await?;
    leader.handle.step_down().await?;
    until("the follower sees the release", settle(), || {
        follower.state().holder().is_none()
    })
    .await?;
    let faults = cluster.server.faults();
    faults.partition(&follower.user, PartitionMode::FreezeWatches);
    // A third party acquires the released Lease, as a winner from the front of the line would.
    let mut lease = cluster.leases().get(LEASE).await?;
    if let Some(a) = lease.metadata.annotations.as_mut() {
        a.remove(RELEASED_BY_ANNOTATION);
        assert_eq!(
            a.get(CANDIDATES_ANNOTATION).map(String::as_str),
            Some("100000"),
            "renewals and the release kept the estimate"
        );
    }
    let spec = lease.spec.get_or_insert_with(Default::default);
    let now = MicroTime(Timestamp::now());
    spec.holder_identity = Some("node-c_1".into());
    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    spec.lease_duration_seconds = Some(i32::try_from(LD.as_secs())?);
    spec.acquire_time = Some(now.clone());
    spec.renew_time = Some(now);
    cluster
        .leases()
        .replace(LEASE, &PostParams::default(), &lease)
        .await?;
    let counters = cluster.counters();
    let (gets, writes) = (
        counters.requests(&follower.user, "get"),
        writes_by(&counters, &follower.user),
    );
    until("the follower reads at its turn", SPREAD + settle(), || {
        cluster.counters().requests(&follower.user, "get") > gets
    })
    .await?;
    until("the read shows the new holder", settle(), || {
        follower.state().holder() == Some("node-c_1")
    })
    .await?;
    assert_eq!(
        writes_by(&cluster.counters(), &follower.user),
        writes,
        "the follower wrote although the Lease was taken"
    );
    assert!(!follower.is_leading());
    faults.heal(&follower.user);
    cluster.timeline.assert_no_overlap();
    Ok(())
}
