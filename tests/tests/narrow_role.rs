//! Agents under a narrower Role than the manifests' one: on leases only get, create and update (the Event verbs
//! as shipped), as many existing Roles for client-go's leader election grant. Without list and watch the
//! elections' shared watch cannot list, so followers poll their Lease with GET every RP; spread mode cannot place
//! anything, since only a list finds the member Leases.
//!
//! - Three agents elect exactly one leader; the followers report `"observation": "polling"` in `/v1/election`
//!   and `leasehold_election_polling 1`; the probes pass; a SIGTERM of the leader hands its task over within
//!   LD + RD + 2 s of the signal, never running two copies at once (the stamp task's flock and the stamp checker).
//! - An agent with a spread task still leads its election namespace, shows the spread watch as forbidden (logged
//!   once), writes no member Lease, and exits 0 promptly on SIGTERM instead of waiting for a list that never
//!   comes.

mod deploy;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use deploy::{
    DeployAgent, RbacServer, eventually, leader_of, rbac_yaml_without, rendered, wait_status,
};
use leasehold_policy::lease_name::{LeaseName, LeasePrefix};
use leasehold_tests::harness::binary;
use leasehold_tests::stamps::{Event, Stamp, Stamps, mono_now};
use serde_json::Value;
use tempfile::TempDir;

/// The election namespace the DaemonSet sets (ENV_NAMESPACE).
const NS: &str = "default";

/// LD and RD of [`config`].
const LD: Duration = Duration::from_secs(3);
const RD: Duration = Duration::from_secs(2);

/// How long a takeover may take once a fault has ended: LD + RD + 2 s, as every e2e test bounds it.
const TAKEOVER_BOUND: Duration = LD.saturating_add(RD).saturating_add(Duration::from_secs(2));

/// The leasehold series that says whether namespace `default` polls.
const POLLING_SERIES: &str = "leasehold_election_polling{namespace=\"default\"}";

/// The manifests' Role without list, watch and delete on leases: get, create and update are left, as in many
/// client-go Roles.
fn narrow_role(docs: &[Value]) -> anyhow::Result<String> {
    let leases = |verb| ("coordination.k8s.io", "leases", verb);
    rbac_yaml_without(docs, &[leases("list"), leases("watch"), leases("delete")])
}

/// The agents' configuration file: fast timing (LD 3 s, RD 2 s, RP 500 ms) and the stamp task as the leader task
/// (its stamps go to `dir/stamps.log`), plus a spread task when `spread` is set.
fn config(dir: &Path, spread: bool) -> anyhow::Result<String> {
    let json = |p: &Path| serde_json::to_string(&p.display().to_string());
    let mut toml = format!(
        "[lease]\nduration = \"3s\"\nrenew_deadline = \"2s\"\nretry_period = \"500ms\"\n\
         member_duration = \"1s\"\nmember_renew = \"500ms\"\n\n\
         [[task]]\nname = \"stamp\"\nmode = \"leader\"\ngrace = \"500ms\"\n\
         command = [{}, \"--stamps\", {}, \"--lock\", {}]\n",
        json(&binary("stamp-task")?)?,
        json(&dir.join("stamps.log"))?,
        json(&dir.join("stamp.lock"))?,
    );
    if spread {
        toml.push_str(
            "\n[[task]]\nname = \"spread-a\"\nmode = \"spread\"\ngrace = \"500ms\"\ncommand = [\"sleep\", \"600\"]\n",
        );
    }
    Ok(toml)
}

/// Waits for the first `start` stamp by `holder` with an epoch above `after_epoch`.
async fn wait_for_start(
    stamps: &Path,
    holder: &str,
    after_epoch: u64,
    within: Duration,
) -> anyhow::Result<Stamp> {
    eventually(&format!("{holder} to start its task"), within, || async {
        Ok(Stamps::read(stamps)?
            .lines
            .into_iter()
            .find(|s| s.event == Event::Start && s.holder == holder && s.epoch > after_epoch))
    })
    .await
}

/// The value of one series in a Prometheus text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The service account's refused requests: (verb, resource) → count.
fn denials(requests: &BTreeMap<(String, String, u16), u64>) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for ((verb, resource, code), n) in requests {
        if *code == 401 || *code == 403 {
            *out.entry((verb.clone(), resource.clone())).or_default() += n;
        }
    }
    out
}

fn election_lease_path() -> String {
    let name = LeaseName::election(&LeasePrefix::default(), NS);
    format!(
        "/apis/coordination.k8s.io/v1/namespaces/leasehold/leases/{}",
        name.name()
    )
}

