//! One simulated run: the in-process API server, the candidate processes running the real `Elector`, the
//! fault driver that carries out the plan, and the recording that the invariants are checked against.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams},
};
use leasehold_apiserver::{InProcess, Options};
use leasehold_lease::{ElectionConfig, ElectionHandle, ElectionState, Elector, Identity};
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;

use crate::{
    check::{self, Interval, Violation},
    plan::{Fault, Plan, Scheduled, Timings},
    trace::{Mark, Trace},
    transport::{Net, Proc, Transport},
};

pub const NAMESPACE: &str = "default";
pub const LEASE: &str = "leasehold-sim";
/// How long a live candidate may take to get back in touch after the faults end before liveness is judged
/// anyway: the shared watch's longest relist backoff (30 s, plus 25 % jitter) and a little more.
const IN_TOUCH_WITHIN: Duration = Duration::from_secs(40);

/// How long the single leader must stay after the liveness deadline.
const STAY: Duration = Duration::from_secs(10);
/// The most a record's `leaseDurationSeconds` may impose on followers (the elector's documented cap for the
/// timings used here: the larger of 10 × LD and one hour).
const IMPOSED_CAP: Duration = Duration::from_secs(3600);

/// What a run produced.
pub struct Outcome {
    pub plan: Plan,
    pub trace: Vec<String>,
    pub violations: Vec<Violation>,
    /// Requests the candidates sent, all together.
    pub requests: u64,
    /// Every leadership, in order of start.
    pub intervals: Vec<Interval>,
    /// Requests per process and virtual second.
    pub processes: BTreeMap<String, check::Requests>,
    /// When each process sent a GET of the Lease.
    pub gets: BTreeMap<String, Vec<Duration>>,
    /// How much later than LD + RD + J + 1 s from the last fault's end (the bound counted without waiting for the
    /// candidates to be back in touch) the stable leader took office, when it did: not a violation, but counted
    /// by `make sim`, so the price of measuring (c) from the moment of contact stays visible.
    pub past_fault_end_bound: Option<Duration>,
}

/// Runs `seed` to the end on a fresh single-threaded runtime with a paused clock.
pub fn run(seed: u64) -> Outcome {
    run_plan(Plan::draw(seed))
}

/// Runs a given plan (a scripted scenario, or one drawn from a seed) the same way.
pub fn run_plan(plan: Plan) -> Outcome {
    let seed = plan.seed;
    // kube-runtime's watcher draws its backoff jitter from fastrand's thread-local generator.
    fastrand::seed(seed);
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time().start_paused(true);
    // tokio draws from its own generator too: which branch of an unbiased select! runs, and the order in which a
    // watch channel wakes its receivers. Only a build with --cfg tokio_unstable can seed it (`make test` and
    // `make sim` do); without it, runs keep every invariant but may not replay line for line.
    #[cfg(tokio_unstable)]
    builder.rng_seed(tokio::runtime::RngSeed::from_bytes(&seed.to_le_bytes()));
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a runtime: {e}"),
    };
    rt.block_on(async move { World::new(plan).run().await })
}

struct Process {
    proc: Arc<Proc>,
    identity: Identity,
    handle: Option<ElectionHandle>,
}

struct World {
    plan: Plan,
    server: InProcess,
    admin: Api<Lease>,
    net: Arc<Net>,
    trace: Trace,
    intervals: Arc<Mutex<Vec<Interval>>>,
    /// The live process in each candidate slot.
    slots: Vec<Process>,
    /// Processes not in a slot (a second process sharing a slot's identity).
    extra: Vec<Process>,
    /// Every process that ever ran, for the request-rate check.
    all: Vec<Arc<Proc>>,
    spawned: u64,
    backup: Option<leasehold_apiserver::Snapshot>,
    /// The longest term a third party's duration write imposed (zero: none).
    imposed: Duration,
    /// Faults aimed at the leader, as resolved when they began (their ends need the same slot).
    resolved: BTreeMap<usize, Fault>,
    /// When the Lease's history (its epochs) was lost: wipes, restores, deletions, rewritten transitions.
    losses: Vec<Mark>,
}

impl World {
    fn new(plan: Plan) -> Self {
        let trace = Trace::new(Instant::now());
        let server = match leasehold_apiserver::in_process(Options::default()) {
            Ok(s) => s,
            Err(e) => panic!("cannot start the in-process API server: {e}"),
        };
        let admin = Client::new(server.service(&server.admin_token()), NAMESPACE);
        Self {
            net: Net::new(plan.seed, trace.clone()),
            admin: Api::namespaced(admin, NAMESPACE),
            plan,
            server,
            trace,
            intervals: Arc::default(),
            slots: Vec::new(),
            extra: Vec::new(),
            all: Vec::new(),
            spawned: 0,
            backup: None,
            imposed: Duration::ZERO,
            resolved: BTreeMap::new(),
            losses: Vec::new(),
        }
    }

