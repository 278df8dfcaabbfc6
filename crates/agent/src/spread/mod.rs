//! Spread mode (task election): each `mode = "spread"` task has its own Lease, and the agents that have spread
//! tasks share them out with no operator.
//!
//! - **Membership.** Each such agent holds a member Lease (`leasehold-member-<identity>`, kind `member`) on slow
//!   timing; the member Leases this agent sees as live are the membership.
//! - **Placement.** Every agent computes the same sticky placement, every member within one of even, from
//!   (tasks, live members, current holders) with the policy crate's `place()`, and campaigns only for the tasks
//!   placed on it.
//! - **Liveness.** A member counts for placement while its member Lease is live *and* it renews: an agent whose
//!   task Lease ran out without a renewal, or that did not take a task placed on it, is left out until it renews
//!   something again (`liveness.rs`). So a crashed agent's tasks are placed elsewhere as soon as its first task
//!   term ends, its slow member Lease notwithstanding, and never placed back on it.
//! - **Moves.** A task placed elsewhere is released only once the new owner has been live for the settle time,
//!   so a flapping member does not drag tasks around.
//! - **No herd.** Only the owner campaigns for an unheld task; the other members follow in rank order, one
//!   fallback step (LD + J + 1 s) apart, so no task stays orphaned when views differ or its owner cannot take it
//!   (`campaign.rs`).
//! - **Late elections start from what we know.** A task election spawned now is told when this agent first saw
//!   the Lease's current record, so a term that ran out long ago is not waited out once more.
//! - **Safety.** A spread task runs only while its own Lease is held, under the same runner, supervisor and
//!   watchdog as leader tasks.
//! - **Litter.** Member and task Leases expired for longer than 10×LD are deleted, with uid and resourceVersion
//!   preconditions, so node churn does not leave them behind.
//! - **Permissions.** Placement needs `list` and `watch` on leases (only a list finds the member Leases). Until
//!   the first list completes, no member Lease is written and no task is campaigned for; under a Role without
//!   them that lasts until they are granted (`watch_leases` logs it once and retries), leader-mode elections
//!   carry on meanwhile, and shutdown is not held up.
//! - **Never silent.** A task runner or the Lease watcher that panics ends spread mode with
//!   [`RunnerEnd::ElectorDied`], as a leader-mode runner's panic does: the agent stops the rest in order, fails
//!   `/healthz` and exits 1.

mod campaign;
mod cleanup;
mod liveness;
mod observer;
mod sink;
mod watch_leases;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use leasehold_lease::{ElectionConfig, ElectionHandle, ElectionState, Elector, Identity, Sighting};
use leasehold_policy::config::{Config, TaskConfig, TaskMode};
use leasehold_policy::lease_name::LeaseName;
use leasehold_policy::placement::place;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

pub use observer::{Observed, Seen};
pub use sink::SpreadSink;
pub use watch_leases::Progress;

use crate::metrics::Metrics;
use crate::runner::{GatedRunner, RunnerEnd};
use crate::tasks::TaskContext;
use crate::view::{SpreadTaskView, SpreadView, SpreadWatch, View};

/// The label naming a member Lease itself (a Lease name is a valid label value), so that each agent's member
/// election watches only its own member Lease.
pub const MEMBER_LEASE_LABEL: &str = "leasehold.dev/member-lease";

/// How often placement is re-evaluated even without a change (expiries are noticed by the clock, not by events).
const TICK: Duration = Duration::from_millis(250);

/// What each fallback rank waits beyond LD + J for the one before it: room for its tick, its request and a slow
/// moment.
const FALLBACK_SLACK: Duration = Duration::from_secs(1);

/// The spread tasks of a configuration.
pub fn spread_tasks(config: &Config) -> Vec<TaskConfig> {
    config
        .tasks
        .iter()
        .filter(|t| t.election && t.mode == TaskMode::Spread)
        .cloned()
        .collect()
}

