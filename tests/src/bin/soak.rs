//! `soak`: the fault soak. Five real `leasehold agent` processes elect a leader for one namespace against the
//! bundled API server, run a leader-gated stamp task and a few spread stamp tasks, and live through a random
//! (seeded) schedule of faults, one at a time with a recovery wait between:
//!
//! - the leader SIGKILLed (and restarted in place, as the kubelet restarts a crashed container: same node, same
//!   pod UID, but a new per-process nonce, so a new holder identity), SIGTERMed (and replaced by a new pod),
//!   SIGSTOPped past LD then SIGCONTed;
//! - the leader partitioned from the API server with its requests hanging, its watches frozen, or both;
//! - the API server restarted with its state kept, and with its state wiped (resourceVersions start again below
//!   what the clients saw);
//! - bursts of 500s and of 429s, added latency, every watch closed;
//! - the leader replaced by an agent whose wall clock is an hour off (one agent runs an hour slow from the
//!   start, too), given by libfaketime around the real binary (`AgentSpec::skewed_wall_clock`; the agent has no
//!   hook for it), so the soak needs a dynamically linked agent and Debian's faketime package (`make tools`).
//!
//! Faults are drawn from a shuffled bag, so every kind comes up once before any comes up again.
//!
//! Two checks run over the whole soak, and a third after each fault:
//! - **No overlap in the work**: every stamp task holds a flock while it runs and the stamp file records every
//!   interval, so [`Stamps::check_exclusive`] proves that no leader or spread task ever ran twice at once.
//! - **No overlap in what the agents say**: every agent's `GET /v1/election` is sampled about every 100 ms and
//!   [`ClaimLog`] checks that no two terms were reported as leading at the same moment.
//! - **Recovery**: after a fault ends there is exactly one leader that every other live agent follows within
//!   LD + RD + 2 s, counted from the end of the fault (measured; the bound decides pass or fail).
//!
//! It prints a Markdown summary (faults survived by kind, worst recovery per kind, overlaps) and exits non-zero
//! on an overlap, a missed recovery or an agent that died by itself. Run it with `make soak` (10 minutes, release
//! build) or `make soak-quick` (2 minutes, part of `make test`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use leasehold_tests::claims::{ClaimLog, Sample};
use leasehold_tests::harness::{Agent, AgentSpec, Cluster, Timing};
use leasehold_tests::stamps::{Event, Stamps};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The election namespace of the soak, which is also the Kubernetes namespace of its Leases.
const NS: &str = "default";
/// The election Lease.
const LEASE: &str = "leasehold-default";
/// The leader-gated stamp task.
const LEADER_TASK: &str = "stamp";
/// How often the agents are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How long one sample of one agent may take before it counts as unanswered.
const SAMPLE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a missed recovery is still watched, so the report can say how long it really took.
const OVERTIME: Duration = Duration::from_secs(150);
/// How long spread tasks may take to be held again after a fault before the report notes it (informational).
const SPREAD_SETTLE: Duration = Duration::from_secs(40);

/// Runs leasehold agents through a random schedule of faults and checks that leadership and tasks never overlap.
#[derive(Parser, Debug)]
struct Args {
    /// How long to keep injecting faults (e.g. `10m`, `2m`).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The seed of the fault schedule; random when absent (the seed used is printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Only these fault kinds (comma-separated); all when absent.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<Kind>,
    /// How many agents run at once.
    #[arg(long, default_value_t = 5)]
    agents: usize,
    /// How many spread-mode stamp tasks the agents share.
    #[arg(long, default_value_t = 3)]
    spread_tasks: usize,
    /// Also write the Markdown summary to this file.
    #[arg(long)]
    summary_out: Option<std::path::PathBuf>,
    /// `RUST_LOG` for the agents (e.g. `info,leasehold_lease=debug`), to investigate a failure; with `E2E_KEEP=1`
    /// the logs stay in the temp dir.
    #[arg(long)]
    agent_log: Option<String>,
}

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Kind {
    /// SIGKILL the leader, then restart it in place (same node and pod UID).
    LeaderKill,
    /// SIGTERM the leader (a graceful handover), then start a new pod on its node.
    LeaderTerm,
    /// SIGSTOP the leader for longer than LD, then SIGCONT it.
    LeaderStop,
    /// Partition the leader: its requests hang, its watches keep flowing.
    PartitionHang,
    /// Partition the leader: its watches freeze, its requests work.
    PartitionFreezeWatches,
    /// Partition the leader completely.
    PartitionFull,
    /// Restart the API server, keeping its state.
    RestartKeep,
    /// Restart the API server with its state wiped.
    RestartWipe,
    /// Every API request answers 500 for a while.
    Errors500,
    /// Every API request answers 429 (with Retry-After) for a while.
    Errors429,
    /// Every API request is delayed for a while.
    Latency,
    /// Every open watch is closed.
    CloseWatches,
    /// SIGTERM the leader and replace it with an agent whose wall clock is an hour off.
    ClockSkew,
}

