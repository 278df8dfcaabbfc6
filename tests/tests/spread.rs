//! Spread mode with real agents: 10 tasks over the agents with balanced, sticky placement; a joining agent takes
//! its floor and no more than ceil(T/M) tasks; a SIGKILLed agent's tasks run elsewhere within the failover bound
//! and are never handed back to it; a partitioned agent's tasks stop before they start elsewhere; a rolling restart
//! keeps every task running apart from bounded gaps. Every task is a stamp task with its own lock, so the flock and
//! the stamp checker prove that no task ever ran twice at once.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use leasehold_tests::harness::{Agent, AgentSpec, Cluster, eventually, holds_for};
use leasehold_tests::stamps::mono_now;

const NS: &str = "default";
const TASKS: usize = 10;

fn task_names() -> Vec<String> {
    (0..TASKS).map(|i| format!("t{i}")).collect()
}

/// An agent with the 10 spread stamp tasks and fast member timing.
fn spread_agent(cluster: &Cluster, node: &str) -> anyhow::Result<AgentSpec> {
    spread_agent_with_members(cluster, node, FAST_MEMBER)
}

/// Member Lease duration and renew period: fast, so membership changes are seen within seconds.
const FAST_MEMBER: (Duration, Duration) = (Duration::from_secs(3), Duration::from_secs(1));

/// Member Lease duration and renew period far slower than the task Leases (LD 3 s), as in production (60 s against
/// 15 s): a crashed agent's member Lease outlives its task Leases, so member timing must not bound failover.
const SLOW_MEMBER: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(5));

/// An agent with the 10 spread stamp tasks and the given member timing (duration, renew period).
fn spread_agent_with_members(
    cluster: &Cluster,
    node: &str,
    (duration, renew): (Duration, Duration),
) -> anyhow::Result<AgentSpec> {
    let mut spec = AgentSpec::new(node)
        .env(
            "LEASEHOLD_MEMBER_DURATION",
            &format!("{}s", duration.as_secs()),
        )
        .env("LEASEHOLD_MEMBER_RENEW", &format!("{}s", renew.as_secs()));
    for name in task_names() {
        spec = spec.task(cluster.stamp_task(&name, NS)?.spread());
    }
    Ok(spec)
}

/// The settle time the agents run with: 2 × RP, the default.
fn settle(cluster: &Cluster) -> Duration {
    cluster.timing.retry_period * 2
}

/// How long a crashed agent's tasks may take to run elsewhere, from the crash: its task terms end within LD of
/// their last renewal, the new owner campaigns at once and takes over within J, plus the settle time, with the
/// harness's allowance for a slow shared machine: LD + RD + 2 s + settle. Member timing plays no part.
fn failover_bound(cluster: &Cluster) -> Duration {
    cluster.timing.takeover_bound() + settle(cluster)
}

/// How long spread mode may take to settle after a change: a member Lease to expire (3 s) or appear, a task Lease
/// to expire (LD), the settle time, and the usual allowance: LD + RD + settle + member LD + 2 s.
fn settle_bound(cluster: &Cluster) -> Duration {
    cluster.timing.takeover_bound() + Duration::from_secs(1) + Duration::from_secs(3)
}

/// The task -> holder map once every given agent sees exactly the given agents as members, all agree that every
/// task is held by the member it is placed on, and each holder reports its copy running; `None` while not so.
async fn converged(agents: &[&Agent]) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let mut agreed: Option<BTreeMap<String, String>> = None;
    for a in agents {
        let doc = a.election().await?;
        // Every agent must see exactly these agents as the live members, or the placement is a transient one.
        let members: Vec<&str> = doc["spread"]["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str())
            .collect();
        if members.len() != agents.len()
            || !agents.iter().all(|x| members.contains(&x.holder.as_str()))
        {
            return Ok(None);
        }
        let Some(tasks) = doc["spread"]["tasks"].as_array() else {
            return Ok(None);
        };
        let mut map = BTreeMap::new();
        for t in tasks {
            let (Some(holder), Some(placed)) = (t["holder"].as_str(), t["placed_on"].as_str())
            else {
                return Ok(None);
            };
            if holder != placed {
                return Ok(None);
            }
            map.insert(
                t["task"].as_str().unwrap_or("").to_string(),
                holder.to_string(),
            );
        }
        if map.len() != TASKS || agreed.as_ref().is_some_and(|m| m != &map) {
            return Ok(None);
        }
        agreed = Some(map);
    }
    let Some(map) = agreed else { return Ok(None) };
    for a in agents {
        let ns = a.namespace(NS).await?;
        for (task, holder) in &map {
            let want = if holder == &a.holder {
                "running"
            } else {
                "stopped"
            };
            if ns.task_state(task) != Some(want) {
                return Ok(None);
            }
        }
    }
    Ok(Some(map))
}

