//! Runs a set of tasks exactly while one election is led: follows the elector's state, starts the children with
//! the epoch when leadership is gained, keeps their watchdog deadline moving while it lasts, stops them the moment
//! it ends, and serves impeach requests. What the outside sees (status, metrics, Events) goes to a [`Sink`]: an
//! election namespace's status line, or a spread task's entry.
//!
//! States and what the runner does in each (the elector owns the Lease; the runner owns the children):
//! - `Following{holder}`: no children.
//! - `Leading(leadership)`: children started with the epoch; their watchdog deadline follows the leadership
//!   deadline. When `lost()` resolves the children are stopped at once, before the state channel even says so.
//! - `CoolingDown`: no children (stepped down on request).
//! - `Stopped{error}`: the elector ended; with an error, the agent is unhealthy and exits non-zero.

use std::time::Duration;

use leasehold_lease::{ElectionHandle, ElectionState, Leadership, Observation};
use leasehold_policy::config::TaskConfig;
use tokio::sync::{mpsc, oneshot, watch};

use crate::tasks::{self, Now, Running, TaskContext, Term};

/// How often the watchdog deadline is pushed forward while leading.
const HEARTBEAT: Duration = Duration::from_millis(250);

/// Where a runner reports what happens.
pub trait Sink: Send + Sync {
    /// Another candidate (or nobody, `None`) holds the Lease.
    fn following(&self, holder: Option<String>);
    /// We stepped down on request and sit out the cool-down.
    fn cooling_down(&self, holder: Option<String>);
    /// We lead; the children are being started.
    fn leading(&self, leadership: &Leadership);
    /// We stopped leading (children already stopped), and why.
    fn stopped_leading(&self, leadership: &Leadership, why: &str);
    /// When the current leadership ends unless renewed (`None`: not leading any more), refreshed every
    /// heartbeat, so a health probe can tell a leader that failed to step down in time.
    fn leadership_deadline(&self, _deadline: Option<std::time::Instant>) {}
    /// How the election observes its Lease (watching, or polling with GET when the watch cannot list), at start
    /// and on every change, so operators can see the fallback and its cost. The elector logs the switch itself.
    fn observation(&self, _observation: Observation) {}
}

/// An impeach request: the answer says whether the step-down was done.
pub type ImpeachReply = oneshot::Sender<Result<(), String>>;

/// One election and the tasks it gates.
pub struct GatedRunner<S> {
    /// What the runner is about, for error messages (`election of default`, `spread task db`).
    pub label: String,
    /// The election namespace the tasks belong to (`LEASEHOLD_NAMESPACE`).
    pub namespace: String,
    /// The election.
    pub election: ElectionHandle,
    /// The gated tasks.
    pub tasks: Vec<TaskConfig>,
    /// How tasks are started.
    pub ctx: TaskContext,
    /// Lease duration and renew deadline, for the watchdog deadline.
    pub timing: (Duration, Duration),
    /// Impeach requests, if this election takes them.
    pub impeach: Option<mpsc::Receiver<ImpeachReply>>,
    /// Where status goes.
    pub sink: S,
}

/// How a runner ended.
pub enum RunnerEnd {
    /// Shut down on request: the children were stopped, the election released.
    Shutdown,
    /// The elector died with this error.
    ElectorDied(String),
}

