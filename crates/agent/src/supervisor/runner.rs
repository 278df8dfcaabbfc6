//! One task's life, as a tokio task: start the shim, watch it, restart it with backoff when it exits by itself, and
//! stop it on request.
//!
//! Only this task touches the child; the agent talks to it through channels ([`TaskHandle`](super::TaskHandle)), so
//! nothing the agent calls can block on a process.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio::sync::{oneshot, watch};

use super::backoff::Backoff;
use super::clock::{BootInstant, Deadline};
use super::control::ControlWriter;
use super::handle::{StopOutcome, StopReport, TaskExit, TaskState};
use super::output::{Stream, forward};
use super::{Shared, TaskSpec};
use crate::shim::ShimArgs;

/// Environment variables the agent has and its tasks must not: the control API's token.
const WITHHELD_ENV: &[&str] = &["LEASEHOLD_API_TOKEN"];

/// What the handle asked for, or that it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopKind {
    /// [`TaskHandle::stop`](super::TaskHandle::stop): SIGTERM, grace, SIGKILL.
    Stop,
    /// The handle was dropped: close the control pipe, so the shim SIGKILLs the group at once.
    Dropped,
}

/// The receiving end of the handle's stop request; remembers what it got, so it can be awaited again.
#[derive(Debug)]
pub(super) struct StopSignal {
    rx: oneshot::Receiver<()>,
    got: Option<StopKind>,
}

impl StopSignal {
    pub(super) fn new(rx: oneshot::Receiver<()>) -> Self {
        Self { rx, got: None }
    }

    /// Resolves when the handle asks to stop or is dropped. Cancel-safe.
    async fn recv(&mut self) -> StopKind {
        if let Some(kind) = self.got {
            return kind;
        }
        let kind = if (&mut self.rx).await.is_ok() {
            StopKind::Stop
        } else {
            StopKind::Dropped
        };
        self.got = Some(kind);
        kind
    }
}

/// How one run of the shim ended.
enum RunEnd {
    /// The shim exited while nobody asked it to, after running this long.
    Exited(TaskExit, Duration),
    /// It was stopped on request.
    Stopped(StopReport),
    /// The handle was dropped and the shim has killed the group and exited.
    Abandoned,
}

/// The state of one task's runner.
pub(super) struct Runner {
    pub(super) spec: TaskSpec,
    pub(super) shared: Arc<Shared>,
    pub(super) backoff: Backoff,
    pub(super) deadlines: watch::Receiver<Deadline>,
    pub(super) stop: StopSignal,
    pub(super) state: watch::Sender<TaskState>,
    pub(super) restarts: Arc<AtomicU64>,
    pub(super) span: tracing::Span,
}

