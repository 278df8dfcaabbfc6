//! The monitoring kit in a real Prometheus (Debian's `prometheus` package, `/usr/bin/prometheus`): three agents on
//! the stand-in API server, scraped every second with `honor_labels: true`, with the shipped alert rules loaded
//! (their `for:` shortened to fit the test's timing). In steady state no alert fires and every query of the
//! Grafana dashboard answers, with the values the agents report; a SIGSTOPped leader makes LeaseholdNoLeader go
//! pending, then firing, and it resolves once a follower has taken over.
//!
//! The agents run `leasehold agent` with a leader task and three spread tasks, not `leasehold run`: the wrapper's
//! one command is a leader task only, and the dashboard's spread panels would have nothing to show.
//!
//! Without `/usr/bin/prometheus` the test is skipped with a message, unless `CI` is set: there it fails, so a CI
//! image that lacks the package cannot pass unnoticed (`make tools` installs it).

mod deploy;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use deploy::{documents, workspace_root};
use leasehold_tests::grafana;
use leasehold_tests::harness::{
    Agent, AgentSpec, Cluster, Timing, eventually, free_port, holds_for, leader_among,
};
use leasehold_tests::http_client::ApiClient;
use serde_json::{Value, json};

/// Where Debian's `prometheus` package puts the server.
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// The election namespace; not `default`, so a query that ignored `$namespace` would not pass by chance.
const NS: &str = "collectors";
const SPREAD_TASKS: [&str; 3] = ["s0", "s1", "s2"];
const LEADER_TASK: &str = "stamp";

/// Prometheus' scrape and rule evaluation intervals. The scrape timeout is below the interval, as Prometheus
/// requires: a frozen agent's scrape fails after it, and the agent's series go stale at once.
const SCRAPE: Duration = Duration::from_secs(1);
const SCRAPE_TIMEOUT: Duration = Duration::from_millis(900);
const EVALUATION: Duration = Duration::from_secs(1);
/// What `$__rate_interval` stands for: Grafana makes it at least four scrape intervals; 30 s is plenty at 1 s.
const RATE_INTERVAL: &str = "30s";

/// LeaseholdNoLeader's `for:` in the test: shorter than the no-leader window after a SIGSTOP (see [`TIMING`]).
const NO_LEADER_FOR: &str = "1s";
/// Every other alert's `for:` in the test: short enough that an alert whose expression held through the
/// steady-state window would fire within it.
const OTHER_FOR: &str = "3s";
/// How long steady state must show no firing alert.
const STEADY_WINDOW: Duration = Duration::from_secs(5);

/// LD 6 s, RD 4 s, RP 1 s. With the e2e tests' usual LD of 3 s, the window in which nobody leads after a SIGSTOP
/// (from the failed scrape that marks the leader's series stale to the scrape that sees the new leader) can be
/// as short as a second or two, too short to see LeaseholdNoLeader go pending and then firing with evaluations a
/// second apart. LD 6 s gives it about three to five seconds.
const TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(6),
    renew_deadline: Duration::from_secs(4),
    retry_period: Duration::from_secs(1),
    grace: Duration::from_millis(500),
};

/// A Prometheus server scraping the given agents, with its config, rules, data and log in a directory of the
/// test's temp dir; SIGKILLed on drop, so it never outlives a failing test.
struct Prometheus {
    child: Child,
    client: ApiClient,
    log: PathBuf,
}