impl Kind {
    const ALL: [Kind; 13] = [
        Kind::LeaderKill,
        Kind::LeaderTerm,
        Kind::LeaderStop,
        Kind::PartitionHang,
        Kind::PartitionFreezeWatches,
        Kind::PartitionFull,
        Kind::RestartKeep,
        Kind::RestartWipe,
        Kind::Errors500,
        Kind::Errors429,
        Kind::Latency,
        Kind::CloseWatches,
        Kind::ClockSkew,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::LeaderKill => "leader SIGKILL, restarted in place",
            Kind::LeaderTerm => "leader SIGTERM, new pod",
            Kind::LeaderStop => "leader SIGSTOP past LD, then SIGCONT",
            Kind::PartitionHang => "leader partition: requests hang",
            Kind::PartitionFreezeWatches => "leader partition: watches freeze",
            Kind::PartitionFull => "leader partition: full",
            Kind::RestartKeep => "API server restart, state kept",
            Kind::RestartWipe => "API server restart, state wiped",
            Kind::Errors500 => "burst of 500s",
            Kind::Errors429 => "burst of 429s",
            Kind::Latency => "added latency",
            Kind::CloseWatches => "every watch closed",
            Kind::ClockSkew => "leader replaced by an agent 1 h off",
        }
    }
}

/// What one agent said in one sample.
#[derive(Clone, Debug)]
struct Said {
    status: String,
    holder: Option<String>,
    epoch: Option<u64>,
    /// The spread tasks this agent holds.
    spread_held: Vec<String>,
}

/// One round of samples: what each agent said, aligned with [`Soak::members`] (`None`: frozen or no answer),
/// and the election Lease as the API server has it (holder, leaseTransitions; `None`: absent or no answer).
struct Round {
    said: Vec<Option<Said>>,
    lease: Option<(String, u64)>,
}

/// A running agent of the soak.
struct Member {
    agent: Agent,
    /// Unique per process: its API server user and log name.
    key: String,
    /// The node it runs on (`NODE_NAME`).
    node: String,
    /// Its wall-clock offset, if any.
    skew: Option<&'static str>,
    /// SIGSTOPped right now: not sampled, not expected to agree.
    frozen: bool,
}

/// How one fault went.
struct Outcome {
    kind: Kind,
    detail: String,
    /// From the end of the fault to one agreed leader; `None` if that never came.
    recovery: Option<Duration>,
    /// How long spread tasks took to be held again, if they were within [`SPREAD_SETTLE`].
    spread: Option<Duration>,
}