#[tokio::test]
async fn under_get_create_update_followers_poll_and_a_sigterm_hands_over() -> anyhow::Result<()> {
    let docs = rendered("manifests")?;
    let dir = TempDir::new()?;
    let server = RbacServer::start(dir.path(), &docs, &narrow_role(&docs)?).await?;
    let kubeconfig = server.sa_kubeconfig()?;
    let config = config(dir.path(), false)?;
    let stamps = dir.path().join("stamps.log");
    let mut agents = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        agents.push(DeployAgent::start(
            dir.path(),
            &docs,
            node,
            &config,
            Some(&kubeconfig),
            &[],
        )?);
    }

    // Exactly one leader, and only it runs the task.
    let all: Vec<&DeployAgent> = agents.iter().collect();
    let old = leader_of(&all, NS, Duration::from_secs(30)).await?;
    let old_holder = agents[old].holder()?;
    let first = wait_for_start(&stamps, &old_holder, 0, TAKEOVER_BOUND).await?;

    // The followers poll and say so, in the API and the metrics; polling fails no probe.
    for a in agents
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != old)
        .map(|(_, a)| a)
    {
        eventually(
            &format!("{} to report polling", a.node),
            Duration::from_secs(10),
            || async {
                let ns = a.namespace(NS).await;
                Ok(ns.filter(|n| n["observation"] == "polling").map(drop))
            },
        )
        .await?;
        let text = a.metrics().await?;
        assert_eq!(
            sample(&text, POLLING_SERIES),
            Some(1.0),
            "{}: {text}",
            a.node
        );
    }
    for a in &agents {
        let ready = eventually("readiness", Duration::from_secs(10), || async {
            Ok((a.probe_get("/readyz").await? == 200).then_some(()))
        });
        ready.await?;
        assert_eq!(a.probe_get("/healthz").await?, 200, "{} is live", a.node);
    }

    // SIGTERM of the leader: a follower, learning of the release by its next GET, takes over within the bound.
    let termed_at = mono_now();
    agents[old].terminate()?;
    let new_holder = {
        let rest: Vec<&DeployAgent> = agents
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != old)
            .map(|(_, a)| a)
            .collect();
        rest[leader_of(&rest, NS, TAKEOVER_BOUND).await?].holder()?
    };
    let start = wait_for_start(&stamps, &new_holder, first.epoch, TAKEOVER_BOUND).await?;
    println!(
        "SIGTERM handover while polling: {:.3} s from the signal to the new leader's task start",
        (start.mono - termed_at) as f64 / 1e9
    );
    let status = agents[old].wait_exit(Duration::from_secs(10)).await?;
    assert!(
        status.success(),
        "the old leader exits 0 on SIGTERM: {status}"
    );

    let stamps = Stamps::read(&stamps)?;
    assert!(
        stamps.by_holder(&old_holder).all(|s| s.mono < start.mono),
        "{}",
        stamps.describe()
    );
    stamps.check_exclusive()?;

    // Only the watch's list was refused, and seldom: a refused list is retried every few minutes, not on the
    // watcher's backoff. The followers' GETs did the observing.
    let requests = server.sa_requests().await?;
    eprintln!("requests of the service account (verb, resource, code): {requests:?}");
    let denied = denials(&requests);
    assert!(
        denied
            .keys()
            .all(|(verb, resource)| resource == "leases" && (verb == "list" || verb == "watch")),
        "only list or watch on leases is refused: {denied:?}"
    );
    let refused_lists = denied
        .get(&("list".to_string(), "leases".to_string()))
        .copied()
        .unwrap_or(0);
    assert!(
        (1..=2 * agents.len() as u64).contains(&refused_lists),
        "one refused list per agent, give or take: {refused_lists}"
    );
    Ok(())
}

#[tokio::test]
async fn with_a_spread_task_under_that_role_the_agent_leads_and_exits_promptly_on_sigterm()
-> anyhow::Result<()> {
    let docs = rendered("manifests")?;
    let dir = TempDir::new()?;
    let server = RbacServer::start(dir.path(), &docs, &narrow_role(&docs)?).await?;
    let mut agent = DeployAgent::start(
        dir.path(),
        &docs,
        "node-a",
        &config(dir.path(), true)?,
        Some(&server.sa_kubeconfig()?),
        &[],
    )?;
    let stamps = dir.path().join("stamps.log");

    // The leader-mode namespace works (by polling); the spread watch is forbidden, shown and logged once.
    wait_status(&agent, NS, "success", Duration::from_secs(20)).await?;
    wait_for_start(&stamps, &agent.holder()?, 0, TAKEOVER_BOUND).await?;
    let spread = eventually(
        "the spread watch to show forbidden",
        Duration::from_secs(10),
        || async {
            let doc = agent.election().await?;
            Ok((doc["spread"]["watch"] == "forbidden").then(|| doc["spread"].clone()))
        },
    )
    .await?;
    assert_eq!(
        spread["tasks"][0]["campaigning"], false,
        "no spread task is campaigned for: {spread}"
    );
    assert_eq!(
        agent.probe_get("/readyz").await?,
        200,
        "ready: the election Lease is observed"
    );
    assert_eq!(agent.probe_get("/healthz").await?, 200, "live");
    let warnings = agent
        .log_text()
        .lines()
        .filter(|l| l.contains("spread mode cannot list or watch Leases"))
        .count();
    assert_eq!(warnings, 1, "one warning:\n{}", agent.log_tail(30));
    assert_eq!(
        server.leases("leasehold.dev%2Fkind%3Dmember").await?,
        Vec::<Value>::new(),
        "no member Lease that nobody could list"
    );

    // SIGTERM: the agent stops its task, releases the election Lease and exits 0 at once.
    let termed = Instant::now();
    agent.terminate()?;
    let status = agent.wait_exit(Duration::from_secs(5)).await?;
    println!(
        "exit after SIGTERM with the spread watch forbidden: {:.3} s",
        termed.elapsed().as_secs_f64()
    );
    assert!(status.success(), "exit 0 on SIGTERM: {status}");
    let lease = server
        .admin_get(&election_lease_path())
        .await?
        .context("the election Lease")?;
    assert_eq!(
        lease["spec"]["holderIdentity"].as_str().unwrap_or(""),
        "",
        "released: {lease}"
    );
    let stamps = Stamps::read(&stamps)?;
    assert!(
        stamps.lines.iter().any(|s| s.event == Event::Stop),
        "the task was stopped: {}",
        stamps.describe()
    );
    stamps.check_exclusive()
}
