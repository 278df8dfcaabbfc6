//! The end-to-end harness: one `leasehold-apiserver` and N `leasehold agent` processes, each agent with its own
//! user token (so the server's counters and partitions separate them), its own ports, and its log in a temp dir.
//!
//! # Finding the binaries
//!
//! `env!("CARGO_BIN_EXE_leasehold")` exists only in the agent's own package, so the binaries are looked up in the
//! target directory this test binary was built into: a test binary lives in `target/<profile>/deps/`, the
//! binaries in `target/<profile>/`. Set `E2E_BIN_DIR` to use others. The harness does not build: `make test`
//! (and `cargo nextest run --workspace`) build every binary of the workspace first; after
//! `cargo nextest run -p leasehold-tests` alone, run `cargo build -p leasehold -p leasehold-apiserver --bins` so the
//! agent is not stale.
//!
//! # Waiting
//!
//! Tests wait on conditions ([`eventually`]) with generous bounds, never on fixed sleeps. A takeover after a fault
//! is bounded by [`Timing::takeover_bound`] (LD + RD + 2 s), measured from the end of the fault.
//!
//! Set `E2E_KEEP=1` to keep the temp dir (logs, stamps, kubeconfigs) after the test.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};

use crate::apiserver_process::ApiServerProcess;
use crate::http_client::ApiClient;
use crate::stamps::{Event, Stamp, Stamps};

/// How long one HTTP request to an agent may take before it counts as unanswered (a stopped agent never answers).
const AGENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often [`eventually`] probes.
const POLL: Duration = Duration::from_millis(50);

/// The election timing the tests run with: short, so a takeover takes seconds.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// LD, whole seconds.
    pub lease_duration: Duration,
    /// RD.
    pub renew_deadline: Duration,
    /// RP.
    pub retry_period: Duration,
    /// Between a task's SIGTERM and SIGKILL; must stay below LD − RD.
    pub grace: Duration,
}

impl Timing {
    /// LD 3 s, RD 2 s, RP 500 ms, grace 500 ms.
    pub const FAST: Timing = Timing {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        grace: Duration::from_millis(500),
    };

    /// The longest a takeover may take after a fault ends (the leader died, was cut off or stopped): LD + RD,
    /// plus 2 s for the takeover spread, scheduling and a slow shared machine.
    pub fn takeover_bound(&self) -> Duration {
        self.lease_duration + self.renew_deadline + Duration::from_secs(2)
    }
}

/// `Duration` as the agent's config reads it (`3s`, `500ms`).
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A TOML basic string (JSON string escaping is valid TOML for these values).
fn toml_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The directory holding the workspace's binaries: `E2E_BIN_DIR`, else the target directory of this test binary.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("E2E_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("finding the test binary")?;
    let mut dir = exe.parent().context("the test binary has no directory")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().context("deps/ has no parent")?;
    }
    Ok(dir.to_path_buf())
}

