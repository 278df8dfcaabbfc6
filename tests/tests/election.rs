//! Election between three real agents on the bundled API server: one leader runs the task; a SIGKILLed leader
//! is replaced within the lease timing; a SIGTERMed leader hands over at once. The stamp task's flock and the
//! stamp checker prove that the task never ran twice at once.

use std::time::Duration;

use leasehold_tests::harness::{Cluster, leader_among};
use leasehold_tests::stamps::{Event, mono_now};

const NS: &str = "default";

#[tokio::test]
async fn three_agents_elect_exactly_one_leader_and_only_it_runs_the_task() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let agents = cluster
        .stamp_agents(&["node-a", "node-b", "node-c"], NS)
        .await?;
    let all: Vec<_> = agents.iter().collect();
    let bound = cluster.timing.takeover_bound();

    let leader = cluster.wait_for_leader(&all, NS, bound).await?;
    let leader = &agents[leader];
    let start = cluster.wait_for_start(NS, &leader.holder, 0, bound).await?;
    leader
        .wait_status(NS, bound, |s| s.task_state("stamp") == Some("running"))
        .await?;
    for other in agents.iter().filter(|a| a.holder != leader.holder) {
        let s = other.namespace(NS).await?;
        assert_eq!(s.status, "defeat", "{}: {s:?}", other.node);
        assert_eq!(
            s.task_state("stamp"),
            Some("stopped"),
            "{}: {s:?}",
            other.node
        );
    }

    // The Lease names the leader, with the epoch its task was given.
    let lease = cluster
        .lease(NS, "leasehold-default")
        .await?
        .expect("the Lease exists");
    assert_eq!(lease["spec"]["holderIdentity"], leader.holder.as_str());
    assert_eq!(
        lease["spec"]["leaseTransitions"].as_u64(),
        Some(start.epoch)
    );

    let stamps = cluster.stamps()?;
    assert!(
        stamps.lines.iter().all(|s| s.holder == leader.holder),
        "{}",
        stamps.describe()
    );
    stamps.check_exclusive()
}

#[tokio::test]
async fn sigkill_of_the_leader_moves_the_task_to_a_new_leader_without_overlap() -> anyhow::Result<()>
{
    let cluster = Cluster::start()?;
    let agents = cluster
        .stamp_agents(&["node-a", "node-b", "node-c"], NS)
        .await?;
    let all: Vec<_> = agents.iter().collect();
    let bound = cluster.timing.takeover_bound();
    let old = &agents[cluster.wait_for_leader(&all, NS, bound).await?];
    let first = cluster.wait_for_start(NS, &old.holder, 0, bound).await?;

    let killed_at = mono_now();
    old.kill()?;
    let rest: Vec<_> = agents.iter().filter(|a| a.holder != old.holder).collect();
    let new = rest[cluster.wait_for_leader(&rest, NS, bound).await?];
    let start = cluster
        .wait_for_start(NS, &new.holder, first.epoch, bound)
        .await?;

    let failover = (start.mono - killed_at) as f64 / 1e9;
    println!(
        "SIGKILL failover: {failover:.3} s from the kill to the new leader's task start (LD 3 s, RD 2 s)"
    );
    assert!(
        start.epoch > first.epoch,
        "epoch {} after {}",
        start.epoch,
        first.epoch
    );
    // The killed leader's watchdog killed its task: nothing of the old holder after the new start.
    let stamps = cluster.stamps()?;
    assert!(
        stamps.by_holder(&old.holder).all(|s| s.mono < start.mono),
        "{}",
        stamps.describe()
    );
    stamps.check_exclusive()
}

#[tokio::test]
async fn sigterm_of_the_leader_hands_over_within_a_second_without_overlap() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let mut agents = cluster
        .stamp_agents(&["node-a", "node-b", "node-c"], NS)
        .await?;
    let all: Vec<_> = agents.iter().collect();
    let bound = cluster.timing.takeover_bound();
    let old_index = cluster.wait_for_leader(&all, NS, bound).await?;
    let old_holder = agents[old_index].holder.clone();
    let first = cluster.wait_for_start(NS, &old_holder, 0, bound).await?;

    let termed_at = mono_now();
    agents[old_index].terminate()?;
    let rest: Vec<_> = agents.iter().filter(|a| a.holder != old_holder).collect();
    let new = rest[cluster.wait_for_leader(&rest, NS, bound).await?];
    let start = cluster
        .wait_for_start(NS, &new.holder, first.epoch, bound)
        .await?;

    let stamps = cluster.stamps()?;
    let stop = stamps
        .by_holder(&old_holder)
        .find(|s| s.event == Event::Stop)
        .expect("the old leader's task got SIGTERM and wrote stop");
    let handover = (start.mono - termed_at) as f64 / 1e9;
    let gap = (start.mono - stop.mono) as f64 / 1e9;
    println!(
        "SIGTERM handover: {handover:.3} s from the signal to the new leader's task start ({gap:.3} s after the old task stopped)"
    );
    // A released Lease is taken without waiting out LD (3 s): the handover is well under a second plus the spread.
    assert!(handover < 2.0, "handover took {handover:.3} s");
    let status = agents[old_index].wait_exit(Duration::from_secs(10)).await?;
    assert!(status.success(), "the old leader exited with {status}");
    // The new leader and the remaining follower agree.
    let rest: Vec<_> = agents.iter().filter(|a| a.holder != old_holder).collect();
    assert!(leader_among(&rest, NS).await?.is_some());
    drop(rest);
    agents.remove(old_index);
    stamps.check_exclusive()
}
