//! The manifests' Role is least privilege, proven against the bundled API server: `leasehold-apiserver` loads the
//! Role and RoleBinding that `kubectl kustomize manifests/` renders (`--rbac`) and authenticates the agents as the
//! manifests' service account (`--token-file`), and real agent processes, configured from the DaemonSet's env, run
//! under it.
//!
//! - With the Role as shipped, a full scenario (election, spread tasks, a repeated Event, handover on SIGTERM,
//!   clean-up of a departed agent's member Lease, release) gets no 403, and uses every verb the Role grants.
//! - With any one verb removed, a short scenario that exercises every verb gets 403 for exactly that verb: no verb
//!   is unneeded.
//! - The same identity is refused a Lease in another namespace, Secrets, and the cluster scope.

mod deploy;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use deploy::{
    DeployAgent, POLL, RbacServer, SA_USER, eventually, leader_of, rbac_yaml, rendered, wait_status,
};
use leasehold_lease::RELEASED_BY_ANNOTATION;
use leasehold_policy::lease_name::{LeaseName, LeasePrefix};
use serde_json::Value;
use tempfile::TempDir;

/// The agents' configuration file in these tests: fast timing (LD 3 s, RD 2 s, RP 500 ms; member Leases 1 s, so
/// spread mode's clean-up deletes a stale one after a little more than 11 s), a leader task and two spread tasks.
/// Everything else comes from the DaemonSet's env, as in a pod.
const CONFIG: &str = r#"
[lease]
duration = "3s"
renew_deadline = "2s"
retry_period = "500ms"
member_duration = "1s"
member_renew = "500ms"

[[task]]
name = "collector"
command = ["sleep", "600"]
mode = "leader"
grace = "500ms"

[[task]]
name = "spread-a"
command = ["sleep", "600"]
mode = "spread"
grace = "500ms"

[[task]]
name = "spread-b"
command = ["sleep", "600"]
mode = "spread"
grace = "500ms"
"#;

/// The election namespace the DaemonSet sets (ENV_NAMESPACE).
const NS: &str = "default";

const LEASES: (&str, &str) = ("coordination.k8s.io", "leases");
const EVENTS: (&str, &str) = ("events.k8s.io", "events");

/// Every (resource, verb) the Role grants.
const GRANTED: [(&str, &str); 8] = [
    ("leases", "get"),
    ("leases", "list"),
    ("leases", "watch"),
    ("leases", "create"),
    ("leases", "update"),
    ("leases", "delete"),
    ("events", "create"),
    ("events", "patch"),
];

fn election_lease() -> String {
    LeaseName::election(&LeasePrefix::default(), NS)
        .name()
        .to_string()
}

fn lease_path(name: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/leasehold/leases/{name}")
}

/// The service account's denied requests: (verb, resource) → count.
fn denials(requests: &BTreeMap<(String, String, u16), u64>) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for ((verb, resource, code), n) in requests {
        if *code == 401 || *code == 403 {
            *out.entry((verb.clone(), resource.clone())).or_default() += n;
        }
    }
    out
}

