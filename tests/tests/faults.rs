//! Faults that a leader cannot see coming: cut off from the API server, or frozen by SIGSTOP. In both the old
//! leader's task must be gone before another agent's copy starts, and the old leader must not resume it on
//! leadership it no longer has. And the converse: a task that its stalled watchdog killed while its agent still
//! leads is started again.

use std::time::Duration;

use anyhow::Context as _;
use leasehold_tests::harness::{Cluster, eventually, holds_for, leader_among};
use leasehold_tests::procfs;
use leasehold_tests::stamps::{Event, mono_now};
use rustix::process::{Pid, Signal, kill_process};

const NS: &str = "default";

#[tokio::test]
async fn leader_partitioned_stops_task_before_follower_starts() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let agents = cluster
        .stamp_agents(&["node-a", "node-b", "node-c"], NS)
        .await?;
    let all: Vec<_> = agents.iter().collect();
    let bound = cluster.timing.takeover_bound();
    let old = &agents[cluster.wait_for_leader(&all, NS, bound).await?];
    let first = cluster.wait_for_start(NS, &old.holder, 0, bound).await?;

    let cut_at = mono_now();
    cluster.partition(&old.user).await?;
    let rest: Vec<_> = agents.iter().filter(|a| a.holder != old.holder).collect();
    let new = rest[cluster.wait_for_leader(&rest, NS, bound).await?];
    let start = cluster
        .wait_for_start(NS, &new.holder, first.epoch, bound)
        .await?;

    // The cut-off leader noticed on its own clock: its task got SIGTERM (a stop stamp) before the new one started.
    let stamps = cluster.stamps()?;
    let stop = stamps
        .by_holder(&old.holder)
        .find(|s| s.event == Event::Stop)
        .unwrap_or_else(|| {
            panic!(
                "the partitioned leader's task was stopped, not killed\n{}",
                stamps.describe()
            )
        });
    assert!(stop.mono < start.mono, "{}", stamps.describe());
    println!(
        "partition: old task stopped {:.3} s after the cut, new task started {:.3} s after it ({:.3} s gap)",
        (stop.mono - cut_at) as f64 / 1e9,
        (start.mono - cut_at) as f64 / 1e9,
        (start.mono - stop.mono) as f64 / 1e9
    );
    assert_ne!(old.namespace(NS).await?.status, "success");
    stamps.check_exclusive()?;

    // Healed, the old leader learns who leads and follows: still exactly one leader, the new one.
    cluster.heal(&old.user).await?;
    let leader = cluster.wait_for_leader(&all, NS, bound).await?;
    assert_eq!(agents[leader].holder, new.holder);
    holds_for(
        "one agreed leader after the heal",
        cluster.timing.lease_duration,
        || async { Ok(leader_among(&all, NS).await? == Some(leader)) },
    )
    .await?;
    let stamps = cluster.stamps()?;
    assert!(
        stamps
            .by_holder(&old.holder)
            .all(|s| s.epoch == first.epoch),
        "{}",
        stamps.describe()
    );
    stamps.check_exclusive()
}

