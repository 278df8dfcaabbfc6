//! `bench-candidates`: hosts K candidates of one implementation in one process.
//!
//! Each candidate runs on its own OS thread with its own single-threaded tokio runtime, its own kube `Client`
//! (its own connections) and its own API user. A `crash` returns from the candidate's future and drops its
//! runtime with `shutdown_background`: no task of that candidate is polled again, so no release or other request
//! is sent, and its sockets close, as when a process dies. A `release` asks the implementation for its graceful
//! stop. Leadership starts and stops go to stdout as [`Event`] JSON lines with CLOCK_MONOTONIC timestamps.

mod coordinate;
mod leader_election;
mod lease_manager;
mod leasehold;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::thread;

use anyhow::Context;
use clap::Parser;
use tokio::sync::mpsc;

use crate::Impl;
use crate::clock::mono_ns;
use crate::protocol::{Command, Event, Slot, StopReason};

/// Options of `bench-candidates`.
#[derive(Parser, Debug)]
#[command(
    about = "Hosts K election candidates of one implementation; driven by bench-elections over stdin/stdout"
)]
pub struct RunnerArgs {
    /// Implementation: leasehold, kube-lease-manager, kube-leader-election or kube-coordinate.
    #[arg(long = "impl")]
    pub implementation: Impl,
    /// The API server's base URL (plain HTTP).
    #[arg(long)]
    pub url: String,
    /// Kubernetes namespace of the Lease.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Name of the Lease every candidate campaigns for.
    #[arg(long)]
    pub lease: String,
    /// JSON file with this process's slots: `[{"slot","user","token"}]`.
    #[arg(long)]
    pub slots: PathBuf,
}

/// A request to one running candidate.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ctl {
    /// Stop leading, then release as the implementation allows.
    Release,
    /// Return at once; the runtime is then dropped without polling anything again.
    Crash,
}

/// How a candidate's run ended.
pub(crate) enum Outcome {
    /// It stopped gracefully (after its release, where the implementation has one).
    Released,
    /// It was crashed.
    Crashed,
}

/// What a candidate needs to know: where the server is, who it is, which Lease.
#[derive(Clone, Debug)]
pub(crate) struct CandidateSpec {
    pub slot: usize,
    pub generation: u32,
    pub url: String,
    pub token: String,
    pub user: String,
    pub namespace: String,
    pub lease: String,
}

impl CandidateSpec {
    /// The node part of the identity: one node per slot.
    pub fn node(&self) -> String {
        format!("node-{}", self.slot)
    }

    /// The holder identity: `<node>_g<generation>`, new for every generation.
    pub fn holder(&self) -> String {
        format!("{}_g{}", self.node(), self.generation)
    }

    /// A kubeconfig for this candidate's user; every kube version parses it the same way.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: {url}\ncontexts:\n- name: bench\n  context:\n    cluster: bench\n    user: {user:?}\n    namespace: {ns}\ncurrent-context: bench\nusers:\n- name: {user:?}\n  user:\n    token: {token:?}\n",
            url = self.url,
            user = self.user,
            ns = self.namespace,
            token = self.token,
        )
    }
}

/// Reports one candidate's leadership changes; repeated starts or stops are dropped, so each implementation
/// may report its view as often as it likes.
pub(crate) struct Reporter {
    slot: usize,
    generation: u32,
    leading: bool,
}

impl Reporter {
    fn new(slot: usize, generation: u32) -> Self {
        Self {
            slot,
            generation,
            leading: false,
        }
    }

    /// The candidate is running.
    pub fn up(&self) {
        Event::Up {
            slot: self.slot,
            generation: self.generation,
            t: mono_ns(),
        }
        .emit();
    }

    /// The candidate leads since `t` (ns).
    pub fn start(&mut self, t: u64) {
        if !self.leading {
            self.leading = true;
            Event::Start {
                slot: self.slot,
                generation: self.generation,
                t,
            }
            .emit();
        }
    }

    /// The candidate stopped leading at `t` (ns).
    pub fn stop(&mut self, t: u64, why: StopReason) {
        if self.leading {
            self.leading = false;
            Event::Stop {
                slot: self.slot,
                generation: self.generation,
                t,
                why,
            }
            .emit();
        }
    }

    /// Whether the candidate leads, as last reported.
    pub fn leading(&self) -> bool {
        self.leading
    }

