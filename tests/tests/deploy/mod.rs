//! Support for the deployment tests (`manifests.rs`, `rbac.rs`, `monitoring.rs`, `narrow_role.rs`): the kustomize output of
//! `manifests/` parsed into objects, agents started with the DaemonSet's own environment, and an API server that
//! knows the manifests' service account (`--token-file`) and enforces their Role (`--rbac`).
//!
//! The generic parts come from the e2e harness (`leasehold_tests::harness`: binaries, ports, waiting); agents
//! are started here because these tests configure them from the DaemonSet (its env, with the downward API
//! filled in) and need spread tasks and a Lease namespace of their own.

#![allow(dead_code)] // Each test binary uses a part of this module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use leasehold_tests::apiserver_process::ApiServerProcess;
pub use leasehold_tests::harness::eventually;
use leasehold_tests::harness::{binary, free_port, identity_in_log};
use leasehold_tests::http_client::ApiClient;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};

/// How often the waits poll.
pub const POLL: Duration = Duration::from_millis(100);

/// The service account the manifests create, as the API server authenticates it.
pub const SA_USER: &str = "system:serviceaccount:leasehold:leasehold";

/// The workspace root (the tests package lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// `kubectl kustomize <dir>`, `dir` relative to the workspace root.
pub fn kustomize(dir: &str) -> anyhow::Result<String> {
    let path = workspace_root().join(dir);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&path)
        .output()
        .context("running kubectl kustomize (is kubectl installed?)")?;
    if !out.status.success() {
        bail!(
            "kubectl kustomize {} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("kustomize printed non-UTF-8")
}

/// The objects of a multi-document YAML text, as JSON values.
pub fn documents(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("parsing the YAML")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The rendered objects of a kustomization.
pub fn rendered(dir: &str) -> anyhow::Result<Vec<Value>> {
    documents(&kustomize(dir)?)
}

/// The one object of `kind` (and `name`, when given) among `docs`.
pub fn object<'a>(docs: &'a [Value], kind: &str, name: Option<&str>) -> anyhow::Result<&'a Value> {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && name.is_none_or(|n| d["metadata"]["name"] == n))
        .collect();
    match found[..] {
        [one] => Ok(one),
        _ => bail!("expected one {kind} {name:?}, found {}", found.len()),
    }
}

/// The DaemonSet's only container.
pub fn container(docs: &[Value]) -> anyhow::Result<&Value> {
    let ds = object(docs, "DaemonSet", None)?;
    let containers = ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .context("the DaemonSet has no containers")?;
    match &containers[..] {
        [one] => Ok(one),
        _ => bail!(
            "expected one container in the DaemonSet, found {}",
            containers.len()
        ),
    }
}

/// What the downward API would give a pod of the DaemonSet on `node`.
pub struct Downward<'a> {
    /// `spec.nodeName`.
    pub node: &'a str,
    /// `metadata.uid`.
    pub pod_uid: &'a str,
    /// `status.hostIP`.
    pub host_ip: &'a str,
}

/// The container's environment as the kubelet would set it: literal values as they are, `fieldRef`s filled in
/// from `downward`, and the pod's namespace from the DaemonSet's. Any other kind of value is an error.
pub fn container_env(
    docs: &[Value],
    downward: &Downward<'_>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let ds = object(docs, "DaemonSet", None)?;
    let pod_namespace = ds["metadata"]["namespace"]
        .as_str()
        .context("the DaemonSet has no namespace")?;
    let mut env = BTreeMap::new();
    for var in container(docs)?["env"].as_array().into_iter().flatten() {
        let name = var["name"]
            .as_str()
            .context("an env entry without a name")?;
        let value = if let Some(v) = var["value"].as_str() {
            v.to_string()
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "spec.nodeName" => downward.node.to_string(),
                "metadata.namespace" => pod_namespace.to_string(),
                "metadata.uid" => downward.pod_uid.to_string(),
                "status.hostIP" => downward.host_ip.to_string(),
                other => bail!("env {name}: fieldRef {other} is not one the tests know"),
            }
        } else {
            bail!("env {name}: neither a value nor a fieldRef: {var}");
        };
        if env.insert(name.to_string(), value).is_some() {
            bail!("env {name} is set twice");
        }
    }
    Ok(env)
}

/// The manifests' Role and RoleBinding as one multi-document text for `--rbac`, with `verb` removed from the rule
/// on (`group`, `resource`) when given (a rule left without verbs is dropped).
pub fn rbac_yaml(docs: &[Value], without: Option<(&str, &str, &str)>) -> anyhow::Result<String> {
    rbac_yaml_without(docs, without.as_slice())
}

