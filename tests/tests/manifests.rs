//! The deployment manifests (`manifests/`, a kustomize base, and `manifests/overlays/large-cluster/`) render, every
//! object is exactly what its k8s-openapi type describes, and the DaemonSet configures the agent the way the agent
//! reads its configuration: env names, the mounted TOML, probe port and paths, and a termination grace that
//! outlasts the shutdown. No network: kustomize runs locally, and the one agent started here needs no API server.

mod deploy;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, bail};
use deploy::{DeployAgent, Downward, container, container_env, eventually, object, rendered};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use leasehold_policy::config::{ApiConfig, Config, Sources, TaskMode, env};
use leasehold_policy::identity::{NODE_NAME_VARS, POD_UID_VAR, resolve};
use serde_json::Value;

const BASE: &str = "manifests";
const LARGE: &str = "manifests/overlays/large-cluster";

/// Read by the agent itself (crates/agent/src/agent.rs) to resolve DataKit's `__datakit_ip` placeholder; the
/// policy crate has no constant for it.
const HOST_IP: &str = "HOST_IP";

const DOWNWARD: Downward<'static> = Downward {
    node: "node-a",
    pod_uid: "5d9f7c1e-0c1a-4c61-9f43-5a3b1c2d4e5f",
    host_ip: "10.0.0.7",
};

/// Where `a` and `b` differ, as JSON paths with both values.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                differences(va, vb, &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(va, vb, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!(
            "{path}: manifest has {a}, the typed object has {b}"
        )),
        _ => {}
    }
}

/// Deserialises `doc` into `T` and serialises it back; returns what changed on the way (a field `T` does not
/// know is dropped, so a misspelt key shows up here).
fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> anyhow::Result<Vec<String>> {
    let typed: T = serde_json::from_value(doc.clone()).context("does not deserialise")?;
    let back = serde_json::to_value(&typed)?;
    let mut out = Vec::new();
    differences(doc, &back, "", &mut out);
    Ok(out)
}

