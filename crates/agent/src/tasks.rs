//! The `[[task]]` children of one election namespace (or the always-on ones): building their specs and
//! environment, starting them under the supervisor, keeping the watchdog deadline moving while leadership lasts,
//! and stopping them.
//!
//! Starting and stopping run on their own tasks, never on the elector's: the election keeps renewing whatever a
//! child does (DataKit had a bug where a stuck resume blocked the heartbeat and made leadership flap).

use std::sync::Arc;
use std::time::{Duration, Instant};

use leasehold_policy::config::{TaskConfig, TaskMode};
use leasehold_policy::tags::Tags;
use parking_lot::RwLock;
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, TaskLabels};
use crate::supervisor::{BootInstant, Deadline, Supervisor, TaskHandle, TaskSpec, TaskState};
use crate::view::{RunMode, TaskStateKind, TaskView, View};

/// Who leads, for the children's environment.
#[derive(Clone, Debug)]
pub struct Term {
    /// The fencing epoch (`LEASEHOLD_EPOCH`).
    pub epoch: u64,
    /// The holder identity (`LEASEHOLD_HOLDER`).
    pub holder: String,
}

/// What every task of this agent needs to be started.
#[derive(Clone)]
pub struct TaskContext {
    /// Spawns the children under their watchdogs.
    pub supervisor: Arc<Supervisor>,
    /// Where task states are published.
    pub view: Arc<View>,
    /// Restart counters.
    pub metrics: Arc<Metrics>,
    /// Tags for a task, by the policy rules, before runtime tags.
    pub base_tags: Arc<dyn Fn(&TaskConfig) -> Tags + Send + Sync>,
    /// Runtime election tags from the control API, over the configured ones, for election tasks.
    pub runtime_tags: Arc<RwLock<Tags>>,
}

/// The mode the API shows for a task.
fn run_mode(task: &TaskConfig) -> RunMode {
    match (task.election, task.mode) {
        (false, _) => RunMode::Always,
        (true, TaskMode::Leader) => RunMode::Leader,
        (true, TaskMode::Spread) => RunMode::Spread,
    }
}

fn task_view(task: &TaskConfig, state: &TaskState, restarts: u64) -> TaskView {
    let (state, pid) = match state {
        TaskState::Running { pid } => (TaskStateKind::Running, Some(*pid)),
        TaskState::Starting => (TaskStateKind::Starting, None),
        TaskState::BackingOff { .. } => (TaskStateKind::BackingOff, None),
        TaskState::Stopping { pid } => (TaskStateKind::Stopping, Some(*pid)),
        TaskState::Expired { .. } => (TaskStateKind::Expired, None),
        TaskState::Stopped => (TaskStateKind::Stopped, None),
    };
    TaskView {
        name: task.name.clone(),
        mode: run_mode(task),
        state,
        pid,
        restarts,
    }
}

/// Publishes a stopped entry for each task, so the API lists tasks before they ever ran.
pub fn publish_idle(view: &View, namespace: &str, tasks: &[TaskConfig]) {
    for t in tasks {
        view.set_task(namespace, task_view(t, &TaskState::Stopped, 0));
    }
}

/// A set of running tasks, with what it takes to start each again.
pub struct Running {
    namespace: String,
    term: Option<Term>,
    tasks: Vec<TaskConfig>,
    handles: Vec<TaskHandle>,
    watchers: Vec<JoinHandle<()>>,
}

impl TaskContext {
    /// The environment a child gets.
    fn env(
        &self,
        task: &TaskConfig,
        namespace: &str,
        term: Option<&Term>,
    ) -> Vec<(String, String)> {
        let mut tags = (self.base_tags)(task);
        if task.election {
            let mut merged = self.runtime_tags.read().clone();
            merged.overlay(&task.tags);
            tags.overlay(&merged);
        }
        let mut env = vec![
            ("LEASEHOLD_NAMESPACE".to_string(), namespace.to_string()),
            ("LEASEHOLD_TASK".to_string(), task.name.clone()),
            ("LEASEHOLD_TAGS".to_string(), tags.to_env_string()),
        ];
        if let Some(term) = term {
            env.push(("LEASEHOLD_EPOCH".to_string(), term.epoch.to_string()));
            env.push(("LEASEHOLD_HOLDER".to_string(), term.holder.clone()));
        }
        env
    }