/// The manifests' Role and RoleBinding as one multi-document text for `--rbac`, with every (`group`, `resource`,
/// `verb`) of `without` removed (a rule left without verbs is dropped); each must be granted to begin with.
pub fn rbac_yaml_without(docs: &[Value], without: &[(&str, &str, &str)]) -> anyhow::Result<String> {
    let mut role = object(docs, "Role", None)?.clone();
    let binding = object(docs, "RoleBinding", None)?;
    for &(group, resource, verb) in without {
        let rules = role["rules"]
            .as_array_mut()
            .context("the Role has no rules")?;
        let mut removed = false;
        for rule in rules.iter_mut() {
            let has = |key: &str, want: &str| {
                rule[key]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == want))
            };
            if has("apiGroups", group)
                && has("resources", resource)
                && let Some(verbs) = rule["verbs"].as_array_mut()
                && verbs.iter().any(|v| v == verb)
            {
                verbs.retain(|v| v != verb);
                removed = true;
            }
        }
        if !removed {
            bail!("the Role grants no {verb} on {resource}.{group}");
        }
        rules.retain(|r| r["verbs"].as_array().is_some_and(|v| !v.is_empty()));
    }
    // JSON is YAML: one document each.
    Ok(format!("{role}\n---\n{binding}\n"))
}

/// A `leasehold-apiserver` that enforces the given RBAC text and knows the manifests' service account by a token
/// of its own (`--token-file`), the way kube-apiserver authenticates a service account's token.
pub struct RbacServer {
    process: ApiServerProcess,
    admin: ApiClient,
    /// The service account's bearer token.
    pub sa_token: String,
    dir: PathBuf,
}

impl RbacServer {
    /// Starts `leasehold-apiserver` (from the harness's binary directory, `E2E_BIN_DIR` to override) in `dir`
    /// with `rbac` loaded, and creates the manifests' Namespace in it.
    pub async fn start(dir: &Path, docs: &[Value], rbac: &str) -> anyhow::Result<Self> {
        Self::start_bin(&binary("leasehold-apiserver")?, dir, docs, rbac).await
    }

