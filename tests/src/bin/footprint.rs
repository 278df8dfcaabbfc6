//! `footprint`: the memory and CPU of one idle `leasehold agent`, alone against the bundled API server, with the
//! default timing (LD 15 s, RD 10 s, RP 2 s), in three configurations:
//!
//! 1. one election namespace;
//! 2. 50 election namespaces (one Lease each, one shared watch);
//! 3. one namespace and 10 spread tasks (`sleep` commands, each under its watchdog shim).
//!
//! For each it starts a fresh server and agent, waits until the agent leads every namespace (and holds and runs
//! every spread task), lets it settle, then samples `/proc` once a second over the window: `VmRSS` (mean and
//! max), `VmHWM` and `RssAnon` at the end, and the CPU time used (`utime + stime`), given as a share of one core
//! and as CPU-seconds per hour. The API requests the agent made over the window come from the server's counters.
//! With spread tasks the watchdog shims (re-executed `leasehold` processes, one per task) are reported too; the
//! `sleep` children are not counted.
//!
//! Run it on a release build (`make footprint`): the binaries are taken from the directory of this program.
//! Figures are printed as a Markdown table, never asserted.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use leasehold_tests::harness::{Agent, AgentSpec, Cluster, TaskDef, Timing, eventually};
use leasehold_tests::procfs;

/// Measures RSS and CPU of one idle agent with 1 namespace, 50 namespaces, and 10 spread tasks.
#[derive(Parser, Debug)]
struct Args {
    /// How long to sample each configuration.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// How long to let the agent settle after it leads, before sampling.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// How long the agent may take to lead everything.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    ready_within: Duration,
}

/// The production defaults the agent would run with (LD 15 s, RD 10 s, RP 2 s).
const DEFAULT_TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(15),
    renew_deadline: Duration::from_secs(10),
    retry_period: Duration::from_secs(2),
    grace: Duration::from_secs(1),
};

/// One configuration to measure.
struct Config {
    label: &'static str,
    namespaces: Vec<String>,
    spread_tasks: usize,
}

/// The watchdog shims of a configuration with tasks.
struct Shims {
    count: usize,
    /// Summed `Pss` (shared pages, such as the binary's text, divided among the processes that map them), KiB.
    pss_kib: u64,
    /// Summed `RssAnon`, KiB.
    anon_kib: u64,
    /// Their CPU time over the window.
    cpu: Duration,
}

/// What one window measured.
struct Measured {
    rss_mean_kib: f64,
    rss_max_kib: u64,
    hwm_kib: u64,
    anon_kib: u64,
    cpu: Duration,
    window: Duration,
    requests: u64,
    /// The watchdog shims, if any.
    shims: Option<Shims>,
}

impl Measured {
    fn cpu_share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.window.as_secs_f64()
    }
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