/// The path of the workspace binary `name`, which must exist.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir()?.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build the binaries first (`cargo build -p leasehold -p leasehold-apiserver -p \
             leasehold-tests --bins`; `make test` does), or set E2E_BIN_DIR",
            path.display()
        );
    }
    Ok(path)
}

/// A free loopback port: bound, read and closed, so a child can bind it next.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?)
}

/// Probes every 50 ms until `probe` returns `Some`, for at most `within`. An `Err` from the probe counts as "not
/// yet" and is reported if time runs out.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > within {
            match last_err {
                Some(e) => {
                    bail!("timed out after {within:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {within:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Probes every 50 ms for `period` and fails as soon as `probe` returns `false` (or an error): the condition holds
/// for a whole observation window. For "X never happens", which cannot be waited for.
pub async fn holds_for<F, Fut>(what: &str, period: Duration, mut probe: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    while start.elapsed() < period {
        if !probe()
            .await
            .with_context(|| format!("checking that {what}"))?
        {
            bail!("{what}: no longer true after {:?}", start.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// One `[[task]]` of an agent's TOML config.
#[derive(Clone, Debug)]
pub struct TaskDef {
    /// `name`.
    pub name: String,
    /// `namespace`: the election namespace it is gated by.
    pub namespace: String,
    /// `command`.
    pub command: Vec<String>,
    /// `election`.
    pub election: bool,
    /// `grace`.
    pub grace: Duration,
    /// `[task.tags]`.
    pub tags: BTreeMap<String, String>,
    /// `mode`: `leader` (the default) or `spread`.
    pub mode: Option<String>,
}

impl TaskDef {
    /// Makes this a spread-mode task (its own Lease, placed across the agents).
    #[must_use]
    pub fn spread(mut self) -> Self {
        self.mode = Some("spread".into());
        self
    }

    /// Adds a task-level tag.
    #[must_use]
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }

    fn toml(&self) -> String {
        let command: Vec<String> = self.command.iter().map(|c| toml_str(c)).collect();
        let mut out = format!(
            "[[task]]\nname = {}\nnamespace = {}\ncommand = [{}]\nelection = {}\ngrace = {}\n",
            toml_str(&self.name),
            toml_str(&self.namespace),
            command.join(", "),
            self.election,
            toml_str(&go_duration(self.grace)),
        );
        if let Some(mode) = &self.mode {
            out.push_str(&format!("mode = {}\n", toml_str(mode)));
        }
        if !self.tags.is_empty() {
            out.push_str("[task.tags]\n");
            for (k, v) in &self.tags {
                out.push_str(&format!("{} = {}\n", toml_str(k), toml_str(v)));
            }
        }
        out
    }
}

/// How to start one agent.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    /// `NODE_NAME`; also the name of its API server user.
    pub node: String,
    /// `ENV_NAMESPACE` (comma-joined).
    pub namespaces: Vec<String>,
    /// The `[[task]]` entries.
    pub tasks: Vec<TaskDef>,
    /// Extra environment, applied last (overrides what the harness sets).
    pub env: Vec<(String, String)>,
    /// The arguments after the binary: `agent` by default, or `run … -- CMD` for the wrapper.
    pub args: Vec<String>,
    /// Whether stdout and stderr become a pipe that nobody reads once the agent has announced itself, as behind
    /// a stalled log shipper (see [`AgentSpec::stalled_output`]).
    pub stall_output: bool,
    /// The agent's wall-clock offset under libfaketime, if any (see [`AgentSpec::skewed_wall_clock`]).
    pub wall_clock_skew: Option<String>,
}

impl AgentSpec {
    /// An agent on `node`, electing in namespace `default`, with no tasks.
    pub fn new(node: &str) -> Self {
        Self {
            node: node.to_string(),
            namespaces: vec!["default".to_string()],
            tasks: Vec::new(),
            env: Vec::new(),
            args: vec!["agent".to_string()],
            stall_output: false,
            wall_clock_skew: None,
        }
    }

    /// Makes stdout and stderr a pipe that the test stops reading as soon as the agent has announced its
    /// identity: every later write fills it (64 KiB) and then blocks, as behind a stalled log pipeline.
    #[must_use]
    pub fn stalled_output(mut self) -> Self {
        self.stall_output = true;
        self
    }

    /// Runs `leasehold run --namespace NS --grace G -- CMD` (the wrapper) instead of `leasehold agent`.
    #[must_use]
    pub fn wrapper(mut self, namespace: &str, grace: &str, command: &[String]) -> Self {
        self.args = ["run", "--namespace", namespace, "--grace", grace, "--"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        self.args.extend(command.iter().cloned());
        self
    }

    /// Sets the election namespaces.
    #[must_use]
    pub fn namespaces(mut self, namespaces: &[&str]) -> Self {
        self.namespaces = namespaces.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Adds a task.
    #[must_use]
    pub fn task(mut self, task: TaskDef) -> Self {
        self.tasks.push(task);
        self
    }

    /// Runs the agent with its wall clock shifted by `offset` (libfaketime's relative form: `-1h`, `+90`
    /// seconds, `+2d`), while its monotonic and boot clocks stay true: a node whose clock is wrong, with no hook in
    /// the product. Debian's libfaketime does it through `LD_PRELOAD` ([`faketime_env`]; `make tools` installs the
    /// `faketime` package), so the agent must be linked dynamically: spawning fails, saying why, when libfaketime
    /// is missing or the agent is the static musl build of `make static` ([`agent_is_static`]), rather than run
    /// it with a true clock.
    #[must_use]
    pub fn skewed_wall_clock(mut self, offset: &str) -> Self {
        self.wall_clock_skew = Some(offset.to_string());
        self
    }

    /// Sets an environment variable.
    #[must_use]
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
}

/// Where Debian's `libfaketime` package puts the library, for [`AgentSpec::skewed_wall_clock`].
pub fn libfaketime() -> String {
    format!(
        "/usr/lib/{}-linux-gnu/faketime/libfaketime.so.1",
        std::env::consts::ARCH
    )
}

/// The environment that gives a dynamically linked child a wall clock shifted by `offset` (libfaketime's relative
/// form, e.g. `-1h`) and leaves every other clock true: `FAKETIME_DONT_FAKE_MONOTONIC=1` keeps libfaketime off
/// CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW and CLOCK_BOOTTIME, which the elector and the shim time on (without it,
/// libfaketime 0.9.10 fakes them too). Fails when libfaketime is not installed.
pub fn faketime_env(offset: &str) -> anyhow::Result<Vec<(String, String)>> {
    let lib = libfaketime();
    if !Path::new(&lib).is_file() {
        bail!(
            "{lib} not found: a skewed wall clock needs Debian's faketime package (`make tools` installs it)"
        );
    }
    Ok(vec![
        ("LD_PRELOAD".into(), lib),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ])
}

/// Whether the agent binary the tests run is linked statically (`make static`'s musl build, through
/// `E2E_BIN_DIR`): it has no ELF interpreter, so nothing loads `LD_PRELOAD` into it and libfaketime cannot skew its
/// clock.
pub fn agent_is_static() -> anyhow::Result<bool> {
    let path = binary("leasehold")?;
    Ok(!elf_has_interpreter(&path)?)
}

/// Whether the ELF file at `path` names a program interpreter (a `PT_INTERP` program header), as every dynamically
/// linked executable does; a static or static-pie one has none. The `object` crate reads the headers.
fn elf_has_interpreter(path: &Path) -> anyhow::Result<bool> {
    use object::read::elf::{ElfFile64, ProgramHeader as _};
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let elf = ElfFile64::<object::Endianness>::parse(data.as_slice())
        .with_context(|| format!("{} is not an ELF64 file", path.display()))?;
    let endian = elf.endian();
    Ok(elf
        .elf_program_headers()
        .iter()
        .any(|header| header.p_type(endian) == object::elf::PT_INTERP))
}

/// A running API server and the temp dir of one test; agents are started from it.
pub struct Cluster {
    dir: tempfile::TempDir,
    server: ApiServerProcess,
    /// The admin endpoint client; `None` on a TLS server (this client speaks plain HTTP only).
    admin: Option<ApiClient>,
    /// The election timing every agent gets.
    pub timing: Timing,
    tls: bool,
    logs: parking_lot::Mutex<Vec<(String, PathBuf)>>,
}

impl Cluster {
    /// Starts a plain-HTTP `leasehold-apiserver` with the [`Timing::FAST`] timing.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(false)
    }

    /// Starts a `--tls` server, for kubectl (client-go sends no token over plain HTTP). Agents then share the admin
    /// kubeconfig, and the admin endpoint helpers (users, counters, partitions) are unavailable.
    pub fn start_tls() -> anyhow::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("leasehold-e2e-")
            .tempdir()
            .context("creating the temp dir")?;
        let args: &[&str] = if tls { &["--tls"] } else { &[] };
        let server = ApiServerProcess::start(&binary("leasehold-apiserver")?, dir.path(), args)?;
        let admin = (!tls).then(|| ApiClient::new(&server.url, &server.admin_token));
        std::fs::create_dir_all(dir.path().join("env"))?;
        Ok(Self {
            dir,
            server,
            admin,
            timing: Timing::FAST,
            tls,
            logs: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// The temp dir of this test.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// The admin kubeconfig the server wrote.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.server.kubeconfig
    }

    fn admin(&self) -> anyhow::Result<&ApiClient> {
        self.admin
            .as_ref()
            .context("the admin endpoint helpers need a plain-HTTP server (Cluster::start)")
    }

    /// Calls the admin endpoint (`/leasehold-admin/<path>`), failing on a non-200 answer.
    pub async fn admin_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (code, v) = self
            .admin()?
            .send(method, &format!("/leasehold-admin/{path}"), body)
            .await?;
        if code != 200 {
            bail!("admin {method} {path} answered {code}: {v}");
        }
        Ok(v)
    }

    /// Registers a user and returns its token.
    pub async fn add_user(&self, name: &str) -> anyhow::Result<String> {
        let v = self
            .admin_call("POST", "users", Some(&json!({ "name": name })))
            .await?;
        Ok(v["token"]
            .as_str()
            .context("no token in the answer")?
            .to_string())
    }

    /// A kubeconfig for `token`: the admin one with its token replaced, so the server (and its CA) stay the same.
    pub fn kubeconfig_for(&self, name: &str, token: &str) -> anyhow::Result<PathBuf> {
        let admin = std::fs::read_to_string(&self.server.kubeconfig)?;
        let mut replaced = false;
        let text: String = admin
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("token:") {
                    replaced = true;
                    format!("    token: {}\n", toml_str(token))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        if !replaced {
            bail!("the admin kubeconfig has no token line");
        }
        let path = self.dir().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The server's request counters (`GET /leasehold-admin/counters`).
    pub async fn counters(&self) -> anyhow::Result<Value> {
        self.admin_call("GET", "counters", None).await
    }

    /// Requests by `user` whose verb is one of `verbs` (any resource, any answer).
    pub async fn requests_by(&self, user: &str, verbs: &[&str]) -> anyhow::Result<u64> {
        let counters = self.counters().await?;
        let requests = counters["requests"]
            .as_object()
            .context("no requests map")?;
        Ok(requests
            .iter()
            .filter_map(|(key, n)| {
                // Keys are "user verb resource code"; the resource may be empty.
                let parts: Vec<&str> = key.split(' ').collect();
                let (u, verb) = (parts.first()?, parts.get(1)?);
                (*u == user && (verbs.is_empty() || verbs.contains(verb)))
                    .then(|| n.as_u64().unwrap_or(0))
            })
            .sum())
    }

    /// Write requests (create, update, patch, delete, deletecollection) by `user`, whatever the answer.
    pub async fn writes_by(&self, user: &str) -> anyhow::Result<u64> {
        self.requests_by(
            user,
            &["create", "update", "patch", "delete", "deletecollection"],
        )
        .await
    }

    /// Cuts `user` off completely (requests hang, watches freeze), as a network partition would.
    pub async fn partition(&self, user: &str) -> anyhow::Result<()> {
        self.admin_call(
            "POST",
            "partition",
            Some(&json!({ "user": user, "mode": "full" })),
        )
        .await
        .map(drop)
    }

    /// Ends the partition of `user`.
    pub async fn heal(&self, user: &str) -> anyhow::Result<()> {
        self.admin_call("POST", "heal", Some(&json!({ "user": user })))
            .await
            .map(drop)
    }

    /// Creates a Kubernetes namespace as the admin.
    pub async fn create_namespace(&self, name: &str) -> anyhow::Result<()> {
        let body = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } });
        let (code, v) = self
            .admin()?
            .send("POST", "/api/v1/namespaces", Some(&body))
            .await?;
        if code != 201 && code != 200 {
            bail!("creating namespace {name} answered {code}: {v}");
        }
        Ok(())
    }

    /// GETs a Lease as the admin; `None` when absent.
    pub async fn lease(&self, namespace: &str, name: &str) -> anyhow::Result<Option<Value>> {
        let path = format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}");
        match self.admin()?.send("GET", &path, None).await? {
            (200, v) => Ok(Some(v)),
            (404, _) => Ok(None),
            (code, v) => bail!("GET {path} answered {code}: {v}"),
        }
    }

    /// GETs any API path as the admin (plain-HTTP servers only), failing on a non-200 answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        match self.admin()?.send("GET", path, None).await? {
            (200, v) => Ok(v),
            (code, v) => bail!("GET {path} answered {code}: {v}"),
        }
    }

    /// Creates an object as the admin by POSTing `body` to `path`, failing unless the answer is 201.
    pub async fn create(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        match self.admin()?.send("POST", path, Some(body)).await? {
            (201, v) => Ok(v),
            (code, v) => bail!("POST {path} answered {code}: {v}"),
        }
    }

    /// Replaces an object as the admin by PUTting `body` to `path` (a third party's write), failing unless the
    /// answer is 200.
    pub async fn replace(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        match self.admin()?.send("PUT", path, Some(body)).await? {
            (200, v) => Ok(v),
            (code, v) => bail!("PUT {path} answered {code}: {v}"),
        }
    }

    /// Runs kubectl against this server with the admin kubeconfig and returns its stdout.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.server.kubeconfig)
            .output()
            .context("running kubectl (is it installed?)")?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The shared stamp file every stamp task of this cluster appends to.
    pub fn stamp_file(&self) -> PathBuf {
        self.dir().join("stamps.log")
    }

    /// Where stamp tasks dump their `LEASEHOLD_*` environment (`<task>.<holder>.<epoch>.env`).
    pub fn env_dir(&self) -> PathBuf {
        self.dir().join("env")
    }

    /// A leader-gated `stamp-task` named `name` in election namespace `namespace`, with a lock file per
    /// (namespace, task) so copies of this task on different agents exclude each other.
    pub fn stamp_task(&self, name: &str, namespace: &str) -> anyhow::Result<TaskDef> {
        let lock = self.dir().join(format!("{namespace}.{name}.lock"));
        Ok(TaskDef {
            name: name.to_string(),
            namespace: namespace.to_string(),
            command: vec![
                binary("stamp-task")?.display().to_string(),
                "--stamps".into(),
                self.stamp_file().display().to_string(),
                "--lock".into(),
                lock.display().to_string(),
                "--env-dir".into(),
                self.env_dir().display().to_string(),
            ],
            election: true,
            grace: self.timing.grace,
            tags: BTreeMap::new(),
            mode: None,
        })
    }

    /// Reads the stamp file.
    pub fn stamps(&self) -> anyhow::Result<Stamps> {
        Stamps::read(&self.stamp_file())
    }

    /// Starts one agent per node in `nodes`, each electing in `namespace` with the stamp task `stamp` there.
    pub async fn stamp_agents(
        &self,
        nodes: &[&str],
        namespace: &str,
    ) -> anyhow::Result<Vec<Agent>> {
        let mut agents = Vec::new();
        for node in nodes {
            let spec = AgentSpec::new(node)
                .namespaces(&[namespace])
                .task(self.stamp_task("stamp", namespace)?);
            agents.push(self.agent(spec).await?);
        }
        Ok(agents)
    }

    /// Waits for the first `start` stamp in `namespace` by `holder` with an epoch above `after_epoch`.
    pub async fn wait_for_start(
        &self,
        namespace: &str,
        holder: &str,
        after_epoch: u64,
        within: Duration,
    ) -> anyhow::Result<Stamp> {
        eventually(
            &format!("{holder} to start its task in {namespace}"),
            within,
            || async {
                Ok(self.stamps()?.lines.into_iter().find(|s| {
                    s.event == Event::Start
                        && s.namespace == namespace
                        && s.holder == holder
                        && s.epoch > after_epoch
                }))
            },
        )
        .await
    }

    /// Reads the environment a stamp task got for (task, holder, epoch), if it has started.
    pub fn task_env(
        &self,
        task: &str,
        holder: &str,
        epoch: u64,
    ) -> anyhow::Result<Option<BTreeMap<String, String>>> {
        let path = self.env_dir().join(format!("{task}.{holder}.{epoch}.env"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(
                text.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The environment of an agent as the harness sets it, before `spec.env`.
    fn base_env(
        &self,
        spec: &AgentSpec,
        kubeconfig: &Path,
        config: &Path,
        api: SocketAddr,
        probe: SocketAddr,
    ) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        vec![
            ("PATH".into(), path),
            ("KUBECONFIG".into(), kubeconfig.display().to_string()),
            ("ENV_ENABLE_ELECTION".into(), "true".into()),
            ("ENV_NAMESPACE".into(), spec.namespaces.join(",")),
            ("NODE_NAME".into(), spec.node.clone()),
            ("POD_UID".into(), format!("uid-{}", spec.node)),
            ("LEASEHOLD_CONFIG".into(), config.display().to_string()),
            ("LEASEHOLD_LISTEN".into(), api.to_string()),
            ("LEASEHOLD_PROBE_LISTEN".into(), probe.to_string()),
            ("LEASEHOLD_LOG_FORMAT".into(), "json".into()),
        ]
    }

    /// Writes the agent's TOML: the timing and its tasks.
    fn write_config(&self, spec: &AgentSpec) -> anyhow::Result<PathBuf> {
        let t = self.timing;
        let mut toml = format!(
            "[lease]\nduration = {}\nrenew_deadline = {}\nretry_period = {}\n\n",
            toml_str(&go_duration(t.lease_duration)),
            toml_str(&go_duration(t.renew_deadline)),
            toml_str(&go_duration(t.retry_period)),
        );
        for task in &spec.tasks {
            toml.push_str(&task.toml());
            toml.push('\n');
        }
        let path = self.dir().join(format!("{}.toml", spec.node));
        std::fs::write(&path, toml)?;
        Ok(path)
    }

    /// Spawns an agent without waiting for it: its own user (plain HTTP) or the admin kubeconfig (TLS), its own
    /// ports, its log in the temp dir.
    pub async fn spawn_agent(&self, spec: AgentSpec) -> anyhow::Result<Agent> {
        let (user, kubeconfig) = if self.tls {
            ("admin".to_string(), self.server.kubeconfig.clone())
        } else {
            let token = self.add_user(&spec.node).await?;
            (spec.node.clone(), self.kubeconfig_for(&spec.node, &token)?)
        };
        let config = self.write_config(&spec)?;
        let (api, probe) = (free_port()?, free_port()?);
        let log = self.dir().join(format!("{}.log", spec.node));
        let out = File::create(&log)?;
        let skew = match &spec.wall_clock_skew {
            Some(offset) => {
                if agent_is_static()? {
                    bail!(
                        "{} is linked statically (E2E_BIN_DIR from `make static`?): LD_PRELOAD cannot load \
                         libfaketime into it, so it cannot run with its wall clock {offset} off; use a dynamically \
                         linked agent",
                        binary("leasehold")?.display()
                    );
                }
                faketime_env(offset)?
            }
            None => Vec::new(),
        };
        let mut cmd = Command::new(binary("leasehold")?);
        cmd.args(&spec.args)
            .env_clear()
            .envs(self.base_env(&spec, &kubeconfig, &config, api, probe))
            .envs(skew)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        let stall = if spec.stall_output {
            let (reader, writer) = std::io::pipe()?;
            cmd.stdout(writer.try_clone()?).stderr(writer);
            Some(stall_after_announcement(reader, out))
        } else {
            cmd.stdout(out.try_clone()?).stderr(out);
            None
        };
        let mut child = cmd.spawn().context("spawning leasehold agent")?;
        drop(cmd);
        self.logs.lock().push((spec.node.clone(), log.clone()));
        let holder = announced_identity(&log, &mut child, Duration::from_secs(15))
            .await?
            .unwrap_or_default();
        Ok(Agent {
            holder,
            node: spec.node,
            user,
            child,
            api,
            probe,
            log,
            client: ApiClient::new(&format!("http://{api}"), ""),
            probe_client: ApiClient::new(&format!("http://{probe}"), ""),
            _stall: stall,
        })
    }

    /// Spawns an agent and waits until its control API answers.
    pub async fn agent(&self, spec: AgentSpec) -> anyhow::Result<Agent> {
        let mut agent = self.spawn_agent(spec).await?;
        let within = Duration::from_secs(15);
        let started = Instant::now();
        loop {
            if let Some(status) = agent.try_exit()? {
                bail!(
                    "agent {} exited with {status} at start:\n{}",
                    agent.node,
                    agent.log_tail(30)
                );
            }
            if agent.election().await.is_ok() {
                return Ok(agent);
            }
            if started.elapsed() > within {
                bail!(
                    "agent {} did not serve its API within {within:?}:\n{}",
                    agent.node,
                    agent.log_tail(30)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until exactly one of `agents` leads `namespace` and every other one follows it (status `defeat` with
    /// that holder); returns the leader's index. Pass only agents that are alive and not stopped.
    pub async fn wait_for_leader(
        &self,
        agents: &[&Agent],
        namespace: &str,
        within: Duration,
    ) -> anyhow::Result<usize> {
        eventually(
            &format!("one agreed leader of {namespace}"),
            within,
            || async { leader_among(agents, namespace).await },
        )
        .await
    }
}

/// The index of the one agent that leads `namespace` while every other follows it, if they agree right now.
pub async fn leader_among(agents: &[&Agent], namespace: &str) -> anyhow::Result<Option<usize>> {
    let mut views = Vec::new();
    for a in agents {
        views.push(a.namespace(namespace).await?);
    }
    let leaders: Vec<usize> = views
        .iter()
        .enumerate()
        .filter(|(_, v)| v.status == "success")
        .map(|(i, _)| i)
        .collect();
    let [leader] = leaders[..] else {
        return Ok(None);
    };
    let holder = agents[leader].holder.as_str();
    let agreed = views
        .iter()
        .enumerate()
        .all(|(i, v)| i == leader || (v.status == "defeat" && v.holder.as_deref() == Some(holder)));
    Ok(agreed.then_some(leader))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Shown by the test runner only when the test failed (or with --no-capture).
        let logs = self.logs.lock();
        eprintln!("--- e2e temp dir: {}", self.dir().display());
        if let Ok(stamps) = self.stamps() {
            eprintln!("{}", stamps.describe());
        }
        for (node, path) in logs.iter() {
            eprintln!("--- log of {node} (last 40 lines):\n{}", tail(path, 40));
        }
        if std::env::var_os("E2E_KEEP").is_some() {
            let path = std::mem::replace(
                &mut self.dir,
                match tempfile::tempdir() {
                    Ok(d) => d,
                    Err(_) => return,
                },
            )
            .keep();
            eprintln!("--- kept {}", path.display());
        }
    }
}

/// The holder identity an agent logged in its start-up line (`leasehold agent starting`, field `identity`), JSON or
/// text. Tests cannot compute it: it is `<node>_<POD_UID>.<nonce>` with a random nonce per process.
pub fn identity_in_log(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter(|l| l.contains("leasehold agent starting"))
        .find_map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) => v["identity"].as_str().map(str::to_string),
            Err(_) => l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("identity="))
                .map(str::to_string),
        })
}

/// Copies the agent's output from `reader` into `log` up to and including its start-up announcement, then holds the
/// pipe open without reading it until the returned sender is dropped.
fn stall_after_announcement(
    reader: std::io::PipeReader,
    mut log: File,
) -> std::sync::mpsc::Sender<()> {
    use std::io::{BufRead as _, Write as _};
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(reader);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let _ = log.write_all(line.as_bytes());
            if line.contains("leasehold agent starting") {
                break;
            }
            line.clear();
        }
        // Blocks until the Agent is dropped; the pipe stays open and unread until then.
        let _ = rx.recv();
    });
    tx
}

/// Waits until the agent `child` logging into `log` has announced its identity (`Some`) or has exited without
/// (`None`, e.g. a configuration error); an agent that does neither within `within` is an error.
pub async fn announced_identity(
    log: &Path,
    child: &mut Child,
    within: Duration,
) -> anyhow::Result<Option<String>> {
    let started = Instant::now();
    loop {
        if let Some(identity) = identity_in_log(log) {
            return Ok(Some(identity));
        }
        if child.try_wait()?.is_some() {
            return Ok(identity_in_log(log));
        }
        if started.elapsed() > within {
            bail!(
                "the agent logging to {} did not announce its identity within {within:?}:\n{}",
                log.display(),
                tail(log, 30)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One namespace of an agent's `GET /v1/election`.
#[derive(Clone, Debug)]
pub struct NamespaceStatus {
    /// disabled, success, defeat, banned or impeached.
    pub status: String,
    /// The Lease holder, as the agent knows it.
    pub holder: Option<String>,
    /// Our epoch while leading.
    pub epoch: Option<u64>,
    /// The monitor line.
    pub line: String,
    /// The tasks, as JSON.
    pub tasks: Vec<Value>,
}

impl NamespaceStatus {
    /// The state word of task `name` (`running`, `stopped`, ...).
    pub fn task_state(&self, name: &str) -> Option<&str> {
        self.tasks
            .iter()
            .find(|t| t["name"] == name)
            .and_then(|t| t["state"].as_str())
    }
}

/// A running `leasehold agent`; SIGKILLed on drop (its watchdogs then kill its tasks).
pub struct Agent {
    /// `NODE_NAME`, also its API server user name.
    pub node: String,
    /// Its holder identity, `<node>_uid-<node>.<nonce>`, as it announced it at start-up (the nonce is random per
    /// process); empty when it exited before (a configuration error).
    pub holder: String,
    /// The API server user whose counters and partition are this agent's (`admin` on a TLS cluster).
    pub user: String,
    child: Child,
    /// The control API address.
    pub api: SocketAddr,
    /// The probe listener address.
    pub probe: SocketAddr,
    /// Its log file (stdout and stderr, JSON lines).
    pub log: PathBuf,
    client: ApiClient,
    probe_client: ApiClient,
    /// With [`AgentSpec::stalled_output`]: dropping it lets the unread pipe go.
    _stall: Option<std::sync::mpsc::Sender<()>>,
}

impl Agent {
    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the agent process only (not its tasks, which have their own process groups).
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = Pid::from_raw(self.pid() as i32).context("pid 0")?;
        kill_process(pid, signal)
            .with_context(|| format!("sending {signal:?} to agent {}", self.node))
    }

    /// SIGKILL: the agent dies at once, without releasing anything.
    pub fn kill(&self) -> anyhow::Result<()> {
        self.signal(Signal::KILL)
    }

    /// SIGTERM: a graceful shutdown (tasks stopped, Leases released).
    pub fn terminate(&self) -> anyhow::Result<()> {
        self.signal(Signal::TERM)
    }

    /// SIGSTOP: the agent freezes; its tasks keep running until their watchdogs act.
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal(Signal::STOP)
    }

    /// SIGCONT.
    pub fn thaw(&self) -> anyhow::Result<()> {
        self.signal(Signal::CONT)
    }

    /// The exit status, if the agent has exited.
    pub fn try_exit(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the agent to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            if start.elapsed() > within {
                bail!("agent {} still running after {within:?}", self.node);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn get(
        client: &ApiClient,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        tokio::time::timeout(AGENT_REQUEST_TIMEOUT, client.send(method, path, body))
            .await
            .context("no answer")?
    }

    /// `GET /v1/election`.
    pub async fn election(&self) -> anyhow::Result<Value> {
        match Self::get(&self.client, "GET", "/v1/election", None).await? {
            (200, v) => Ok(v),
            (code, v) => bail!("GET /v1/election answered {code}: {v}"),
        }
    }

    /// One namespace of `GET /v1/election`.
    pub async fn namespace(&self, namespace: &str) -> anyhow::Result<NamespaceStatus> {
        let doc = self.election().await?;
        let ns = doc["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["namespace"] == namespace)
            .with_context(|| format!("agent {} has no namespace {namespace}: {doc}", self.node))?;
        Ok(NamespaceStatus {
            status: ns["status"].as_str().unwrap_or_default().to_string(),
            holder: ns["holder"].as_str().map(str::to_string),
            epoch: ns["epoch"].as_u64(),
            line: ns["line"].as_str().unwrap_or_default().to_string(),
            tasks: ns["tasks"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// Waits until this agent's status in `namespace` satisfies `want`.
    pub async fn wait_status(
        &self,
        namespace: &str,
        within: Duration,
        want: impl Fn(&NamespaceStatus) -> bool,
    ) -> anyhow::Result<NamespaceStatus> {
        eventually(
            &format!("agent {} status in {namespace}", self.node),
            within,
            || async {
                let s = self.namespace(namespace).await?;
                Ok(want(&s).then_some(s))
            },
        )
        .await
    }

    /// `POST /v1/election/{ns}/impeach`: the status code and body.
    pub async fn impeach(&self, namespace: &str) -> anyhow::Result<(u16, Value)> {
        Self::get(
            &self.client,
            "POST",
            &format!("/v1/election/{namespace}/impeach"),
            None,
        )
        .await
    }

    /// `POST /v1/global/election/tags`.
    pub async fn set_tags(&self, tags: &[(&str, &str)]) -> anyhow::Result<Value> {
        let map: serde_json::Map<String, Value> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        match Self::get(
            &self.client,
            "POST",
            "/v1/global/election/tags",
            Some(&json!({ "tags": map })),
        )
        .await?
        {
            (200, v) => Ok(v),
            (code, v) => bail!("POST tags answered {code}: {v}"),
        }
    }

    /// `GET /v1/global/election/tags`.
    pub async fn tags(&self) -> anyhow::Result<Value> {
        match Self::get(&self.client, "GET", "/v1/global/election/tags", None).await? {
            (200, v) => Ok(v),
            (code, v) => bail!("GET tags answered {code}: {v}"),
        }
    }

    /// The status code of `GET /readyz` on the probe listener.
    pub async fn readyz(&self) -> anyhow::Result<u16> {
        Ok(Self::get(&self.probe_client, "GET", "/readyz", None)
            .await?
            .0)
    }

    /// The Prometheus text of `GET /metrics` on the probe listener.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let (code, text) = self.probe_client.get_text("/metrics").await?;
        if code != 200 {
            bail!("GET /metrics answered {code}: {text}");
        }
        Ok(text)
    }

    /// The status code of `GET /healthz` on the probe listener.
    pub async fn healthz(&self) -> anyhow::Result<u16> {
        Ok(Self::get(&self.probe_client, "GET", "/healthz", None)
            .await?
            .0)
    }

    /// Runs `leasehold status --addr <api> [extra]` and returns its output.
    pub fn status_command(&self, extra: &[&str]) -> anyhow::Result<Output> {
        Command::new(binary("leasehold")?)
            .args(["status", "--addr", &self.api.to_string()])
            .args(extra)
            .env_clear()
            .output()
            .context("running leasehold status")
    }

    /// The whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's JSON lines that parse.
    pub fn log_json(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_glibc_test_binary_is_dynamically_linked() {
        let exe = std::env::current_exe().unwrap();
        assert!(elf_has_interpreter(&exe).unwrap(), "{}", exe.display());
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        assert!(elf_has_interpreter(&path).is_err());
    }
}
