//! The agent's edges: the `leasehold run` wrapper, the control API's token when it listens off loopback, a second
//! signal during a graceful shutdown, an election namespace whose Lease name collides with another's, the
//! Kubernetes Events a leadership change leaves on the Lease, and a node whose wall clock is wrong (libfaketime).

use anyhow::Context as _;
use std::process::Command;
use std::time::Duration;

use leasehold_tests::harness::{
    AgentSpec, Cluster, TaskDef, Timing, agent_is_static, binary, eventually, faketime_env,
    free_port, holds_for,
};
use leasehold_tests::http_client::ApiClient;
use leasehold_tests::stamps::Event;
use serde_json::json;

const NS: &str = "default";

#[tokio::test]
async fn the_wrapper_runs_one_command_under_election_and_hands_it_over() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let command = cluster.stamp_task("wrapped", NS)?.command;
    let a = cluster
        .agent(AgentSpec::new("node-a").wrapper(NS, "500ms", &command))
        .await?;
    let b = cluster
        .agent(AgentSpec::new("node-b").wrapper(NS, "500ms", &command))
        .await?;
    let bound = cluster.timing.takeover_bound();
    let mut agents = vec![a, b];
    let leader = cluster
        .wait_for_leader(&agents.iter().collect::<Vec<_>>(), NS, bound)
        .await?;
    let mut first = agents.remove(leader);
    let second = agents.remove(0);
    let started = cluster.wait_for_start(NS, &first.holder, 0, bound).await?;
    assert_eq!(
        started.task, "stamp-task",
        "the wrapped task is named after the command"
    );
    first.terminate()?;
    assert!(first.wait_exit(bound).await?.success(), "SIGTERM exits 0");
    cluster
        .wait_for_start(NS, &second.holder, started.epoch, bound)
        .await?;
    let stamps = cluster.stamps()?;
    assert!(
        stamps
            .lines
            .iter()
            .any(|s| s.holder == first.holder && s.event == Event::Stop),
        "{}",
        stamps.describe()
    );
    stamps.check_exclusive()
}

#[tokio::test]
async fn off_loopback_the_control_api_needs_its_token() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let port = free_port()?.port();
    let listen = format!("0.0.0.0:{port}");

    // Without a token, an agent whose control API would listen off loopback refuses to start.
    let mut refused = cluster
        .spawn_agent(AgentSpec::new("node-a").env("LEASEHOLD_LISTEN", &listen))
        .await?;
    let status = refused.wait_exit(Duration::from_secs(15)).await?;
    assert_eq!(status.code(), Some(2), "{}", refused.log_tail(5));
    assert!(
        refused.log_tail(5).contains("LEASEHOLD_API_TOKEN"),
        "{}",
        refused.log_tail(5)
    );

    let guarded = cluster
        .spawn_agent(
            AgentSpec::new("node-b")
                .env("LEASEHOLD_LISTEN", &listen)
                .env("LEASEHOLD_API_TOKEN", "s3cret"),
        )
        .await?;
    let url = format!("http://127.0.0.1:{port}");
    let anonymous = ApiClient::new(&url, "");
    let with_token = ApiClient::new(&url, "s3cret");
    eventually(
        "the guarded agent to lead",
        cluster.timing.takeover_bound() * 2,
        || async {
            Ok(match anonymous.send("GET", "/v1/election", None).await {
                Ok((200, doc)) if doc["namespaces"][0]["status"] == "success" => Some(()),
                _ => None,
            })
        },
    )
    .await?;
    let (code, _) = anonymous
        .send("POST", &format!("/v1/election/{NS}/impeach"), None)
        .await?;
    assert_eq!(code, 401, "impeach without the token");
    let (code, _) = anonymous
        .send(
            "POST",
            "/v1/global/election/tags",
            Some(&json!({"tags": {"a": "b"}})),
        )
        .await?;
    assert_eq!(code, 401, "tags without the token");
    let (code, doc) = with_token
        .send("POST", &format!("/v1/election/{NS}/impeach"), None)
        .await?;
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["namespaces"][0]["status"], "impeached");
    drop(guarded);
    Ok(())
}