fn loads(map: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for holder in map.values() {
        *out.entry(holder.clone()).or_default() += 1;
    }
    out
}

async fn wait_converged(
    cluster: &Cluster,
    agents: &[&Agent],
) -> anyhow::Result<BTreeMap<String, String>> {
    wait_converged_within(agents, settle_bound(cluster) * 2).await
}

async fn wait_converged_within(
    agents: &[&Agent],
    within: Duration,
) -> anyhow::Result<BTreeMap<String, String>> {
    eventually(
        "spread placement to converge with every task running once",
        within,
        || async { converged(agents).await },
    )
    .await
}

/// Each task Lease's epoch (`leaseTransitions`) now: a copy started later with a higher epoch is a new term.
async fn task_epochs(cluster: &Cluster) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for task in task_names() {
        let lease = cluster.lease(NS, &format!("leasehold-task-{task}")).await?;
        let epoch = lease
            .as_ref()
            .and_then(|l| l["spec"]["leaseTransitions"].as_u64())
            .unwrap_or(0);
        out.insert(task, epoch);
    }
    Ok(out)
}

/// Whether no agent places a task on `dead`, and every task is held by the holder `want` names, in every view.
async fn placed_and_held_as(
    agents: &[&Agent],
    dead: &str,
    want: &BTreeMap<String, String>,
) -> anyhow::Result<bool> {
    for a in agents {
        let doc = a.election().await?;
        for t in doc["spread"]["tasks"].as_array().into_iter().flatten() {
            let task = t["task"].as_str().unwrap_or("");
            if t["placed_on"].as_str() == Some(dead) {
                println!("{} places {task} on the dead agent", a.node);
                return Ok(false);
            }
            if t["holder"].as_str() != want.get(task).map(String::as_str) {
                println!(
                    "{} sees {task} held by {:?}, not {:?}",
                    a.node,
                    t["holder"].as_str(),
                    want.get(task)
                );
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[tokio::test]
async fn ten_tasks_spread_over_three_agents_then_a_fourth_takes_only_the_tasks_that_must_move()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        agents.push(cluster.agent(spread_agent(&cluster, node)?).await?);
    }
    let three: Vec<&Agent> = agents.iter().collect();
    let before = wait_converged(&cluster, &three).await?;
    let before_loads = loads(&before);
    println!("3 agents: {before_loads:?}");
    assert_eq!(
        before_loads.len(),
        3,
        "every agent gets tasks: {before_loads:?}"
    );
    assert!(
        before_loads.values().all(|n| *n <= TASKS.div_ceil(3)),
        "no agent over ceil(10/3): {before_loads:?}"
    );

    agents.push(cluster.agent(spread_agent(&cluster, "node-d")?).await?);
    let four: Vec<&Agent> = agents.iter().collect();
    let after = wait_converged(&cluster, &four).await?;
    let after_loads = loads(&after);
    let moved: Vec<&String> = after.keys().filter(|t| before[*t] != after[*t]).collect();
    println!("4 agents: {after_loads:?}; moved {moved:?}");
    // Within one of even: between floor(10/4) and ceil(10/4), the joiner included.
    let (floor, cap) = (TASKS / 4, TASKS.div_ceil(4));
    assert_eq!(
        after_loads.len(),
        4,
        "every agent holds tasks: {after_loads:?}"
    );
    assert!(
        after_loads.values().all(|n| (floor..=cap).contains(n)),
        "every agent within [{floor}, {cap}]: {after_loads:?}"
    );
    // Only what had to move did: the excess over the new cap, or the joiner's floor if that is more; never more
    // than ceil(T/(M+1)), and all of it to the joiner (the agents before held at least floor(10/3) = 3 > 2).
    let excess: usize = before_loads.values().map(|n| n.saturating_sub(cap)).sum();
    assert_eq!(
        moved.len(),
        excess.max(floor),
        "moved {moved:?}; the agents over the new cap held {excess} extra, the joiner's floor is {floor}"
    );
    assert!(moved.len() <= cap);
    for t in &moved {
        assert_eq!(after[*t], agents[3].holder, "{t} moved to the joiner");
    }
    cluster.stamps()?.check_exclusive()
}

/// SIGKILL of an agent that holds tasks, with member Leases far slower than the task Leases: its tasks run on the
/// others within the failover bound, measured from the kill, and stay there: no agent places a task back on the
/// dead agent or releases one while its member Lease is still live, the others keep what they held, and each
/// orphaned task starts exactly once.
#[tokio::test]
async fn a_sigkilled_agents_tasks_run_elsewhere_within_the_bound_and_are_never_handed_back()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        let spec = spread_agent_with_members(&cluster, node, SLOW_MEMBER)?;
        agents.push(cluster.agent(spec).await?);
    }
    let all: Vec<&Agent> = agents.iter().collect();
    // A new agent's member Lease is first acquired a member LD after its start (a process knows nothing before it).
    let before = wait_converged_within(&all, settle_bound(&cluster) * 2 + SLOW_MEMBER.0).await?;
    let victim = agents.remove(0);
    let orphans: Vec<String> = before
        .iter()
        .filter(|(_, h)| **h == victim.holder)
        .map(|(t, _)| t.clone())
        .collect();
    assert!(!orphans.is_empty(), "the victim holds tasks: {before:?}");
    // The terms in force at the kill (their copies may write their first stamp a moment later): every copy of a
    // later term started after the kill.
    let epochs = task_epochs(&cluster).await?;
    let killed = std::time::Instant::now();
    let killed_mono = mono_now();
    victim.kill()?;
    let rest: Vec<&Agent> = agents.iter().collect();
    // Every task runs on a survivor, and the survivors no longer count the victim as a member, within the bound.
    let after = eventually(
        "every task to run on the survivors",
        failover_bound(&cluster).saturating_sub(killed.elapsed()),
        || async { converged(&rest).await },
    )
    .await?;
    let stamps = eventually(
        "every orphaned task's new copy to stamp",
        failover_bound(&cluster).saturating_sub(killed.elapsed()),
        || async {
            let stamps = cluster.stamps()?;
            let started = orphans.iter().all(|task| {
                stamps.intervals().iter().any(|iv| {
                    &iv.task == task && iv.holder == after[task] && iv.epoch > epochs[task]
                })
            });
            Ok(started.then_some(stamps))
        },
    )
    .await?;
    let failover = stamps
        .intervals()
        .iter()
        .filter(|iv| iv.epoch > epochs[&iv.task])
        .map(|iv| iv.start.saturating_sub(killed_mono))
        .max()
        .unwrap_or(0);
    println!(
        "after the kill: {:?}; orphans were {orphans:?}; every task ran again {:.2} s after the SIGKILL (bound {:?})",
        loads(&after),
        failover as f64 / 1e9,
        failover_bound(&cluster)
    );
    assert!(loads(&after).values().all(|n| *n == TASKS / 2));
    for (task, holder) in &before {
        if *holder != victim.holder {
            assert_eq!(
                &after[task], holder,
                "{task} should have stayed with its live holder"
            );
        }
    }
    // Stay there until the victim's member Lease has expired in every view, and a settle time and a term more:
    // the window in which a placement that still counted the victim would hand tasks back to it.
    let window = (SLOW_MEMBER.0 + settle(&cluster) + cluster.timing.lease_duration)
        .saturating_sub(killed.elapsed());
    holds_for(
        "no task is placed on the dead agent or moves",
        window,
        || async { placed_and_held_as(&rest, &victim.holder, &after).await },
    )
    .await?;
    let stamps = cluster.stamps()?;
    for task in task_names() {
        let since_kill: Vec<_> = stamps
            .intervals()
            .into_iter()
            .filter(|iv| iv.task == task && iv.epoch > epochs[&task])
            .collect();
        let want = usize::from(orphans.contains(&task));
        assert_eq!(
            since_kill.len(),
            want,
            "{task}: {} copies of a later term than at the kill, want {want}\n{}",
            since_kill.len(),
            stamps.describe()
        );
    }
    stamps.check_exclusive()
}