    /// Starts `tasks` for `namespace`; `deadline` is the watchdog's first kill deadline.
    pub fn start(
        &self,
        namespace: &str,
        tasks: &[TaskConfig],
        term: Option<&Term>,
        deadline: Deadline,
    ) -> Running {
        let mut running = Running {
            namespace: namespace.to_owned(),
            term: term.cloned(),
            tasks: tasks.to_vec(),
            handles: Vec::new(),
            watchers: Vec::new(),
        };
        for task in tasks {
            let (handle, watcher) = self.start_one(namespace, task, term, deadline);
            running.handles.push(handle);
            running.watchers.push(watcher);
        }
        running
    }

    fn start_one(
        &self,
        namespace: &str,
        task: &TaskConfig,
        term: Option<&Term>,
        deadline: Deadline,
    ) -> (TaskHandle, JoinHandle<()>) {
        let spec = TaskSpec {
            name: task.name.clone(),
            command: task.command.clone(),
            env: self.env(task, namespace, term),
            grace: task.grace,
        };
        let handle = self.supervisor.run(spec, deadline);
        let watcher = self.watch_task(namespace, task.clone(), &handle);
        (handle, watcher)
    }

    /// Starts again, with `deadline`, every task of `running` whose kill deadline passed (the watchdog killed it,
    /// or never started it) and counts each as a restart. Call it only while the leadership those tasks run for is
    /// current: then the deadline passed because the agent itself was starved (it could not move the deadline
    /// forward) while the elector kept renewing, and without this the leader would keep the Lease with nothing
    /// running until leadership changed. Returns how many were started.
    pub fn restart_expired(&self, running: &mut Running, deadline: Deadline) -> usize {
        let expired = expired(running.handles.iter().map(|h| *h.state().borrow()));
        for &i in &expired {
            let task = running.tasks[i].clone();
            tracing::warn!(task = %task.name, "the task's kill deadline passed while this agent still leads (the agent was starved of CPU); starting it again");
            let (handle, watcher) =
                self.start_one(&running.namespace, &task, running.term.as_ref(), deadline);
            // The old handle is final (Expired) and its watcher has published that; replace both.
            running.handles[i] = handle;
            running.watchers[i].abort();
            running.watchers[i] = watcher;
            self.metrics
                .task_restarts
                .get_or_create(&TaskLabels {
                    namespace: running.namespace.clone(),
                    task: task.name,
                })
                .inc();
        }
        expired.len()
    }

    /// Mirrors a task's state into the view and its restarts into the metrics.
    fn watch_task(&self, namespace: &str, task: TaskConfig, handle: &TaskHandle) -> JoinHandle<()> {
        let mut state = handle.state();
        let view = self.view.clone();
        let metrics = self.metrics.clone();
        let ns = namespace.to_string();
        let restarts = handle.restart_counter();
        tokio::spawn(async move {
            let mut counted = 0;
            loop {
                let current = *state.borrow_and_update();
                let n = restarts.get();
                if n > counted {
                    metrics
                        .task_restarts
                        .get_or_create(&TaskLabels {
                            namespace: ns.clone(),
                            task: task.name.clone(),
                        })
                        .inc_by(n - counted);
                    counted = n;
                }
                view.set_task(&ns, task_view(&task, &current, n));
                if state.changed().await.is_err() {
                    // The handle is gone: publish the last state the supervisor set (normally Stopped).
                    let last = *state.borrow();
                    view.set_task(&ns, task_view(&task, &last, restarts.get()));
                    return;
                }
            }
        })
    }
}

impl Running {
    /// Moves every task's watchdog deadline.
    pub fn set_deadline(&self, deadline: Deadline) {
        for h in &self.handles {
            h.set_deadline(deadline);
        }
    }

    /// Stops every task (SIGTERM, SIGKILL after its grace) and waits until all are gone.
    pub async fn stop(self) {
        // The supervisor logs each task's outcome in the task's span.
        futures::future::join_all(self.handles.into_iter().map(TaskHandle::stop)).await;
        for w in self.watchers {
            let _ = w.await;
        }
    }
}

/// The indices of the tasks, by state, whose kill deadline has passed: the ones to start again while leadership
/// is still current.
fn expired(states: impl Iterator<Item = TaskState>) -> Vec<usize> {
    states
        .enumerate()
        .filter(|(_, s)| matches!(s, TaskState::Expired { .. }))
        .map(|(i, _)| i)
        .collect()
}