#[tokio::test]
async fn a_second_signal_exits_at_once_and_the_task_still_dies() -> anyhow::Result<()> {
    let mut cluster = Cluster::start()?;
    // A long grace, so that a graceful shutdown would visibly wait for it.
    cluster.timing = Timing {
        lease_duration: Duration::from_secs(20),
        renew_deadline: Duration::from_secs(5),
        retry_period: Duration::from_millis(500),
        grace: Duration::from_secs(12),
    };
    let stubborn = vec![
        "sh".to_string(),
        "-c".to_string(),
        "trap '' TERM; echo up; while true; do sleep 1; done".to_string(),
    ];
    let mut task = cluster.stamp_task("stubborn", NS)?;
    task.command = stubborn;
    let mut agent = cluster.agent(AgentSpec::new("node-a").task(task)).await?;
    agent
        .wait_status(NS, Duration::from_secs(30), |s| {
            s.task_state("stubborn") == Some("running")
        })
        .await?;
    // "running" comes as soon as the process exists; the shell ignores TERM only once it has said "up".
    eventually(
        "the stubborn task to ignore TERM",
        Duration::from_secs(10),
        || async {
            Ok(agent
                .log_tail(40)
                .contains(r#""message":"up""#)
                .then_some(()))
        },
    )
    .await?;
    let pid = agent.namespace(NS).await?.tasks[0]["pid"]
        .as_u64()
        .unwrap_or(0) as i32;
    agent.terminate()?;
    // The first signal starts a graceful stop that waits for the 12 s grace; the second one ends it.
    eventually(
        "the graceful stop to begin",
        Duration::from_secs(10),
        || async { Ok(agent.log_tail(20).contains("shutting down").then_some(())) },
    )
    .await?;
    agent.terminate()?;
    let status = agent.wait_exit(Duration::from_secs(10)).await?;
    assert_eq!(
        status.code(),
        Some(130),
        "a second signal exits with 130 at once"
    );
    // The task's watchdog sees the agent go away and kills the whole group.
    eventually(
        "the stubborn task to be killed",
        Duration::from_secs(10),
        || async {
            Ok((rustix::process::test_kill_process(
                rustix::process::Pid::from_raw(pid).unwrap_or(rustix::process::Pid::INIT),
            )
            .is_err())
            .then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_lease_name_collision_stops_the_agent_with_a_clear_error() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    // Another election namespace already owns the Lease name ours maps to.
    cluster
        .create(
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            &json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {
                    "name": "leasehold-default",
                    "labels": {"app.kubernetes.io/managed-by": "leasehold", "leasehold.dev/kind": "election"},
                    "annotations": {"leasehold.dev/election-namespace": "Default!"}
                },
                "spec": {"holderIdentity": "", "leaseDurationSeconds": 1}
            }),
        )
        .await?;
    let mut agent = cluster.spawn_agent(AgentSpec::new("node-a")).await?;
    let status = agent.wait_exit(Duration::from_secs(30)).await?;
    assert_eq!(status.code(), Some(1), "{}", agent.log_tail(10));
    let log = agent.log_tail(20);
    assert!(log.contains("collide") && log.contains("Default!"), "{log}");
    Ok(())
}

#[tokio::test]
async fn a_new_leader_leaves_an_event_on_the_lease() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let agents = cluster.stamp_agents(&["node-a", "node-b"], NS).await?;
    let all: Vec<_> = agents.iter().collect();
    let leader = &agents[cluster
        .wait_for_leader(&all, NS, cluster.timing.takeover_bound())
        .await?];
    let events = eventually("a leadership Event on the Lease", Duration::from_secs(15), || async {
        let list = cluster
            .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dleasehold-default")
            .await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        Ok((!items.is_empty()).then_some(items))
    })
    .await?;
    let note = format!("{} became leader of {NS} (epoch", leader.node);
    assert!(
        events
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.starts_with(&note))),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["reportingInstance"] == leader.holder.as_str()),
        "only the agent whose leadership changed writes Events: {events:?}"
    );
    Ok(())
}

