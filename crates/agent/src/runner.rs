//! One election namespace in a running agent: follows the elector's state, runs the namespace's leader tasks
//! exactly while we lead, keeps their watchdog deadline moving, publishes status, metrics and Events, and serves
//! impeach requests.
//!
//! States and what this runner does in each (the elector owns the Lease; this owns the children):
//! - `Following{holder}`: status `defeat`, no children.
//! - `Leading(leadership)`: status `success`, children started with the epoch; their watchdog deadline follows
//!   the leadership deadline. When `lost()` resolves the children are stopped at once, before the state channel
//!   even says so.
//! - `CoolingDown`: status `impeached`, no children.
//! - `Stopped{error}`: the elector died; the agent is unhealthy and exits non-zero.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use leasehold_lease::{ElectionHandle, ElectionState, Leadership};
use leasehold_policy::config::TaskConfig;
use leasehold_policy::identity::node_of;
use leasehold_policy::status::Status;
use tokio::sync::{mpsc, oneshot};

use crate::events::LeaderEvents;
use crate::metrics::Metrics;
use crate::tasks::{Running, TaskContext, Term, watchdog_deadline};
use crate::view::View;

/// How often the watchdog deadline is pushed forward while leading.
const HEARTBEAT: Duration = Duration::from_millis(250);

/// Everything one namespace runner needs.
pub struct NamespaceRunner {
    /// The election namespace.
    pub namespace: String,
    /// The Kubernetes namespace of the Lease.
    pub lease_namespace: String,
    /// The Lease name.
    pub lease_name: String,
    /// Our node name (for status lines and Events).
    pub node: String,
    /// The election.
    pub election: ElectionHandle,
    /// The leader-mode tasks of this namespace.
    pub tasks: Vec<TaskConfig>,
    /// How tasks are started.
    pub ctx: TaskContext,
    /// Published state.
    pub view: Arc<View>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Events, when the agent can write them.
    pub events: Option<Arc<LeaderEvents>>,
    /// Lease duration and renew deadline, for the watchdog deadline.
    pub timing: (Duration, Duration),
    /// Impeach requests for this namespace.
    pub impeach: mpsc::Receiver<oneshot::Sender<Result<(), String>>>,
}

/// How a runner ended.
pub enum RunnerEnd {
    /// Shut down on request: the children were stopped, the election released.
    Shutdown,
    /// The elector died with this error.
    ElectorDied(String),
}

impl NamespaceRunner {
    /// Runs until `shutdown` resolves (then stops the children and releases) or the elector dies.
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) -> RunnerEnd {
        let mut state = self.election.state();
        let mut running: Option<(Leadership, Running)> = None;
        loop {
            let current = state.borrow_and_update().clone();
            match current {
                ElectionState::Leading(l) => {
                    let same = running.as_ref().is_some_and(|(r, _)| r == &l);
                    if !same && l.is_current() {
                        if let Some((_, old)) = running.take() {
                            old.stop().await;
                        }
                        running = Some((l.clone(), self.lead(&l)));
                    }
                }
                ElectionState::Following { holder } => {
                    self.stop_leading(&mut running, "another agent holds the Lease")
                        .await;
                    self.view.set_status(
                        &self.namespace,
                        Status::Defeat {
                            holder: holder.as_deref().map(|h| node_of(h).to_string()),
                        },
                        holder,
                        None,
                    );
                }
                ElectionState::CoolingDown { holder } => {
                    self.stop_leading(&mut running, "impeached").await;
                    self.view.set_status(
                        &self.namespace,
                        Status::Impeached {
                            holder: holder.as_deref().map(|h| node_of(h).to_string()),
                        },
                        holder,
                        None,
                    );
                }
                ElectionState::Stopped { error } => {
                    self.stop_leading(&mut running, "the elector stopped").await;
                    return match error {
                        Some(e) => {
                            RunnerEnd::ElectorDied(format!("election of {}: {e}", self.namespace))
                        }
                        None => RunnerEnd::Shutdown,
                    };
                }
            }
            let lost = async {
                match &running {
                    Some((l, _)) => l.lost().await,
                    None => std::future::pending().await,
                }
            };
            let heartbeat = tokio::time::sleep(if running.is_some() {
                HEARTBEAT
            } else {
                Duration::from_secs(3600)
            });
            tokio::select! {
                r = state.changed() => if r.is_err() { return RunnerEnd::ElectorDied(format!("election of {} ended", self.namespace)) },
                () = lost => self.stop_leading(&mut running, "leadership ended (renew deadline passed)").await,
                () = heartbeat => {
                    if let Some((l, tasks)) = &running
                        && let Some(left) = l.time_left()
                    {
                        tasks.set_deadline(watchdog_deadline(left, self.timing.0, self.timing.1));
                    }
                }
                Some(reply) = self.impeach.recv() => {
                    // Stop the children first: the release lets a follower start its copies at once.
                    self.stop_leading(&mut running, "impeached").await;
                    let outcome = self.election.step_down().await.map_err(|e| format!("cannot step down: {e:?}"));
                    if outcome.is_ok() {
                        self.metrics.transition(&self.namespace, "impeached");
                    }
                    let _ = reply.send(outcome);
                }
                _ = shutdown.changed() => {
                    self.stop_leading(&mut running, "the agent is shutting down").await;
                    let result = self.election.shutdown().await;
                    return match result {
                        Ok(()) => RunnerEnd::Shutdown,
                        Err(e) => RunnerEnd::ElectorDied(format!("election of {}: {e}", self.namespace)),
                    };
                }
            }
        }
    }

    /// Starts leading: status, metrics, Event, children.
    fn lead(&self, l: &Leadership) -> Running {
        let since = SystemTime::now();
        self.view.set_status(
            &self.namespace,
            Status::Success { since },
            Some(l.holder().to_string()),
            Some(l.epoch()),
        );
        self.metrics.transition(&self.namespace, "acquired");
        tracing::info!(namespace = %self.namespace, epoch = l.epoch(), "became leader");
        if let Some(events) = &self.events {
            let (events, ns, lease, node, election_ns, epoch) = (
                events.clone(),
                self.lease_namespace.clone(),
                self.lease_name.clone(),
                self.node.clone(),
                self.namespace.clone(),
                l.epoch(),
            );
            tokio::spawn(async move {
                events
                    .became_leader(&ns, &lease, &node, &election_ns, epoch)
                    .await
            });
        }
        let deadline = match l.time_left() {
            Some(left) => watchdog_deadline(left, self.timing.0, self.timing.1),
            None => watchdog_deadline(Duration::ZERO, self.timing.0, self.timing.1),
        };
        let term = Term {
            epoch: l.epoch(),
            holder: l.holder().to_string(),
        };
        self.ctx
            .start(&self.namespace, &self.tasks, Some(&term), deadline)
    }

    /// Stops the children if we were leading, and records why.
    async fn stop_leading(&self, running: &mut Option<(Leadership, Running)>, why: &str) {
        let Some((l, tasks)) = running.take() else {
            return;
        };
        tasks.stop().await;
        self.metrics.transition(&self.namespace, "lost");
        tracing::info!(namespace = %self.namespace, epoch = l.epoch(), why, "stopped leading");
        if let Some(events) = &self.events {
            let (events, ns, lease, node, election_ns, why) = (
                events.clone(),
                self.lease_namespace.clone(),
                self.lease_name.clone(),
                self.node.clone(),
                self.namespace.clone(),
                why.to_string(),
            );
            tokio::spawn(async move {
                events
                    .stopped_leading(&ns, &lease, &node, &election_ns, &why)
                    .await
            });
        }
    }
}
