//! Configuration at the edges: bad values stop start-up with exit code 2 and start nothing; a node outside the
//! whitelist never writes; a Lease namespace that does not exist keeps the agent unready, not crashing, until it
//! is created.

use std::time::Duration;

use leasehold_tests::harness::{AgentSpec, Cluster, eventually, holds_for};

const NS: &str = "default";

#[tokio::test]
async fn bad_config_exits_2_naming_the_variable_and_starts_nothing() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    // A node name too long for a holder identity: the elector would refuse it, so start-up refuses it first.
    let long_node = "n".repeat(leasehold_lease::MAX_HOLDER_LEN);
    let cases = [
        ("ENV_ENABLE_ELECTION", "maybe"),
        ("LEASEHOLD_LEASE_DURATION", "1500ms"),
        ("ENV_GLOBAL_ELECTION_TAGS", "team"),
        ("ENV_K8S_CLUSTER_NODE_NAME", long_node.as_str()),
    ];
    for (i, (var, value)) in cases.iter().enumerate() {
        let node = format!("bad-{i}");
        let spec = AgentSpec::new(&node)
            .task(cluster.stamp_task("stamp", NS)?)
            .env(var, value);
        let mut agent = cluster.spawn_agent(spec).await?;
        let status = agent.wait_exit(Duration::from_secs(10)).await?;
        assert_eq!(
            status.code(),
            Some(2),
            "{var}={value}: {status}\n{}",
            agent.log_text()
        );
        let log = agent.log_text();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {log}");
        assert!(
            lines[0].contains(var) && lines[0].contains(value),
            "{var}={value}: {log}"
        );
        println!("{var}={value}: {}", lines[0]);
        // Nothing started: no request reached the API server, no task ran.
        assert_eq!(cluster.requests_by(&agent.user, &[]).await?, 0, "{var}");
    }
    assert!(cluster.stamps()?.lines.is_empty());
    Ok(())
}

#[tokio::test]
async fn node_outside_the_whitelist_is_banned_and_never_writes() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let bound = cluster.timing.takeover_bound();
    let mut agents = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        let spec = AgentSpec::new(node)
            .env("ENV_ELECTION_NODE_WHITELIST", "node-a,node-b")
            .task(cluster.stamp_task("stamp", NS)?);
        agents.push(cluster.agent(spec).await?);
    }
    let (allowed, banned) = (&agents[..2], &agents[2]);
    let all: Vec<_> = allowed.iter().collect();
    let first = &allowed[cluster.wait_for_leader(&all, NS, bound).await?];
    let first_start = cluster.wait_for_start(NS, &first.holder, 0, bound).await?;

    let s = banned.namespace(NS).await?;
    assert_eq!(s.status, "banned", "{s:?}");
    assert!(s.line.starts_with("Elected default::banned"), "{s:?}");

    // Even when the Lease changes hands, the banned node stays out of it.
    first.terminate()?;
    let second = allowed
        .iter()
        .find(|a| a.holder != first.holder)
        .expect("two allowed");
    cluster
        .wait_for_start(NS, &second.holder, first_start.epoch, bound)
        .await?;
    assert_eq!(banned.namespace(NS).await?.status, "banned");

    let writes = cluster.writes_by(&banned.user).await?;
    let requests = cluster.requests_by(&banned.user, &[]).await?;
    println!(
        "banned node: {requests} requests, {writes} writes; the leaders: {} and {} writes",
        cluster.writes_by(&allowed[0].user).await?,
        cluster.writes_by(&allowed[1].user).await?
    );
    assert_eq!(writes, 0, "{}", cluster.counters().await?);
    assert!(
        cluster.writes_by(&first.user).await? > 0,
        "the counters count this server's writes"
    );
    let stamps = cluster.stamps()?;
    assert!(
        stamps.by_holder(&banned.holder).next().is_none(),
        "{}",
        stamps.describe()
    );
    stamps.check_exclusive()
}

/// The agent's log lines (JSON) that report the missing Kubernetes namespace.
fn missing_namespace_warnings(log: &[serde_json::Value]) -> usize {
    log.iter()
        .filter(|l| {
            let text = l.to_string();
            l["level"] == "WARN" && text.contains("nope") && text.contains("does not exist")
        })
        .count()
}