#[tokio::test]
async fn when_one_elector_dies_the_others_stop_their_tasks_with_grace_then_release_then_exit_1()
-> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let bound = cluster.timing.takeover_bound();
    for ns in ["alpha", "beta"] {
        cluster.create_namespace(ns).await.ok();
    }
    let spec = AgentSpec::new("node-a")
        .namespaces(&["alpha", "beta"])
        .task(cluster.stamp_task("a", "alpha")?)
        .task(cluster.stamp_task("b", "beta")?);
    let mut agent = cluster.agent(spec).await?;
    let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    cluster.wait_for_leader(&[&agent], "beta", bound).await?;
    cluster
        .wait_for_start("beta", &agent.holder, 0, bound)
        .await?;

    // A third party makes alpha's Lease claim another election namespace: alpha's elector stops with a fatal
    // collision while beta leads.
    let mut alpha = cluster
        .lease("default", "leasehold-alpha")
        .await?
        .context("alpha's Lease")?;
    alpha["metadata"]["annotations"]["leasehold.dev/election-namespace"] = "someone-else".into();
    cluster
        .replace(&format!("{leases}/leasehold-alpha"), &alpha)
        .await?;

    let status = agent.wait_exit(bound + Duration::from_secs(5)).await?;
    assert_eq!(status.code(), Some(1), "{status}\n{}", agent.log_tail(30));
    let stamps = cluster.stamps()?;
    let beta_runs = stamps.intervals_in("beta");
    let last = beta_runs.last().context("beta's task ran")?;
    assert!(
        last.stopped,
        "beta's task got SIGTERM and its grace, not SIGKILL: {}",
        stamps.describe()
    );
    let beta = cluster
        .lease("default", "leasehold-beta")
        .await?
        .context("beta's Lease")?;
    assert_eq!(
        beta["metadata"]["annotations"]["leasehold.dev/released-by"],
        agent.holder.as_str(),
        "beta's Lease was released after its task stopped: {beta}"
    );
    assert_eq!(
        beta["spec"]["holderIdentity"], "",
        "released: no holder: {beta}"
    );
    Ok(())
}

#[tokio::test]
async fn a_stalled_log_pipe_never_stops_the_election() -> anyhow::Result<()> {
    // stdout and stderr become a pipe nobody reads once the agent has started, and a task floods its output
    // through the agent's log. Written synchronously on the runtime's workers, the log would block them and stop
    // the renewals; the agent must drop lines (and count them) instead.
    let cluster = Cluster::start()?;
    let t = cluster.timing;
    let chatty = TaskDef {
        name: "chatty".into(),
        namespace: "default".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "while :; do echo 'a line of task output that nobody will ever read'; done".into(),
        ],
        election: false,
        grace: t.grace,
        tags: Default::default(),
        mode: None,
    };
    let agent = cluster
        .agent(AgentSpec::new("node-a").task(chatty).stalled_output())
        .await?;
    cluster
        .wait_for_leader(&[&agent], "default", t.takeover_bound())
        .await?;
    let dropped = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("leasehold_log_lines_dropped_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    // The pipe fills within moments; from then on lines are dropped.
    eventually("log lines dropped", t.takeover_bound(), || async {
        Ok(dropped(&agent.metrics().await?).filter(|n| *n > 0.0))
    })
    .await?;
    let before = cluster
        .lease("default", "leasehold-default")
        .await?
        .context("the Lease")?;
    // Three terms with the log stalled: the agent keeps leading, and keeps renewing.
    holds_for(
        "the agent leads while its log is stalled",
        t.lease_duration * 3,
        || async { Ok(agent.namespace("default").await?.status == "success") },
    )
    .await?;
    let after = cluster
        .lease("default", "leasehold-default")
        .await?
        .context("the Lease")?;
    assert_eq!(after["spec"]["holderIdentity"], agent.holder.as_str());
    assert_ne!(
        after["spec"]["renewTime"], before["spec"]["renewTime"],
        "renewals went on"
    );
    assert_eq!(
        after["spec"]["leaseTransitions"], before["spec"]["leaseTransitions"],
        "the same term"
    );
    Ok(())
}

