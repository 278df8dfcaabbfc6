//! The agent's control API and CLI against real elections: impeach, runtime election tags and the child
//! environment, and the DataKit-style status lines of `leasehold status`.

use std::collections::BTreeMap;
use std::time::Duration;

use leasehold_tests::harness::{AgentSpec, Cluster, eventually};

const NS: &str = "default";

fn tags_of(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.get("LEASEHOLD_TAGS")
        .map(|t| {
            t.split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn impeached_leader_steps_down_sits_out_the_cool_down_then_campaigns_again()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let agents = cluster.stamp_agents(&["node-a", "node-b"], NS).await?;
    let all: Vec<_> = agents.iter().collect();
    let bound = cluster.timing.takeover_bound();
    let old = &agents[cluster.wait_for_leader(&all, NS, bound).await?];
    let other = agents
        .iter()
        .find(|a| a.holder != old.holder)
        .expect("two agents");
    let first = cluster.wait_for_start(NS, &old.holder, 0, bound).await?;

    let (code, body) = old.impeach(NS).await?;
    assert_eq!(code, 200, "{body}");
    let impeached = old
        .wait_status(NS, Duration::from_secs(2), |s| s.status == "impeached")
        .await?;
    assert_eq!(
        impeached.task_state("stamp"),
        Some("stopped"),
        "{impeached:?}"
    );

    // The other agent takes the released Lease without waiting out LD.
    let second = cluster
        .wait_for_start(NS, &other.holder, first.epoch, bound)
        .await?;
    other
        .wait_status(NS, bound, |s| s.status == "success")
        .await?;

    // After the cool-down (LD) the impeached agent follows again...
    let holder = other.holder.clone();
    old.wait_status(NS, bound, move |s| {
        s.status == "defeat" && s.holder.as_deref() == Some(&holder)
    })
    .await?;
    // ...and campaigns: when the new leader leaves, it leads again.
    other.terminate()?;
    let third = cluster
        .wait_for_start(NS, &old.holder, second.epoch, bound)
        .await?;
    old.wait_status(NS, bound, |s| s.status == "success")
        .await?;
    assert!(third.epoch > second.epoch && second.epoch > first.epoch);
    cluster.stamps()?.check_exclusive()
}

#[tokio::test]
async fn child_env_carries_epoch_holder_namespace_task_and_every_kind_of_election_tag()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let bound = cluster.timing.takeover_bound();
    let spec = |node: &str| -> anyhow::Result<AgentSpec> {
        Ok(AgentSpec::new(node)
            .env("ENV_GLOBAL_ELECTION_TAGS", "team=infra,region=eu")
            .env("ENV_ENABLE_ELECTION_NAMESPACE_TAG", "true")
            .task(cluster.stamp_task("stamp", NS)?.tag("host", "db-1")))
    };
    let a = cluster.agent(spec("node-a")?).await?;
    let a_start = cluster.wait_for_start(NS, &a.holder, 0, bound).await?;

    let env = cluster
        .task_env("stamp", &a.holder, a_start.epoch)?
        .expect("the task dumped its environment");
    let lease = cluster
        .lease(NS, "leasehold-default")
        .await?
        .expect("the Lease");
    assert_eq!(env["LEASEHOLD_NAMESPACE"], NS);
    assert_eq!(env["LEASEHOLD_TASK"], "stamp");
    assert_eq!(env["LEASEHOLD_HOLDER"], a.holder);
    assert_eq!(
        env["LEASEHOLD_EPOCH"],
        lease["spec"]["leaseTransitions"].to_string()
    );
    assert_eq!(a.namespace(NS).await?.epoch, Some(a_start.epoch));
    let tags = tags_of(&env);
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("infra"),
        "{env:?}"
    );
    assert_eq!(
        tags.get("region").map(String::as_str),
        Some("eu"),
        "{env:?}"
    );
    assert_eq!(
        tags.get("election_namespace").map(String::as_str),
        Some(NS),
        "{env:?}"
    );
    assert_eq!(
        tags.get("host").map(String::as_str),
        Some("db-1"),
        "{env:?}"
    );
    assert!(!tags.contains_key("owner"), "{env:?}");

    // Runtime tags POSTed to a follower apply to the task it starts when it takes over.
    let b = cluster.agent(spec("node-b")?).await?;
    let holder = a.holder.clone();
    b.wait_status(NS, bound, move |s| {
        s.status == "defeat" && s.holder.as_deref() == Some(&holder)
    })
    .await?;
    b.set_tags(&[("owner", "sre"), ("team", "platform")])
        .await?;
    let got = b.tags().await?;
    assert_eq!(got["tags"]["owner"], "sre", "{got}");
    a.terminate()?;
    let b_start = cluster
        .wait_for_start(NS, &b.holder, a_start.epoch, bound)
        .await?;
    let env = eventually("node-b's task environment", bound, || async {
        cluster.task_env("stamp", &b.holder, b_start.epoch)
    })
    .await?;
    let tags = tags_of(&env);
    assert_eq!(env["LEASEHOLD_HOLDER"], b.holder);
    assert_eq!(env["LEASEHOLD_EPOCH"], b_start.epoch.to_string());
    assert_eq!(
        tags.get("owner").map(String::as_str),
        Some("sre"),
        "{env:?}"
    );
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("platform"),
        "runtime tags override configured ones: {env:?}"
    );
    assert_eq!(
        tags.get("region").map(String::as_str),
        Some("eu"),
        "{env:?}"
    );
    assert_eq!(
        tags.get("election_namespace").map(String::as_str),
        Some(NS),
        "{env:?}"
    );
    assert_eq!(
        tags.get("host").map(String::as_str),
        Some("db-1"),
        "the task's own tags win: {env:?}"
    );
    cluster.stamps()?.check_exclusive()
}

