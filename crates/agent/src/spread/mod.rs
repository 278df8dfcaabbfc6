//! Spread mode (task election): each `mode = "spread"` task has its own Lease, and the agents that have spread
//! tasks share them out with no operator.
//!
//! - **Membership.** Each such agent holds a member Lease (`leasehold-member-<identity>`, kind `member`) on slow
//!   timing; the member Leases this agent sees as live are the membership.
//! - **Placement.** Every agent computes the same sticky, bounded-load placement from (tasks, live members,
//!   current holders) with the policy crate's `place()`, and campaigns only for the tasks placed on it.
//! - **Moves.** A task placed elsewhere is released only once the new owner has been live for the settle time,
//!   so a flapping member does not drag tasks around. A task unheld for longer than LD may be taken by anyone,
//!   so no task stays orphaned when its owner died or the views of the membership differ for a while.
//! - **Safety.** A spread task runs only while its own Lease is held, under the same runner, supervisor and
//!   watchdog as leader tasks.
//! - **Litter.** Member and task Leases expired for longer than 10×LD are deleted, with uid and resourceVersion
//!   preconditions, so node churn does not leave them behind.
//! - **Permissions.** Placement needs `list` and `watch` on leases (only a list finds the member Leases). Until
//!   the first list completes, no member Lease is written and no task is campaigned for; under a Role without
//!   them that lasts until they are granted (`watch_leases` logs it once and retries), leader-mode elections
//!   carry on meanwhile, and shutdown is not held up.

mod cleanup;
mod observer;
mod sink;
mod watch_leases;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use leasehold_lease::{ElectionConfig, ElectionHandle, ElectionState, Elector, Identity};
use leasehold_policy::config::{Config, TaskConfig, TaskMode};
use leasehold_policy::lease_name::LeaseName;
use leasehold_policy::placement::place;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    /// Test only: the shift of the wall clock written into Leases.
    pub wall_clock_offset: jiff::SignedDuration,
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
    fn task_election(&self, name: &LeaseName) -> ElectionConfig {
        let t = self.config.lease.timing;
        let ec = ElectionConfig::new(
            self.config.lease.namespace.clone(),
            name.name(),
            self.identity.clone(),
        )
        .timings(t.lease_duration, t.renew_deadline, t.retry_period)
        .takeover_spread(self.config.lease.takeover_spread)
        .wall_clock_offset_for_test(self.wall_clock_offset);
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
        .takeover_spread(Duration::ZERO)
        .wall_clock_offset_for_test(self.wall_clock_offset);
        let ec = crate::lease_names::apply(ec, &name);
        // A label only our member Lease carries: the elector's watch selects by labels, and without it every
        // agent's member election would watch every member Lease a second time (the observer already does).
        ec.label(MEMBER_LEASE_LABEL, name.name())
    }

    /// Runs spread mode until `shutdown`: then stops every spread task, releases their Leases, and releases the
    /// member Lease last.
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
        let watcher = tokio::spawn(watch_leases::run(
            api.clone(),
            observed.clone(),
            progress_tx,
        ));
        if let Err(end) = self.first_list(&tasks, &mut progress, &mut shutdown).await {
            watcher.abort();
            return end;
        }
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
        let mut active: BTreeMap<String, Active> = BTreeMap::new();
        let mut first_absent: BTreeMap<String, Instant> = BTreeMap::new();
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
            // Runners that ended: released on our request, or died.
            let finished: Vec<String> = active
                .iter()
                .filter(|(_, a)| a.join.is_finished())
                .map(|(t, _)| t.clone())
                .collect();
            for task in finished {
                if let Some(a) = active.remove(&task)
                    && let Ok(RunnerEnd::ElectorDied(why)) = a.join.await
                    && !a.stopping
                {
                    end = RunnerEnd::ElectorDied(why);
                }
            }
            if matches!(end, RunnerEnd::ElectorDied(_)) {
                break;
            }
            let now = Instant::now();
            let (members, holders, unheld, moves, max_epoch) = {
                let o = observed.lock().unwrap_or_else(|e| e.into_inner());
                let members = o.live_members(now, member_ld);
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
                (members, holders, unheld, o.moves, o.max_epoch.clone())
            };
            if moves > moves_counted {
                self.metrics.task_moves.inc_by(moves - moves_counted);
                moves_counted = moves;
            }
            // Placement sees only holders that are live members: a task held by a departed agent is free to move.
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

            for task in &tasks {
                let owner = placement.get(&task.name);
                let mine = owner == Some(&me);
                let orphan = unheld
                    .get(&task.name)
                    .is_some_and(|since| now.saturating_duration_since(*since) > ld);
                match active.get_mut(&task.name) {
                    None if mine || orphan => {
                        let name = &names[&task.name];
                        let floor = max_epoch.get(name.name()).copied().unwrap_or(0);
                        match self
                            .elector
                            .spawn(self.task_election(name).epoch_floor(floor))
                        {
                            Ok(election) => {
                                let a = self.start_runner(task, election);
                                active.insert(task.name.clone(), a);
                            }
                            Err(e) => {
                                tracing::warn!(task = %task.name, error = %e, "cannot campaign for the spread task yet")
                            }
                        }
                    }
                    Some(a) if !a.stopping && !mine && !orphan => {
                        let leading = a.state.borrow().is_leading();
                        let owner_settled = owner
                            .and_then(|o| members.get(o))
                            .is_some_and(|since| now.saturating_duration_since(*since) >= settle);
                        // Stop campaigning at once when not holding; hand over a held task only to a settled owner.
                        if !leading || owner_settled {
                            tracing::info!(task = %task.name, owner = ?owner, "spread task placed elsewhere: releasing");
                            let _ = a.stop.send(true);
                            a.stopping = true;
                        }
                    }
                    _ => {}
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
                    // The watcher is gone (it only ends by panicking): keep ticking on the clock alone.
                    tokio::time::sleep(TICK).await;
                },
                r = shutdown.changed() => if r.is_err() { break },
            }
        }
        for a in active.values() {
            let _ = a.stop.send(true);
        }
        // The member Lease goes at the same time as the task Leases: the task Leases alone decide who may run a
        // task, so releasing membership early is safe, and it keeps the worst-case shutdown to one RD.
        let runners = futures::future::join_all(active.into_values().map(|a| a.join));
        let _ = tokio::join!(runners, member.shutdown());
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