/// A node whose wall clock is an hour slow writes renewTimes an hour in the past, and still leads and renews:
/// nobody reads the remote wall clock to decide anything. The skew comes from libfaketime around the real binary,
/// so the product carries no test hook for it (the release binary holds no `LEASEHOLD_TEST_` string, `make test`).
#[tokio::test]
async fn a_node_with_a_slow_wall_clock_leads_and_writes_its_own_time() -> anyhow::Result<()> {
    if agent_is_static()? {
        // The only case this test does not run: LD_PRELOAD cannot reach a static binary.
        println!(
            "skipped: {} is linked statically (E2E_BIN_DIR from `make static`?), and libfaketime reaches only a \
             dynamically linked agent, through LD_PRELOAD",
            binary("leasehold")?.display()
        );
        return Ok(());
    }
    let cluster = Cluster::start()?;
    let bound = cluster.timing.takeover_bound();
    let agent = cluster
        .agent(
            AgentSpec::new("node-slow")
                .skewed_wall_clock("-1h")
                .task(cluster.stamp_task("stamp", NS)?),
        )
        .await?;
    cluster.wait_for_leader(&[&agent], NS, bound).await?;
    let renewed = eventually("the leader to renew its Lease", bound, || async {
        let lease = cluster.lease(NS, "leasehold-default").await?;
        Ok(lease.and_then(|l| l["spec"]["renewTime"].as_str().map(str::to_owned)))
    })
    .await?;
    let written: jiff::Timestamp = renewed.parse()?;
    let behind = jiff::Timestamp::now().duration_since(written);
    println!("renewTime {renewed} is {behind:#} behind this test's clock");
    assert!(
        behind >= jiff::SignedDuration::from_mins(55)
            && behind <= jiff::SignedDuration::from_mins(65),
        "the faked clock is an hour slow: {behind:#}"
    );
    cluster.stamps()?.check_exclusive()
}

/// Selects [`helper_print_clocks`] when this test binary is re-run under libfaketime.
const CLOCKS_HELPER_ENV: &str = "AGENT_EDGES_CLOCKS_HELPER";

/// CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME in nanoseconds, read through glibc's `clock_gettime` as
/// std's `SystemTime` and `Instant` (so tokio's timers) read the first two: the call libfaketime interposes.
#[allow(unsafe_code)]
fn libc_clocks() -> [i128; 3] {
    [
        libc::CLOCK_REALTIME,
        libc::CLOCK_MONOTONIC,
        libc::CLOCK_BOOTTIME,
    ]
    .map(|id| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec that outlives the call.
        let rc = unsafe { libc::clock_gettime(id, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime({id}) failed");
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    })
}

/// Not a test on its own (it does nothing unless [`CLOCKS_HELPER_ENV`] is set): the child that
/// [`libfaketime_fakes_the_wall_clock_only`] runs under libfaketime prints its clocks.
#[test]
fn helper_print_clocks() {
    if std::env::var_os(CLOCKS_HELPER_ENV).is_none() {
        return;
    }
    let [real, mono, boot] = libc_clocks();
    println!("CLOCKS {real} {mono} {boot}");
}

/// The environment the harness gives an agent with a skewed wall clock ([`faketime_env`], what
/// `AgentSpec::skewed_wall_clock` uses) fakes the wall clock only: a dynamically linked program run in it (this
/// test binary) reads CLOCK_REALTIME exactly an hour slow, and CLOCK_MONOTONIC and CLOCK_BOOTTIME, which the
/// elector and the shim time on, true. Without `FAKETIME_DONT_FAKE_MONOTONIC=1` libfaketime fakes those too.
#[test]
fn libfaketime_fakes_the_wall_clock_only() -> anyhow::Result<()> {
    const HOUR: i128 = 3_600_000_000_000;
    let before = libc_clocks();
    let out = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "helper_print_clocks",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(faketime_env("-1h")?)
        .env(CLOCKS_HELPER_ENV, "1")
        .output()?;
    let after = libc_clocks();
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "the helper failed: {stdout}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("CLOCKS ").map(|(_, clocks)| clocks))
        .with_context(|| format!("the helper printed no clocks: {stdout}"))?;
    let child: Vec<i128> = line.split(' ').map(str::parse).collect::<Result<_, _>>()?;
    println!("before {before:?}, under libfaketime {child:?}, after {after:?}");
    let within = |i: usize, shift: i128| (before[i] - shift..=after[i] - shift).contains(&child[i]);
    assert!(within(0, HOUR), "CLOCK_REALTIME is an hour slow");
    assert!(within(1, 0), "CLOCK_MONOTONIC is true");
    assert!(within(2, 0), "CLOCK_BOOTTIME is true");
    Ok(())
}

/// The elector's requests never share a connection with the agent's Events. On one connection pool, the Event
/// that a change of leadership posts takes the idle connection that the elector's next write was about to use,
/// and a release on SIGTERM waited for that POST's answer (an etcd write on a real server) or for a new
/// connection: the 45 ms between SIGTERM and the release that issue 13 measured on a real kube-apiserver. The
/// stand-in's counters list what each TCP connection carried.
#[tokio::test]
async fn the_elector_never_shares_a_connection_with_events() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let bound = cluster.timing.takeover_bound();
    let mut agents = cluster.stamp_agents(&["node-a"], NS).await?;
    let agent = &agents[0];
    cluster.wait_for_leader(&[agent], NS, bound).await?;
    let user = agent.user.clone();
    eventually("the leader's Event and then two renews", bound, || async {
        let counters = cluster.counters().await?;
        let posted = counters["requests"]
            .as_object()
            .context("no requests map")?
            .keys()
            .any(|k| k.starts_with(&format!("{user} create events 201")));
        let renews = cluster.requests_by(&user, &["update"]).await?;
        Ok((posted && renews >= 2).then_some(()))
    })
    .await?;
    let renews = cluster.requests_by(&user, &["update"]).await?;
    eventually("two more renews", bound, || async {
        Ok((cluster.requests_by(&user, &["update"]).await? >= renews + 2).then_some(()))
    })
    .await?;
    let agent = &mut agents[0];
    agent.terminate()?;
    let status = agent.wait_exit(bound).await?;
    assert_eq!(status.code(), Some(0), "a graceful stop");

    let counters = cluster.counters().await?;
    let connections: Vec<&serde_json::Value> = counters["connections"]
        .as_array()
        .context("no connections list")?
        .iter()
        .filter(|c| {
            c["users"]
                .as_array()
                .is_some_and(|u| u.iter().any(|u| u == user.as_str()))
        })
        .collect();
    let carried = |c: &serde_json::Value, resource: &str| {
        c["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r == resource))
    };
    assert!(
        connections.iter().any(|c| carried(c, "leases")),
        "{connections:?}"
    );
    assert!(
        connections.iter().any(|c| carried(c, "events")),
        "{connections:?}"
    );
    assert!(
        !connections
            .iter()
            .any(|c| carried(c, "leases") && carried(c, "events")),
        "a connection carried both Lease and Event requests: {connections:?}"
    );
    Ok(())
}
