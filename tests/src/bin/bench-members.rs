//! Measures what spread mode's membership costs the API server: M agents each hold a member Lease (renewed every
//! `--renew`) and watch every member Lease, exactly as the agent does (its member election watches only its own
//! Lease; its spread observer watches them all). Reports member-Lease writes/s and watch events delivered/s from
//! the server's counters, for each M.
//!
//! `bench-members --bin target/release/leasehold-apiserver [--members 10,100,1000] [--renew 20s] [--window 60s]`
//!
//! With `--failover 4,20` it measures instead how long a crashed agent's spread tasks take to run again: N real
//! agents (the `leasehold` binary next to this program) share `--tasks` spread stamp tasks with the default member
//! timing (60 s, renewed every 20 s), and `--kills` times in a row the agent holding the most tasks is SIGKILLed.
//! Each kill reports the time from the SIGKILL to the first start stamp of the last of its tasks to start again on
//! another agent, for each of `--timings` (`default`: LD 15 s, RD 10 s, RP 2 s; `fast`: LD 3 s, RD 2 s, RP 500 ms).
//!
//! `bench-members --failover 4,20 [--timings default,fast] [--kills 3] [--tasks 10]`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use leasehold_lease::{ElectionConfig, ElectionState, Elector, Identity};
use leasehold_tests::apiserver_process::ApiServerProcess;
use leasehold_tests::harness::{Agent, AgentSpec, Cluster, Timing, eventually};
use leasehold_tests::http_client::ApiClient;
use leasehold_tests::stamps::mono_now;
use serde_json::{Value, json};

/// Bench options.
#[derive(Parser, Debug)]
struct Args {
    /// The leasehold-apiserver binary (build it with --release); not needed with --failover, which takes the
    /// binaries from this program's directory.
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Member counts to measure, comma-separated.
    #[arg(long, default_value = "10,100,1000", value_delimiter = ',')]
    members: Vec<usize>,
    /// The member Lease renew period (the agent's default is 20 s).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    renew: Duration,
    /// The member Lease duration (the agent's default is 60 s).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How long to measure once every member holds its Lease.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// Measure failover after SIGKILL instead, for each of these agent counts.
    #[arg(long, value_delimiter = ',')]
    failover: Vec<usize>,
    /// The task timings for --failover: `default` (LD 15 s, RD 10 s, RP 2 s) and `fast` (LD 3 s, RD 2 s, RP 500 ms).
    #[arg(long, default_value = "default,fast", value_delimiter = ',')]
    timings: Vec<String>,
    /// SIGKILLs per configuration for --failover (each kills the agent holding the most tasks, without a replacement).
    #[arg(long, default_value = "3")]
    kills: usize,
    /// Spread tasks for --failover (every agent has all of them).
    #[arg(long, default_value = "10")]
    tasks: usize,
}

const SELECTOR: &str = "app.kubernetes.io/managed-by=leasehold,leasehold.dev/kind in (task,member)";

struct Counters {
    writes: u64,
    events: u64,
}