    /// Like [`RbacServer::start`], with the server binary given.
    pub async fn start_bin(
        bin: &Path,
        dir: &Path,
        docs: &[Value],
        rbac: &str,
    ) -> anyhow::Result<Self> {
        let sa_token = format!("sa-{:x}", std::process::id());
        let tokens = dir.join("tokens.csv");
        // kube-apiserver's service account authenticator puts a service account in these groups.
        std::fs::write(
            &tokens,
            format!(
                "{sa_token},{SA_USER},sa-uid,\"system:serviceaccounts,system:serviceaccounts:leasehold,system:authenticated\"\n"
            ),
        )?;
        let rbac_path = dir.join("rbac.yaml");
        std::fs::write(&rbac_path, rbac)?;
        let args = [
            "--token-file".to_string(),
            tokens.display().to_string(),
            "--rbac".to_string(),
            rbac_path.display().to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = ApiServerProcess::start(bin, dir, &args)?;
        let admin = ApiClient::new(&process.url, &process.admin_token);
        let server = Self {
            admin,
            sa_token,
            dir: dir.to_path_buf(),
            process,
        };
        let ns = object(docs, "Namespace", None)?;
        let (code, body) = server
            .admin
            .send("POST", "/api/v1/namespaces", Some(ns))
            .await?;
        if code != 201 {
            bail!("creating the manifests' Namespace answered {code}: {body}");
        }
        Ok(server)
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.process.url
    }

    /// A client with the admin token.
    pub fn admin(&self) -> &ApiClient {
        &self.admin
    }

    /// A client with the service account's token.
    pub fn service_account(&self) -> ApiClient {
        ApiClient::new(&self.process.url, &self.sa_token)
    }

    /// A kubeconfig for the service account (plain HTTP, as the agents' kube client takes it).
    pub fn sa_kubeconfig(&self) -> anyhow::Result<PathBuf> {
        let path = self.dir.join("sa.kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {url}\nusers:\n- name: leasehold\n  user:\n    token: {token}\ncontexts:\n- name: leasehold\n  context:\n    cluster: stand-in\n    user: leasehold\n    namespace: leasehold\ncurrent-context: leasehold\n",
            url = self.process.url,
            token = self.sa_token
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The service account's requests so far: (verb, resource, code) → count.
    pub async fn sa_requests(&self) -> anyhow::Result<BTreeMap<(String, String, u16), u64>> {
        let (code, counters) = self
            .admin
            .send("GET", "/leasehold-admin/counters", None)
            .await?;
        if code != 200 {
            bail!("GET counters answered {code}: {counters}");
        }
        let mut out = BTreeMap::new();
        for (key, n) in counters["requests"]
            .as_object()
            .context("no requests in the counters")?
        {
            // "user verb resource code"; the user has no spaces, the resource may be empty.
            let parts: Vec<&str> = key.split(' ').collect();
            let [user, verb, resource, code] = parts[..] else {
                bail!("unexpected counter key {key:?}");
            };
            if user == SA_USER {
                let code: u16 = code.parse().with_context(|| format!("code in {key:?}"))?;
                out.insert(
                    (verb.to_string(), resource.to_string(), code),
                    n.as_u64().unwrap_or(0),
                );
            }
        }
        Ok(out)
    }

    /// GETs `path` as the admin: the body on 200, `None` on 404.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<Option<Value>> {
        match self.admin.send("GET", path, None).await? {
            (200, v) => Ok(Some(v)),
            (404, _) => Ok(None),
            (code, v) => bail!("GET {path} answered {code}: {v}"),
        }
    }

    /// The Leases of namespace `leasehold` with `selector`, as the admin sees them.
    pub async fn leases(&self, selector: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!(
            "/apis/coordination.k8s.io/v1/namespaces/leasehold/leases?labelSelector={selector}"
        );
        let list = self
            .admin_get(&path)
            .await?
            .context("the Lease list is missing")?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// The Events of namespace `leasehold` (events.k8s.io/v1), as the admin sees them.
    pub async fn events(&self) -> anyhow::Result<Vec<Value>> {
        let list = self
            .admin_get("/apis/events.k8s.io/v1/namespaces/leasehold/events")
            .await?
            .context("the Event list is missing")?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// Creates a member Lease no agent holds any more, released long ago as far as anyone can tell: spread mode's
    /// clean-up deletes it once an agent has watched it stay unchanged for more than 10 member lease durations.
    pub async fn seed_stale_member_lease(&self, name: &str) -> anyhow::Result<()> {
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "labels": { "app.kubernetes.io/managed-by": "leasehold", "leasehold.dev/kind": "member" },
            },
            "spec": { "holderIdentity": "", "leaseDurationSeconds": 1 },
        });
        let path = "/apis/coordination.k8s.io/v1/namespaces/leasehold/leases";
        match self.admin.send("POST", path, Some(&lease)).await? {
            (201, _) => Ok(()),
            (code, v) => bail!("creating Lease {name} answered {code}: {v}"),
        }
    }
}

/// Waits until exactly one of `agents` reports `success` in election namespace `ns` and the others `defeat`;
/// returns the leader's index.
pub async fn leader_of(
    agents: &[&DeployAgent],
    ns: &str,
    within: Duration,
) -> anyhow::Result<usize> {
    eventually("one leader and the rest following", within, || async {
        let mut statuses = Vec::new();
        for a in agents {
            statuses.push(a.status(ns).await);
        }
        let leaders: Vec<usize> = (0..agents.len())
            .filter(|i| statuses[*i].as_deref() == Some("success"))
            .collect();
        let followers = statuses
            .iter()
            .filter(|s| s.as_deref() == Some("defeat"))
            .count();
        Ok(match leaders[..] {
            [one] if followers == agents.len() - 1 => Some(one),
            _ => None,
        })
    })
    .await
}

/// Waits until `agent` reports status `want` in election namespace `ns`.
pub async fn wait_status(
    agent: &DeployAgent,
    ns: &str,
    want: &str,
    within: Duration,
) -> anyhow::Result<()> {
    eventually(&format!("{} to be {want}", agent.node), within, || async {
        Ok((agent.status(ns).await.as_deref() == Some(want)).then_some(()))
    })
    .await
}

/// One `leasehold agent` process configured like a pod of the DaemonSet: the container's env with the downward
/// API filled in, plus what a test must change (kubeconfig, ports, the TOML file, log format).
pub struct DeployAgent {
    /// The node it runs for.
    pub node: String,
    child: Child,
    /// The control API address.
    pub api: SocketAddr,
    /// The probe listener address.
    pub probe: SocketAddr,
    log: PathBuf,
    client: ApiClient,
}

impl DeployAgent {
    /// Starts an agent for `node` with the DaemonSet's env from `docs`, the TOML text `config`, `kubeconfig`,
    /// and `extra` env on top; it logs into `dir/<node>.log`.
    pub fn start(
        dir: &Path,
        docs: &[Value],
        node: &str,
        config: &str,
        kubeconfig: Option<&Path>,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let pod_uid = format!("uid-{node}");
        let mut env = container_env(
            docs,
            &Downward {
                node,
                pod_uid: &pod_uid,
                host_ip: "127.0.0.1",
            },
        )?;
        let config_path = dir.join(format!("{node}.toml"));
        std::fs::write(&config_path, config)?;
        let (api, probe) = (free_port()?, free_port()?);
        env.insert("LEASEHOLD_CONFIG".into(), config_path.display().to_string());
        env.insert("LEASEHOLD_LISTEN".into(), api.to_string());
        env.insert("LEASEHOLD_PROBE_LISTEN".into(), probe.to_string());
        env.insert("LEASEHOLD_LOG_FORMAT".into(), "json".into());
        env.insert(
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        );
        if let Some(k) = kubeconfig {
            env.insert("KUBECONFIG".into(), k.display().to_string());
        }
        for (k, v) in extra {
            env.insert((*k).to_string(), (*v).to_string());
        }
        let log = dir.join(format!("{node}.log"));
        let out = File::create(&log)?;
        let child = Command::new(binary("leasehold")?)
            .arg("agent")
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawning leasehold agent")?;
        Ok(Self {
            node: node.to_string(),
            child,
            api,
            probe,
            log,
            client: ApiClient::new(&format!("http://{api}"), ""),
        })
    }