    /// The common answer to a control request that is not a release: report the crash and return.
    pub fn crash(&mut self) -> Outcome {
        self.stop(mono_ns(), StopReason::Crash);
        Outcome::Crashed
    }
}

/// Runs one candidate to its end on the current (single-threaded) runtime.
async fn run_candidate(
    implementation: Impl,
    spec: &CandidateSpec,
    rep: &mut Reporter,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
) -> anyhow::Result<Outcome> {
    match implementation {
        Impl::Leasehold => leasehold::run(spec, rep, ctl).await,
        Impl::KubeLeaseManager => lease_manager::run(spec, rep, ctl).await,
        Impl::KubeLeaderElection => leader_election::run(spec, rep, ctl).await,
        Impl::KubeCoordinate => coordinate::run(spec, rep, ctl).await,
    }
}

/// Starts a candidate thread; returns the sender of its control requests.
fn spawn_candidate(
    implementation: Impl,
    spec: CandidateSpec,
) -> anyhow::Result<mpsc::UnboundedSender<Ctl>> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    thread::Builder::new()
        .name(format!("cand-{}", spec.slot))
        .spawn(move || {
            let (slot, generation) = (spec.slot, spec.generation);
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    Event::Error {
                        slot,
                        generation,
                        message: format!("runtime: {e}"),
                    }
                    .emit();
                    return;
                }
            };
            let mut rep = Reporter::new(slot, generation);
            let outcome = runtime.block_on(run_candidate(implementation, &spec, &mut rep, &mut rx));
            // Nothing of this candidate runs after this point: a crash sends no further request.
            runtime.shutdown_background();
            match outcome {
                Ok(Outcome::Released) => Event::Gone {
                    slot,
                    generation,
                    t: mono_ns(),
                    graceful: true,
                }
                .emit(),
                Ok(Outcome::Crashed) => Event::Gone {
                    slot,
                    generation,
                    t: mono_ns(),
                    graceful: false,
                }
                .emit(),
                Err(e) => {
                    rep.stop(mono_ns(), StopReason::Ended);
                    Event::Error {
                        slot,
                        generation,
                        message: format!("{e:#}"),
                    }
                    .emit();
                }
            }
        })?;
    Ok(tx)
}

struct SlotState {
    slot: Slot,
    generation: u32,
    ctl: Option<mpsc::UnboundedSender<Ctl>>,
}

/// The `bench-candidates` program: starts every slot's candidate, then follows stdin commands until stdin closes.
///
/// # Errors
/// When the slots file cannot be read, or a thread cannot be started.
pub fn main_with(args: RunnerArgs) -> anyhow::Result<()> {
    crate::driver::server::raise_nofile();
    let text = std::fs::read_to_string(&args.slots)
        .with_context(|| format!("reading {}", args.slots.display()))?;
    let slots: Vec<Slot> = serde_json::from_str(&text).context("parsing the slots file")?;
    let spec = |s: &SlotState| CandidateSpec {
        slot: s.slot.slot,
        generation: s.generation,
        url: args.url.clone(),
        token: s.slot.token.clone(),
        user: s.slot.user.clone(),
        namespace: args.namespace.clone(),
        lease: args.lease.clone(),
    };
    let mut state: HashMap<usize, SlotState> = HashMap::new();
    for slot in slots {
        let mut s = SlotState {
            slot,
            generation: 0,
            ctl: None,
        };
        s.ctl = Some(spawn_candidate(args.implementation, spec(&s))?);
        state.insert(s.slot.slot, s);
    }
    Event::Ready { slots: state.len() }.emit();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let cmd = match Command::parse(&line) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bench-candidates: {e}");
                continue;
            }
        };
        match cmd {
            Command::Release(n) | Command::Crash(n) => {
                let ctl = if matches!(cmd, Command::Release(_)) {
                    Ctl::Release
                } else {
                    Ctl::Crash
                };
                if let Some(tx) = state.get_mut(&n).and_then(|s| s.ctl.take()) {
                    let _ = tx.send(ctl);
                }
            }
            Command::Spawn(n) => {
                if let Some(s) = state.get_mut(&n) {
                    s.generation += 1;
                    s.ctl = Some(spawn_candidate(args.implementation, spec(s))?);
                }
            }
        }
    }
    // stdin closed: the driver is done with us. Leave without releasing anything.
    std::process::exit(0);
}
