//! `bench-elections`: the election bench. For each implementation and N it starts a fresh
//! `leasehold-apiserver`, spreads N candidates (one API user each) over a few `bench-candidates` processes, and
//! measures:
//!
//! 1. the first leader and the cold start (settle time), counting simultaneous leaders;
//! 2. steady state over a window: requests/s of the leader and of the followers, committed writes/s, watch
//!    events delivered/s (all from the server's counters), and CPU time of the candidate processes;
//! 3. graceful handovers: `release` the leader, time until another candidate starts leading, count the write
//!    attempts in between, refill the slot with a new candidate;
//! 4. crash failovers: the same with `crash`.
//!
//! Each phase is bounded by a count and a time budget, so the whole bench has a known upper bound.

pub mod charts;
pub mod report;
pub mod run;
pub mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

use self::report::{RunResult, Steady, Takeovers};
use self::run::{Counters, Run};
use crate::Impl;
use crate::protocol::{Command, StopReason};
use crate::timings::LEASE_DURATION;

/// Options of `bench-elections`.
#[derive(Parser, Debug, Clone)]
#[command(
    about = "Election benchmarks: leasehold-lease and its crates.io peers side by side on leasehold-apiserver"
)]
pub struct DriverArgs {
    /// The leasehold-apiserver binary.
    #[arg(long, default_value = "target/release/leasehold-apiserver")]
    pub apiserver_bin: PathBuf,
    /// The bench-candidates binary (default: next to this program).
    #[arg(long)]
    pub candidates_bin: Option<PathBuf>,
    /// Implementations, comma-separated (leasehold, kube-lease-manager, kube-leader-election, kube-coordinate).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "leasehold,kube-lease-manager,kube-leader-election,kube-coordinate"
    )]
    pub impls: Vec<Impl>,
    /// Candidate counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub n: Vec<usize>,
    /// Most graceful handovers per run.
    #[arg(long, default_value_t = 50)]
    pub handovers: usize,
    /// Time budget of the graceful handovers per run (the last one may overrun it).
    #[arg(long, default_value = "100s", value_parser = humantime_secs)]
    pub handover_budget: Duration,
    /// Most crash failovers per run.
    #[arg(long, default_value_t = 50)]
    pub crashes: usize,
    /// Time budget of the crash failovers per run (the last one may overrun it).
    #[arg(long, default_value = "100s", value_parser = humantime_secs)]
    pub crash_budget: Duration,
    /// Steady-state window for N < 1000.
    #[arg(long, default_value = "60s", value_parser = humantime_secs)]
    pub steady: Duration,
    /// Steady-state window for N ≥ 1000. Watchers re-open their watch when the server ends it (leasehold:
    /// `timeoutSeconds` 540 to 660 s, drawn per process; the peers: about once a minute), and after a simultaneous
    /// cold start they all do it around the same moment, so a window shorter than the longest timeout can miss
    /// every re-open: to count leasehold's, give both windows at least 660 s.
    #[arg(long, default_value = "60s", value_parser = humantime_secs)]
    pub steady_large: Duration,
    /// Time after the first leader before measuring, so the cold start is over.
    #[arg(long, default_value = "20s", value_parser = humantime_secs)]
    pub settle: Duration,
    /// Pause after a slot was refilled, before the next takeover.
    #[arg(long, default_value = "2s", value_parser = humantime_secs)]
    pub gap: Duration,
    /// The short form for `make test`: N=10, short windows, a few takeovers. Overrides the counts and times.
    #[arg(long)]
    pub quick: bool,
    /// Write the results as JSON here (rewritten after each run).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only print the tables of earlier result files (merged, later files win), run nothing.
    #[arg(long, num_args = 1..)]
    pub report: Vec<PathBuf>,
    /// Also draw the results as SVG charts into this directory (handover.svg, failover.svg, steady.svg).
    #[arg(long)]
    pub charts: Option<PathBuf>,
}