/// The watchdog deadline for a leadership whose guard ends at `leadership_deadline` (CLOCK_BOOTTIME, from
/// [`leasehold_lease::Leadership::deadline_since_boot`]): past the end of leadership by 7/8 of LD − RD, so a
/// stalled agent's children are dead before any other agent can have acquired the Lease (which takes at least LD
/// after our last renew), while a normal stop (SIGTERM, then SIGKILL after a grace < LD − RD) runs first. A pure
/// function of the guard's absolute deadline: no clock read, so no stall can move it later.
pub(crate) fn watchdog_deadline(
    leadership_deadline: Duration,
    lease_duration: Duration,
    renew_deadline: Duration,
) -> Deadline {
    let slack = lease_duration.saturating_sub(renew_deadline);
    let nanos = u64::try_from(leadership_deadline.as_nanos()).unwrap_or(u64::MAX);
    Deadline::At(BootInstant::from_nanos(nanos) + (slack - slack / 8))
}

/// The two clocks the deadlines are derived from, read once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    /// `CLOCK_MONOTONIC` (`std::time::Instant`), the clock of the view's leadership deadline.
    pub mono: Instant,
    /// `CLOCK_BOOTTIME` since boot, the clock of the leadership guard and of the kill deadline.
    pub boot: Duration,
}

impl Now {
    /// Reads both clocks, `CLOCK_MONOTONIC` first: a stall between the two reads then moves the end of leadership
    /// derived from them earlier, never later.
    pub(crate) fn read() -> Self {
        let mono = Instant::now();
        let boot = leasehold_lease::since_boot();
        Self { mono, boot }
    }
}

/// What a leader's runner derives from its leadership guard at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// The tasks' kill deadline: [`watchdog_deadline`] of the guard's deadline, or one that has already passed
    /// when there is none (leadership ended), so the shim starts nothing and kills what runs.
    pub kill: Deadline,
    /// When leadership ends on `CLOCK_MONOTONIC`, for the view (a `success` shows only until then); `None` when
    /// it has ended at `now`, as [`leasehold_lease::Leadership::time_left`] would say.
    pub leading_until: Option<Instant>,
}