/// Whether the agent leads every namespace of `config` and holds and runs every spread task.
async fn steady(agent: &Agent, config: &Config) -> anyhow::Result<bool> {
    let doc = agent.election().await?;
    let namespaces = doc["namespaces"].as_array().context("no namespaces")?;
    let leading = namespaces
        .iter()
        .filter(|n| n["status"] == "success")
        .count();
    if leading != config.namespaces.len() {
        return Ok(false);
    }
    if config.spread_tasks == 0 {
        return Ok(true);
    }
    let held = doc["spread"]["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["held_here"] == true)
        .count();
    let running = namespaces
        .iter()
        .flat_map(|n| n["tasks"].as_array().into_iter().flatten())
        .filter(|t| t["state"] == "running")
        .count();
    Ok(held == config.spread_tasks && running == config.spread_tasks)
}

/// The watchdog shims of the agent: its child processes that are `leasehold` itself.
fn shims(agent_pid: u32) -> anyhow::Result<Vec<u32>> {
    Ok(procfs::descendants(agent_pid)?
        .into_iter()
        .filter(|p| procfs::comm(*p).is_ok_and(|c| c == "leasehold"))
        .collect())
}

fn shim_cpu(pids: &[u32]) -> Duration {
    pids.iter().filter_map(|p| procfs::cpu_time(*p).ok()).sum()
}

async fn measure(args: &Args, config: &Config) -> anyhow::Result<Measured> {
    let mut cluster = Cluster::start()?;
    cluster.timing = DEFAULT_TIMING;
    let ns: Vec<&str> = config.namespaces.iter().map(String::as_str).collect();
    let mut spec = AgentSpec::new("node-a").namespaces(&ns);
    for i in 0..config.spread_tasks {
        spec = spec.task(
            TaskDef {
                name: format!("sleeper-{i}"),
                namespace: config.namespaces[0].clone(),
                command: vec!["sleep".into(), "86400".into()],
                election: true,
                grace: DEFAULT_TIMING.grace,
                tags: Default::default(),
                mode: None,
            }
            .spread(),
        );
    }
    let agent = cluster.agent(spec).await?;
    let started = Instant::now();
    eventually(
        &format!("the agent to lead ({})", config.label),
        args.ready_within,
        || async { Ok(steady(&agent, config).await?.then_some(())) },
    )
    .await?;
    println!(
        "  {}: steady after {:.1} s; settling {} s, then sampling {} s",
        config.label,
        started.elapsed().as_secs_f64(),
        args.settle.as_secs(),
        args.window.as_secs()
    );
    tokio::time::sleep(args.settle).await;

    let pid = agent.pid();
    let shim_pids = shims(pid)?;
    if shim_pids.len() < config.spread_tasks {
        bail!(
            "expected {} watchdog shims under the agent, found {}",
            config.spread_tasks,
            shim_pids.len()
        );
    }
    let cpu0 = procfs::cpu_time(pid)?;
    let shim_cpu0 = shim_cpu(&shim_pids);
    let requests0 = cluster.requests_by(&agent.user, &[]).await?;
    let t0 = Instant::now();
    let (mut sum, mut n, mut max) = (0u64, 0u64, 0u64);
    let mut next = t0;
    while t0.elapsed() < args.window {
        let rss = procfs::status_kib(pid, "VmRSS")?;
        sum += rss;
        n += 1;
        max = max.max(rss);
        next += Duration::from_secs(1);
        tokio::time::sleep_until(next.into()).await;
    }
    let window = t0.elapsed();
    let cpu = procfs::cpu_time(pid)?.saturating_sub(cpu0);
    let requests = cluster
        .requests_by(&agent.user, &[])
        .await?
        .saturating_sub(requests0);
    if !steady(&agent, config).await? {
        bail!(
            "{}: the agent stopped leading during the window",
            config.label
        );
    }
    let total = |f: &dyn Fn(u32) -> anyhow::Result<u64>| -> u64 {
        shim_pids.iter().filter_map(|p| f(*p).ok()).sum()
    };
    let shims = (!shim_pids.is_empty()).then(|| Shims {
        count: shim_pids.len(),
        pss_kib: total(&|p| procfs::smaps_kib(p, "Pss")),
        anon_kib: total(&|p| procfs::status_kib(p, "RssAnon")),
        cpu: shim_cpu(&shim_pids).saturating_sub(shim_cpu0),
    });
    Ok(Measured {
        rss_mean_kib: sum as f64 / n.max(1) as f64,
        rss_max_kib: max,
        hwm_kib: procfs::status_kib(pid, "VmHWM")?,
        anon_kib: procfs::status_kib(pid, "RssAnon")?,
        cpu,
        window,
        requests,
        shims,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let configs = [
        Config {
            label: "1 namespace",
            namespaces: vec!["default".into()],
            spread_tasks: 0,
        },
        Config {
            label: "50 namespaces",
            namespaces: (0..50).map(|i| format!("ns-{i:02}")).collect(),
            spread_tasks: 0,
        },
        Config {
            label: "1 namespace + 10 spread tasks",
            namespaces: vec!["default".into()],
            spread_tasks: 10,
        },
    ];
    println!(
        "footprint: one idle agent (release build from {}), LD 15 s / RD 10 s / RP 2 s, window {} s",
        leasehold_tests::harness::bin_dir()?.display(),
        args.window.as_secs()
    );
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| configuration | VmRSS mean / max | VmHWM | RssAnon | CPU (share of one core) | CPU-s per hour | API requests/s |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---:|");
    let mut notes = String::new();
    for config in &configs {
        let m = measure(&args, config).await?;
        let _ = writeln!(
            table,
            "| {} | {} / {} | {} | {} | {:.3} % | {:.1} | {:.2} |",
            config.label,
            mib(m.rss_mean_kib),
            mib(m.rss_max_kib as f64),
            mib(m.hwm_kib as f64),
            mib(m.anon_kib as f64),
            m.cpu_share() * 100.0,
            m.cpu_share() * 3600.0,
            m.requests as f64 / m.window.as_secs_f64()
        );
        if let Some(sh) = &m.shims {
            let _ = writeln!(
                notes,
                "- {}: the {} watchdog shims (one per task) add {} PSS in all ({} anonymous), {} each, and {:.1} \
                 CPU-s per hour in all.",
                config.label,
                sh.count,
                mib(sh.pss_kib as f64),
                mib(sh.anon_kib as f64),
                mib(sh.pss_kib as f64 / sh.count as f64),
                sh.cpu.as_secs_f64() / m.window.as_secs_f64() * 3600.0
            );
        }
    }
    println!("\n{table}{notes}");
    Ok(())
}
