//! The takeover spread follows the winners' estimate of how many candidates contend (`leasehold.dev/candidates`).

use leasehold_lease::CANDIDATES_ANNOTATION;

use crate::harness::*;

/// The estimate the Lease carries, if any.
async fn estimate(cluster: &Cluster) -> anyhow::Result<Option<f64>> {
    let lease = cluster.leases().get(LEASE).await?;
    let text = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CANDIDATES_ANNOTATION).cloned());
    Ok(match text {
        Some(t) => Some(t.parse()?),
        None => None,
    })
}

/// A create writes no estimate (its creator may have raced no one); every takeover of the present Lease writes one,
/// which renewals and releases keep; and with the estimate in place, releases to 30 followers, each on its own
/// connection, cost few write attempts, counted by the server, with no overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeovers_write_and_follow_the_crowd_estimate() -> anyhow::Result<()> {
    let within = herd_within();
    let cluster = Cluster::start().await?;
    let cands = herd(&cluster, "node-first", 30).await?;
    assert_eq!(estimate(&cluster).await?, None, "a create samples nothing");
    let mut leader = 0;
    let mut attempts_with_estimate = Vec::new();
    for round in 0..5 {
        let holder = cands[leader].user.clone();
        until("all candidates see the leader", within, || {
            cands
                .iter()
                .all(|c| c.state().holder() == Some(holder.as_str()))
        })
        .await?;
        let before_estimate = estimate(&cluster).await?;
        let before = writes_of(&cluster, &cands);
        cands[leader].handle.step_down().await?;
        let old = leader;
        leader = takeover_from(&cands, old, within).await?;
        // Stragglers' writes, if any, land within J of the winner's: count them over a full LD.
        tokio::time::sleep(HERD_TIMINGS.0).await;
        let attempts = takeover_attempts(&before, &writes_of(&cluster, &cands), old, leader);
        let after = estimate(&cluster)
            .await?
            .expect("every takeover of a present Lease writes an estimate");
        assert!((1.0..=100_000.0).contains(&after), "estimate {after}");
        println!("round {round}: estimate {before_estimate:?} -> {after}, {attempts} attempts");
        if before_estimate.is_some() {
            attempts_with_estimate.push(attempts);
        }
    }
    assert_eq!(
        attempts_with_estimate.len(),
        4,
        "every takeover after the first had an estimate"
    );
    let total: u64 = attempts_with_estimate.iter().sum();
    assert!(
        total <= 4 * 3,
        "takeovers with an estimate cost {attempts_with_estimate:?} write attempts"
    );
    cluster.timeline.assert_no_overlap();
    Ok(())
}