    async fn run(mut self) -> Outcome {
        let t = self.plan.timings;
        self.trace.log(format!(
            "seed {}: {} candidates, LD {:?} RD {:?} RP {:?}",
            self.plan.seed, self.plan.candidates, t.ld, t.rd, t.rp
        ));
        for f in &self.plan.faults {
            self.trace.log(format!(
                "plan: at {:.3}s for {:?}: {}",
                f.at.as_secs_f64(),
                f.lasting,
                f.fault
            ));
        }
        for slot in 0..self.plan.candidates {
            let identity = self.new_identity(slot);
            let p = self.spawn(slot, identity, 0);
            self.slots.push(p);
        }
        // Starts and ends of faults, in time order; ends of long faults interleave with later starts.
        let mut steps: Vec<(Duration, usize, bool)> = Vec::new();
        for (i, f) in self.plan.faults.iter().enumerate() {
            steps.push((f.at, i, true));
            if f.lasting > Duration::ZERO {
                steps.push((f.end(), i, false));
            }
        }
        steps.sort_by_key(|s| (s.0, !s.2, s.1));
        let start = Instant::now();
        for (at, i, begin) in steps {
            tokio::time::sleep_until(start + at).await;
            let f = self.plan.faults[i].clone();
            if begin {
                self.begin(i, &f).await;
            } else {
                self.end(i, &f).await;
            }
        }
        let faults_over = self.plan.quiet_at().max(self.trace.now());
        self.trace
            .log(format!("faults over at {:.3}s", faults_over.as_secs_f64()));
        // Liveness is judged from when every live candidate is back in touch with the server (a watch open, or a
        // request answered): a candidate learns that a fault is over only by trying again, which the backoff after
        // its last failed request (at least RP) or its watch's relist backoff can put past the bound's 1 s of
        // slack. That moment is measured, not assumed.
        let in_touch = self.back_in_touch(faults_over, t).await;
        let bound = t.ld + t.rd + t.spread() + Duration::from_secs(1);
        let mut deadline = in_touch + bound;
        self.trace.log(format!(
            "every candidate in touch by {:.3}s; one leader due by {:.3}s",
            in_touch.as_secs_f64(),
            deadline.as_secs_f64()
        ));
        tokio::time::sleep_until(start + deadline + STAY).await;
        let extended = self.with_imposed_term(&self.intervals(), deadline);
        if extended != deadline {
            deadline = extended;
            self.trace.log(format!(
                "a third party imposed a {:?} term; one leader due by {:.3}s",
                self.imposed,
                deadline.as_secs_f64()
            ));
            tokio::time::sleep_until(start + deadline + STAY).await;
        }
        self.finish(deadline, faults_over + bound).await
    }

    /// `deadline`, or `deadline` plus the term a third party imposed when no single leader stood by `deadline`:
    /// a long leaseDurationSeconds lets a dead holder's term last that long (up to the cap) from when a follower
    /// last saw it. Serves both the liveness deadline and the one counted from the last fault's end.
    fn with_imposed_term(&self, intervals: &[Interval], deadline: Duration) -> Duration {
        if self.imposed > Duration::ZERO && check::liveness(intervals, deadline).is_err() {
            deadline + self.imposed
        } else {
            deadline
        }
    }

    /// When the last live candidate got back in touch with the server after `now`, waiting for it at most
    /// [`IN_TOUCH_WITHIN`] + LD (the watch's longest relist backoff, and a term's wait before a blind elector reads).
    async fn back_in_touch(&self, now: Duration, t: Timings) -> Duration {
        let give_up = now + IN_TOUCH_WITHIN + t.ld;
        let mut last = now;
        for p in self.slots.iter().chain(&self.extra) {
            if p.proc.is_dead() {
                continue;
            }
            let start = Instant::now() - self.trace.now();
            let wait = p.proc.back_in_touch(now);
            let at = tokio::time::timeout_at(start + give_up, wait)
                .await
                .unwrap_or(give_up);
            last = last.max(at);
        }
        last
    }

    fn new_identity(&mut self, slot: usize) -> Identity {
        self.spawned += 1;
        match Identity::new(format!("node-{slot}"), format!("p{}", self.spawned)) {
            Ok(id) => id,
            Err(e) => panic!("bad identity: {e}"),
        }
    }