/// Requests of `verb` on `resource` that were let through (any answer but 401/403).
fn allowed(requests: &BTreeMap<(String, String, u16), u64>, resource: &str, verb: &str) -> u64 {
    requests
        .iter()
        .filter(|((v, r, code), _)| v == verb && r == resource && *code != 401 && *code != 403)
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn agents_under_the_manifests_role_run_the_full_scenario_without_a_denial()
-> anyhow::Result<()> {
    let docs = rendered("manifests")?;
    let dir = TempDir::new()?;
    let server = RbacServer::start(dir.path(), &docs, &rbac_yaml(&docs, None)?).await?;
    let kubeconfig = server.sa_kubeconfig()?;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b"] {
        agents.push(DeployAgent::start(
            dir.path(),
            &docs,
            node,
            CONFIG,
            Some(&kubeconfig),
            &[],
        )?);
    }

    // Election: one leader, the other follows; both are live and ready as the kubelet's probes see them.
    let first = leader_of(&[&agents[0], &agents[1]], NS, Duration::from_secs(20)).await?;
    let other = 1 - first;
    for a in &agents {
        let ready = eventually("readiness", Duration::from_secs(10), || async {
            Ok((a.probe_get("/readyz").await? == 200).then_some(()))
        });
        ready.await?;
        assert_eq!(a.probe_get("/healthz").await?, 200, "{} is live", a.node);
    }

    // Spread tasks: both held, each by exactly one agent.
    eventually(
        "both spread tasks held, each by one agent",
        Duration::from_secs(20),
        || async {
            let (x, y) = (agents[0].spread_held().await, agents[1].spread_held().await);
            let all = x.len() + y.len() == 2 && x.union(&y).count() == 2;
            Ok(all.then_some(()))
        },
    )
    .await?;

    // A repeated Event: the first leader steps down (impeach), the other leads; once the first has sat out its
    // cool-down, the other steps down and the first leads again. Its second BecameLeader is a patch of the first.
    agents[first].impeach(NS).await?;
    wait_status(&agents[other], NS, "success", Duration::from_secs(15)).await?;
    wait_status(&agents[first], NS, "defeat", Duration::from_secs(15)).await?;
    agents[other].impeach(NS).await?;
    wait_status(&agents[first], NS, "success", Duration::from_secs(15)).await?;
    let first_holder = agents[first].holder()?;
    let repeated = eventually(
        "a BecameLeader Event with a series (patched)",
        Duration::from_secs(15),
        || async {
            Ok(server.events().await?.into_iter().find(|e| {
                e["reason"] == "BecameLeader"
                    && e["reportingInstance"] == first_holder.as_str()
                    && e["series"]["count"].as_u64().is_some_and(|n| n >= 2)
            }))
        },
    )
    .await?;
    assert_eq!(
        repeated["regarding"]["name"],
        election_lease().as_str(),
        "the Event is about the election Lease"
    );

    // Handover on SIGTERM: the leader stops its task, releases, and exits 0; the other takes over and also holds
    // both spread tasks. The other must be out of its own cool-down first, or it could not take over yet.
    wait_status(&agents[other], NS, "defeat", Duration::from_secs(15)).await?;
    let departed_member = LeaseName::member(&LeasePrefix::default(), &first_holder)
        .name()
        .to_string();
    assert!(
        server
            .admin_get(&lease_path(&departed_member))
            .await?
            .is_some(),
        "member Lease of the leader"
    );
    agents[first].terminate()?;
    let status = agents[first].wait_exit(Duration::from_secs(20)).await?;
    assert!(status.success(), "the leader exits 0 on SIGTERM: {status}");
    wait_status(&agents[other], NS, "success", Duration::from_secs(10)).await?;
    eventually(
        "the remaining agent to hold both spread tasks",
        Duration::from_secs(20),
        || async { Ok((agents[other].spread_held().await.len() == 2).then_some(())) },
    )
    .await?;

    // Clean-up: the departed agent's member Lease, unchanged for more than 10 member lease durations, is deleted
    // by the remaining agent.
    eventually(
        "the departed member Lease to be deleted",
        Duration::from_secs(40),
        || async {
            Ok(server
                .admin_get(&lease_path(&departed_member))
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await?;

    // Release: the last agent stops; the election Lease is left free, marked released by its last holder.
    let last_holder = agents[other].holder()?;
    agents[other].terminate()?;
    let status = agents[other].wait_exit(Duration::from_secs(20)).await?;
    assert!(
        status.success(),
        "the last agent exits 0 on SIGTERM: {status}"
    );
    let lease = server
        .admin_get(&lease_path(&election_lease()))
        .await?
        .context("the election Lease")?;
    assert_eq!(
        lease["spec"]["holderIdentity"].as_str().unwrap_or(""),
        "",
        "released: {lease}"
    );
    assert_eq!(
        lease["metadata"]["annotations"][RELEASED_BY_ANNOTATION],
        last_holder.as_str(),
        "{lease}"
    );

    // Not one request was denied, and every verb the Role grants was used.
    let requests = server.sa_requests().await?;
    eprintln!("requests of {SA_USER} (verb, resource, code): {requests:?}");
    assert_eq!(
        denials(&requests),
        BTreeMap::new(),
        "denied requests under the manifests' Role"
    );
    for (resource, verb) in GRANTED {
        assert!(
            allowed(&requests, resource, verb) > 0,
            "the scenario never used {verb} on {resource}"
        );
    }
    Ok(())
}

/// What [`the_agent_is_denied_without`] leaves for a test to check further.
struct Denied {
    server: RbacServer,
    _agent: DeployAgent,
    _dir: TempDir,
}

/// A member Lease left by an agent that went away, seeded for spread mode's clean-up to delete.
const STALE_MEMBER: &str = "leasehold-member-departed";

/// One agent, configured from the DaemonSet, under the manifests' Role with `verb` on `group/resource` removed,
/// runs a short scenario that needs every granted verb: it starts against a fresh server (list, watch, a GET of
/// the absent Lease, create), leads and renews (update, an Event: create), is impeached once and leads again (a
/// repeated Event: patch), and as a spread-mode member it cleans up a stale member Lease (delete). Returns once
/// the service account got 403 for exactly that verb, and checks that nothing else was denied.
async fn the_agent_is_denied_without(
    group_resource: (&str, &str),
    verb: &str,
) -> anyhow::Result<Denied> {
    let (group, resource) = group_resource;
    let docs = rendered("manifests")?;
    let dir = TempDir::new()?;
    let server = RbacServer::start(
        dir.path(),
        &docs,
        &rbac_yaml(&docs, Some((group, resource, verb)))?,
    )
    .await?;
    server.seed_stale_member_lease(STALE_MEMBER).await?;
    let mut agent = DeployAgent::start(
        dir.path(),
        &docs,
        "node-a",
        CONFIG,
        Some(&server.sa_kubeconfig()?),
        &[],
    )?;
    let want = (verb.to_string(), resource.to_string());
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut impeached = false;
    while !denials(&server.sa_requests().await?).contains_key(&want) {
        // Impeach once, while leading, so that the next BecameLeader repeats the first.
        if !impeached && agent.status(NS).await.as_deref() == Some("success") {
            agent.impeach(NS).await?;
            impeached = true;
        }
        if Instant::now() > deadline {
            bail!(
                "no 403 for {verb} on {resource} within 40 s; requests: {:?}\n{}",
                server.sa_requests().await?,
                agent.log_tail(30)
            );
        }
        tokio::time::sleep(POLL).await;
    }
    let denied = denials(&server.sa_requests().await?);
    assert_eq!(
        denied.keys().collect::<Vec<_>>(),
        [&want],
        "only {verb} on {resource} is denied"
    );
    assert!(
        agent.try_exit()?.is_none(),
        "a denial is retried, never fatal:\n{}",
        agent.log_tail(20)
    );
    Ok(Denied {
        server,
        _agent: agent,
        _dir: dir,
    })
}

#[tokio::test]
async fn without_lease_get_a_deleted_or_absent_lease_cannot_be_confirmed() -> anyhow::Result<()> {
    the_agent_is_denied_without(LEASES, "get").await.map(drop)
}

#[tokio::test]
async fn without_lease_list_the_shared_watch_cannot_start() -> anyhow::Result<()> {
    the_agent_is_denied_without(LEASES, "list").await.map(drop)
}

#[tokio::test]
async fn without_lease_watch_followers_cannot_watch_and_poll_instead() -> anyhow::Result<()> {
    the_agent_is_denied_without(LEASES, "watch").await.map(drop)
}

#[tokio::test]
async fn without_lease_create_no_election_lease_comes_to_exist() -> anyhow::Result<()> {
    let d = the_agent_is_denied_without(LEASES, "create").await?;
    assert!(
        d.server
            .admin_get(&lease_path(&election_lease()))
            .await?
            .is_none(),
        "no election Lease without create"
    );
    Ok(())
}

#[tokio::test]
async fn without_lease_update_the_leader_cannot_renew() -> anyhow::Result<()> {
    the_agent_is_denied_without(LEASES, "update")
        .await
        .map(drop)
}

#[tokio::test]
async fn without_lease_delete_stale_member_leases_are_left_behind() -> anyhow::Result<()> {
    let d = the_agent_is_denied_without(LEASES, "delete").await?;
    assert!(
        d.server
            .admin_get(&lease_path(STALE_MEMBER))
            .await?
            .is_some(),
        "the stale member Lease stays"
    );
    Ok(())
}

#[tokio::test]
async fn without_event_create_no_leadership_event_is_written() -> anyhow::Result<()> {
    let d = the_agent_is_denied_without(EVENTS, "create").await?;
    assert_eq!(
        d.server.events().await?,
        Vec::<Value>::new(),
        "no Event without create"
    );
    Ok(())
}

#[tokio::test]
async fn without_event_patch_a_repeated_event_is_not_counted() -> anyhow::Result<()> {
    let d = the_agent_is_denied_without(EVENTS, "patch").await?;
    let events = d.server.events().await?;
    assert!(
        events.iter().any(|e| e["reason"] == "BecameLeader"),
        "the first BecameLeader was created"
    );
    assert!(
        events.iter().all(|e| e["series"].is_null()),
        "no Event got its series without patch: {events:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_service_account_is_refused_outside_its_namespace_leases_and_events()
-> anyhow::Result<()> {
    let docs = rendered("manifests")?;
    let dir = TempDir::new()?;
    let server = RbacServer::start(dir.path(), &docs, &rbac_yaml(&docs, None)?).await?;
    let sa = server.service_account();
    let refused = [
        (
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/leasehold-default",
        ),
        (
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
        ),
        ("GET", "/apis/coordination.k8s.io/v1/leases"),
        ("GET", "/api/v1/namespaces/leasehold/secrets"),
        ("GET", "/api/v1/namespaces/leasehold/secrets/token"),
        ("GET", "/api/v1/namespaces"),
        ("GET", "/api/v1/namespaces/leasehold"),
        ("GET", "/api/v1/nodes"),
        ("POST", "/apis/events.k8s.io/v1/namespaces/default/events"),
        (
            "PATCH",
            "/apis/coordination.k8s.io/v1/namespaces/leasehold/leases/leasehold-default",
        ),
        (
            "DELETE",
            "/apis/events.k8s.io/v1/namespaces/leasehold/events/x",
        ),
    ];
    for (method, path) in refused {
        let (code, body) = sa.send(method, path, None).await?;
        assert_eq!(code, 403, "{method} {path} as {SA_USER}: {body}");
        assert_eq!(body["reason"], "Forbidden", "{method} {path}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(SA_USER),
            "{method} {path}: the message names the user: {message}"
        );
    }
    // The contrast: in its own namespace the same identity reads Leases (absent here: 404, not 403).
    let (code, _) = sa
        .send("GET", &lease_path("leasehold-default"), None)
        .await?;
    assert_eq!(code, 404, "its own namespace's Leases are readable");
    Ok(())
}