/// Parses `90s`, `2m` or a plain number of seconds.
fn humantime_secs(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(m) = s.strip_suffix("ms") {
        (m, 0.001)
    } else if let Some(m) = s.strip_suffix('s') {
        (m, 1.0)
    } else if let Some(m) = s.strip_suffix('m') {
        (m, 60.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>()
        .map(|v| Duration::from_secs_f64(v * mult))
        .map_err(|e| format!("{s:?}: {e}"))
}

impl DriverArgs {
    fn apply_quick(&mut self) {
        if self.quick {
            self.n = vec![10];
            self.handovers = 3;
            self.handover_budget = Duration::from_secs(30);
            self.crashes = 1;
            self.crash_budget = Duration::from_secs(1);
            self.steady = Duration::from_secs(10);
            self.settle = Duration::from_secs(5);
            self.gap = Duration::from_secs(1);
        }
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Draws `results` into `--charts`, if it was given, and says where.
fn draw_charts(args: &DriverArgs, results: &[RunResult]) -> anyhow::Result<()> {
    if let Some(dir) = &args.charts {
        for file in charts::write(results, dir)? {
            eprintln!("chart: {}", file.display());
        }
    }
    Ok(())
}

/// The `bench-elections` program.
///
/// # Errors
/// When a run cannot start at all (missing binaries, server not starting) or no leader is ever elected.
pub async fn main_with(mut args: DriverArgs) -> anyhow::Result<()> {
    if !args.report.is_empty() {
        let mut all: Vec<RunResult> = Vec::new();
        for f in &args.report {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let mut rs: Vec<RunResult> = serde_json::from_str(&text)?;
            all.retain(|a| {
                !rs.iter()
                    .any(|r| r.implementation == a.implementation && r.n == a.n)
            });
            all.append(&mut rs);
        }
        all.sort_by_key(|r| (r.n, r.implementation));
        print!("{}", report::tables(&all));
        return draw_charts(&args, &all);
    }
    args.apply_quick();
    server::raise_nofile();
    let candidates_bin = match &args.candidates_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("bench-candidates"),
    };
    anyhow::ensure!(
        candidates_bin.exists(),
        "{} not found; build bench-candidates",
        candidates_bin.display()
    );
    anyhow::ensure!(
        args.apiserver_bin.exists(),
        "{} not found; build leasehold-apiserver",
        args.apiserver_bin.display()
    );
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for &n in &args.n {
        for &implementation in &args.impls {
            eprintln!("== {implementation}, N={n}");
            let dir = std::env::temp_dir().join(format!(
                "leasehold-bench-{}-{implementation}-{n}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir)?;
            match run_one(&args, implementation, n, &candidates_bin, &dir).await {
                Ok(r) => {
                    eprintln!("   done in {:.0} s", r.duration_s);
                    results.push(r);
                }
                Err(e) => {
                    eprintln!("   FAILED: {e:#}");
                    failures.push(format!("{implementation} N={n}: {e:#}"));
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
            if let Some(out) = &args.out {
                std::fs::write(out, serde_json::to_vec_pretty(&results)?)?;
            }
        }
    }
    print!("{}", report::tables(&results));
    draw_charts(&args, &results)?;
    if results.is_empty() {
        anyhow::bail!("no run completed: {}", failures.join("; "));
    }
    for f in &failures {
        println!("FAILED: {f}");
    }
    Ok(())
}

async fn run_one(
    args: &DriverArgs,
    implementation: Impl,
    n: usize,
    candidates_bin: &std::path::Path,
    dir: &std::path::Path,
) -> anyhow::Result<RunResult> {
    let began = Instant::now();
    let processes = if n <= 10 { 2 } else { 4 };
    let spawned = crate::clock::mono_ns();
    let mut run = Run::start(
        implementation,
        n,
        processes,
        &args.apiserver_bin,
        candidates_bin,
        dir,
    )
    .await?;
    let ready = run
        .pump_until(Instant::now() + Duration::from_secs(120), Run::all_ready)
        .await;
    anyhow::ensure!(
        ready,
        "the candidate processes did not start within 120 s: {:?}",
        run.errors
    );
    let first = run
        .pump_until(
            Instant::now() + 3 * LEASE_DURATION + Duration::from_secs(30),
            |r| !r.starts.is_empty(),
        )
        .await;
    if !first {
        let errors = run.errors.clone();
        run.stop().await;
        anyhow::bail!(
            "no leader within {} s; candidate errors: {errors:?}",
            (3 * LEASE_DURATION).as_secs() + 30
        );
    }
    let first_leader_ms = run.starts.first().map(|s| ms(s.2.saturating_sub(spawned)));
    eprintln!(
        "   first leader after {:.0} ms; settling {:?}",
        first_leader_ms.unwrap_or(0.0),
        args.settle
    );
    run.pump_for(args.settle).await;
    let cold_end = crate::clock::mono_ns();
    let max_leaders_cold = run.max_leaders(cold_end);

    let window = if n >= 1000 {
        args.steady_large
    } else {
        args.steady
    };
    let steady = measure_steady(&mut run, n, window).await?;
    eprintln!(
        "   steady: {:.3} req/s total, leader {:.3}, followers {:.3}",
        steady.leader_rps + steady.followers_rps,
        steady.leader_rps,
        steady.followers_rps
    );
    let graceful = takeovers(&mut run, args, true).await?;
    eprintln!(
        "   graceful: {} done of {} tried",
        graceful.latencies_ms.len(),
        graceful.tried
    );
    let crash = takeovers(&mut run, args, false).await?;
    eprintln!(
        "   crash: {} done of {} tried",
        crash.latencies_ms.len(),
        crash.tried
    );
    let max_leaders = run.max_leaders(u64::MAX);
    let errors = run.errors.clone();
    run.stop().await;
    Ok(RunResult {
        implementation,
        n,
        processes,
        first_leader_ms,
        steady: Some(steady),
        graceful,
        crash,
        max_leaders_cold,
        max_leaders,
        errors,
        duration_s: began.elapsed().as_secs_f64(),
    })
}

async fn measure_steady(run: &mut Run, n: usize, window: Duration) -> anyhow::Result<Steady> {
    let leaders_before = run.leaders();
    let starts_before = run.starts.len();
    let (c0, cpu0, t0) = (run.counters().await?, run.cpu_seconds(), Instant::now());
    run.pump_for(window).await;
    let (c1, cpu1) = (run.counters().await?, run.cpu_seconds());
    let secs = t0.elapsed().as_secs_f64();
    let users: Vec<String> = (0..n).map(|s| format!("c{s}")).collect();
    let deltas: Vec<_> = users.iter().map(|u| c1.user_delta(&c0, u)).collect();
    let leader = deltas
        .iter()
        .enumerate()
        .max_by_key(|(_, d)| (d.writes, d.total))
        .map_or(0, |(i, _)| i);
    let mut by_verb = std::collections::BTreeMap::new();
    for d in &deltas {
        for (verb, k) in &d.by_verb {
            *by_verb.entry(verb.clone()).or_insert(0.0) += *k as f64 / secs;
        }
    }
    let followers: Vec<f64> = deltas
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, d)| d.total as f64 / secs * 60.0)
        .collect();
    let followers_rps = followers.iter().sum::<f64>() / 60.0;
    Ok(Steady {
        window_s: secs,
        leader_rps: deltas.get(leader).map_or(0.0, |d| d.total as f64 / secs),
        followers_rps,
        follower_mean_rpm: if followers.is_empty() {
            0.0
        } else {
            followers.iter().sum::<f64>() / followers.len() as f64
        },
        follower_max_rpm: followers.iter().copied().fold(0.0, f64::max),
        writes_ps: c1.writes.saturating_sub(c0.writes) as f64 / secs,
        watch_events_ps: c1.watch_events.saturating_sub(c0.watch_events) as f64 / secs,
        by_verb_ps: by_verb,
        cpu_s_per_candidate_hour: (cpu1 - cpu0) / n as f64 / (secs / 3600.0),
        leader_changed: run.starts.len() != starts_before || run.leaders() != leaders_before,
    })
}

/// Write attempts, and requests of any verb, between `c0` and the new leader: everyone but the old leader up to
/// `c2` (so that losing attempts in flight are counted), the new leader only up to `c1` (its acquisition, not its
/// first renews).
fn takeover_cost(
    c0: &Counters,
    c1: &Counters,
    c2: &Counters,
    old: usize,
    new: usize,
) -> (u64, u64) {
    let (old, new) = (format!("c{old}"), format!("c{new}"));
    let (mut writes, mut total) = (0, 0);
    for user in c2
        .users
        .keys()
        .filter(|u| **u != old && **u != new && u.starts_with('c'))
    {
        let d = c2.user_delta(c0, user);
        writes += d.writes;
        total += d.total;
    }
    let d = c1.user_delta(c0, &new);
    (writes + d.writes, total + d.total)
}

/// Runs graceful (`release`) or crash takeovers until the count or the time budget is used up.
async fn takeovers(run: &mut Run, args: &DriverArgs, graceful: bool) -> anyhow::Result<Takeovers> {
    let (max, budget) = if graceful {
        (args.handovers, args.handover_budget)
    } else {
        (args.crashes, args.crash_budget)
    };
    let timeout = 3 * LEASE_DURATION + Duration::from_secs(15);
    let began = Instant::now();
    let mut out = Takeovers::default();
    while out.tried < max && (out.tried == 0 || began.elapsed() < budget) {
        // One leader to take over from.
        if !run
            .pump_until(Instant::now() + timeout, |r| r.leaders().len() == 1)
            .await
        {
            eprintln!(
                "   no single leader within {timeout:?} (leaders: {:?}); skipping",
                run.leaders()
            );
            if run.leaders().is_empty() {
                break;
            }
        }
        let Some(&old) = run.leaders().first() else {
            break;
        };
        let (starts_before, stops_before) = (run.starts.len(), run.stops.len());
        let c0 = run.counters().await?;
        out.tried += 1;
        run.command(if graceful {
            Command::Release(old)
        } else {
            Command::Crash(old)
        })
        .await?;
        let want = if graceful {
            StopReason::Release
        } else {
            StopReason::Crash
        };
        let done = run
            .pump_until(Instant::now() + timeout, |r| {
                r.stops[stops_before..]
                    .iter()
                    .any(|s| s.0 == old && s.3 == want)
                    && r.starts[starts_before..].iter().any(|s| s.0 != old)
            })
            .await;
        let stop_t = run.stops[stops_before..]
            .iter()
            .find(|s| s.0 == old && s.3 == want)
            .map(|s| s.2);
        if let (true, Some(stop_t)) = (done, stop_t) {
            let c1 = run.counters().await?;
            let Some(&(new, _, start_t)) = run.starts[starts_before..].iter().find(|s| s.0 != old)
            else {
                break;
            };
            run.pump_for(Duration::from_secs(1)).await;
            let c2 = run.counters().await?;
            out.latencies_ms.push(ms(start_t.saturating_sub(stop_t)));
            let (writes, requests) = takeover_cost(&c0, &c1, &c2, old, new);
            out.attempts.push(writes);
            out.requests.push(requests);
        } else {
            out.timeouts += 1;
        }
        // Refill the slot with a new candidate, and let it settle.
        let ups = run.ups.len();
        run.command(Command::Spawn(old)).await?;
        run.pump_until(Instant::now() + Duration::from_secs(30), |r| {
            r.ups[ups..].iter().any(|u| u.0 == old)
        })
        .await;
        run.pump_for(args.gap).await;
    }
    Ok(out)
}