/// The deadlines for a leadership whose guard ends at `guard` (CLOCK_BOOTTIME, from
/// [`leasehold_lease::Leadership::deadline_since_boot`]; `None` once it has ended), at `now`. Pure: the clocks are
/// read by the caller ([`Now::read`]). The kill deadline depends on the guard alone; the end shown in the view is
/// the time left on the boot clock carried over to the monotonic one.
pub(crate) fn deadlines(
    guard: Option<Duration>,
    now: Now,
    lease_duration: Duration,
    renew_deadline: Duration,
) -> Deadlines {
    let kill = guard.map_or(Deadline::At(BootInstant::from_nanos(0)), |g| {
        watchdog_deadline(g, lease_duration, renew_deadline)
    });
    // Leadership lasts while the boot clock is before the guard's deadline (`Leadership::time_left`). The guard is
    // at most RD ahead of the boot clock, so the monotonic clock can always hold the sum.
    let leading_until = guard
        .and_then(|g| g.checked_sub(now.boot))
        .filter(|left| !left.is_zero())
        .and_then(|left| now.mono.checked_add(left));
    Deadlines {
        kill,
        leading_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tasks_whose_kill_deadline_passed_are_started_again() {
        let states = [
            TaskState::Running { pid: 10 },
            TaskState::Expired { last_exit: None },
            TaskState::Starting,
            TaskState::Expired { last_exit: None },
            TaskState::Stopping { pid: 11 },
        ];
        assert_eq!(expired(states.into_iter()), [1, 3]);
        assert!(expired([TaskState::Starting].into_iter()).is_empty());
    }

    /// The kill deadline sits after the end of leadership by 7/8 of LD − RD: late enough for a graceful stop
    /// (grace < LD − RD) to run first, early enough that the children are dead before anyone else can acquire
    /// (LD after our last renew, and our guard ends RD after it). It depends on the guard's deadline alone.
    #[test]
    fn the_kill_deadline_is_the_guards_deadline_plus_seven_eighths_of_ld_minus_rd() {
        let timings = [(15, 10_000), (3, 2_000), (60, 40_000), (2, 1_999)];
        for boot_secs in [0u64, 7, 86_400 * 365] {
            for (ld, rd_ms) in timings {
                let (ld, rd) = (Duration::from_secs(ld), Duration::from_millis(rd_ms));
                let guard = Duration::from_secs(boot_secs) + Duration::from_millis(123);
                let Deadline::At(kill) = watchdog_deadline(guard, ld, rd) else {
                    panic!("a leadership always has a kill deadline");
                };
                let guard_at = BootInstant::from_nanos(u64::try_from(guard.as_nanos()).unwrap());
                let after = kill.saturating_duration_since(guard_at);
                let slack = ld - rd;
                assert!(
                    after >= slack * 7 / 8 && after < slack,
                    "{after:?} of {slack:?}"
                );
                assert_eq!(after, slack - slack / 8);
                // The other side of the inequality: relative to our last renew s (guard = s + RD), the kill comes
                // before s + LD, the earliest another agent may acquire.
                assert!(rd + after < ld);
            }
        }
    }

    const LD: Duration = Duration::from_secs(15);
    const RD: Duration = Duration::from_secs(10);

    fn at(boot_secs: u64) -> Now {
        Now {
            mono: Instant::now(),
            boot: Duration::from_secs(boot_secs),
        }
    }

    #[test]
    fn a_current_leadership_ends_in_the_view_after_the_time_left_on_the_boot_clock() {
        let now = at(1_000);
        let guard = now.boot + Duration::from_millis(9_500);
        let d = deadlines(Some(guard), now, LD, RD);
        assert_eq!(
            d.leading_until,
            Some(now.mono + Duration::from_millis(9_500))
        );
        assert_eq!(d.kill, watchdog_deadline(guard, LD, RD));
    }

    #[test]
    fn no_guard_deadline_means_no_leadership_and_a_kill_deadline_already_passed() {
        let now = at(1_000);
        let d = deadlines(None, now, LD, RD);
        assert_eq!(d.leading_until, None);
        // Passed at any instant, even right after boot: the shim starts nothing.
        let Deadline::At(kill) = d.kill else {
            panic!("an ended leadership still has a kill deadline");
        };
        assert!(d.kill.has_passed(BootInstant::from_nanos(0)), "{kill}");
        let early = deadlines(None, at(0), LD, RD);
        assert_eq!(early, d);
    }

    #[test]
    fn a_guard_deadline_reached_or_passed_is_no_leadership_but_keeps_its_kill_deadline() {
        let now = at(1_000);
        for guard in [now.boot, now.boot - Duration::from_nanos(1), Duration::ZERO] {
            let d = deadlines(Some(guard), now, LD, RD);
            assert_eq!(d.leading_until, None, "guard {guard:?}");
            // The kill deadline is a function of the guard alone: a stop that began when leadership ended still
            // has until guard + 7/8·(LD − RD).
            assert_eq!(d.kill, watchdog_deadline(guard, LD, RD));
        }
        let just_before = deadlines(Some(now.boot + Duration::from_nanos(1)), now, LD, RD);
        assert_eq!(
            just_before.leading_until,
            Some(now.mono + Duration::from_nanos(1))
        );
    }

    /// A stop begins at the latest when leadership ends (the guard's deadline), and the kill deadline comes
    /// 7/8·(LD − RD) after it. The default grace (at most half of LD − RD) always fits in that window; a grace
    /// written close to LD − RD, which the configuration allows, is longer than the time left and is cut short by
    /// the kill deadline: the watchdog's SIGKILL comes at the deadline, mid-grace.
    #[test]
    fn a_grace_longer_than_the_time_left_before_the_kill_deadline_is_cut_short() {
        for (ld, rd) in [(LD, RD), (Duration::from_secs(3), Duration::from_secs(2))] {
            let now = at(500);
            let guard = now.boot + Duration::from_secs(1);
            let d = deadlines(Some(guard), now, ld, rd);
            let Deadline::At(kill) = d.kill else {
                panic!("a leadership always has a kill deadline");
            };
            let guard_at = BootInstant::from_nanos(u64::try_from(guard.as_nanos()).unwrap());
            let window = kill.saturating_duration_since(guard_at);
            let slack = ld - rd;
            let timing = leasehold_policy::config::Timing {
                lease_duration: ld,
                renew_deadline: rd,
                ..Default::default()
            };
            let default_grace =
                leasehold_policy::config::TaskDefaults::default().grace_for(&timing);
            assert!(
                default_grace <= window,
                "{default_grace:?} fits in {window:?}"
            );
            let long_grace = slack - Duration::from_millis(1);
            assert!(
                long_grace > window,
                "{long_grace:?} is cut at {window:?} after the end of leadership"
            );
        }
    }

    #[test]
    fn a_far_guard_deadline_saturates_instead_of_overflowing() {
        let now = at(1);
        let d = deadlines(Some(Duration::MAX), now, LD, RD);
        assert_eq!(d.kill, Deadline::At(BootInstant::from_nanos(u64::MAX)));
        // No panic either on the monotonic clock, whatever `Instant` can hold.
        assert!(d.leading_until.is_none_or(|u| u > now.mono));
    }
}