struct Soak {
    cluster: Cluster,
    members: Vec<Member>,
    claims: ClaimLog,
    rng: StdRng,
    spawned: usize,
    pods: BTreeMap<String, usize>,
    bound: Duration,
    spread_tasks: Vec<String>,
    outcomes: Vec<Outcome>,
    /// Things that went wrong besides recoveries and overlaps (an agent that died by itself, a rejoin that failed).
    failures: Vec<String>,
    started: Instant,
    /// The holder identities that ran with a wall-clock offset.
    skewed_holders: Vec<String>,
    /// `RUST_LOG` for the agents, if set.
    agent_log: Option<String>,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn parse_said(doc: &Value) -> Option<Said> {
    let ns = doc["namespaces"]
        .as_array()?
        .iter()
        .find(|n| n["namespace"] == NS)?;
    let spread_held = doc["spread"]["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["held_here"] == true)
        .filter_map(|t| t["task"].as_str().map(str::to_string))
        .collect();
    Some(Said {
        status: ns["status"].as_str()?.to_string(),
        holder: ns["holder"].as_str().map(str::to_string),
        epoch: ns["epoch"].as_u64(),
        spread_held,
    })
}

impl Soak {
    /// The agent spec of a new process on `node` with pod UID `uid`.
    fn spec(
        &mut self,
        node: &str,
        uid: &str,
        skew: Option<&'static str>,
    ) -> anyhow::Result<AgentSpec> {
        self.spawned += 1;
        let key = format!("p{:03}-{node}", self.spawned);
        let mut spec = AgentSpec::new(&key)
            .namespaces(&[NS])
            .env("NODE_NAME", node)
            .env("POD_UID", uid)
            .env("LEASEHOLD_MEMBER_DURATION", "3s")
            .env("LEASEHOLD_MEMBER_RENEW", "1s")
            .task(self.cluster.stamp_task(LEADER_TASK, NS)?);
        for t in &self.spread_tasks {
            spec = spec.task(self.cluster.stamp_task(t, NS)?.spread());
        }
        if let Some(offset) = skew {
            spec = spec.skewed_wall_clock(offset);
        }
        if let Some(filter) = &self.agent_log {
            spec = spec.env("RUST_LOG", filter);
        }
        Ok(spec)
    }

    /// Starts an agent on `node`; `same_pod` keeps the node's current pod UID (a container restart), otherwise a
    /// new pod UID is used (a new pod).
    async fn start_member(
        &mut self,
        node: &str,
        same_pod: bool,
        skew: Option<&'static str>,
    ) -> anyhow::Result<()> {
        let generation = self.pods.entry(node.to_string()).or_insert(0);
        if !same_pod {
            *generation += 1;
        }
        let uid = format!("uid-{node}-{generation}");
        let spec = self.spec(node, &uid, skew)?;
        let key = spec.node.clone();
        let agent = self.cluster.agent(spec).await?;
        if skew.is_some() && !self.skewed_holders.contains(&agent.holder) {
            self.skewed_holders.push(agent.holder.clone());
        }
        self.members.push(Member {
            agent,
            key,
            node: node.to_string(),
            skew,
            frozen: false,
        });
        Ok(())
    }

    /// Samples every live, unfrozen agent once (concurrently) and records what they claim. An agent that exited
    /// by itself is a failure; it is removed (and replaced by the next settle).
    async fn round(&mut self) -> Round {
        let mut exited = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            if let Ok(Some(status)) = m.agent.try_exit() {
                exited.push((i, status));
            }
        }
        for (i, status) in exited.into_iter().rev() {
            let m = self.members.remove(i);
            self.claims.close(&m.key);
            self.failures.push(format!(
                "agent {} ({}) exited by itself with {status}:\n{}",
                m.key,
                m.agent.holder,
                m.agent.log_tail(20)
            ));
        }
        let futures = self.members.iter().map(|m| async move {
            if m.frozen {
                return None;
            }
            let sent = Instant::now();
            let doc = tokio::time::timeout(SAMPLE_TIMEOUT, m.agent.election()).await;
            let recv = Instant::now();
            let said = doc.ok().and_then(Result::ok).and_then(|d| parse_said(&d));
            Some((said, sent, recv))
        });
        let lease = async {
            let got = tokio::time::timeout(SAMPLE_TIMEOUT, self.cluster.lease(NS, LEASE)).await;
            let lease = got.ok()?.ok()??;
            let spec = &lease["spec"];
            Some((
                spec["holderIdentity"].as_str()?.to_string(),
                spec["leaseTransitions"].as_u64().unwrap_or(0),
            ))
        };
        let (results, lease) = tokio::join!(futures::future::join_all(futures), lease);
        let mut said = Vec::with_capacity(results.len());
        for (m, r) in self.members.iter().zip(results) {
            let Some((s, sent, recv)) = r else {
                said.push(None);
                continue;
            };
            let sample = match &s {
                None => Sample::Unknown,
                Some(s) if s.status == "success" => Sample::Leading {
                    holder: m.agent.holder.clone(),
                    epoch: s.epoch.unwrap_or(0),
                },
                Some(_) => Sample::NotLeading,
            };
            self.claims.record(&m.key, sample, sent, recv);
            said.push(s);
        }
        Round { said, lease }
    }

    /// The index of the one leader that every other unfrozen agent follows and that the Lease on the server
    /// names, in the epoch the leader reports, if they all answered and agree.
    fn agreed(&self, round: &Round) -> Option<usize> {
        let mut leader = None;
        for (i, (m, s)) in self.members.iter().zip(&round.said).enumerate() {
            if m.frozen {
                continue;
            }
            if s.as_ref()?.status == "success" {
                if leader.is_some() {
                    return None;
                }
                leader = Some(i);
            }
        }
        let leader = leader?;
        let holder = &self.members[leader].agent.holder;
        let epoch = round.said[leader].as_ref()?.epoch;
        if round.lease.as_ref() != Some(&(holder.clone(), epoch?)) {
            return None;
        }
        let all_follow = self
            .members
            .iter()
            .zip(&round.said)
            .enumerate()
            .all(|(i, (m, s))| {
                i == leader
                    || m.frozen
                    || s.as_ref().is_some_and(|s| {
                        s.status == "defeat" && s.holder.as_deref() == Some(holder.as_str())
                    })
            });
        all_follow.then_some(leader)
    }

    /// Whether every spread task is held by exactly one unfrozen agent.
    fn spread_settled(&self, round: &Round) -> bool {
        let mut held: BTreeMap<&str, usize> = BTreeMap::new();
        for (m, s) in self.members.iter().zip(&round.said) {
            if m.frozen {
                continue;
            }
            let Some(s) = s else { return false };
            for t in &s.spread_held {
                *held.entry(t.as_str()).or_default() += 1;
            }
        }
        self.spread_tasks
            .iter()
            .all(|t| held.get(t.as_str()) == Some(&1))
    }

    /// Samples until `cond` holds or `within` passes; returns its value and when the round that showed it ended.
    async fn until<T>(
        &mut self,
        within: Duration,
        mut cond: impl FnMut(&Self, &Round) -> Option<T>,
    ) -> Option<(T, Instant)> {
        let deadline = Instant::now() + within;
        loop {
            let round = self.round().await;
            if let Some(v) = cond(self, &round) {
                return Some((v, Instant::now()));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }

    /// Keeps sampling for `period`: the deliberate length of a fault or a pause.
    async fn hold(&mut self, period: Duration) {
        let end = Instant::now() + period;
        while Instant::now() < end {
            self.round().await;
            tokio::time::sleep(SAMPLE_EVERY.min(end.saturating_duration_since(Instant::now())))
                .await;
        }
    }

    /// The time from `end` to one agreed leader, watched for up to the bound plus [`OVERTIME`].
    async fn recover(&mut self, end: Instant) -> Option<Duration> {
        let within = (self.bound + OVERTIME).saturating_sub(end.elapsed());
        self.until(within, |s, r| s.agreed(r))
            .await
            .map(|(_, at)| at.saturating_duration_since(end))
    }

    /// The current agreed leader, waiting for one if needed.
    async fn leader(&mut self) -> anyhow::Result<usize> {
        match self.until(self.bound, |s, r| s.agreed(r)).await {
            Some((i, _)) => Ok(i),
            None => bail!("no agreed leader before the fault"),
        }
    }

    /// An admin call, retried on a connection error (a restart drops the admin client's connection too).
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..5 {
            match self.cluster.admin_call(method, path, body.as_ref()).await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt")))
            .with_context(|| format!("admin {method} {path}"))
    }

    fn random_ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.rng.random_range(lo..=hi))
    }

    /// Runs one fault and measures the recovery after it.
    async fn fault(&mut self, kind: Kind) -> anyhow::Result<Outcome> {
        let t = self.cluster.timing;
        let leader = self.leader().await?;
        let (detail, end) = match kind {
            Kind::LeaderKill => {
                let m = self.members.remove(leader);
                m.agent.kill()?;
                let end = Instant::now();
                self.claims.close(&m.key);
                let (node, skew) = (m.node.clone(), m.skew);
                drop(m);
                self.start_member(&node, true, skew).await?;
                (format!("killed {node}, restarted in place"), end)
            }
            Kind::LeaderTerm | Kind::ClockSkew => {
                let mut m = self.members.remove(leader);
                m.agent.terminate()?;
                let end = Instant::now();
                let status = m.agent.wait_exit(t.takeover_bound()).await;
                self.claims.close(&m.key);
                match status {
                    Ok(s) if s.success() => {}
                    other => self.failures.push(format!(
                        "{} after SIGTERM: {other:?}\n{}",
                        m.key,
                        m.agent.log_tail(20)
                    )),
                }
                let skew = if kind == Kind::ClockSkew {
                    Some(if self.rng.random_bool(0.5) {
                        "+1h"
                    } else {
                        "-1h"
                    })
                } else {
                    m.skew
                };
                let node = m.node.clone();
                drop(m);
                let recovery = self.recover(end).await;
                self.start_member(&node, false, skew).await?;
                let detail = match skew {
                    Some(s) if kind == Kind::ClockSkew => format!("{node} replaced, clock {s}"),
                    _ => format!("{node} replaced"),
                };
                return self.finish(kind, detail, recovery).await;
            }
            Kind::LeaderStop => {
                let period = t.lease_duration + t.renew_deadline + self.random_ms(0, 2000);
                self.members[leader].frozen = true;
                self.members[leader].agent.freeze()?;
                let frozen_at = Instant::now();
                let takeover = self.until(period, |s, r| s.agreed(r)).await;
                self.hold(period.saturating_sub(frozen_at.elapsed())).await;
                self.members[leader].agent.thaw()?;
                self.members[leader].frozen = false;
                let taken = takeover
                    .map(|(_, at)| secs(at - frozen_at))
                    .unwrap_or_else(|| "none".into());
                (
                    format!(
                        "{} stopped {}; others agreed on a leader after {taken}",
                        self.members[leader].node,
                        secs(period)
                    ),
                    Instant::now(),
                )
            }
            Kind::PartitionHang | Kind::PartitionFreezeWatches | Kind::PartitionFull => {
                let mode = match kind {
                    Kind::PartitionHang => "hangRequests",
                    Kind::PartitionFreezeWatches => "freezeWatches",
                    _ => "full",
                };
                let user = self.members[leader].key.clone();
                let period = self.random_ms(1000, 8000);
                self.admin(
                    "POST",
                    "partition",
                    Some(json!({ "user": user, "mode": mode })),
                )
                .await?;
                self.hold(period).await;
                self.admin("POST", "heal", Some(json!({ "user": user })))
                    .await?;
                (
                    format!("{} cut off for {}", self.members[leader].node, secs(period)),
                    Instant::now(),
                )
            }
            Kind::RestartKeep | Kind::RestartWipe => {
                let keep = kind == Kind::RestartKeep;
                // The restart drops the admin connection too, so the answer may be lost: one attempt only.
                if let Err(e) = self
                    .cluster
                    .admin_call("POST", "restart", Some(&json!({ "keepState": keep })))
                    .await
                {
                    println!("  (restart answer lost, as expected when connections drop: {e:#})");
                }
                (String::new(), Instant::now())
            }
            Kind::Errors500 | Kind::Errors429 => {
                let period = self.random_ms(1000, 5000);
                let fraction = if self.rng.random_bool(0.5) {
                    1.0
                } else {
                    self.rng.random_range(0.5..1.0)
                };
                let mut rule = json!({ "code": if kind == Kind::Errors429 { 429 } else { 500 }, "fraction": fraction });
                let mut detail =
                    format!("{:.0} % of requests for {}", fraction * 100.0, secs(period));
                if kind == Kind::Errors429 {
                    let retry = self.rng.random_range(1..=3u32);
                    rule["retryAfterSeconds"] = json!(retry);
                    detail.push_str(&format!(", Retry-After {retry} s"));
                }
                self.admin("POST", "errors", Some(rule)).await?;
                self.hold(period).await;
                self.admin("DELETE", "errors", None).await?;
                (detail, Instant::now())
            }
            Kind::Latency => {
                let millis = self.rng.random_range(100..=1500u64);
                let period = self.random_ms(3000, 10_000);
                self.admin("POST", "latency", Some(json!({ "millis": millis })))
                    .await?;
                self.hold(period).await;
                self.admin("POST", "latency", Some(json!({ "millis": null })))
                    .await?;
                (format!("{millis} ms for {}", secs(period)), Instant::now())
            }
            Kind::CloseWatches => {
                self.admin("POST", "close-watches", None).await?;
                (String::new(), Instant::now())
            }
        };
        let recovery = self.recover(end).await;
        self.finish(kind, detail, recovery).await
    }

    /// After the recovery: brings the agents back to full strength, checks that newcomers follow, waits for the
    /// spread tasks, and pauses.
    async fn finish(
        &mut self,
        kind: Kind,
        detail: String,
        recovery: Option<Duration>,
    ) -> anyhow::Result<Outcome> {
        let settle_from = Instant::now();
        if self.until(self.bound, |s, r| s.agreed(r)).await.is_none() {
            self.failures.push(format!(
                "after {}: the agents (with any newcomer) did not agree on one leader within {}",
                kind.name(),
                secs(self.bound)
            ));
        }
        let spread = self
            .until(SPREAD_SETTLE, |s, r| s.spread_settled(r).then_some(()))
            .await
            .map(|(_, at)| at - settle_from);
        let pause = self.random_ms(1000, 3000);
        self.hold(pause).await;
        Ok(Outcome {
            kind,
            detail,
            recovery,
            spread,
        })
    }

    /// Replaces agents that died by themselves, so the soak keeps its strength.
    async fn top_up(&mut self, want: usize) -> anyhow::Result<()> {
        let mut next = 0;
        while self.members.len() < want {
            let node = format!("node-{next}");
            next += 1;
            if self.members.iter().any(|m| m.node == node) {
                continue;
            }
            self.start_member(&node, false, None).await?;
        }
        Ok(())
    }
}

/// What the stamp file shows: lines written by a copy that found another holding the lock, runs of one task that
/// intersect in time, and fencing epochs that did not increase from one holder to the next.
struct StampVerdict {
    /// Task runs (one stamp-task process each).
    runs: usize,
    /// Leader-task terms (holder, epoch).
    leader_terms: usize,
    /// Leader-task terms held by agents with a skewed wall clock.
    skewed_terms: usize,
    overlap_lines: usize,
    intersections: Vec<String>,
    /// Epochs of the leader task that repeated or went back: the election's fencing broken.
    leader_epoch_regressions: Vec<String>,
    /// The same for spread tasks.
    spread_epoch_regressions: Vec<String>,
}

/// One stamp-task process: the exact time it ran (its first and last stamp), whatever its epoch says.
struct Run<'a> {
    task: &'a str,
    holder: &'a str,
    epoch: u64,
    start: u128,
    end: u128,
}

