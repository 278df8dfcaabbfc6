//! The `[[task]]` children of one election namespace (or the always-on ones): building their specs and
//! environment, starting them under the supervisor, keeping the watchdog deadline moving while leadership lasts,
//! and stopping them.
//!
//! Starting and stopping run on their own tasks, never on the elector's: the election keeps renewing whatever a
//! child does (DataKit had a bug where a stuck resume blocked the heartbeat and made leadership flap).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use leasehold_policy::config::{TaskConfig, TaskMode};
use leasehold_policy::tags::Tags;
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, TaskLabels};
use crate::supervisor::{BootInstant, Deadline, Supervisor, TaskHandle, TaskSpec, TaskState};
use crate::view::{TaskView, View};

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

/// The mode word the API shows for a task.
pub fn mode_word(task: &TaskConfig) -> &'static str {
    match (task.election, task.mode) {
        (false, _) => "always",
        (true, TaskMode::Leader) => "leader",
        (true, TaskMode::Spread) => "spread",
    }
}

fn task_view(task: &TaskConfig, state: &TaskState, restarts: u64) -> TaskView {
    let (word, pid) = match state {
        TaskState::Running { pid } => ("running", Some(*pid)),
        TaskState::Starting => ("starting", None),
        TaskState::BackingOff { .. } => ("backing-off", None),
        TaskState::Stopping { pid } => ("stopping", Some(*pid)),
        TaskState::Expired { .. } => ("expired", None),
        TaskState::Stopped => ("stopped", None),
    };
    TaskView {
        name: task.name.clone(),
        mode: mode_word(task).into(),
        state: word.into(),
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
            let runtime = self
                .runtime_tags
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let mut merged = runtime;
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
                .get_or_create(&TaskLabels { task: task.name })
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
}