    /// Its holder identity, `<node>_<POD_UID>.<nonce>`, as it logged it at start-up (the nonce is random per
    /// process, so it cannot be computed).
    pub fn holder(&self) -> anyhow::Result<String> {
        identity_in_log(&self.log).with_context(|| {
            format!(
                "agent {} has not logged its identity:\n{}",
                self.node,
                self.log_tail(20)
            )
        })
    }

    /// `GET /v1/election`, or an error when the agent does not answer (yet).
    pub async fn election(&self) -> anyhow::Result<Value> {
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            self.client.send("GET", "/v1/election", None),
        )
        .await
        .context("no answer")??;
        match answer {
            (200, v) => Ok(v),
            (code, v) => bail!("GET /v1/election answered {code}: {v}"),
        }
    }

    /// The entry of election namespace `ns` in `GET /v1/election`, if the agent answers.
    pub async fn namespace(&self, ns: &str) -> Option<Value> {
        let doc = self.election().await.ok()?;
        doc["namespaces"]
            .as_array()?
            .iter()
            .find(|n| n["namespace"] == ns)
            .cloned()
    }

    /// The status word of election namespace `ns` (`success`, `defeat`, ...), if the agent answers.
    pub async fn status(&self, ns: &str) -> Option<String> {
        self.namespace(ns).await?["status"]
            .as_str()
            .map(str::to_string)
    }

    /// The text of `GET /metrics` on the probe listener.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let client = ApiClient::new(&format!("http://{}", self.probe), "");
        match tokio::time::timeout(Duration::from_secs(2), client.get_text("/metrics"))
            .await
            .context("no answer")??
        {
            (200, text) => Ok(text),
            (code, text) => bail!("GET /metrics answered {code}: {text}"),
        }
    }

    /// The spread tasks this agent holds right now.
    pub async fn spread_held(&self) -> BTreeSet<String> {
        let Ok(doc) = self.election().await else {
            return BTreeSet::new();
        };
        doc["spread"]["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["held_here"] == true)
            .filter_map(|t| t["task"].as_str().map(str::to_string))
            .collect()
    }

    /// `POST /v1/election/{ns}/impeach` on the loopback control API (no token, as in the DaemonSet).
    pub async fn impeach(&self, ns: &str) -> anyhow::Result<()> {
        match self
            .client
            .send("POST", &format!("/v1/election/{ns}/impeach"), None)
            .await?
        {
            (200, _) => Ok(()),
            (code, v) => bail!("impeach {ns} on {} answered {code}: {v}", self.node),
        }
    }

    /// The status code of `GET <path>` on the probe listener.
    pub async fn probe_get(&self, path: &str) -> anyhow::Result<u16> {
        let client = ApiClient::new(&format!("http://{}", self.probe), "");
        let (code, _) =
            tokio::time::timeout(Duration::from_secs(2), client.send("GET", path, None))
                .await
                .context("no answer")??;
        Ok(code)
    }

    /// SIGTERM, as the kubelet sends it when the pod is deleted.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let pid = Pid::from_raw(i32::try_from(self.child.id())?).context("pid 0")?;
        kill_process(pid, Signal::TERM).context("sending SIGTERM")
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > within {
                bail!(
                    "agent {} still running after {within:?}:\n{}",
                    self.node,
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The exit status, if it has exited.
    pub fn try_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Its whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for DeployAgent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!(
                "--- log of agent {} (last 20 lines):\n{}",
                self.node,
                self.log_tail(20)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
