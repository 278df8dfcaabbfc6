//! Spread mode with real agents: 10 tasks over the agents with balanced, sticky placement; a joining agent takes
//! only the tasks that must move; a SIGKILLed agent's tasks move; a partitioned agent's tasks stop before they
//! start elsewhere; a rolling restart keeps every task running apart from bounded gaps. Every task is a stamp task
//! with its own lock, so the flock and the stamp checker prove that no task ever ran twice at once.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use leasehold_tests::harness::{Agent, AgentSpec, Cluster, eventually};

const NS: &str = "default";
const TASKS: usize = 10;

fn task_names() -> Vec<String> {
    (0..TASKS).map(|i| format!("t{i}")).collect()
}

/// An agent with the 10 spread stamp tasks and fast member timing.
fn spread_agent(cluster: &Cluster, node: &str) -> anyhow::Result<AgentSpec> {
    let mut spec = AgentSpec::new(node)
        .env("LEASEHOLD_MEMBER_DURATION", "3s")
        .env("LEASEHOLD_MEMBER_RENEW", "1s");
    for name in task_names() {
        spec = spec.task(cluster.stamp_task(&name, NS)?.spread());
    }
    Ok(spec)
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
    eventually(
        "spread placement to converge with every task running once",
        settle_bound(cluster) * 2,
        || async { converged(agents).await },
    )
    .await
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
    assert!(
        after_loads.values().all(|n| *n <= TASKS.div_ceil(4)),
        "no agent over ceil(10/4): {after_loads:?}"
    );
    // Only tasks that had to move did: each came from an agent over the new cap, and no more than the excess.
    let cap = TASKS.div_ceil(4);
    let excess: usize = before_loads.values().map(|n| n.saturating_sub(cap)).sum();
    assert_eq!(
        moved.len(),
        excess,
        "moved {moved:?}, but the agents over the new cap held {excess} extra"
    );
    for t in &moved {
        assert!(
            before_loads[&before[*t]] > cap,
            "{t} moved from {} which was not over the cap",
            before[*t]
        );
    }
    cluster.stamps()?.check_exclusive()
}

#[tokio::test]
async fn a_sigkilled_agents_tasks_move_to_the_others() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        agents.push(cluster.agent(spread_agent(&cluster, node)?).await?);
    }
    let all: Vec<&Agent> = agents.iter().collect();
    let before = wait_converged(&cluster, &all).await?;
    let victim = agents.remove(0);
    let orphans: Vec<&String> = before
        .iter()
        .filter(|(_, h)| **h == victim.holder)
        .map(|(t, _)| t)
        .collect();
    victim.kill()?;
    let rest: Vec<&Agent> = agents.iter().collect();
    let after = wait_converged(&cluster, &rest).await?;
    println!(
        "after the kill: {:?}; orphans were {orphans:?}",
        loads(&after)
    );
    assert!(after.values().all(|h| *h != victim.holder));
    assert!(loads(&after).values().all(|n| *n <= TASKS.div_ceil(2)));
    for (task, holder) in &before {
        if *holder != victim.holder {
            assert_eq!(
                &after[task], holder,
                "{task} should have stayed with its live holder"
            );
        }
    }
    cluster.stamps()?.check_exclusive()
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