impl<S: Sink> GatedRunner<S> {
    /// Runs until `shutdown` turns true (then stops the children and releases the Lease) or the elector ends.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> RunnerEnd {
        let mut state = self.election.state();
        let mut running: Option<(Leadership, Running)> = None;
        // `None` once the elector is gone (its sender dropped), so a closed channel does not wake us in a loop.
        let mut observations = Some(self.election.observations());
        if let Some(rx) = observations.as_mut() {
            self.sink.observation(*rx.borrow_and_update());
        }
        loop {
            if *shutdown.borrow_and_update() {
                return self.shut_down(&mut running).await;
            }
            let current = state.borrow_and_update().clone();
            match current {
                ElectionState::Leading(l) => {
                    let same = running.as_ref().is_some_and(|(r, _)| r == &l);
                    if !same && l.is_current() {
                        self.stop_leading(&mut running, "a new term began").await;
                        running = Some((l.clone(), self.lead(&l)));
                    }
                }
                ElectionState::Following { holder } => {
                    self.stop_leading(&mut running, "another candidate holds the Lease")
                        .await;
                    self.sink.following(holder);
                }
                ElectionState::CoolingDown { holder } => {
                    self.stop_leading(&mut running, "impeached").await;
                    self.sink.cooling_down(holder);
                }
                ElectionState::Stopped { error } => {
                    self.stop_leading(&mut running, "the elector stopped").await;
                    return match error {
                        Some(e) => RunnerEnd::ElectorDied(format!("{}: {e}", self.label)),
                        None => RunnerEnd::Shutdown,
                    };
                }
                // A state a later leasehold-lease adds: whatever it is, it is not leading.
                _ => {
                    self.stop_leading(&mut running, "the elector is not leading")
                        .await;
                }
            }
            let leadership = running.as_ref().map(|(l, _)| l.clone());
            let lost = async {
                match &leadership {
                    Some(l) => l.lost().await,
                    None => std::future::pending().await,
                }
            };
            let heartbeat = tokio::time::sleep(if leadership.is_some() {
                HEARTBEAT
            } else {
                Duration::from_secs(3600)
            });
            let impeach = async {
                match self.impeach.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            let observation = async {
                match observations.as_mut() {
                    Some(rx) => rx.changed().await.ok().map(|()| *rx.borrow_and_update()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = state.changed() => if r.is_err() {
                    self.stop_leading(&mut running, "the elector ended").await;
                    return RunnerEnd::ElectorDied(format!("{} ended", self.label));
                },
                () = lost => self.stop_leading(&mut running, "leadership ended (renew deadline passed)").await,
                () = heartbeat => {
                    if let Some((l, tasks)) = &mut running {
                        let d = self.deadlines(l);
                        if d.leading_until.is_some() {
                            tasks.set_deadline(d.kill);
                            // Still leading, yet a task's deadline passed: the agent was starved, not the
                            // election. The leader runs its tasks again rather than hold the Lease idle.
                            self.ctx.restart_expired(tasks, d.kill);
                            self.sink.leadership_deadline(d.leading_until);
                        }
                    }
                }
                Some(reply) = impeach => {
                    // Stop the children first: the release lets a follower start its copies at once.
                    self.stop_leading(&mut running, "impeached").await;
                    let outcome = self.election.step_down().await.map_err(|e| format!("cannot step down: {e:?}"));
                    let _ = reply.send(outcome);
                }
                r = shutdown.changed() => if r.is_err() {
                    // Whoever could ask us to stop is gone: stop rather than spin.
                    return self.shut_down(&mut running).await;
                },
                o = observation => match o {
                    Some(o) => self.sink.observation(o),
                    None => observations = None,
                },
            }
        }
    }

    async fn shut_down(&mut self, running: &mut Option<(Leadership, Running)>) -> RunnerEnd {
        self.stop_leading(running, "the agent is shutting down")
            .await;
        match self.election.clone().shutdown().await {
            Ok(()) => RunnerEnd::Shutdown,
            Err(e) => RunnerEnd::ElectorDied(format!("{}: {e}", self.label)),
        }
    }

    /// Starts leading: status and children. The deadline goes first: a status of `success` shows only while
    /// it is in the future.
    fn lead(&self, l: &Leadership) -> Running {
        // An ended leadership gets a kill deadline that has passed: the shim then starts nothing.
        let d = self.deadlines(l);
        self.sink.leadership_deadline(d.leading_until);
        self.sink.leading(l);
        let term = Term {
            epoch: l.epoch(),
            holder: l.holder().to_string(),
        };
        self.ctx
            .start(&self.namespace, &self.tasks, Some(&term), d.kill)
    }

    /// The kill deadline and the end of leadership for `l`, now.
    fn deadlines(&self, l: &Leadership) -> tasks::Deadlines {
        tasks::deadlines(
            l.deadline_since_boot(),
            Now::read(),
            self.timing.0,
            self.timing.1,
        )
    }

    /// Stops the children if we were leading, and reports why.
    async fn stop_leading(&self, running: &mut Option<(Leadership, Running)>, why: &str) {
        let Some((l, tasks)) = running.take() else {
            return;
        };
        // Leadership ends here, as the children begin to stop (the watchdog bounds how long they may take).
        self.sink.leadership_deadline(None);
        tasks.stop().await;
        self.sink.stopped_leading(&l, why);
    }
}