#[tokio::test]
async fn status_command_prints_success_for_the_leader_and_defeat_with_the_leader_for_the_others()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let agents = cluster
        .stamp_agents(&["node-a", "node-b", "node-c"], NS)
        .await?;
    let all: Vec<_> = agents.iter().collect();
    let leader = &agents[cluster
        .wait_for_leader(&all, NS, cluster.timing.takeover_bound())
        .await?];
    leader
        .wait_status(NS, cluster.timing.takeover_bound(), |s| {
            s.task_state("stamp") == Some("running")
        })
        .await?;

    for agent in &agents {
        let out = agent.status_command(&[])?;
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout)?;
        let line = text.lines().next().unwrap_or_default();
        println!("{}: {text}", agent.node);
        if agent.holder == leader.holder {
            let prefix = format!("Elected {NS}::success|{}(elected: ", leader.node);
            assert!(line.starts_with(&prefix) && line.ends_with(')'), "{line:?}");
            assert!(text.contains("task stamp (leader): running"), "{text}");
        } else {
            assert_eq!(line, format!("Elected {NS}::defeat|{}", leader.node));
            assert!(text.contains("task stamp (leader): stopped"), "{text}");
        }

        let out = agent.status_command(&["--json"])?;
        assert!(out.status.success(), "{out:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let ns = &doc["namespaces"][0];
        assert_eq!(ns["namespace"], NS);
        let json_line = ns["line"].as_str().unwrap_or_default();
        // The elected time moves on between the two calls; the rest of the line is the same.
        assert_eq!(json_line.split('(').next(), line.split('(').next(), "{doc}");
        let want = if agent.holder == leader.holder {
            "success"
        } else {
            "defeat"
        };
        assert_eq!(ns["status"], want, "{doc}");
        assert_eq!(ns["holder"], leader.holder.as_str(), "{doc}");
    }

    // Without an agent, the command says where it looked and fails.
    let dead = &agents[0];
    dead.kill()?;
    let out = eventually(
        "status to fail against a dead agent",
        Duration::from_secs(5),
        || async {
            let out = dead.status_command(&[])?;
            Ok((!out.status.success()).then_some(out))
        },
    )
    .await?;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&dead.api.to_string()),
        "{out:?}"
    );
    Ok(())
}