#[tokio::test]
async fn missing_lease_namespace_keeps_the_agent_unready_until_it_is_created() -> anyhow::Result<()>
{
    let cluster = Cluster::start()?;
    let t = cluster.timing;
    let mut agent = cluster
        .agent(
            AgentSpec::new("node-a")
                .env("LEASEHOLD_LEASE_NAMESPACE", "nope")
                .task(cluster.stamp_task("stamp", NS)?),
        )
        .await?;

    // One clear line says what is wrong; the agent is unready but healthy and keeps running, and it does not
    // repeat the line on every retry.
    eventually(
        "the log to say the namespace is missing",
        t.takeover_bound(),
        || async { Ok((missing_namespace_warnings(&agent.log_json()) > 0).then_some(())) },
    )
    .await?;
    holds_for(
        "unready, healthy, running, and said once",
        t.lease_duration + t.renew_deadline,
        || async {
            Ok(agent.readyz().await? == 503
                && agent.healthz().await? == 200
                && agent.namespace(NS).await?.status == "defeat"
                && missing_namespace_warnings(&agent.log_json()) == 1)
        },
    )
    .await?;
    assert!(agent.try_exit()?.is_none(), "the agent exited");
    let line = agent
        .log_json()
        .into_iter()
        .find(|l| l["level"] == "WARN" && l.to_string().contains("does not exist"))
        .map(|l| l["message"].to_string());
    println!("the warning: {}", line.unwrap_or_default());
    assert!(cluster.stamps()?.lines.is_empty());

    // Once the namespace exists, the agent creates its Lease there, leads, and turns ready.
    cluster.create_namespace("nope").await?;
    agent
        .wait_status(NS, t.takeover_bound(), |s| s.status == "success")
        .await?;
    cluster
        .wait_for_start(NS, &agent.holder, 0, t.takeover_bound())
        .await?;
    eventually("readyz 200", Duration::from_secs(5), || async {
        Ok((agent.readyz().await? == 200).then_some(()))
    })
    .await?;
    let lease = cluster
        .lease("nope", "leasehold-default")
        .await?
        .expect("the Lease in nope");
    assert_eq!(lease["spec"]["holderIdentity"], agent.holder.as_str());
    Ok(())
}

#[tokio::test]
async fn a_datakit_operator_address_starts_the_agent_with_one_warning_naming_what_replaces_it()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let spec =
        AgentSpec::new("node-a").env("ENV_DATAKIT_OPERATOR", "datakit-operator.datakit.svc:443");
    let agent = cluster.agent(spec).await?;
    let all = [&agent];
    cluster
        .wait_for_leader(&all, NS, cluster.timing.takeover_bound())
        .await?;
    let warnings: Vec<serde_json::Value> = agent
        .log_json()
        .into_iter()
        .filter(|l| l["level"] == "WARN" && l.to_string().contains("ENV_DATAKIT_OPERATOR"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", agent.log_tail(20));
    let message = warnings[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("is ignored"), "{message}");
    assert!(message.contains("mode = \"spread\""), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_missing_kubeconfig_exits_2_before_anything_starts_naming_each_cause_once()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let missing = cluster.dir().join("no-such-kubeconfig");
    let spec = AgentSpec::new("node-a")
        .task(cluster.stamp_task("always", NS)?)
        .env("KUBECONFIG", &missing.display().to_string());
    let mut agent = cluster.spawn_agent(spec).await?;
    let status = agent.wait_exit(Duration::from_secs(10)).await?;
    let log = agent.log_text();
    assert_eq!(status.code(), Some(2), "{status}\n{log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one line, and no \"agent starting\" before it: {log}"
    );
    let line = lines[0];
    println!("{line}");
    assert!(line.contains("configuration error"), "{line}");
    assert!(
        line.contains(&missing.display().to_string()),
        "names the file: {line}"
    );
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "each cause once: {line}"
    );
    assert_eq!(cluster.requests_by(&agent.user, &[]).await?, 0);
    assert!(cluster.stamps()?.lines.is_empty(), "no task started");
    Ok(())
}

#[tokio::test]
async fn a_task_whose_lease_name_collides_with_another_agents_election_stops_naming_both()
-> anyhow::Result<()> {
    // One agent's configuration cannot hold both (start-up refuses it), but two agents' can: election namespace
    // `task-x` of node-a has the Lease `leasehold-task-x`, and so has spread task `x` of node-b. The task's
    // election finds a Lease of another kind and must not share it.
    let cluster = Cluster::start()?;
    let a = cluster
        .agent(AgentSpec::new("node-a").namespaces(&["task-x"]))
        .await?;
    cluster
        .wait_for_leader(&[&a], "task-x", cluster.timing.takeover_bound())
        .await?;
    let before = cluster
        .lease(NS, "leasehold-task-x")
        .await?
        .expect("node-a's election Lease");
    let mut b = cluster
        .agent(AgentSpec::new("node-b").task(cluster.stamp_task("x", NS)?.spread()))
        .await?;
    let status = b
        .wait_exit(cluster.timing.takeover_bound() + Duration::from_secs(10))
        .await?;
    let log = b.log_text();
    assert_eq!(status.code(), Some(1), "{status}\n{log}");
    let collision = b
        .log_json()
        .into_iter()
        .find(|l| l["level"] == "ERROR" && l.to_string().contains("leasehold-task-x"))
        .unwrap_or_else(|| panic!("no error naming the Lease: {log}"));
    let text = collision.to_string();
    println!("{text}");
    assert!(
        text.contains("is of kind election"),
        "names both kinds: {text}"
    );
    let after = cluster
        .lease(NS, "leasehold-task-x")
        .await?
        .expect("still there");
    assert_eq!(
        after["spec"]["holderIdentity"], before["spec"]["holderIdentity"],
        "node-b never took node-a's election Lease"
    );
    assert!(
        cluster.stamps()?.lines.is_empty(),
        "the task never ran: {}",
        cluster.stamps()?.describe()
    );
    Ok(())
}