fn name_of(doc: &Value) -> String {
    format!(
        "{} {}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The DaemonSet's env as a pod on `DOWNWARD` would see it, and the TOML text of the mounted ConfigMap that
/// `LEASEHOLD_CONFIG` names.
fn pod_config(docs: &[Value]) -> anyhow::Result<(BTreeMap<String, String>, String)> {
    let env = container_env(docs, &DOWNWARD)?;
    let path = env
        .get(env::CONFIG)
        .context("the DaemonSet does not set LEASEHOLD_CONFIG")?;
    let (dir, file) = path
        .rsplit_once('/')
        .context("LEASEHOLD_CONFIG is not an absolute path")?;
    let mount = container(docs)?["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"] == dir)
        .with_context(|| {
            format!("no volume is mounted at {dir}, where LEASEHOLD_CONFIG={path} points")
        })?;
    let ds = object(docs, "DaemonSet", None)?;
    let volume = ds["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .context("the mounted volume is not declared")?;
    let cm_name = volume["configMap"]["name"]
        .as_str()
        .context("the config volume is not a ConfigMap")?;
    let cm = object(docs, "ConfigMap", Some(cm_name))?;
    let text = cm["data"][file]
        .as_str()
        .with_context(|| format!("ConfigMap {cm_name} has no key {file}"))?;
    Ok((env, text.to_string()))
}

fn load(docs: &[Value]) -> anyhow::Result<Config> {
    let (env, toml) = pod_config(docs)?;
    Config::load(&Sources {
        env: &env,
        toml: Some(&toml),
        service_account_namespace: None,
    })
    .map_err(|e| anyhow::anyhow!("the manifests' configuration is refused: {e}"))
}

#[test]
fn base_and_overlay_render_the_six_objects_in_namespace_leasehold() -> anyhow::Result<()> {
    for dir in [BASE, LARGE] {
        let docs = rendered(dir)?;
        let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        let want: BTreeSet<&str> = [
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ConfigMap",
            "DaemonSet",
        ]
        .into();
        assert_eq!(kinds, want, "{dir}: kinds rendered");
        assert_eq!(docs.len(), 6, "{dir}: one object of each kind");
        for d in docs.iter().filter(|d| d["kind"] != "Namespace") {
            assert_eq!(
                d["metadata"]["namespace"],
                "leasehold",
                "{dir}: {}",
                name_of(d)
            );
        }
    }
    Ok(())
}

#[test]
fn every_object_round_trips_through_its_k8s_openapi_type_unchanged() -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for dir in [BASE, LARGE] {
        for doc in rendered(dir)? {
            let kind = doc["kind"].as_str().unwrap_or_default();
            let diffs = match kind {
                "Namespace" => round_trip::<Namespace>(&doc),
                "ServiceAccount" => round_trip::<ServiceAccount>(&doc),
                "Role" => round_trip::<Role>(&doc),
                "RoleBinding" => round_trip::<RoleBinding>(&doc),
                "ConfigMap" => round_trip::<ConfigMap>(&doc),
                "DaemonSet" => round_trip::<DaemonSet>(&doc),
                other => bail!("{dir}: no k8s-openapi type is checked for kind {other:?}"),
            }
            .with_context(|| format!("{dir}: {}", name_of(&doc)))?;
            failures.extend(
                diffs
                    .into_iter()
                    .map(|d| format!("{dir}: {}{d}", name_of(&doc))),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "fields lost or changed by the typed round trip:\n{}",
        failures.join("\n")
    );
    Ok(())
}

#[test]
fn every_daemonset_env_name_is_one_the_agent_reads() -> anyhow::Result<()> {
    let mut accepted: BTreeSet<&str> = [
        env::ENABLE_ELECTION,
        env::NAMESPACE,
        env::NODE_WHITELIST,
        env::ENABLE_NAMESPACE_TAG,
        env::GLOBAL_ELECTION_TAGS,
        env::GLOBAL_ENV_TAGS,
        env::GLOBAL_HOST_TAGS,
        env::GLOBAL_TAGS,
        env::CLUSTER_NAME_K8S,
        env::POD_NAMESPACE,
        POD_UID_VAR,
        HOST_IP,
    ]
    .into();
    accepted.extend(env::LEASEHOLD_VARS);
    accepted.extend(NODE_NAME_VARS);
    for dir in [BASE, LARGE] {
        let (vars, _) = pod_config(&rendered(dir)?)?;
        let unknown: Vec<&String> = vars
            .keys()
            .filter(|k| !accepted.contains(k.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{dir}: env the agent does not read: {unknown:?}"
        );
        assert_eq!(
            env::unknown_leasehold_vars(&vars),
            vec![],
            "{dir}: misspelt LEASEHOLD_* variables"
        );
        for required in [
            env::ENABLE_ELECTION,
            env::NAMESPACE,
            "ENV_K8S_NODE_NAME",
            env::POD_NAMESPACE,
            POD_UID_VAR,
            HOST_IP,
        ] {
            assert!(
                vars.contains_key(required),
                "{dir}: the DaemonSet must set {required}"
            );
        }
    }
    Ok(())
}

#[test]
fn base_daemonset_and_configmap_load_as_the_documented_configuration() -> anyhow::Result<()> {
    let docs = rendered(BASE)?;
    let config = load(&docs)?;
    assert!(config.election.enabled);
    assert_eq!(config.election.namespaces, ["default"]);
    assert_eq!(
        config.lease.namespace, "leasehold",
        "Leases live in the pod's namespace, which the Role covers"
    );
    assert_eq!(
        config.lease.timing,
        Default::default(),
        "the base keeps client-go's timing"
    );
    let modes: Vec<(&str, TaskMode)> = config
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("mysql", TaskMode::Leader),
            ("prometheus-eu", TaskMode::Spread),
            ("prometheus-us", TaskMode::Spread)
        ]
    );

    // The identity comes from the downward API (node name and pod UID) plus a per-process nonce, since
    // containers of one pod share its UID.
    let (vars, _) = pod_config(&docs)?;
    let resolved =
        resolve(&vars, "leasehold-x7k2p", "nonce").map_err(|e| anyhow::anyhow!("identity: {e}"))?;
    assert_eq!(resolved.identity.node(), DOWNWARD.node);
    assert_eq!(
        resolved.identity.instance(),
        format!("{}.nonce", DOWNWARD.pod_uid)
    );
    assert_eq!(resolved.node_source, "ENV_K8S_NODE_NAME");
    Ok(())
}

#[test]
fn large_cluster_overlay_adds_an_election_namespace_with_60_40_10_timing() -> anyhow::Result<()> {
    let config = load(&rendered(LARGE)?)?;
    assert_eq!(config.election.namespaces, ["default", "cluster"]);
    let t = config.lease.timing;
    assert_eq!(
        (t.lease_duration, t.renew_deadline, t.retry_period),
        (
            Duration::from_secs(60),
            Duration::from_secs(40),
            Duration::from_secs(10)
        )
    );
    let per_namespace: BTreeSet<&str> = config.tasks.iter().map(|t| t.namespace.as_str()).collect();
    assert_eq!(
        per_namespace,
        ["cluster", "default"].into(),
        "each election namespace runs a task"
    );
    Ok(())
}

#[test]
fn termination_grace_outlasts_the_task_grace_plus_the_releases() -> anyhow::Result<()> {
    for dir in [BASE, LARGE] {
        let docs = rendered(dir)?;
        let config = load(&docs)?;
        let ds = object(&docs, "DaemonSet", None)?;
        let tgps = ds["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .context("terminationGracePeriodSeconds is not set")?;
        let longest_grace = config
            .tasks
            .iter()
            .map(|t| t.grace)
            .max()
            .unwrap_or_default();
        // On SIGTERM the agent stops the tasks (SIGKILL after their grace), then releases: each release is retried
        // for at most its renew deadline when the API server does not answer, the election and task Leases' (RD),
        // and then, with spread tasks, the member Lease's (halfway between its duration and 1.2 x its renew
        // period, as crates/agent/src/spread/mod.rs sets it).
        let member = config.lease.member;
        let member_rd = (member.lease_duration + member.renew_period.mul_f64(1.2)) / 2;
        let spread = config.tasks.iter().any(|t| t.mode == TaskMode::Spread);
        let shutdown = longest_grace
            + config.lease.timing.renew_deadline
            + if spread { member_rd } else { Duration::ZERO };
        assert!(
            Duration::from_secs(tgps) > shutdown,
            "{dir}: terminationGracePeriodSeconds {tgps} s must exceed task grace + RD + member RD = {shutdown:?}"
        );
    }
    Ok(())
}

#[test]
fn probes_use_the_agents_probe_port_and_the_control_api_stays_on_loopback() -> anyhow::Result<()> {
    let docs = rendered(BASE)?;
    let config = load(&docs)?;
    let c = container(&docs)?;
    let default_probe_port = ApiConfig::default().probe_listen.port();
    assert_eq!(
        config.api.probe_listen.port(),
        default_probe_port,
        "LEASEHOLD_PROBE_LISTEN is left at its default"
    );
    let ports = c["ports"].as_array().context("no container ports")?;
    for probe in ["livenessProbe", "readinessProbe"] {
        let port = &c[probe]["httpGet"]["port"];
        let number = match port {
            Value::Number(n) => n.as_u64(),
            Value::String(name) => ports
                .iter()
                .find(|p| p["name"] == *name)
                .and_then(|p| p["containerPort"].as_u64()),
            _ => None,
        };
        assert_eq!(
            number,
            Some(u64::from(default_probe_port)),
            "{probe} port {port}"
        );
    }
    assert!(
        config.api.listen.ip().is_loopback(),
        "the control API must stay on loopback: {}",
        config.api.listen
    );
    assert_eq!(config.api.token, None, "no token is needed on loopback");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    Ok(())
}

/// The probe paths in the DaemonSet are the ones the agent serves: an agent started with the DaemonSet's env
/// (election off, so it needs no API server) answers them with 200, and an unknown path with 404.
#[tokio::test]
async fn the_agent_serves_the_probe_paths_of_the_daemonset() -> anyhow::Result<()> {
    let docs = rendered(BASE)?;
    let c = container(&docs)?;
    let paths: Vec<String> = ["livenessProbe", "readinessProbe"]
        .iter()
        .map(|p| {
            c[*p]["httpGet"]["path"]
                .as_str()
                .map(str::to_string)
                .context("probe without a path")
        })
        .collect::<anyhow::Result<_>>()?;
    let dir = tempfile::tempdir()?;
    let agent = DeployAgent::start(
        dir.path(),
        &docs,
        "node-a",
        "",
        None,
        &[(env::ENABLE_ELECTION, "false")],
    )?;
    for path in &paths {
        let code = eventually(
            &format!("GET {path} on the probe listener"),
            Duration::from_secs(15),
            || async { Ok(agent.probe_get(path).await.ok()) },
        )
        .await?;
        assert_eq!(code, 200, "GET {path}");
    }
    assert_eq!(
        agent.probe_get("/metrics").await?,
        200,
        "the scrape annotation's path"
    );
    assert_eq!(
        agent.probe_get("/no-such-probe").await?,
        404,
        "the probe listener serves only its paths"
    );
    Ok(())
}

#[test]
fn pod_runs_non_root_read_only_without_capabilities() -> anyhow::Result<()> {
    for dir in [BASE, LARGE] {
        let docs = rendered(dir)?;
        let ds = object(&docs, "DaemonSet", None)?;
        let pod = &ds["spec"]["template"]["spec"];
        let sc = &container(&docs)?["securityContext"];
        for (what, v) in [("pod", &pod["securityContext"]), ("container", sc)] {
            assert_eq!(v["runAsNonRoot"], true, "{dir}: {what} runAsNonRoot");
            assert_eq!(v["runAsUser"], 65532, "{dir}: {what} runAsUser");
            assert_eq!(v["runAsGroup"], 65532, "{dir}: {what} runAsGroup");
            assert_eq!(
                v["seccompProfile"]["type"], "RuntimeDefault",
                "{dir}: {what} seccomp"
            );
        }
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{dir}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{dir}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{dir}"
        );
        assert!(
            sc["capabilities"]["add"].is_null(),
            "{dir}: no capability added"
        );
        assert!(
            pod["hostNetwork"].is_null() && pod["hostPID"].is_null(),
            "{dir}: no host namespaces"
        );
        assert_eq!(
            pod["tolerations"],
            serde_json::json!([{ "operator": "Exists" }]),
            "{dir}: runs on every node"
        );
        assert_eq!(pod["serviceAccountName"], "leasehold", "{dir}");
        let rolling = &ds["spec"]["updateStrategy"]["rollingUpdate"];
        assert_eq!(
            rolling["maxUnavailable"], 0,
            "{dir}: a surge rollout keeps every node covered"
        );
        assert!(!rolling["maxSurge"].is_null(), "{dir}: maxSurge is set");
        let resources = &container(&docs)?["resources"];
        for k in ["requests", "limits"] {
            assert!(
                resources[k]["cpu"].is_string() && resources[k]["memory"].is_string(),
                "{dir}: {k}"
            );
        }
    }
    Ok(())
}

#[test]
fn role_grants_exactly_the_lease_and_event_verbs_in_its_own_namespace() -> anyhow::Result<()> {
    let docs = rendered(BASE)?;
    let role = object(&docs, "Role", None)?;
    let mut granted: BTreeSet<(String, String, String)> = BTreeSet::new();
    for rule in role["rules"].as_array().context("no rules")? {
        assert!(rule["resourceNames"].is_null() && rule["nonResourceURLs"].is_null());
        for g in rule["apiGroups"].as_array().into_iter().flatten() {
            for r in rule["resources"].as_array().into_iter().flatten() {
                for v in rule["verbs"].as_array().into_iter().flatten() {
                    let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
                    granted.insert((s(g), s(r), s(v)));
                }
            }
        }
    }
    let want: BTreeSet<(String, String, String)> = [
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "list"),
        ("coordination.k8s.io", "leases", "watch"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
        ("coordination.k8s.io", "leases", "delete"),
        ("events.k8s.io", "events", "create"),
        ("events.k8s.io", "events", "patch"),
    ]
    .iter()
    .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        granted, want,
        "tests/tests/rbac.rs proves each of these is used and needed"
    );

    let binding = object(&docs, "RoleBinding", None)?;
    assert_eq!(
        binding["roleRef"]["kind"], "Role",
        "bound as a Role, so it grants nothing outside its namespace"
    );
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{ "kind": "ServiceAccount", "name": "leasehold", "namespace": "leasehold" }])
    );
    Ok(())
}
