//! What the agent holds for a running task: the handle that moves its deadline and stops it, and the states and
//! reports it can observe.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::clock::{BootInstant, Deadline};

/// How a task's watchdog shim ended, as seen through the shim's exit code (see [`crate::shim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskExit {
    /// The command exited with this status.
    Code(i32),
    /// The command died of this signal. 9 (SIGKILL) also covers the shim killing the group itself: grace over,
    /// deadline passed, agent gone.
    Signal(i32),
    /// The shim could not be started, or its status could not be read; the error is logged.
    Unknown,
}

/// Where a task is in its life. Published on [`TaskHandle::state`]; every change is one `watch` update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Entered on [`Supervisor::run`](super::Supervisor::run) and before each restart: the shim is being spawned.
    /// Left for `Running`, or for `BackingOff` when the spawn fails.
    Starting,
    /// The shim runs. `pid` is the shim's pid, which is also the id of the session that holds every process of the
    /// task. Left when the task exits (`BackingOff` or `Expired`) or on stop (`Stopping`).
    Running {
        /// The watchdog shim's pid (= the task's session id).
        pid: u32,
    },
    /// The task exited by itself and will be started again at `until`, unless stopped first. Left for `Starting`.
    BackingOff {
        /// When the next start is due.
        until: Instant,
        /// How the last run ended.
        last_exit: TaskExit,
    },
    /// The kill deadline passed: the shim killed the task, or it ended and the deadline had passed. Final until
    /// [`TaskHandle::stop`] or drop: a passed deadline stands for leadership that has ended, and only a new
    /// [`Supervisor::run`](super::Supervisor::run) may start the task again.
    Expired {
        /// How the last run ended; `None` when the deadline had passed before the first start.
        last_exit: Option<TaskExit>,
    },
    /// [`TaskHandle::stop`] was called while the shim ran: SIGTERM sent, waiting for the group to go (at most the
    /// grace, then SIGKILL). Left for `Stopped`.
    Stopping {
        /// The watchdog shim's pid.
        pid: u32,
    },
    /// Final: no process of the task is left (short of ones that left its process group).
    Stopped,
}

/// How the task ended when it was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// Nothing was running: the task was backing off, expired, or not started yet.
    NotRunning,
    /// It exited within the grace with this status (for example from its SIGTERM handler).
    Exited(i32),
    /// It died of the SIGTERM.
    Terminated,
    /// It had to be SIGKILLed: the grace ran out (or the kill deadline passed during it).
    Killed,
    /// It died of another signal.
    Signaled(i32),
    /// Its status could not be read; the error is logged.
    Unknown,
}

impl From<TaskExit> for StopOutcome {
    fn from(exit: TaskExit) -> Self {
        match exit {
            TaskExit::Code(code) => Self::Exited(code),
            TaskExit::Signal(15) => Self::Terminated,
            TaskExit::Signal(9) => Self::Killed,
            TaskExit::Signal(signal) => Self::Signaled(signal),
            TaskExit::Unknown => Self::Unknown,
        }
    }
}

/// What [`TaskHandle::stop`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// How the task ended.
    pub outcome: StopOutcome,
    /// From the stop request until the shim had exited (and with it every process in the task's group).
    pub took: Duration,
    /// Restarts over the task's life.
    pub restarts: u64,
}

/// A read-only view of a task's restart count that can be cloned into code that doesn't hold the handle (a metrics
/// or status watcher). Counting restarts from [`TaskState`] changes would miss some: a `watch` receiver sees only the
/// latest state, and a quick restart can go from `BackingOff` to `Running` between two looks.
#[derive(Debug, Clone)]
pub struct RestartCounter(Arc<AtomicU64>);

impl RestartCounter {
    /// Restarts so far: starts that followed an exit of the task by itself (and its backoff).
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The agent's handle on one task started by [`Supervisor::run`](super::Supervisor::run).
///
/// Dropping it without [`TaskHandle::stop`] closes the shim's control pipe, and the shim SIGKILLs the task's group
/// at once: a handle lost in a panic or a cancelled future never leaves a collector running.
#[derive(Debug)]
pub struct TaskHandle {
    pub(super) name: String,
    pub(super) deadline: watch::Sender<Deadline>,
    pub(super) stop: Option<oneshot::Sender<()>>,
    pub(super) state: watch::Receiver<TaskState>,
    pub(super) restarts: Arc<AtomicU64>,
    pub(super) runner: Option<JoinHandle<StopReport>>,
}

impl TaskHandle {
    /// The task's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the kill deadline. Never blocks, whatever the shim or the runtime are doing: the latest value wins and
    /// is written to the current shim (and given to restarted ones) by the task's runner.
    ///
    /// Returns `false`, and changes nothing, when the current deadline has already passed. A passed deadline is
    /// final, like a lease renew that succeeds after the renew deadline: leadership that has ended comes back only
    /// through a new acquire, and so the task only through a new [`Supervisor::run`](super::Supervisor::run).
    pub fn set_deadline(&self, deadline: Deadline) -> bool {
        let now = BootInstant::now();
        let mut accepted = true;
        self.deadline.send_if_modified(|current| {
            if current.has_passed(now) {
                accepted = false;
                return false;
            }
            let changed = *current != deadline;
            *current = deadline;
            changed
        });
        accepted
    }

    /// Stops the task: the shim SIGTERMs its group, waits up to the grace for every member to exit, SIGKILLs what is
    /// left, and exits. Resolves once the shim has exited, so no process of the task is left. During a backoff it
    /// just cancels the restart.
    pub async fn stop(mut self) -> StopReport {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let report = match self.runner.take() {
            Some(runner) => runner.await.ok(),
            None => None,
        };
        report.unwrap_or(StopReport {
            outcome: StopOutcome::Unknown,
            took: started.elapsed(),
            restarts: self.restarts(),
        })
    }

    /// The task's state, as a `watch` receiver: read it now with `borrow()`, or await changes.
    #[must_use]
    pub fn state(&self) -> watch::Receiver<TaskState> {
        self.state.clone()
    }

    /// How many times the task has been restarted after exiting by itself. Counted when the restart begins, just
    /// before the state becomes `Starting` again.
    #[must_use]
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// The restart count as a cloneable [`RestartCounter`], for watchers that don't hold the handle.
    #[must_use]
    pub fn restart_counter(&self) -> RestartCounter {
        RestartCounter(Arc::clone(&self.restarts))
    }
}