/// Everything spread mode needs from the agent.
pub struct SpreadManager {
    /// For watching and deleting spread Leases.
    pub client: kube::Client,
    /// Spawns the member election and the task elections (sharing the agent's watchers).
    pub elector: Elector,
    /// The agent's configuration.
    pub config: Config,
    /// Our identity.
    pub identity: Identity,
    /// How tasks are started.
    pub ctx: TaskContext,
    /// Published state.
    pub view: Arc<View>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// A task election this agent runs right now.
struct Active {
    stop: watch::Sender<bool>,
    state: watch::Receiver<ElectionState>,
    join: JoinHandle<RunnerEnd>,
    stopping: bool,
}

impl SpreadManager {
    /// The election of one task Lease, told what this agent has already seen of it: the highest epoch (so a
    /// Lease re-created at a lower one never brings an epoch back), and the current record with when it was first
    /// seen (so a term that ran out before the election was spawned is not waited out again).
    fn task_election(&self, name: &LeaseName, observed: &Mutex<Observed>) -> ElectionConfig {
        let (floor, sighting) = {
            let o = observed.lock();
            let floor = o.max_epoch.get(name.name()).copied().unwrap_or(0);
            let sighting = o.tasks.get(name.name()).map(|seen| Sighting {
                lease: (*seen.lease).clone(),
                // The observer and the election both time on the monotonic clock tokio reads.
                at: tokio::time::Instant::from_std(seen.observed_at),
                last_holder: o.last_holder(name.name()).map(str::to_owned),
            });
            (floor, sighting)
        };
        let t = self.config.lease.timing;
        let mut ec = ElectionConfig::new(
            self.config.lease.namespace.clone(),
            name.name(),
            self.identity.clone(),
        )
        .timings(t.lease_duration, t.renew_deadline, t.retry_period)
        .takeover_spread(self.config.lease.takeover_spread)
        .epoch_floor(floor);
        if let Some(sighting) = sighting {
            ec = ec.last_sighting(sighting);
        }
        crate::lease_names::apply(ec, name)
    }

    fn member_election(&self) -> ElectionConfig {
        let m = self.config.lease.member;
        // RD halfway between 1.2·RP and LD: the member Lease only has to outlive its renew period.
        let rd = (m.lease_duration + m.renew_period.mul_f64(1.2)) / 2;
        let name = LeaseName::member(&self.config.lease.prefix, &self.identity.holder());
        let ec = ElectionConfig::new(
            self.config.lease.namespace.clone(),
            name.name(),
            self.identity.clone(),
        )
        .timings(m.lease_duration, rd, m.renew_period)
        // Only this agent ever campaigns for its member Lease: no herd to spread, so no takeover wait.
        .takeover_spread(Duration::ZERO);
        let ec = crate::lease_names::apply(ec, &name);
        // A label only our member Lease carries: the elector's watch selects by labels, and without it every
        // agent's member election would watch every member Lease a second time (the observer already does).
        ec.label(MEMBER_LEASE_LABEL, name.name())
    }