/// Judges the stamp file per process rather than per (holder, epoch) term: a wiped API server can hand one epoch
/// out twice, and merging two terms of one epoch would show an overlap that never happened.
fn judge_stamps(stamps: &Stamps, skewed: &[String]) -> StampVerdict {
    let mut runs: BTreeMap<(&str, u32), Run<'_>> = BTreeMap::new();
    for s in stamps.lines.iter().filter(|s| s.event != Event::Overlap) {
        let run = runs.entry((s.task.as_str(), s.pid)).or_insert(Run {
            task: &s.task,
            holder: &s.holder,
            epoch: s.epoch,
            start: s.mono,
            end: s.mono,
        });
        run.start = run.start.min(s.mono);
        run.end = run.end.max(s.mono);
    }
    let mut by_task: BTreeMap<&str, Vec<&Run<'_>>> = BTreeMap::new();
    for run in runs.values() {
        by_task.entry(run.task).or_default().push(run);
    }
    let mut v = StampVerdict {
        runs: runs.len(),
        leader_terms: stamps
            .intervals()
            .iter()
            .filter(|iv| iv.task == LEADER_TASK)
            .count(),
        skewed_terms: stamps
            .intervals()
            .iter()
            .filter(|iv| iv.task == LEADER_TASK && skewed.contains(&iv.holder))
            .count(),
        overlap_lines: stamps.overlaps().len(),
        intersections: Vec::new(),
        leader_epoch_regressions: Vec::new(),
        spread_epoch_regressions: Vec::new(),
    };
    for (task, mut list) in by_task {
        list.sort_by_key(|r| r.start);
        for pair in list.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.start <= a.end {
                v.intersections.push(format!(
                    "task {task}: {} (epoch {}) started {:.3} s before {} (epoch {}) stopped",
                    b.holder,
                    b.epoch,
                    (a.end - b.start) as f64 / 1e9,
                    a.holder,
                    a.epoch
                ));
            }
            let same_term = a.holder == b.holder && a.epoch == b.epoch;
            if !same_term && b.epoch <= a.epoch {
                let line = format!(
                    "task {task}: epoch {} ({}) after epoch {} ({})",
                    b.epoch, b.holder, a.epoch, a.holder
                );
                if task == LEADER_TASK {
                    v.leader_epoch_regressions.push(line);
                } else {
                    v.spread_epoch_regressions.push(line);
                }
            }
        }
    }
    v
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // On SIGINT or SIGTERM the soak is dropped, and with it every agent and the server (their Drop kills them).
    tokio::select! {
        r = soak(args) => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted (SIGINT); agents and server stopped"),
        _ = term.recv() => bail!("terminated (SIGTERM); agents and server stopped"),
    }
}