impl Runner {
    /// Runs the task until it is stopped or its handle dropped, and reports how it ended.
    pub(super) async fn run(mut self) -> StopReport {
        let mut last_exit = None;
        loop {
            if self.deadline_passed() {
                return self.expired(last_exit).await;
            }
            self.state.send_replace(TaskState::Starting);
            let end = match self.spawn().await {
                Ok((child, sent)) => self.supervise(child, sent).await,
                Err(error) => {
                    tracing::error!(%error, program = %self.shared.program.display(), "cannot start the watchdog shim");
                    RunEnd::Exited(TaskExit::Unknown, Duration::ZERO)
                }
            };
            let (exit, ran_for) = match end {
                RunEnd::Stopped(report) => return self.finish(report),
                RunEnd::Abandoned => {
                    return self.finish(self.report(StopOutcome::Killed, Duration::ZERO));
                }
                RunEnd::Exited(exit, ran_for) => (exit, ran_for),
            };
            last_exit = Some(exit);
            if self.deadline_passed() {
                tracing::warn!(
                    ?exit,
                    "task ended after its kill deadline passed; it stays down until started anew"
                );
                continue;
            }
            let delay = self.backoff.next(ran_for);
            tracing::warn!(?exit, ran_for = ?ran_for, restart_in = ?delay, "task exited by itself; restarting after a backoff");
            self.state.send_replace(TaskState::BackingOff {
                until: Instant::now() + delay,
                last_exit: exit,
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => {
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                }
                _ = self.stop.recv() => return self.finish(self.report(StopOutcome::NotRunning, Duration::ZERO)),
            }
        }
    }

    fn deadline_passed(&self) -> bool {
        self.deadlines.borrow().has_passed(BootInstant::now())
    }

    /// Waits, with nothing running, for the stop or drop that must follow a passed deadline.
    async fn expired(mut self, last_exit: Option<TaskExit>) -> StopReport {
        self.state.send_replace(TaskState::Expired { last_exit });
        self.stop.recv().await;
        self.finish(self.report(StopOutcome::NotRunning, Duration::ZERO))
    }

    fn report(&self, outcome: StopOutcome, took: Duration) -> StopReport {
        StopReport {
            outcome,
            took,
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }

    fn finish(&self, report: StopReport) -> StopReport {
        tracing::info!(outcome = ?report.outcome, took = ?report.took, restarts = report.restarts, "task stopped");
        self.state.send_replace(TaskState::Stopped);
        report
    }

    /// Starts a shim with the current deadline on its command line, and returns the deadline it was given.
    async fn spawn(&self) -> io::Result<(Child, Deadline)> {
        let deadline = *self.deadlines.borrow();
        let shim = ShimArgs {
            task: self.spec.name.clone(),
            grace: self.spec.grace,
            deadline,
            command: self.spec.command.clone(),
        };
        let mut command = tokio::process::Command::new(&self.shared.program);
        command.args(&self.shared.prefix_args).args(shim.to_args());
        for name in WITHHELD_ENV {
            command.env_remove(name);
        }
        command.envs(self.spec.env.iter().map(|(k, v)| (k, v)));
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        let child = self.shared.spawner.spawn(command).await?;
        Ok((child, deadline))
    }

    /// Watches one shim until it exits, forwarding deadlines and the stop request to it.
    async fn supervise(&mut self, mut child: Child, sent: Deadline) -> RunEnd {
        let started = Instant::now();
        let pid = child.id().unwrap_or(0);
        let outputs = [
            (
                child.stdout.take().map(|o| o.into_owned_fd()),
                Stream::Stdout,
            ),
            (
                child.stderr.take().map(|e| e.into_owned_fd()),
                Stream::Stderr,
            ),
        ];
        for (fd, stream) in outputs {
            if let Some(Err(error)) = fd.map(|fd| forward(fd?, stream, self.span.clone())) {
                tracing::warn!(?stream, %error, "cannot forward the task's output; it is lost");
            }
        }
        let writer = child
            .stdin
            .take()
            .map(|stdin| ControlWriter::start(stdin, self.deadlines.clone(), sent));
        self.state.send_replace(TaskState::Running { pid });
        tracing::info!(pid, "task started");

        let kind = tokio::select! {
            status = child.wait() => {
                self.shared.children.forget(pid_i32(pid));
                return RunEnd::Exited(exit_of(status), started.elapsed());
            }
            kind = self.stop.recv() => kind,
        };
        let stop_started = Instant::now();
        match kind {
            StopKind::Stop => {
                self.state.send_replace(TaskState::Stopping { pid });
                if let Some(writer) = &writer {
                    writer.request_stop();
                }
            }
            StopKind::Dropped => {
                tracing::warn!(
                    "task handle dropped without stop: killing the task's process group"
                );
                if let Some(writer) = writer {
                    writer.close();
                }
            }
        }
        let status = child.wait().await;
        self.shared.children.forget(pid_i32(pid));
        let exit = exit_of(status);
        match kind {
            StopKind::Stop => RunEnd::Stopped(self.report(exit.into(), stop_started.elapsed())),
            StopKind::Dropped => RunEnd::Abandoned,
        }
    }
}

fn pid_i32(pid: u32) -> i32 {
    i32::try_from(pid).unwrap_or(0)
}

/// Reads the shim's exit status (see [`crate::shim`] for its encoding).
fn exit_of(status: io::Result<ExitStatus>) -> TaskExit {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) if (129..=192).contains(&code) => TaskExit::Signal(code - 128),
            (Some(code), _) => TaskExit::Code(code),
            (None, Some(signal)) => {
                tracing::error!(
                    signal,
                    "the watchdog shim itself was killed; processes of the task may survive it"
                );
                TaskExit::Signal(signal)
            }
            (None, None) => TaskExit::Unknown,
        },
        Err(error) => {
            tracing::error!(%error, "cannot read the watchdog shim's exit status");
            TaskExit::Unknown
        }
    }
}