    /// Runs spread mode until `shutdown`: then stops every spread task, releases their Leases, and releases the
    /// member Lease last. Ends early, with [`RunnerEnd::ElectorDied`], when an election dies or a task runner or
    /// the Lease watcher panics.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> RunnerEnd {
        let tasks = spread_tasks(&self.config);
        let names: BTreeMap<String, LeaseName> = tasks
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    LeaseName::task(&self.config.lease.prefix, &t.name),
                )
            })
            .collect();
        let observed = Arc::new(Mutex::new(Observed::default()));
        let (progress_tx, mut progress) = watch::channel(Progress::default());
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.config.lease.namespace);
        let mut watcher = tokio::spawn(watch_leases::run(
            api.clone(),
            observed.clone(),
            progress_tx,
        ));
        if let Err(end) = self.first_list(&tasks, &mut progress, &mut shutdown).await {
            watcher.abort();
            return end;
        }
        // The task elections' shared watch stays open from now on, whether or not one runs: a task placed here
        // later (a crashed agent's) is then led as soon as it is acquired, instead of RD after, which a watch
        // opened with its election would cost (leasehold-lease, `Elector::keep_watch`).
        let _task_watch = tasks.first().map(|t| {
            let name = &names[&t.name];
            self.elector
                .keep_watch(&self.task_election(name, &observed))
        });
        // Membership begins once this agent can see the others: a member Lease that nobody can list (under a Role
        // without list and watch) would cost a write every member renew period for nothing.
        let member = match self.elector.spawn(self.member_election()) {
            Ok(h) => h,
            Err(e) => {
                watcher.abort();
                return RunnerEnd::ElectorDied(format!("member Lease: {e}"));
            }
        };

        let me = self.identity.holder();
        let (ld, member_ld) = (
            self.config.lease.timing.lease_duration,
            self.config.lease.member.lease_duration,
        );
        let settle = self.config.lease.settle;
        let fallback_step = ld + self.config.lease.takeover_spread + FALLBACK_SLACK;
        let mut active: BTreeMap<String, Active> = BTreeMap::new();
        let mut first_absent: BTreeMap<String, Instant> = BTreeMap::new();
        let mut waiting = campaign::Waiting::default();
        let mut moves_counted = 0;
        let mut next_cleanup = Instant::now() + ld;
        let mut end = RunnerEnd::Shutdown;
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            if let Some(err) = member.error() {
                end = RunnerEnd::ElectorDied(format!("member Lease: {err}"));
                break;
            }
            // Runners that ended: released on our request, or died (an elector's error, or a panic).
            let finished: Vec<String> = active
                .iter()
                .filter(|(_, a)| a.join.is_finished())
                .map(|(t, _)| t.clone())
                .collect();
            for task in finished {
                if let Some(a) = active.remove(&task)
                    && let Some(why) = runner_fatal(&task, a.join.await, a.stopping)
                {
                    end = RunnerEnd::ElectorDied(why);
                }
            }
            if matches!(end, RunnerEnd::ElectorDied(_)) {
                break;
            }
            let now = Instant::now();
            let (members, holders, unheld, moves) = {
                let mut o = observed.lock();
                let members = o.placement_members(now, ld, member_ld);
                let mut holders = BTreeMap::new();
                let mut unheld = BTreeMap::new();
                for (task, name) in &names {
                    match o.tasks.get(name.name()) {
                        Some(seen) => match seen.unheld_since(now, ld) {
                            None => {
                                holders.insert(task.clone(), seen.holder.clone());
                            }
                            Some(since) => {
                                unheld.insert(task.clone(), since);
                            }
                        },
                        None => {
                            let since = o.absent_since.get(name.name()).copied();
                            let since = since.unwrap_or_else(|| {
                                *first_absent.entry(task.clone()).or_insert(now)
                            });
                            unheld.insert(task.clone(), since);
                        }
                    }
                }
                (members, holders, unheld, o.moves)
            };
            if moves > moves_counted {
                self.metrics.task_moves.inc_by(moves - moves_counted);
                moves_counted = moves;
            }
            // Placement sees only holders it counts on: a task held by a departed or lapsed agent is free to move,
            // and its new owner's election waits out what is left of the term.
            let live_holders: BTreeMap<String, String> = holders
                .iter()
                .filter(|(_, h)| members.contains_key(*h))
                .map(|(t, h)| (t.clone(), h.clone()))
                .collect();
            let placement = place(
                tasks.iter().map(|t| t.name.as_str()),
                members.keys(),
                &live_holders,
            );
            let view = campaign::View {
                me: &me,
                now,
                members: &members,
                placement: &placement,
                unheld: &unheld,
                settle,
                fallback_step,
            };
            let running: BTreeMap<String, campaign::Running> = active
                .iter()
                .map(|(t, a)| {
                    let leading = a.state.borrow().is_leading();
                    (
                        t.clone(),
                        campaign::Running {
                            leading,
                            stopping: a.stopping,
                        },
                    )
                })
                .collect();
            let actions = campaign::plan(
                tasks.iter().map(|t| t.name.as_str()),
                &view,
                &running,
                &mut waiting,
            );
            for action in actions {
                match action {
                    campaign::Action::NoShow { task, owner } => {
                        tracing::info!(task = %task, owner = %owner, "the spread task's owner has not taken it; placing it elsewhere until the owner renews something");
                        observed.lock().no_show(&owner, now);
                    }
                    campaign::Action::Campaign(task) => {
                        let Some(config) = tasks.iter().find(|t| t.name == task) else {
                            continue;
                        };
                        match self
                            .elector
                            .spawn(self.task_election(&names[&task], &observed))
                        {
                            Ok(election) => {
                                active.insert(task, self.start_runner(config, election));
                            }
                            Err(e) => {
                                tracing::warn!(task = %task, error = %e, "cannot campaign for the spread task yet")
                            }
                        }
                    }
                    campaign::Action::Release(task) => {
                        if let Some(a) = active.get_mut(&task) {
                            tracing::info!(task = %task, owner = ?placement.get(&task), "spread task placed elsewhere: releasing");
                            let _ = a.stop.send(true);
                            a.stopping = true;
                        }
                    }
                }
            }
            let lease_watch = if progress.borrow().forbidden {
                SpreadWatch::Forbidden
            } else {
                SpreadWatch::Watching
            };
            self.view.set_spread(SpreadView {
                watch: lease_watch,
                ..Self::spread_view(&tasks, &members, &holders, &placement, &active, &me)
            });
            if now >= next_cleanup {
                next_cleanup = now + ld;
                cleanup::cleanup(&api, &observed, now, ld, member_ld).await;
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                r = progress.changed() => if r.is_err() {
                    // The watcher is gone: it only ends by panicking. Placement cannot go on blind.
                    end = RunnerEnd::ElectorDied(watcher_ended((&mut watcher).await));
                    break;
                },
                r = shutdown.changed() => if r.is_err() { break },
            }
        }
        for a in active.values() {
            let _ = a.stop.send(true);
        }
        // The member Lease goes at the same time as the task Leases: the task Leases alone decide who may run a
        // task, so releasing membership early is safe, and it keeps the worst-case shutdown to one RD.
        let runners = futures::future::join_all(
            active
                .into_iter()
                .map(|(task, a)| async move { runner_fatal(&task, a.join.await, true) }),
        );
        let (ended, _) = tokio::join!(runners, member.shutdown());
        if let (RunnerEnd::Shutdown, Some(why)) = (&end, ended.into_iter().flatten().next()) {
            end = RunnerEnd::ElectorDied(why);
        }
        watcher.abort();
        end
    }

    /// Waits for the spread watch's first complete list, publishing its state meanwhile. Under a Role without
    /// list and watch on leases that never comes, so the wait ends on shutdown too (`Err(Shutdown)`: nothing to
    /// stop or release yet), and a watcher that ended (it only ends by panicking) is an error rather than a hang.
    /// Leader-mode elections run in their own runners and are not held up meanwhile.
    async fn first_list(
        &self,
        tasks: &[TaskConfig],
        progress: &mut watch::Receiver<Progress>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), RunnerEnd> {
        loop {
            let p = *progress.borrow_and_update();
            if p.synced {
                return Ok(());
            }
            let lease_watch = if p.forbidden {
                SpreadWatch::Forbidden
            } else {
                SpreadWatch::Listing
            };
            let (members, holders) = (BTreeMap::new(), BTreeMap::new());
            self.view.set_spread(SpreadView {
                watch: lease_watch,
                ..Self::spread_view(tasks, &members, &holders, &holders, &BTreeMap::new(), "")
            });
            tokio::select! {
                r = progress.changed() => if r.is_err() {
                    return Err(RunnerEnd::ElectorDied("the spread Lease watch ended before its first list".into()));
                },
                _ = shutdown.wait_for(|s| *s) => return Err(RunnerEnd::Shutdown),
            }
        }
    }

    fn start_runner(&self, task: &TaskConfig, election: ElectionHandle) -> Active {
        let (stop, stop_rx) = watch::channel(false);
        let state = election.state();
        let runner = GatedRunner {
            label: format!("spread task {}", task.name),
            namespace: task.namespace.clone(),
            election,
            tasks: vec![task.clone()],
            ctx: self.ctx.clone(),
            timing: (
                self.config.lease.timing.lease_duration,
                self.config.lease.timing.renew_deadline,
            ),
            impeach: None,
            sink: SpreadSink {
                task: task.name.clone(),
                view: self.view.clone(),
            },
        };
        let join = tokio::spawn(runner.run(stop_rx));
        Active {
            stop,
            state,
            join,
            stopping: false,
        }
    }

    /// Spread mode as published, but for the watch's state, which the caller knows.
    fn spread_view(
        tasks: &[TaskConfig],
        members: &BTreeMap<String, Instant>,
        holders: &BTreeMap<String, String>,
        placement: &BTreeMap<String, String>,
        active: &BTreeMap<String, Active>,
        me: &str,
    ) -> SpreadView {
        SpreadView {
            watch: SpreadWatch::default(),
            member: members.contains_key(me),
            members: members.keys().cloned().collect(),
            tasks: tasks
                .iter()
                .map(|t| SpreadTaskView {
                    task: t.name.clone(),
                    namespace: t.namespace.clone(),
                    placed_on: placement.get(&t.name).cloned(),
                    holder: holders.get(&t.name).cloned(),
                    held_here: active
                        .get(&t.name)
                        .is_some_and(|a| a.state.borrow().is_leading()),
                    campaigning: active.contains_key(&t.name),
                })
                .collect(),
        }
    }
}