#[tokio::test]
async fn a_partitioned_agents_tasks_stop_before_they_start_elsewhere() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        agents.push(cluster.agent(spread_agent(&cluster, node)?).await?);
    }
    let all: Vec<&Agent> = agents.iter().collect();
    let before = wait_converged(&cluster, &all).await?;
    let cut = &agents[0];
    cluster.partition(&cut.user).await?;
    let rest: Vec<&Agent> = agents[1..].iter().collect();
    let after = eventually(
        "the others to hold every task",
        settle_bound(&cluster) * 2,
        || async {
            let m = converged(&rest).await?;
            Ok(m.filter(|m| m.values().all(|h| *h != cut.holder)))
        },
    )
    .await?;
    let moved: Vec<&String> = before
        .iter()
        .filter(|(_, h)| **h == cut.holder)
        .map(|(t, _)| t)
        .collect();
    println!(
        "partitioned {}: its tasks {moved:?} now at {:?}",
        cut.node,
        moved.iter().map(|t| &after[*t]).collect::<Vec<_>>()
    );
    // Each moved task's old copy ended before the new one started (the checker also proves no overlap). The views
    // name the new holder as soon as it acquired; its copy writes its first stamp a moment later, so wait for it.
    let stamps = eventually(
        "every moved task's new copy to stamp",
        settle_bound(&cluster),
        || async {
            let stamps = cluster.stamps()?;
            let started = moved.iter().all(|task| {
                stamps
                    .intervals()
                    .iter()
                    .any(|iv| &iv.task == *task && iv.holder == after[*task])
            });
            Ok(started.then_some(stamps))
        },
    )
    .await?;
    for task in &moved {
        let ivs: Vec<_> = stamps
            .intervals()
            .into_iter()
            .filter(|iv| &iv.task == *task)
            .collect();
        // The last copy on the cut agent and the copy its new holder runs now (intervals are in start order).
        let old = ivs.iter().rfind(|iv| iv.holder == cut.holder);
        let new = ivs.iter().rfind(|iv| iv.holder == after[*task]);
        match (old, new) {
            (Some(o), Some(n)) => assert!(
                o.end < n.start,
                "{task}: old copy ended after the new one started"
            ),
            _ => bail!("{task}: missing intervals\n{}", stamps.describe()),
        }
    }
    cluster.heal(&cut.user).await?;
    stamps.check_exclusive()
}

