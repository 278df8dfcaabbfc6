//! The task supervisor: runs the agent's `[[task]]` children, each under a watchdog shim, gated by a kill deadline.
//!
//! Entry point: [`Supervisor::run`] starts a task and returns a [`TaskHandle`]. The agent moves the task's kill
//! deadline on with every successful renew ([`TaskHandle::set_deadline`]) and calls [`TaskHandle::stop`] when
//! leadership ends. Nothing here blocks the caller: deadlines and stop requests go through channels to one tokio
//! task per child, spawns go to one long-lived thread, and the shim ([`crate::shim`]) enforces the deadline with its
//! own timer, so a SIGSTOPped, deadlocked, starved or killed agent still loses its tasks on time (docs/design.md §6).
//!
//! Choosing the deadline (the agent's call): the design wants an election task gone within LD − RD of the end of
//! leadership, and leadership ends at the renew deadline (renew sent + RD). So the latest safe kill deadline after a
//! renew sent at `t` is `t + RD + (LD − RD) = t + LD`, the earliest moment another node may take over; subtract a
//! margin for slack. The deadline also caps a stop's grace: SIGKILL comes at the deadline even mid-grace.

mod backoff;
mod clock;
mod control;
mod handle;
mod output;
mod reaper;
mod runner;
mod spawner;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use backoff::RestartBackoff;
pub use clock::{BootInstant, Deadline};
pub use handle::{RestartCounter, StopOutcome, StopReport, TaskExit, TaskHandle, TaskState};

use self::backoff::Backoff;
use self::runner::{Runner, StopSignal};
use self::spawner::{OwnedChildren, Spawner};

/// What to run for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The task's name: in every log line of its output, and in the shim's command line.
    pub name: String,
    /// argv; the program is looked up in `PATH`. Must not be empty (an empty one fails like a missing program).
    pub command: Vec<String>,
    /// Added to the agent's environment (minus `LEASEHOLD_API_TOKEN`, which tasks never see): `LEASEHOLD_EPOCH`,
    /// `LEASEHOLD_TAGS` and the like.
    pub env: Vec<(String, String)>,
    /// Time between SIGTERM and SIGKILL when the task is stopped.
    pub grace: Duration,
}

/// The supervisor could not start.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// [`Supervisor::new`] was called outside a tokio runtime.
    #[error("the task supervisor must be created inside a tokio runtime")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
    /// The spawn thread could not be started.
    #[error("cannot start the supervisor's spawn thread")]
    SpawnThread(#[source] std::io::Error),
    /// The path of the running executable, needed to re-execute it as the shim, is unknown.
    #[error("cannot find the agent's own executable to run the watchdog shim")]
    CurrentExe(#[source] std::io::Error),
}

/// What every task runner shares: how to run the shim, and the spawn thread.
#[derive(Debug)]
struct Shared {
    program: PathBuf,
    prefix_args: Vec<String>,
    spawner: Spawner,
    children: OwnedChildren,
}

/// Starts tasks under watchdog shims. Cheap to clone; all clones share one spawn thread, which exits when the last
/// clone and the last task are gone.
#[derive(Debug, Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
    backoff: RestartBackoff,
}

impl Supervisor {
    /// A supervisor that runs the shim as `shim_program shim_prefix_args... --task ...`: for the agent,
    /// `(std::env::current_exe(), ["__shim"])`, which [`Supervisor::for_current_exe`] builds.
    ///
    /// # Errors
    /// [`SupervisorError::NoRuntime`] outside a tokio runtime (the spawn thread spawns into the current one);
    /// [`SupervisorError::SpawnThread`] when the thread can't be started.
    pub fn new(
        shim_program: PathBuf,
        shim_prefix_args: Vec<String>,
    ) -> Result<Self, SupervisorError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(SupervisorError::NoRuntime)?;
        let children = OwnedChildren::default();
        let spawner =
            Spawner::start(runtime, children.clone()).map_err(SupervisorError::SpawnThread)?;
        let shared = Shared {
            program: shim_program,
            prefix_args: shim_prefix_args,
            spawner,
            children,
        };
        Ok(Self {
            shared: Arc::new(shared),
            backoff: RestartBackoff::default(),
        })
    }

    /// A supervisor that re-executes the running binary in shim mode: `leasehold __shim ...`.
    ///
    /// # Errors
    /// As [`Supervisor::new`], and [`SupervisorError::CurrentExe`] when the executable's path is unknown.
    pub fn for_current_exe() -> Result<Self, SupervisorError> {
        let exe = std::env::current_exe().map_err(SupervisorError::CurrentExe)?;
        Self::new(exe, vec![crate::shim::SUBCOMMAND.to_owned()])
    }

    /// Sets the restart backoff for tasks started afterwards. Default: [`RestartBackoff::default`].
    #[must_use]
    pub fn with_restart_backoff(mut self, backoff: RestartBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Starts `spec` under a shim whose kill deadline is `deadline`, and keeps it running until stopped: when it
    /// exits by itself it is restarted after a backoff and counted, unless its deadline has passed (then it stays
    /// down, [`TaskState::Expired`]). Its output goes to the log, one event per line, in a `task` span carrying
    /// its name. Must be called inside a tokio runtime; returns at once.
    #[must_use = "dropping the handle kills the task at once"]
    pub fn run(&self, spec: TaskSpec, deadline: Deadline) -> TaskHandle {
        let (deadline_tx, deadlines) = watch::channel(deadline);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (state_tx, state) = watch::channel(TaskState::Starting);
        let restarts = Arc::new(AtomicU64::new(0));
        let span = tracing::info_span!("task", task = %spec.name);
        let name = spec.name.clone();
        let runner = Runner {
            spec,
            shared: Arc::clone(&self.shared),
            backoff: Backoff::new(self.backoff),
            deadlines,
            stop: StopSignal::new(stop_rx),
            state: state_tx,
            restarts: Arc::clone(&restarts),
            span: span.clone(),
        };
        let runner = tokio::spawn(runner.run().instrument(span));
        TaskHandle {
            name,
            deadline: deadline_tx,
            stop: Some(stop_tx),
            state,
            restarts,
            runner: Some(runner),
        }
    }

    /// When this process is PID 1 (the agent is a container's init), starts a tokio task that reaps orphaned
    /// processes re-parented to it, so they don't pile up as zombies; otherwise does nothing and returns `None`.
    ///
    /// The reaper never reaps the supervisor's own shims, whose exit status their runners need. Children that the
    /// process starts by other means are not protected: when PID 1, start child processes through the supervisor.
    /// Must be called inside a tokio runtime.
    #[must_use = "the reaper runs until the returned task is aborted"]
    pub fn spawn_orphan_reaper_if_pid1(&self) -> Option<JoinHandle<()>> {
        reaper::spawn_if_pid1(self.shared.children.clone())
    }
}