/// Why a task runner's end is fatal, if it is: its elector died (unless we had asked it to stop: then that is the
/// release failing at shutdown, which the runner logged), or it panicked, which is always fatal, as in leader
/// mode: a panic must never leave a task silently unrun.
fn runner_fatal(task: &str, end: Result<RunnerEnd, JoinError>, stopping: bool) -> Option<String> {
    match end {
        Ok(RunnerEnd::Shutdown) => None,
        Ok(RunnerEnd::ElectorDied(why)) => (!stopping).then_some(why),
        Err(e) => Some(format!("the runner of spread task {task} failed: {e}")),
    }
}

/// Why the spread Lease watcher ended: it loops until aborted, so only by panicking.
fn watcher_ended(end: Result<(), JoinError>) -> String {
    match end {
        Ok(()) => "the spread Lease watch ended".to_owned(),
        Err(e) => format!("the spread Lease watch failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spread_runner_that_panics_is_fatal_whether_or_not_it_was_stopping() {
        for stopping in [false, true] {
            let join: JoinHandle<RunnerEnd> = tokio::spawn(async { panic!("boom") });
            let why = runner_fatal("db", join.await, stopping).expect("a panic is fatal");
            assert!(
                why.contains("spread task db") && why.contains("panicked"),
                "{why}"
            );
        }
        let join = tokio::spawn(async { RunnerEnd::ElectorDied("x".into()) });
        assert_eq!(runner_fatal("db", join.await, false).as_deref(), Some("x"));
        let join = tokio::spawn(async { RunnerEnd::ElectorDied("x".into()) });
        assert_eq!(
            runner_fatal("db", join.await, true),
            None,
            "a failed release at shutdown was logged"
        );
        let join = tokio::spawn(async { RunnerEnd::Shutdown });
        assert_eq!(runner_fatal("db", join.await, false), None);
    }

    #[tokio::test]
    async fn a_watcher_that_panics_says_so() {
        let join: JoinHandle<()> = tokio::spawn(async { panic!("watch boom") });
        let why = watcher_ended(join.await);
        assert!(why.contains("panicked"), "{why}");
    }
}
