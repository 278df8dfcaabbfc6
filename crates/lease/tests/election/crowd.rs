//! The takeover spread follows the winners' estimate of how many candidates contend (`leasehold.dev/candidates`).

use std::time::Duration;

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
    // The herd test's timings: slower for the larger group, J at its default, RP.
    let (ld, rd, rp) = (
        Duration::from_secs(4),
        Duration::from_secs(3),
        Duration::from_secs(1),
    );
    let within = ld + rd + Duration::from_secs(4);
    let cluster = Cluster::start().await?;
    let mut cands = vec![
        cluster
            .candidate_with("node-first", "1", |c| c.timings(ld, rd, rp))
            .await?,
    ];
    cands[0].wait_leading(within).await?;
    assert_eq!(estimate(&cluster).await?, None, "a create samples nothing");
    for n in 0..30 {
        cands.push(
            cluster
                .candidate_with(&format!("node-{n:02}"), "1", |c| c.timings(ld, rd, rp))
                .await?,
        );
    }
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
        let counters = cluster.counters();
        let before: Vec<u64> = cands
            .iter()
            .map(|c| writes_by(&counters, &c.user))
            .collect();
        cands[leader].handle.step_down().await?;
        let old = leader;
        until("a follower takes over", within, || {
            cands
                .iter()
                .enumerate()
                .any(|(k, c)| k != old && c.is_leading())
        })
        .await?;
        leader = wait_one_leader(&cands, within).await?;
        // Stragglers' writes, if any, land within J of the winner's: count them over a full LD.
        tokio::time::sleep(ld).await;
        let counters = cluster.counters();
        // The winner's one acquire, and every write of anyone but the old and the new leader.
        let attempts = 1
            + (0..cands.len())
                .filter(|k| *k != old && *k != leader)
                .map(|k| writes_by(&counters, &cands[k].user) - before[k])
                .sum::<u64>();
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