/// Runs the whole soak: agents, the fault schedule, the checks and the summary.
async fn soak(args: Args) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let kinds: Vec<Kind> = if args.faults.is_empty() {
        Kind::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    let timing = Timing::FAST;
    println!(
        "soak: seed {seed}, {} agents, {} spread tasks, {} of faults; LD {} RD {} RP {}; recovery bound {}",
        args.agents,
        args.spread_tasks,
        humantime::format_duration(args.duration),
        secs(timing.lease_duration),
        secs(timing.renew_deadline),
        secs(timing.retry_period),
        secs(timing.takeover_bound())
    );
    let cluster = Cluster::start()?;
    println!("soak: temp dir {}", cluster.dir().display());
    let mut soak = Soak {
        cluster,
        members: Vec::new(),
        claims: ClaimLog::new(),
        rng: StdRng::seed_from_u64(seed),
        spawned: 0,
        pods: BTreeMap::new(),
        bound: timing.takeover_bound(),
        spread_tasks: (0..args.spread_tasks)
            .map(|i| format!("spread-{i}"))
            .collect(),
        outcomes: Vec::new(),
        failures: Vec::new(),
        started: Instant::now(),
        skewed_holders: Vec::new(),
        agent_log: args.agent_log.clone(),
    };
    for i in 0..args.agents {
        // The last agent's wall clock runs an hour slow for the whole soak.
        let skew = (i + 1 == args.agents).then_some("-1h");
        soak.start_member(&format!("node-{i}"), false, skew).await?;
    }
    let cold = soak.started;
    match soak.until(soak.bound * 2, |s, r| s.agreed(r)).await {
        Some((_, at)) => println!(
            "soak: cold start, one agreed leader after {}",
            secs(at - cold)
        ),
        None => soak
            .failures
            .push("cold start: no agreed leader within 2 × the bound".into()),
    }
    soak.started = Instant::now();

    let mut bag: Vec<Kind> = Vec::new();
    while soak.started.elapsed() < args.duration {
        if bag.is_empty() {
            bag = kinds.clone();
            bag.shuffle(&mut soak.rng);
        }
        let Some(kind) = bag.pop() else { break };
        let at = soak.started.elapsed();
        let outcome = match soak.fault(kind).await {
            Ok(o) => o,
            Err(e) => {
                soak.failures
                    .push(format!("{} could not be run: {e:#}", kind.name()));
                soak.top_up(args.agents).await?;
                continue;
            }
        };
        let verdict = match outcome.recovery {
            Some(r) if r <= soak.bound => format!("recovered in {}", secs(r)),
            Some(r) => format!(
                "MISSED: recovered in {} (bound {})",
                secs(r),
                secs(soak.bound)
            ),
            None => format!(
                "MISSED: no agreed leader within {}",
                secs(soak.bound + OVERTIME)
            ),
        };
        println!(
            "[{:>7.1} s] {}{}{}: {verdict}",
            at.as_secs_f64(),
            kind.name(),
            if outcome.detail.is_empty() {
                ""
            } else {
                " — "
            },
            outcome.detail
        );
        soak.outcomes.push(outcome);
        soak.top_up(args.agents).await?;
    }
    let soaked = soak.started.elapsed();

    // Stop every agent gracefully, so every task writes its last stamp, then judge.
    for m in &soak.members {
        m.agent.terminate()?;
    }
    let bound = soak.bound;
    for m in &mut soak.members {
        match m.agent.wait_exit(bound).await {
            Ok(s) if s.success() => {}
            other => soak
                .failures
                .push(format!("{} at the end, after SIGTERM: {other:?}", m.key)),
        }
    }
    let keys: Vec<String> = soak.members.iter().map(|m| m.key.clone()).collect();
    for k in &keys {
        soak.claims.close(k);
    }
    let stamps = soak.cluster.stamps()?;
    let verdict = judge_stamps(&stamps, &soak.skewed_holders);
    let claim_overlaps = soak.claims.overlaps();
    let summary = summary(&soak, &verdict, &claim_overlaps, seed, soaked);
    println!("\n{summary}");
    if let Some(path) = &args.summary_out {
        std::fs::write(path, &summary).with_context(|| format!("writing {}", path.display()))?;
    }
    let missed = soak
        .outcomes
        .iter()
        .filter(|o| o.recovery.is_none_or(|r| r > soak.bound))
        .count();
    let overlaps = verdict.overlap_lines + verdict.intersections.len() + claim_overlaps.len();
    if overlaps > 0
        || missed > 0
        || !soak.failures.is_empty()
        || !verdict.leader_epoch_regressions.is_empty()
    {
        if let Err(e) = stamps.check_exclusive() {
            eprintln!("{e:#}");
        }
        bail!(
            "soak failed (seed {seed}): {overlaps} overlap(s), {missed} missed recovery(ies), {} leader epoch \
             regression(s), {} other failure(s)",
            verdict.leader_epoch_regressions.len(),
            soak.failures.len()
        );
    }
    Ok(())
}