async fn counters(admin: &ApiClient) -> anyhow::Result<Counters> {
    let (code, c) = admin.send("GET", "/leasehold-admin/counters", None).await?;
    if code != 200 {
        bail!("counters answered {code}");
    }
    let events = c["watch_events"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    Ok(Counters {
        writes: c["writes"].as_u64().unwrap_or(0),
        events,
    })
}

async fn measure(
    args: &Args,
    server: &ApiServerProcess,
    m: usize,
) -> anyhow::Result<(f64, f64, Duration)> {
    let admin = ApiClient::new(&server.url, &server.admin_token);
    let kubeconfig = std::fs::read_to_string(&server.kubeconfig)?;
    let rd = (args.duration + args.renew.mul_f64(1.2)) / 2;
    let mut elections = Vec::new();
    let mut watchers = Vec::new();
    let seen = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for i in 0..m {
        let (code, user) = admin
            .send(
                "POST",
                "/leasehold-admin/users",
                Some(&json!({ "name": format!("m{m}-{i}") })),
            )
            .await?;
        if code != 200 {
            bail!("adding a user answered {code}");
        }
        let token = user["token"].as_str().context("no token")?;
        let yaml = kubeconfig.replace(&server.admin_token, token);
        let client = leasehold_lease::client_from_kubeconfig_yaml(&yaml).await?;
        let identity = Identity::new(format!("node-{m}-{i}"), "bench")?;
        let name = format!("leasehold-member-node-{m}-{i}-bench");
        let config = ElectionConfig::new("default", name.clone(), identity)
            .timings(args.duration, rd, args.renew)
            .takeover_spread(Duration::ZERO)
            .label("leasehold.dev/kind", "member")
            .label("leasehold.dev/member-lease", name);
        let elector = Elector::new(client.clone());
        elections.push(elector.spawn(config)?);
        let api: Api<Lease> = Api::namespaced(client, "default");
        let seen = seen.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default().labels(SELECTOR).timeout(55))
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                if ev.is_ok() {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for e in &elections {
        let mut st = e.state();
        tokio::time::timeout(
            Duration::from_secs(120),
            st.wait_for(|s| matches!(s, ElectionState::Leading(_))),
        )
        .await
        .context("a member never got its Lease")??;
    }
    let ramp = started.elapsed();
    // Skip one renew period so the acquisitions are out of the window.
    tokio::time::sleep(args.renew).await;
    let before = counters(&admin).await?;
    let t0 = Instant::now();
    tokio::time::sleep(args.window).await;
    let after = counters(&admin).await?;
    let secs = t0.elapsed().as_secs_f64();
    for e in elections {
        let _ = e.shutdown().await;
    }
    for w in watchers {
        w.abort();
    }
    Ok((
        (after.writes - before.writes) as f64 / secs,
        (after.events - before.events) as f64 / secs,
        ramp,
    ))
}

/// The production task timing (LD 15 s, RD 10 s, RP 2 s), with a 1 s grace as `footprint` uses.
const DEFAULT_TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(15),
    renew_deadline: Duration::from_secs(10),
    retry_period: Duration::from_secs(2),
    grace: Duration::from_secs(1),
};

/// Task → holder once every agent counts exactly `agents` as members and agrees that every task is held by the
/// member it is placed on, and each holder runs its copy; `None` while not so.
async fn settled(
    agents: &[&Agent],
    tasks: usize,
) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let mut agreed: Option<BTreeMap<String, String>> = None;
    for a in agents {
        let doc = a.election().await?;
        let members = doc["spread"]["members"].as_array().map_or(0, Vec::len);
        let map: BTreeMap<String, String> = doc["spread"]["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["holder"].is_string() && t["holder"] == t["placed_on"])
            .map(|t| {
                (
                    t["task"].as_str().unwrap_or("").to_owned(),
                    t["holder"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        if members != agents.len()
            || map.len() != tasks
            || agreed.as_ref().is_some_and(|m| *m != map)
        {
            return Ok(None);
        }
        agreed = Some(map);
    }
    let Some(map) = agreed else { return Ok(None) };
    for a in agents {
        let ns = a.namespace("default").await?;
        if map
            .iter()
            .any(|(t, h)| *h == a.holder && ns.task_state(t) != Some("running"))
        {
            return Ok(None);
        }
    }
    Ok(Some(map))
}

/// One configuration of `--failover`: the seconds from each SIGKILL to every one of the victim's tasks running again.
async fn failover(args: &Args, timing: Timing, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut cluster = Cluster::start()?;
    cluster.timing = timing;
    let mut agents = Vec::new();
    for i in 0..n {
        let mut spec = AgentSpec::new(&format!("node-{i:02}"));
        for t in 0..args.tasks {
            spec = spec.task(cluster.stamp_task(&format!("t{t}"), "default")?.spread());
        }
        agents.push(cluster.agent(spec).await?);
    }
    // A new agent's member Lease is first acquired a member LD (60 s) after its start; then the tasks settle.
    let within = Duration::from_secs(240);
    let mut placed = eventually("every task to be placed and run", within, || async {
        settled(&agents.iter().collect::<Vec<_>>(), args.tasks).await
    })
    .await?;
    let mut out = Vec::new();
    for _ in 0..args.kills.min(n.saturating_sub(1)) {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for h in placed.values() {
            *counts.entry(h.as_str()).or_default() += 1;
        }
        let victim_holder = counts
            .iter()
            .max_by_key(|(h, c)| (**c, *h))
            .map(|(h, _)| (*h).to_owned())
            .context("no task is held")?;
        let orphans: Vec<String> = placed
            .iter()
            .filter(|(_, h)| **h == victim_holder)
            .map(|(t, _)| t.clone())
            .collect();
        let i = agents
            .iter()
            .position(|a| a.holder == victim_holder)
            .context("the holder is not one of the agents")?;
        let victim = agents.remove(i);
        let killed = mono_now();
        victim.kill()?;
        let last_start = eventually("the victim's tasks to start elsewhere", within, || async {
            let stamps = cluster.stamps()?;
            let ivs = stamps.intervals();
            let starts: Option<Vec<u128>> = orphans
                .iter()
                .map(|t| {
                    ivs.iter()
                        .filter(|iv| {
                            iv.task == *t && iv.start > killed && iv.holder != victim_holder
                        })
                        .map(|iv| iv.start)
                        .min()
                })
                .collect();
            Ok(starts.and_then(|s| s.into_iter().max()))
        })
        .await?;
        let secs = (last_start - killed) as f64 / 1e9;
        println!(
            "  {n} agents: killed one holding {} tasks; all running again after {secs:.2} s",
            orphans.len()
        );
        out.push(secs);
        placed = eventually("the survivors to settle", within, || async {
            settled(&agents.iter().collect::<Vec<_>>(), args.tasks).await
        })
        .await?;
        cluster.stamps()?.check_exclusive()?;
    }
    Ok(out)
}

/// `--failover`: one table row per timing and agent count.
async fn failovers(args: &Args) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for name in &args.timings {
        let timing = match name.as_str() {
            "default" => DEFAULT_TIMING,
            "fast" => Timing::FAST,
            other => bail!("unknown timing {other:?}: use default or fast"),
        };
        for &n in &args.failover {
            let started = Instant::now();
            let mut secs = failover(args, timing, n).await?;
            secs.sort_by(f64::total_cmp);
            // The bound from the crash: the terms end within LD, then J, the settle time (2 × RP) and 1 s.
            let bound = timing.lease_duration + timing.retry_period * 3 + Duration::from_secs(1);
            let row = format!(
                "| LD {} s, RD {} s, RP {} ms | {n} | {} | {} | {:.2} / {:.2} / {:.2} s | {:.1} s | {:.0} s |",
                timing.lease_duration.as_secs(),
                timing.renew_deadline.as_secs(),
                timing.retry_period.as_millis(),
                args.tasks,
                secs.len(),
                secs.first().copied().unwrap_or(f64::NAN),
                secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN),
                secs.last().copied().unwrap_or(f64::NAN),
                bound.as_secs_f64(),
                started.elapsed().as_secs_f64(),
            );
            println!("{row}");
            rows.push(row);
        }
    }
    println!(
        "| task timing | agents | tasks | kills | SIGKILL → all running again: min / median / max | LD + J + settle + 1 s | run took |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    leasehold_tests::limits::raise_nofile().context("raising RLIMIT_NOFILE")?;
    if !args.failover.is_empty() {
        return failovers(&args).await;
    }
    let Some(bin) = args.bin.clone() else {
        bail!("--bin <leasehold-apiserver> is required to measure membership cost");
    };
    println!(
        "| members | member-Lease writes/s (expected M/renew) | watch events delivered/s (expected M²/renew) | ramp-up |"
    );
    println!("|---|---|---|---|");
    for &m in &args.members {
        let dir = std::env::temp_dir().join(format!("bench-members-{}-{m}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let server = ApiServerProcess::start(&bin, &dir, &[])?;
        let (writes, events, ramp) = measure(&args, &server, m).await?;
        let renew = args.renew.as_secs_f64();
        println!(
            "| {m} | {writes:.1} ({:.1}) | {events:.0} ({:.0}) | {:.1} s |",
            m as f64 / renew,
            (m * m) as f64 / renew,
            ramp.as_secs_f64()
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