#[tokio::test]
async fn a_rolling_restart_keeps_every_task_running_apart_from_bounded_gaps() -> anyhow::Result<()>
{
    let cluster = Cluster::start()?;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        agents.push(cluster.agent(spread_agent(&cluster, node)?).await?);
    }
    wait_converged(&cluster, &agents.iter().collect::<Vec<_>>()).await?;
    for (old, new) in [
        ("node-a", "node-a2"),
        ("node-b", "node-b2"),
        ("node-c", "node-c2"),
    ] {
        let i = agents.iter().position(|a| a.node == old).unwrap_or(0);
        let mut leaving = agents.remove(i);
        leaving.terminate()?;
        let status = leaving.wait_exit(cluster.timing.takeover_bound()).await?;
        assert!(status.success(), "{old} exited with {status}");
        agents.push(cluster.agent(spread_agent(&cluster, new)?).await?);
        wait_converged(&cluster, &agents.iter().collect::<Vec<_>>()).await?;
    }
    let stamps = cluster.stamps()?;
    stamps.check_exclusive()?;
    // Every task kept running somewhere: the gap between one copy's end and the next copy's start is bounded.
    let bound = settle_bound(&cluster).as_nanos();
    let mut worst = 0u128;
    for task in task_names() {
        let ivs: Vec<_> = stamps
            .intervals()
            .into_iter()
            .filter(|iv| iv.task == task)
            .collect();
        for pair in ivs.windows(2) {
            let gap = pair[1].start.saturating_sub(pair[0].end);
            worst = worst.max(gap);
            assert!(
                gap <= bound,
                "{task}: gap of {:.2} s between copies\n{}",
                gap as f64 / 1e9,
                stamps.describe()
            );
        }
    }
    println!(
        "rolling restart of 3 agents: worst gap in any task {:.3} s",
        worst as f64 / 1e9
    );
    Ok(())
}

#[tokio::test]
async fn a_wiped_api_server_never_makes_a_spread_task_reuse_an_epoch() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b"] {
        agents.push(cluster.agent(spread_agent(&cluster, node)?).await?);
    }
    let all: Vec<&Agent> = agents.iter().collect();
    wait_converged(&cluster, &all).await?;
    // The server forgets every Lease (as after an etcd restore): the task Leases come back at new epochs.
    cluster
        .admin_call(
            "POST",
            "restart",
            Some(&serde_json::json!({ "keepState": false })),
        )
        .await?;
    let before = cluster.stamps()?.intervals().len();
    eventually(
        "every task to run again after the wipe",
        settle_bound(&cluster) * 3,
        || async {
            let restarted = cluster.stamps()?.intervals().len() >= before + TASKS;
            Ok(if restarted {
                converged(&all).await?
            } else {
                None
            })
        },
    )
    .await?;
    // check_exclusive also requires each task's epochs to rise strictly from one copy to the next.
    cluster.stamps()?.check_exclusive()
}