/// The Markdown summary.
fn summary(
    soak: &Soak,
    v: &StampVerdict,
    claim_overlaps: &[leasehold_tests::claims::Overlap],
    seed: u64,
    soaked: Duration,
) -> String {
    let t = soak.cluster.timing;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Fault soak: seed {seed}, {} of faults, {} faults\n",
        humantime::format_duration(Duration::from_secs(soaked.as_secs())),
        soak.outcomes.len()
    );
    let _ = writeln!(
        out,
        "{} agents (one with its wall clock 1 h slow from the start), a leader stamp task and {} spread stamp tasks; \
         LD {}, RD {}, RP {}; recovery bound LD + RD + 2 s = {}, counted from the end of each fault.\n",
        soak.members.len().max(1),
        soak.spread_tasks.len(),
        secs(t.lease_duration),
        secs(t.renew_deadline),
        secs(t.retry_period),
        secs(soak.bound)
    );
    let _ = writeln!(
        out,
        "| fault | survived | worst recovery | median recovery | missed | worst spread re-settle |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for kind in Kind::ALL {
        let of: Vec<&Outcome> = soak.outcomes.iter().filter(|o| o.kind == kind).collect();
        if of.is_empty() {
            continue;
        }
        let mut rec: Vec<Duration> = of.iter().filter_map(|o| o.recovery).collect();
        rec.sort();
        let missed = of
            .iter()
            .filter(|o| o.recovery.is_none_or(|r| r > soak.bound))
            .count();
        let worst = if of.iter().any(|o| o.recovery.is_none()) {
            "never".to_string()
        } else {
            rec.last().map(|d| secs(*d)).unwrap_or_default()
        };
        let median = rec.get(rec.len() / 2).map(|d| secs(*d)).unwrap_or_default();
        let spread = if of.iter().any(|o| o.spread.is_none()) {
            format!("> {}", secs(SPREAD_SETTLE))
        } else {
            of.iter()
                .filter_map(|o| o.spread)
                .max()
                .map(secs)
                .unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {worst} | {median} | {missed} | {spread} |",
            kind.name(),
            of.len() - missed,
        );
    }
    let claims = soak.claims.claims();
    let _ = writeln!(
        out,
        "\nOverlaps: **{}**. Stamp tasks: {} runs ({} leader terms, {} of them by an agent with a skewed clock), \
         {} `overlap` lines (flock), {} runs of one task intersecting in time. Agents' own reports: {} leadership \
         claims sampled every {} ms, {} overlapping. Fencing epochs that repeated or went back: {} for the leader \
         task, {} for spread tasks.",
        v.overlap_lines + v.intersections.len() + claim_overlaps.len(),
        v.runs,
        v.leader_terms,
        v.skewed_terms,
        v.overlap_lines,
        v.intersections.len(),
        claims.len(),
        SAMPLE_EVERY.as_millis(),
        claim_overlaps.len(),
        v.leader_epoch_regressions.len(),
        v.spread_epoch_regressions.len(),
    );
    for s in v
        .intersections
        .iter()
        .chain(&v.leader_epoch_regressions)
        .chain(&v.spread_epoch_regressions)
    {
        let _ = writeln!(out, "- {s}");
    }
    for o in claim_overlaps {
        let _ = writeln!(
            out,
            "- {} (epoch {}) and {} (epoch {}) both reported leading for {}",
            o.first.holder,
            o.first.epoch,
            o.second.holder,
            o.second.epoch,
            secs(o.both_for)
        );
    }
    if !soak.failures.is_empty() {
        let _ = writeln!(out, "\nOther failures:");
        for f in &soak.failures {
            let _ = writeln!(out, "- {}", f.lines().next().unwrap_or_default());
        }
    }
    out
}