#[tokio::test]
async fn leader_sigstopped_longer_than_the_lease_loses_its_task_to_the_watchdog_and_does_not_resume_it()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let agents = cluster
        .stamp_agents(&["node-a", "node-b", "node-c"], NS)
        .await?;
    let all: Vec<_> = agents.iter().collect();
    let t = cluster.timing;
    let bound = t.takeover_bound();
    let old = &agents[cluster.wait_for_leader(&all, NS, bound).await?];
    let first = cluster.wait_for_start(NS, &old.holder, 0, bound).await?;

    // Freeze the agent alone: its task keeps running until the watchdog's deadline passes.
    let frozen_at = mono_now();
    old.freeze()?;
    let rest: Vec<_> = agents.iter().filter(|a| a.holder != old.holder).collect();
    let new = rest[cluster.wait_for_leader(&rest, NS, bound).await?];
    let start = cluster
        .wait_for_start(NS, &new.holder, first.epoch, bound)
        .await?;
    let stamps = cluster.stamps()?;
    let last_old = stamps
        .by_holder(&old.holder)
        .map(|s| s.mono)
        .max()
        .expect("the old task stamped");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", first.pid)).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", first.pid))
                .is_ok_and(|s| s.contains(") Z ")),
        "the frozen leader's task (pid {}) is still alive",
        first.pid
    );
    println!(
        "SIGSTOP: the watchdog killed the old task {:.3} s after the freeze; the new task started {:.3} s after it",
        (last_old - frozen_at) as f64 / 1e9,
        (start.mono - frozen_at) as f64 / 1e9
    );
    stamps.check_exclusive()?;
    // The scenario: frozen for LD + RD, well past its leadership deadline (the takeover alone proves > LD).
    let frozen_for = Duration::from_nanos((mono_now() - frozen_at) as u64);
    tokio::time::sleep((t.lease_duration + t.renew_deadline).saturating_sub(frozen_for)).await;
    let resumed_at = mono_now();
    old.thaw()?;

    // Awake, it finds its leadership gone (the deadline is on CLOCK_BOOTTIME) and follows the new leader.
    let holder = new.holder.clone();
    let status = old
        .wait_status(NS, bound, move |s| {
            s.status == "defeat" && s.holder.as_deref() == Some(&holder)
        })
        .await?;
    assert_ne!(status.task_state("stamp"), Some("running"), "{status:?}");
    holds_for(
        "the thawed agent runs no task",
        t.lease_duration,
        || async {
            let s = old.namespace(NS).await?;
            let stamps = cluster.stamps()?;
            Ok(s.status == "defeat" && stamps.by_holder(&old.holder).all(|s| s.mono < resumed_at))
        },
    )
    .await?;
    assert_eq!(
        leader_among(&all, NS)
            .await?
            .map(|i| agents[i].holder.clone()),
        Some(new.holder.clone())
    );
    cluster.stamps()?.check_exclusive()
}

/// A task whose watchdog stalled past its kill deadline while the agent kept leading runs again in the same term.
/// The task's watchdog (the shim) is stopped, so it reads none of the deadlines the agent sends it; woken past the
/// last one it read, it kills the task, as it must. The agent, whose own deadline is current, takes that as an exit
/// and starts the task again after its backoff. (The other case, an agent whose own copy of the deadline ran out
/// while its elector kept renewing, needs the runner starved apart from the elector in one process; only the unit
/// test of `tasks::expired` covers it.)
#[tokio::test]
async fn a_task_whose_watchdog_stalled_past_its_deadline_runs_again_while_the_agent_leads()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let agents = cluster.stamp_agents(&["node-a"], NS).await?;
    let agent = &agents[0];
    let t = cluster.timing;
    let bound = t.takeover_bound();
    cluster.wait_for_leader(&[agent], NS, bound).await?;
    let first = cluster.wait_for_start(NS, &agent.holder, 0, bound).await?;
    let shim = procfs::parent(first.pid)?;
    let stop = |signal| {
        kill_process(Pid::from_raw(shim as i32).context("pid 0")?, signal)
            .with_context(|| format!("{signal:?} to the shim {shim}"))
    };
    stop(Signal::STOP)?;
    // Past any kill deadline the shim read (RD + 7/8 (LD - RD) after a renew), the agent still leads.
    let stopped = holds_for(
        "the agent leads while its task's watchdog is stopped",
        t.lease_duration + t.renew_deadline,
        || async { Ok(agent.namespace(NS).await?.status == "success") },
    )
    .await;
    stop(Signal::CONT)?;
    stopped?;
    let again =
        eventually("the task started again in the same term", bound, || async {
            Ok(cluster.stamps()?.lines.into_iter().find(|s| {
                s.event == Event::Start && s.holder == agent.holder && s.pid != first.pid
            }))
        })
        .await?;
    assert_eq!(again.epoch, first.epoch, "the same term: {again:?}");
    assert_eq!(agent.namespace(NS).await?.status, "success");
    cluster.stamps()?.check_exclusive()
}