    /// Starts a process in `slot` with `identity`.
    fn spawn(&mut self, slot: usize, identity: Identity, wall_offset_secs: i64) -> Process {
        let twins = self.all.iter().filter(|p| p.slot == slot).count();
        let name = format!("c{slot}{}", "'".repeat(twins));
        let proc = Proc::new(name.clone(), slot, self.trace.now());
        self.all.push(Arc::clone(&proc));
        let token = self.server.add_user(&name, &[]);
        let transport = Transport::new(
            self.server.service(&token),
            Arc::clone(&self.net),
            Arc::clone(&proc),
        );
        let client = Client::new(transport, NAMESPACE);
        let elector = Elector::simulated(
            client,
            self.plan.seed ^ self.spawned.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let t = self.plan.timings;
        let config = ElectionConfig::new(NAMESPACE, LEASE, identity.clone())
            .timings(t.ld, t.rd, t.rp)
            .wall_clock_offset_for_test(jiff::SignedDuration::from_secs(wall_offset_secs));
        let handle = match elector.spawn(config) {
            Ok(h) => h,
            Err(e) => panic!("cannot spawn an election: {e}"),
        };
        self.trace.log(format!("{name} starts as {identity}"));
        tokio::spawn(observe(
            handle.clone(),
            Arc::clone(&proc),
            identity.holder(),
            self.trace.clone(),
            Arc::clone(&self.intervals),
            Arc::clone(&self.net),
        ));
        Process {
            proc,
            identity,
            handle: Some(handle),
        }
    }

    /// Ends the process in `slot`: a crash (no release) or a graceful shutdown (release).
    async fn stop(&mut self, slot: usize, graceful: bool) {
        let p = &mut self.slots[slot];
        let Some(handle) = p.handle.take() else {
            return;
        };
        if graceful {
            self.trace.log(format!("{} shuts down", p.proc.name));
            let _ = handle.shutdown().await;
            p.proc.kill(self.trace.now());
        } else {
            self.trace.log(format!("{} crashes", p.proc.name));
            p.proc.kill(self.trace.now());
            drop(handle);
        }
    }

    fn restart(&mut self, slot: usize, wall_offset_secs: i64) {
        let identity = self.new_identity(slot);
        let p = self.spawn(slot, identity, wall_offset_secs);
        self.slots[slot] = p;
    }

    /// The slot of the candidate that leads now (slot 0 when none does).
    fn leader_slot(&self) -> usize {
        let intervals = self.intervals();
        let leading = intervals.iter().rev().find(|i| i.end.is_none());
        leading
            .and_then(|l| self.slots.iter().position(|p| p.proc.name == l.process))
            .unwrap_or(0)
    }

    async fn begin(&mut self, i: usize, s: &Scheduled) {
        let s = &match &s.fault {
            Fault::AtLeader(inner) => {
                let fault = inner.aimed_at(self.leader_slot());
                self.resolved.insert(i, fault.clone());
                Scheduled { fault, ..s.clone() }
            }
            _ => s.clone(),
        };
        let id = i as u64;
        self.trace.log(format!("fault begins: {}", s.fault));
        // The history is lost when the fault has been carried out: a write that the server served before it (in
        // the same virtual instant, say) is among what it erased.
        let erases = matches!(
            s.fault,
            Fault::RestartWipe | Fault::Restore { .. } | Fault::Deleted | Fault::Transitions { .. }
        );
        match &s.fault {
            f @ (Fault::Latency { .. }
            | Fault::LostAnswers { .. }
            | Fault::Errors { .. }
            | Fault::Expired { .. }) => {
                self.net.impose(id, f.clone());
            }
            Fault::CloseWatches => self.net.close_watches(),
            Fault::SilentWatches { who } => self.slots[*who].proc.gate(0, 1),
            Fault::Partition { who } => self.slots[*who].proc.gate(1, 1),
            Fault::Freeze { who } => {
                let p = &self.slots[*who];
                p.proc.gate(1, 1);
                if let Some(h) = &p.handle {
                    let _ = h.pause_for_test(s.lasting).await;
                }
            }
            Fault::RestartKeep => {
                self.net.server_restarted();
                self.server.restart(true).await;
            }
            Fault::RestartWipe => {
                self.net.server_restarted();
                self.server.restart(false).await;
            }
            Fault::Snapshot => self.backup = Some(self.server.snapshot()),
            Fault::Restore { bumped } => {
                if let Some(b) = &self.backup {
                    self.net.server_restarted();
                    if *bumped {
                        // As the Kubernetes docs ask: bump past every revision since the snapshot, so that even a
                        // second restore of the same backup never reuses a resourceVersion.
                        let since = self
                            .server
                            .resource_version()
                            .saturating_sub(b.resource_version());
                        self.server.restore_bumped(b, since + 1_000_000).await;
                    } else {
                        self.server.restore(b).await;
                    }
                }
            }
            Fault::LabelChurn { every } => {
                tokio::spawn(churn(
                    self.admin.clone(),
                    *every,
                    s.lasting,
                    self.trace.clone(),
                ));
            }
            Fault::LabelRemoved => {
                self.third_party(
                    json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": null}}}),
                )
                .await;
            }
            Fault::HolderBlanked => {
                self.third_party(json!({"spec": {"holderIdentity": ""}}))
                    .await;
            }
            Fault::Duration { seconds } => {
                if self
                    .third_party(json!({"spec": {"leaseDurationSeconds": seconds}}))
                    .await
                {
                    // A follower may first see it as late as the end of the last fault (a silent watch).
                    let imposed = Duration::from_secs((*seconds).max(0) as u64).min(IMPOSED_CAP);
                    self.imposed = self.imposed.max(imposed);
                }
            }
            Fault::Transitions { value } => {
                self.third_party(json!({"spec": {"leaseTransitions": value}}))
                    .await;
            }
            Fault::Deleted => {
                let r = self.admin.delete(LEASE, &DeleteParams::default()).await;
                self.trace.log(format!(
                    "third party DELETE -> {}",
                    if r.is_ok() { "ok" } else { "failed" }
                ));
            }
            Fault::Crash { who } => self.stop(*who, false).await,
            Fault::Restart { who } | Fault::WallClock { who, .. } => self.stop(*who, true).await,
            Fault::Blackhole { who } => self.slots[*who].proc.refuse(1, 0),
            Fault::WatchForbidden { who } => self.slots[*who].proc.refuse(0, 1),
            Fault::AtLeader(_) => {}
            Fault::SharedIdentity { who } => {
                let identity = self.slots[*who].identity.clone();
                let p = self.spawn(*who, identity, 0);
                self.extra.push(p);
            }
        }
        if erases {
            self.losses.push(self.trace.mark());
        }
    }

    async fn end(&mut self, id: usize, s: &Scheduled) {
        let s = &match self.resolved.get(&id) {
            Some(fault) => Scheduled {
                fault: fault.clone(),
                ..s.clone()
            },
            None => s.clone(),
        };
        self.trace.log(format!("fault ends: {}", s.fault));
        match &s.fault {
            Fault::Latency { .. }
            | Fault::LostAnswers { .. }
            | Fault::Errors { .. }
            | Fault::Expired { .. } => {
                self.net.lift(id as u64);
            }
            Fault::SilentWatches { who } => self.slots[*who].proc.gate(0, -1),
            Fault::Partition { who } | Fault::Freeze { who } => self.slots[*who].proc.gate(-1, -1),
            Fault::Crash { who } | Fault::Restart { who } => self.restart(*who, 0),
            Fault::WallClock { who, offset_secs } => self.restart(*who, *offset_secs),
            Fault::Blackhole { who } => self.slots[*who].proc.refuse(-1, 0),
            Fault::WatchForbidden { who } => self.slots[*who].proc.refuse(0, -1),
            _ => {}
        }
    }

    /// A third party's merge patch of the Lease; whether the server took it.
    async fn third_party(&self, patch: serde_json::Value) -> bool {
        let r = self
            .admin
            .patch(LEASE, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        self.trace.log(format!(
            "third party PATCH {patch} -> {}",
            match &r {
                Ok(l) => format!(
                    "rv {}",
                    l.metadata.resource_version.clone().unwrap_or_default()
                ),
                Err(kube::Error::Api(s)) => format!("{} {}", s.code, s.reason),
                Err(_) => "failed".to_owned(),
            }
        ));
        r.is_ok()
    }

    fn intervals(&self) -> Vec<Interval> {
        self.intervals.lock().clone()
    }

    /// Checks every invariant over the run; `from_fault_end` is the liveness deadline counted from the last fault's
    /// end (a third party's imposed term is added when the leader came only after it, as for `deadline`), which is
    /// only reported.
    async fn finish(self, deadline: Duration, from_fault_end: Duration) -> Outcome {
        let end = self.trace.now();
        let intervals = self.intervals();
        let mut violations = if self.plan.reuses_resource_versions() {
            self.trace
                .log("safety not checked: a plain restore reused resourceVersions (liveness only)");
            Vec::new()
        } else {
            check::safety(&intervals, end, &self.losses)
        };
        let leader = check::liveness(&intervals, deadline);
        let from_fault_end = self.with_imposed_term(&intervals, from_fault_end);
        let past_fault_end_bound = match (&leader, check::liveness(&intervals, from_fault_end)) {
            (Ok(l), Err(_)) => Some(l.start.saturating_sub(from_fault_end)),
            _ => None,
        };
        match &leader {
            Ok(l) => {
                // (e) the Lease names the leader the candidates report, with its epoch.
                match self.admin.get(LEASE).await {
                    Ok(lease) => {
                        let spec = lease.spec.unwrap_or_default();
                        let holder = spec.holder_identity.unwrap_or_default();
                        let epoch = spec.lease_transitions.unwrap_or_default();
                        if holder != l.identity || u64::try_from(epoch).ok() != Some(l.epoch) {
                            violations.push(Violation {
                                invariant: 'e',
                                what: format!(
                                    "{} reports leading epoch {} but the Lease names {holder:?} with epoch {epoch}",
                                    l.process, l.epoch
                                ),
                            });
                        }
                    }
                    Err(e) => violations.push(Violation {
                        invariant: 'e',
                        what: format!("cannot read the Lease at the end: {e}"),
                    }),
                }
            }
            Err(v) => violations.push(v.clone()),
        }
        let mut processes = BTreeMap::new();
        let mut gets = BTreeMap::new();
        let mut requests = 0;
        for p in &self.all {
            let r = p.requests();
            requests += r.per_second.values().map(|n| u64::from(*n)).sum::<u64>();
            processes.insert(p.name.clone(), r);
            gets.insert(p.name.clone(), p.gets());
        }
        violations.extend(check::request_rate(&processes));
        for v in &violations {
            self.trace.log(v.to_string());
        }
        Outcome {
            plan: self.plan,
            trace: self.trace.lines(),
            violations,
            requests,
            intervals,
            processes,
            gets,
            past_fault_end_bound,
        }
    }
}

/// Follows one process's election state: records its leaderships and logs its changes.
async fn observe(
    handle: ElectionHandle,
    proc: Arc<Proc>,
    identity: String,
    trace: Trace,
    intervals: Arc<Mutex<Vec<Interval>>>,
    net: Arc<Net>,
) {
    let mut state = handle.state();
    let mut observations = handle.observations();
    drop(handle);
    let (name, log, mut gone) = (proc.name.clone(), trace.clone(), proc.dead());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                _ = gone.wait_for(|d| *d) => return,
                r = observations.changed() => if r.is_err() { return },
            }
            let mode = *observations.borrow_and_update();
            log.log(format!("{name} observes the Lease by {}", mode.as_str()));
        }
    });
    let mut dead = proc.dead();
    loop {
        if proc.is_dead() {
            return;
        }
        let current = state.borrow_and_update().clone();
        match current {
            ElectionState::Leading(l) if l.is_current() => {
                trace.log(format!("{} leads epoch {}", proc.name, l.epoch()));
                let k = {
                    let mut all = intervals.lock();
                    all.push(Interval {
                        process: proc.name.clone(),
                        identity: identity.clone(),
                        epoch: l.epoch(),
                        written: net
                            .written(&identity, l.epoch())
                            .unwrap_or_else(|| trace.mark()),
                        start: trace.now(),
                        end: None,
                    });
                    all.len() - 1
                };
                tokio::select! {
                    biased;
                    () = l.lost() => trace.log(format!("{} stops leading epoch {}", proc.name, l.epoch())),
                    _ = dead.wait_for(|d| *d) => {}
                }
                intervals.lock()[k].end = Some(trace.now());
            }
            ElectionState::Stopped { error } => {
                if let Some(e) = error {
                    trace.log(format!("{} elector stopped: {e}", proc.name));
                }
                return;
            }
            other => {
                trace.log(format!(
                    "{} {}",
                    proc.name,
                    match &other {
                        ElectionState::CoolingDown { .. } => "cools down".to_owned(),
                        _ => format!("follows {:?}", other.holder().unwrap_or("nobody")),
                    }
                ));
                tokio::select! {
                    biased;
                    _ = dead.wait_for(|d| *d) => return,
                    r = state.changed() => if r.is_err() { return },
                }
            }
        }
    }
}

/// A third party that rewrites an annotation every `every` for `lasting`.
async fn churn(admin: Api<Lease>, every: Duration, lasting: Duration, trace: Trace) {
    let until = Instant::now() + lasting;
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let patch = json!({"metadata": {"annotations": {"example.com/churn": n.to_string()}}});
        let ok = admin
            .patch(LEASE, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_ok();
        trace.log(format!(
            "third party churns annotations ({n}) -> {}",
            if ok { "ok" } else { "failed" }
        ));
        tokio::time::sleep(every).await;
    }
}