/// One sample of an instant vector.
#[derive(Clone, Debug)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Prometheus {
    /// Writes the config (the agents as static targets, `honor_labels: true`) and `rules` into `dir`, starts the
    /// server and waits until it is ready.
    async fn start(
        binary: &Path,
        dir: &Path,
        targets: &[SocketAddr],
        rules: &Value,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // JSON is YAML: the files are written with serde_json.
        let rules_file = dir.join("rules.yml");
        std::fs::write(&rules_file, serde_json::to_string_pretty(rules)?)?;
        let config = json!({
            "global": {
                "scrape_interval": humantime::format_duration(SCRAPE).to_string(),
                "scrape_timeout": humantime::format_duration(SCRAPE_TIMEOUT).to_string(),
                "evaluation_interval": humantime::format_duration(EVALUATION).to_string(),
            },
            "rule_files": [rules_file.display().to_string()],
            "scrape_configs": [{
                "job_name": "leasehold",
                // The agents' `namespace` label is the election namespace; keep it as the PodMonitor does.
                "honor_labels": true,
                "metrics_path": "/metrics",
                "static_configs": [{
                    "targets": targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }],
            }],
        });
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, serde_json::to_string_pretty(&config)?)?;
        let listen = free_port()?;
        let log = dir.join("prometheus.log");
        let out = File::create(&log)?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut prometheus = Self {
            child,
            client: ApiClient::new(&format!("http://{listen}"), ""),
            log,
        };
        let within = Duration::from_secs(30);
        let started = Instant::now();
        loop {
            if let Some(status) = prometheus.child.try_wait()? {
                bail!(
                    "Prometheus exited with {status}:\n{}",
                    prometheus.log_tail()
                );
            }
            let answer = tokio::time::timeout(
                Duration::from_secs(2),
                prometheus.client.get_text("/-/ready"),
            )
            .await;
            if matches!(answer, Ok(Ok((200, _)))) {
                break;
            }
            if started.elapsed() > within {
                bail!(
                    "Prometheus was not ready within {within:?}:\n{}",
                    prometheus.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(prometheus)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// GETs an HTTP API path and returns its `data`, failing unless Prometheus answers 200 with status success.
    async fn api(&self, path: &str) -> anyhow::Result<Value> {
        let (code, body) =
            tokio::time::timeout(Duration::from_secs(5), self.client.send("GET", path, None))
                .await
                .with_context(|| format!("Prometheus did not answer {path}"))??;
        if code != 200 || body["status"] != "success" {
            bail!("GET {path} answered {code}: {body}");
        }
        Ok(body["data"].clone())
    }

    /// An instant query, now.
    async fn query(&self, promql: &str) -> anyhow::Result<Vec<Sample>> {
        let data = self
            .api(&format!("/api/v1/query?query={}", url_encode(promql)))
            .await
            .with_context(|| format!("querying {promql}"))?;
        if data["resultType"] != "vector" {
            bail!(
                "{promql} gave a {} result, not a vector",
                data["resultType"]
            );
        }
        data["result"]
            .as_array()
            .context("no result array")?
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let value = r["value"][1]
                    .as_str()
                    .context("a sample without a value")?
                    .parse()
                    .context("a value that is not a number")?;
                Ok(Sample { labels, value })
            })
            .collect()
    }

    /// The active alerts (pending and firing; resolved ones are not listed).
    async fn alerts(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self.api("/api/v1/alerts").await?["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// LeaseholdNoLeader's alert for [`NS`], if active.
    async fn no_leader(&self) -> anyhow::Result<Option<Value>> {
        Ok(self.alerts().await?.into_iter().find(|a| {
            a["labels"]["alertname"] == "LeaseholdNoLeader" && a["labels"]["namespace"] == NS
        }))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Shown by the test runner only when the test failed (or with --no-capture).
        eprintln!("--- Prometheus log (last 30 lines):\n{}", self.log_tail());
    }
}

/// Percent-encodes a query parameter (everything but RFC 3986's unreserved characters).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The Prometheus server to run, or `None` (after saying so) to skip: a missing server fails the test in CI.
fn prometheus_binary() -> anyhow::Result<Option<PathBuf>> {
    let path = Path::new(PROMETHEUS);
    if path.is_file() {
        return Ok(Some(path.to_path_buf()));
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        bail!(
            "{PROMETHEUS} is missing and CI is set: install Debian's prometheus package (`make tools` does) so the \
             monitoring kit is tested against a real Prometheus"
        );
    }
    eprintln!(
        "SKIPPED: {PROMETHEUS} is missing, so the monitoring kit was NOT run in a real Prometheus. `make tools` \
         installs it (Debian's prometheus package); with CI set this test fails instead of skipping."
    );
    Ok(None)
}

/// The shipped rules (manifests/monitoring/rules.yaml) with every `for:` shortened for the test's timing; the
/// expressions are the shipped ones.
fn rules_for_the_test() -> anyhow::Result<Value> {
    let path = workspace_root().join("manifests/monitoring/rules.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut rules = documents(&text)?
        .into_iter()
        .next()
        .context("rules.yaml is empty")?;
    let mut no_leader_found = false;
    for group in rules["groups"].as_array_mut().into_iter().flatten() {
        for rule in group["rules"].as_array_mut().into_iter().flatten() {
            let no_leader = rule["alert"] == "LeaseholdNoLeader";
            no_leader_found |= no_leader && rule.get("for").is_some();
            if rule.get("for").is_some() {
                rule["for"] = json!(if no_leader { NO_LEADER_FOR } else { OTHER_FOR });
            }
        }
    }
    if !no_leader_found {
        bail!("rules.yaml has no LeaseholdNoLeader with a `for:`");
    }
    Ok(rules)
}

/// A dashboard query with Grafana's variables replaced as Grafana would for election namespace [`NS`].
fn substitute(expr: &str) -> anyhow::Result<String> {
    let promql = expr
        .replace("${namespace}", NS)
        .replace("$namespace", NS)
        .replace("$__rate_interval", RATE_INTERVAL);
    if promql.contains('$') {
        bail!("a variable the test does not know in {expr}");
    }
    Ok(promql)
}

/// Whether every agent places every spread task on its holder and all agree, and the leader runs its task.
async fn settled(agents: &[&Agent], leader: &Agent) -> anyhow::Result<bool> {
    let mut agreed: Option<BTreeMap<String, String>> = None;
    for agent in agents {
        let doc = agent.election().await?;
        let mut holders = BTreeMap::new();
        for task in doc["spread"]["tasks"].as_array().into_iter().flatten() {
            let (Some(holder), Some(placed)) =
                (task["holder"].as_str(), task["placed_on"].as_str())
            else {
                return Ok(false);
            };
            if holder != placed {
                return Ok(false);
            }
            holders.insert(
                task["task"].as_str().unwrap_or("").to_string(),
                holder.to_string(),
            );
        }
        if holders.len() != SPREAD_TASKS.len() || agreed.as_ref().is_some_and(|a| a != &holders) {
            return Ok(false);
        }
        agreed = Some(holders);
    }
    Ok(leader.namespace(NS).await?.task_state(LEADER_TASK) == Some("running"))
}

/// What the dashboard's main panels must show in steady state, checked against the agents' own reports; the
/// problems found, empty when all is as expected.
fn dashboard_problems(
    results: &BTreeMap<String, Vec<Sample>>,
    leader: &Agent,
    epoch: u64,
    throttled: &Agent,
    agents: usize,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    for (query, samples) in results {
        expect(!samples.is_empty(), format!("{query}: no data"));
    }
    let panel = |title: &str| -> Vec<&Sample> {
        results
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{title}/")))
            .flat_map(|(_, v)| v)
            .collect()
    };
    let by = |samples: &[&Sample], label: &str| -> BTreeMap<String, f64> {
        samples
            .iter()
            .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
            .collect()
    };
    let leader_panel = panel("Leader");
    expect(
        by(&leader_panel, "id") == BTreeMap::from([(leader.holder.clone(), 1.0)]),
        format!("Leader shows {leader_panel:?}, not {}", leader.holder),
    );
    let epoch_panel = panel("Epoch");
    expect(
        epoch_panel.len() == 1 && epoch_panel[0].value == epoch as f64,
        format!("Epoch shows {epoch_panel:?}, not {epoch}"),
    );
    let statuses = by(&panel("Agents by status"), "status");
    expect(
        statuses
            == BTreeMap::from([
                ("defeat".into(), (agents - 1) as f64),
                ("success".into(), 1.0),
            ]),
        format!("Agents by status shows {statuses:?}"),
    );
    let office = panel("Time in office");
    expect(
        office.len() == 1 && office[0].value > 0.0,
        format!("Time in office shows {office:?}"),
    );
    let running = by(&panel("Task copies running"), "task");
    let once: BTreeMap<String, f64> = SPREAD_TASKS
        .iter()
        .chain([&LEADER_TASK])
        .map(|t| (t.to_string(), 1.0))
        .collect();
    expect(
        running == once,
        format!("Task copies running shows {running:?}, not one copy of each task"),
    );
    let held = panel("Spread tasks held per agent");
    expect(
        held.len() == agents && held.iter().all(|s| s.value == 1.0),
        format!(
            "Spread tasks held per agent shows {held:?}, not one task on each of {agents} agents"
        ),
    );
    let restarts = panel("Task restarts");
    expect(
        restarts.len() == agents * (SPREAD_TASKS.len() + 1)
            && restarts.iter().all(|s| s.value == 0.0),
        format!("Task restarts shows {restarts:?}, not a 0 for every task on every agent"),
    );
    let refused = panel("Kubernetes API: refused (403) and throttled (429)");
    let throttled_instance = throttled.probe.to_string();
    expect(
        refused.iter().any(|s| {
            s.labels.get("code").map(String::as_str) == Some("429")
                && s.labels.get("instance") == Some(&throttled_instance)
        }),
        format!("the API errors panel shows {refused:?}, without the 429 of {throttled_instance}"),
    );
    problems
}

#[tokio::test]
async fn a_real_prometheus_answers_every_dashboard_query_and_fires_no_leader_while_the_leader_is_frozen()
-> anyhow::Result<()> {
    let Some(binary) = prometheus_binary()? else {
        return Ok(());
    };
    let rules = rules_for_the_test()?;
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(
        workspace_root().join("manifests/monitoring/dashboard.json"),
    )?)?;
    let queries = grafana::queries(&dashboard);

    let mut cluster = Cluster::start()?;
    cluster.timing = TIMING;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        let mut spec = AgentSpec::new(node)
            .namespaces(&[NS])
            .task(cluster.stamp_task(LEADER_TASK, NS)?)
            .env("LEASEHOLD_MEMBER_DURATION", "4s")
            .env("LEASEHOLD_MEMBER_RENEW", "1s");
        for task in SPREAD_TASKS {
            spec = spec.task(cluster.stamp_task(task, NS)?.spread());
        }
        agents.push(cluster.agent(spec).await?);
    }
    let targets: Vec<SocketAddr> = agents.iter().map(|a| a.probe).collect();
    let prometheus =
        Prometheus::start(&binary, &cluster.dir().join("prometheus"), &targets, &rules).await?;
    let all: Vec<&Agent> = agents.iter().collect();
    let bound = cluster.timing.takeover_bound();

    // Steady state, as the agents report it: one leader running its task, every spread task placed and held.
    let leader_index = cluster.wait_for_leader(&all, NS, bound).await?;
    let leader = &agents[leader_index];
    eventually(
        "spread placement and the leader task to settle",
        bound * 2,
        || async { settled(&all, leader).await.map(|s| s.then_some(())) },
    )
    .await?;
    let epoch = leader
        .namespace(NS)
        .await?
        .epoch
        .context("the leader reports no epoch")?;

    // Prometheus scrapes all three with their own labels, the namespace variable's query finds the election
    // namespace, and every rule has been evaluated without error.
    eventually("Prometheus to scrape the three agents", bound, || async {
        let up = prometheus.query("up{job=\"leasehold\"} == 1").await?;
        let ns = prometheus
            .api("/api/v1/label/namespace/values?match[]=leasehold_election_status")
            .await?;
        Ok((up.len() == 3 && ns == json!([NS])).then_some(()))
    })
    .await?;
    let evaluated = eventually("every rule to be evaluated", bound, || async {
        let groups = prometheus.api("/api/v1/rules").await?["groups"].clone();
        let rules: Vec<Value> = groups
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        if let Some(bad) = rules.iter().find(|r| r["health"] == "err") {
            bail!("a rule fails to evaluate: {bad}");
        }
        Ok(rules.iter().all(|r| r["health"] == "ok").then_some(rules))
    })
    .await?;
    assert_eq!(
        evaluated.len(),
        9,
        "the nine alerts of rules.yaml are loaded"
    );
    let no_leader_rule = evaluated
        .iter()
        .find(|r| r["name"] == "LeaseholdNoLeader")
        .context("LeaseholdNoLeader is not loaded")?;
    assert_eq!(
        no_leader_rule["duration"].as_f64(),
        Some(1.0),
        "the test's shortened for: {no_leader_rule}"
    );

    // No alert fires in steady state: start-up may have fired some (nobody leads for the first LD), so first wait
    // for them to resolve, then watch a window longer than every shortened `for:`.
    let firing = |alerts: Vec<Value>| -> Vec<Value> {
        alerts
            .into_iter()
            .filter(|a| a["state"] == "firing")
            .collect()
    };
    eventually("the start-up alerts to resolve", bound, || async {
        Ok(firing(prometheus.alerts().await?).is_empty().then_some(()))
    })
    .await?;
    holds_for("no alert fires in steady state", STEADY_WINDOW, || async {
        let alerts = prometheus.alerts().await?;
        let fired = firing(alerts.clone());
        if !fired.is_empty() {
            bail!("firing in steady state: {fired:?}");
        }
        Ok(true)
    })
    .await?;

    // One 429 for a follower, so that the API errors panel has a series to show (a healthy cluster has none).
    let throttled = agents
        .iter()
        .find(|a| a.holder != leader.holder)
        .context("no follower")?;
    cluster
        .admin_call(
            "POST",
            "errors",
            Some(&json!({ "code": 429, "count": 1, "user": throttled.user })),
        )
        .await?;

    // Every query of the dashboard answers, and its main panels show what the agents report.
    let started = Instant::now();
    eventually(
        "every dashboard query to show the steady cluster",
        bound,
        || async {
            let mut results = BTreeMap::new();
            for q in &queries {
                let promql = substitute(&q.expr)?;
                results.insert(
                    format!("{}/{}", q.panel, q.ref_id),
                    prometheus.query(&promql).await?,
                );
            }
            let problems = dashboard_problems(&results, leader, epoch, throttled, agents.len());
            if problems.is_empty() {
                Ok(Some(()))
            } else {
                bail!("{}", problems.join("; "))
            }
        },
    )
    .await?;
    println!(
        "{} dashboard queries answered as expected {:.1} s after the 429",
        queries.len(),
        started.elapsed().as_secs_f64()
    );

    // SIGSTOP the leader: its scrape fails and its series go stale, the followers report defeat until one takes
    // over after LD + J, so LeaseholdNoLeader goes pending, fires after its 1 s `for:`, and resolves once the new
    // leader is scraped. Every bound is measured from the SIGSTOP.
    let fault_bound = bound + 2 * SCRAPE + 2 * EVALUATION + Duration::from_secs(2);
    let frozen_at = Instant::now();
    leader.freeze()?;
    let pending_at = Cell::new(None);
    let fired = eventually(
        "LeaseholdNoLeader to go pending and then fire",
        fault_bound,
        || async {
            let Some(alert) = prometheus.no_leader().await? else {
                return Ok(None);
            };
            match alert["state"].as_str() {
                Some("pending") => {
                    if pending_at.get().is_none() {
                        pending_at.set(Some(frozen_at.elapsed()));
                    }
                    Ok(None)
                }
                Some("firing") => Ok(Some((alert, frozen_at.elapsed()))),
                other => bail!("an alert in state {other:?}: {alert}"),
            }
        },
    )
    .await?;
    let (alert, fired_after) = fired;
    let pending_after = pending_at
        .get()
        .context("LeaseholdNoLeader fired without being seen pending first")?;
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
    assert_eq!(
        alert["value"].as_str().and_then(|v| v.parse::<f64>().ok()),
        Some(2.0),
        "the two followers take part and none leads: {alert}"
    );
    let rest: Vec<&Agent> = agents
        .iter()
        .filter(|a| a.holder != leader.holder)
        .collect();
    let resolved_after = eventually(
        "LeaseholdNoLeader to resolve after the takeover",
        fault_bound.saturating_sub(frozen_at.elapsed()),
        || async {
            Ok(prometheus
                .no_leader()
                .await?
                .is_none()
                .then(|| frozen_at.elapsed()))
        },
    )
    .await?;
    let new_leader = rest[leader_among(&rest, NS)
        .await?
        .context("LeaseholdNoLeader resolved, but the other agents do not agree on a leader")?];
    let new_epoch = new_leader
        .namespace(NS)
        .await?
        .epoch
        .context("the new leader reports no epoch")?;
    assert!(new_epoch > epoch, "epoch {new_epoch} after {epoch}");
    println!(
        "SIGSTOP of the leader: LeaseholdNoLeader pending after {:.1} s, firing after {:.1} s, resolved after \
         {:.1} s (LD {} s, scrape and evaluation every second)",
        pending_after.as_secs_f64(),
        fired_after.as_secs_f64(),
        resolved_after.as_secs_f64(),
        TIMING.lease_duration.as_secs()
    );
    let epoch_query =
        format!("max by (namespace) (leasehold_election_epoch{{namespace=\"{NS}\"}})");
    eventually("Prometheus to show the new epoch", fault_bound, || async {
        let samples = prometheus.query(&epoch_query).await?;
        Ok((samples.len() == 1 && samples[0].value == new_epoch as f64).then_some(()))
    })
    .await?;

    // SIGCONT: the old leader resumes as a follower of the new one; Prometheus sees all three again and one leader.
    leader.thaw()?;
    let success_query =
        format!("leasehold_election_status{{namespace=\"{NS}\",status=\"success\"}}");
    eventually(
        "the thawed agent to follow and be scraped again",
        fault_bound,
        || async {
            let status = leader.namespace(NS).await?;
            let up = prometheus.query("up{job=\"leasehold\"} == 1").await?;
            let leaders = prometheus.query(&success_query).await?;
            Ok((status.status == "defeat"
                && status.holder.as_deref() == Some(new_leader.holder.as_str())
                && up.len() == 3
                && leaders.len() == 1
                && leaders[0].labels.get("id") == Some(&new_leader.holder))
            .then_some(()))
        },
    )
    .await?;
    assert!(
        prometheus.no_leader().await?.is_none(),
        "LeaseholdNoLeader stays resolved"
    );
    drop(prometheus);
    Ok(())
}
