//! What the agent knows about its elections and tasks, published for the local API, the status command, the
//! probes and the metrics.
//!
//! The electors and the supervisor write; everyone else reads a snapshot. Every change bumps a
//! `tokio::sync::watch` channel, which the server-sent-events stream follows.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use leasehold_lease::Observation;
use leasehold_policy::identity::node_of;
use leasehold_policy::status::{Status, StatusReport};
use serde::Serialize;
use tokio::sync::watch;

/// One task as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TaskView {
    /// The task name.
    pub name: String,
    /// `leader`, `spread` or `always` (election = false).
    pub mode: String,
    /// `running`, `stopped`, `starting` or `backing-off`.
    pub state: String,
    /// The child's pid while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Restarts after the child exited by itself.
    pub restarts: u64,
}

/// One election namespace as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct NamespaceView {
    /// The election namespace.
    pub namespace: String,
    /// disabled, success, defeat, banned or impeached.
    pub status: String,
    /// The holder identity of the Lease, if known.
    pub holder: Option<String>,
    /// The fencing epoch while we lead.
    pub epoch: Option<u64>,
    /// Seconds since we became leader, while we lead.
    pub elected_seconds: Option<f64>,
    /// `<namespace>/<name>` of the Lease.
    pub lease: String,
    /// The tasks of this namespace.
    pub tasks: Vec<TaskView>,
    /// DataKit's monitor line, e.g. `Elected default::success|node-a(elected: 4m40.554909s)`.
    pub line: String,
    /// Whether the Lease has been observed at least once (readiness).
    pub observed: bool,
    /// How the election learns about its Lease: `watching`, or `polling` (a GET every RP, because the Lease
    /// watch cannot list or has been failing for longer than LD); `null` when this agent runs no election here
    /// (disabled or banned). Operators need to see polling: it costs the API server a GET per follower every RP,
    /// and under a Role without `list` and `watch` it is the only way a follower sees the Lease. Not called `mode`,
    /// which names a task's kind (`leader`, `spread`).
    pub observation: Option<&'static str>,
}

#[derive(Clone, Debug)]
struct Entry {
    status: Status,
    holder: Option<String>,
    epoch: Option<u64>,
    lease: String,
    tasks: BTreeMap<String, TaskView>,
    observed: bool,
    leadership_deadline: Option<std::time::Instant>,
    observation: Option<Observation>,
}

impl Entry {
    /// Whether the entry says we lead and our leadership deadline has not passed at `now`. The runner sets the
    /// deadline before it reports `success` and withdraws it the moment leadership ends, before the children have
    /// stopped; an agent that was frozen (SIGSTOP, a VM pause) past its deadline therefore shows no leadership
    /// from the first request after it resumes, even before its elector has run.
    fn leading_at(&self, now: std::time::Instant) -> bool {
        matches!(self.status, Status::Success { .. })
            && self.leadership_deadline.is_some_and(|d| now <= d)
    }

    /// The status and epoch to show at `now`: a `success` whose leadership has ended shows as `defeat` with the
    /// holder last recorded (as it does once the runner catches up), and without our epoch.
    fn shown(&self, now: std::time::Instant) -> (Status, Option<u64>) {
        match &self.status {
            Status::Success { .. } if !self.leading_at(now) => (
                Status::Defeat {
                    holder: self.holder.as_deref().map(|h| node_of(h).to_string()),
                },
                None,
            ),
            s => (s.clone(), self.epoch),
        }
    }
}

/// One spread task as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SpreadTaskView {
    /// The task name.
    pub task: String,
    /// Its election namespace.
    pub namespace: String,
    /// The member the placement puts it on, as this agent computes it.
    pub placed_on: Option<String>,
    /// The holder of its Lease, if held.
    pub holder: Option<String>,
    /// Whether this agent holds it (and runs it).
    pub held_here: bool,
    /// Whether this agent campaigns for it.
    pub campaigning: bool,
}

/// The state of spread mode's watch on the member and task Leases. Placement needs every member's Lease, and
/// only a list can find them (their names are the members' identities), so spread mode cannot fall back to
/// polling with GET as elections do: while the watch cannot list, no spread task is placed or run here.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SpreadWatch {
    /// The first list has not completed yet.
    #[default]
    Listing,
    /// Listed, and following changes.
    Watching,
    /// The list or watch was refused with 403 Forbidden: the Role lacks `list` or `watch` on leases. Retried
    /// every few minutes, so granting them later is picked up without a restart.
    Forbidden,
}

/// Spread mode as this agent sees it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct SpreadView {
    /// The state of the watch on the spread Leases; anything but `watching` means placement is stalled.
    pub watch: SpreadWatch,
    /// Whether this agent's member Lease is live.
    pub member: bool,
    /// The live members.
    pub members: Vec<String>,
    /// Every spread task.
    pub tasks: Vec<SpreadTaskView>,
}

/// The shared view.
pub struct View {
    node: String,
    entries: Mutex<BTreeMap<String, Entry>>,
    changed: watch::Sender<u64>,
    fatal: Mutex<Option<String>>,
    spread: Mutex<Option<SpreadView>>,
    spread_epochs: Mutex<BTreeMap<String, u64>>,
}

impl View {
    /// An empty view for an agent on `node`.
    pub fn new(node: &str) -> Self {
        Self {
            node: node.to_string(),
            entries: Mutex::new(BTreeMap::new()),
            changed: watch::channel(0).0,
            fatal: Mutex::new(None),
            spread: Mutex::new(None),
            spread_epochs: Mutex::new(BTreeMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Entry>) -> R) -> R {
        let r = f(&mut self.entries.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.send_modify(|g| *g += 1);
        r
    }

    /// Registers a namespace with its initial status and Lease.
    pub fn add_namespace(&self, namespace: &str, status: Status, lease: &str, observed: bool) {
        self.with(|m| {
            m.insert(
                namespace.to_string(),
                Entry {
                    status,
                    holder: None,
                    epoch: None,
                    lease: lease.to_string(),
                    tasks: BTreeMap::new(),
                    observed,
                    leadership_deadline: None,
                    observation: None,
                },
            )
        });
    }

    /// Records a new status for a namespace, with the Lease's holder identity and (while leading) our epoch.
    pub fn set_status(
        &self,
        namespace: &str,
        status: Status,
        holder: Option<String>,
        epoch: Option<u64>,
    ) {
        self.with(|m| {
            if let Some(e) = m.get_mut(namespace) {
                // A known holder means the Lease has been observed, which makes the agent ready.
                e.observed |= holder.is_some();
                e.status = status;
                e.holder = holder;
                e.epoch = epoch;
            }
        });
    }

    /// The status of one namespace.
    pub fn status(&self, namespace: &str) -> Option<Status> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(namespace)
            .map(|e| e.shown(std::time::Instant::now()).0)
    }

    /// Records how the election of a namespace observes its Lease; a change notifies the event stream, the
    /// same value again does not.
    pub fn set_observation(&self, namespace: &str, observation: Observation) {
        let changed = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(namespace)
            .is_some_and(|e| e.observation.replace(observation) != Some(observation));
        if changed {
            self.changed.send_modify(|g| *g += 1);
        }
    }

    /// Records a task's state.
    pub fn set_task(&self, namespace: &str, task: TaskView) {
        self.with(|m| {
            if let Some(e) = m.get_mut(namespace) {
                e.tasks.insert(task.name.clone(), task);
            }
        });
    }

    /// Publishes spread mode's placement, when it changed.
    pub fn set_spread(&self, spread: SpreadView) {
        let mut current = self.spread.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref() != Some(&spread) {
            *current = Some(spread);
            drop(current);
            self.changed.send_modify(|g| *g += 1);
        }
    }

    /// Records the epoch of a spread task we hold (`None`: released).
    pub fn set_spread_epoch(&self, task: &str, epoch: Option<u64>) {
        let mut epochs = self.spread_epochs.lock().unwrap_or_else(|e| e.into_inner());
        match epoch {
            Some(e) => epochs.insert(task.to_string(), e),
            None => epochs.remove(task),
        };
        drop(epochs);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Spread mode's state, if the agent has spread tasks, with the epochs of the tasks held here.
    pub fn spread(&self) -> Option<serde_json::Value> {
        let spread = self
            .spread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let epochs = self
            .spread_epochs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut v = serde_json::to_value(spread).ok()?;
        v["epochs"] = serde_json::to_value(epochs).ok()?;
        Some(v)
    }

    /// Records when our leadership of a namespace ends unless renewed (`None`: we stopped leading).
    pub fn set_leadership_deadline(&self, namespace: &str, deadline: Option<std::time::Instant>) {
        // Not a visible change: no notification, so the heartbeat does not flood the event stream.
        if let Some(e) = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(namespace)
        {
            e.leadership_deadline = deadline;
        }
    }

    /// A namespace whose leadership deadline passed more than 1 s ago while we still had not stepped down, as
    /// client-go's HealthzAdaptor checks: that means the agent is stuck, and kubelet should restart it.
    pub fn overdue_leadership(&self, now: std::time::Instant) -> Option<String> {
        let tolerance = std::time::Duration::from_secs(1);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(_, e)| e.leadership_deadline.is_some_and(|d| now > d + tolerance))
            .map(|(ns, _)| ns.clone())
    }

    /// Marks the agent as broken (an elector died); `/healthz` fails from now on.
    pub fn set_fatal(&self, why: String) {
        *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Why the agent is broken, if it is.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether every namespace's Lease has been observed (or needs none).
    pub fn ready(&self) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .all(|e| e.observed)
    }

    /// A receiver that changes on every update.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The current state of every namespace, in name order.
    pub fn snapshot(&self) -> Vec<NamespaceView> {
        let now = SystemTime::now();
        let mono = std::time::Instant::now();
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(ns, e)| {
                let (status, epoch) = e.shown(mono);
                let report = StatusReport::new(ns, &status, &self.node, now);
                NamespaceView {
                    namespace: ns.clone(),
                    status: status.kind().as_str().to_string(),
                    holder: e.holder.clone(),
                    epoch,
                    elected_seconds: report.elected.map(|d| d.as_secs_f64()),
                    lease: e.lease.clone(),
                    tasks: e.tasks.values().cloned().collect(),
                    line: report.to_string(),
                    observed: e.observed,
                    observation: e.observation.map(Observation::as_str),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_leader_past_its_deadline_by_more_than_a_second_is_overdue() {
        let view = View::new("node-a");
        view.add_namespace(
            "default",
            Status::Defeat { holder: None },
            "ns/leasehold-default",
            false,
        );
        let now = Instant::now();
        assert_eq!(view.overdue_leadership(now), None);
        view.set_leadership_deadline("default", Some(now));
        assert_eq!(
            view.overdue_leadership(now + Duration::from_millis(900)),
            None,
            "within the tolerance"
        );
        assert_eq!(
            view.overdue_leadership(now + Duration::from_secs(2))
                .as_deref(),
            Some("default")
        );
        view.set_leadership_deadline("default", None);
        assert_eq!(
            view.overdue_leadership(now + Duration::from_secs(2)),
            None,
            "stepped down"
        );
    }

    #[test]
    fn success_shows_only_until_the_leadership_deadline() {
        let view = View::new("node-a");
        view.add_namespace("default", Status::Defeat { holder: None }, "ns/l", false);
        let now = Instant::now();
        view.set_leadership_deadline("default", Some(now + Duration::from_secs(10)));
        view.set_status(
            "default",
            Status::Success {
                since: SystemTime::now(),
            },
            Some("node-a_1".into()),
            Some(7),
        );
        let shown = &view.snapshot()[0];
        assert_eq!((shown.status.as_str(), shown.epoch), ("success", Some(7)));
        // Frozen past the deadline: the first read after resuming no longer shows leadership.
        view.set_leadership_deadline("default", Some(now - Duration::from_millis(1)));
        let shown = &view.snapshot()[0];
        assert_eq!((shown.status.as_str(), shown.epoch), ("defeat", None));
        assert_eq!(shown.holder.as_deref(), Some("node-a_1"));
        // Leadership ended and the children are stopping: the deadline is withdrawn first.
        view.set_leadership_deadline("default", None);
        assert!(matches!(
            view.status("default"),
            Some(Status::Defeat { holder: Some(h) }) if h == "node-a"
        ));
    }

    #[test]
    fn the_observation_shows_per_namespace_and_only_a_change_notifies() {
        let view = View::new("node-a");
        view.add_namespace("default", Status::Defeat { holder: None }, "ns/l", false);
        view.add_namespace("off", Status::Banned { holder: None }, "ns/o", true);
        let mut changes = view.subscribe();
        changes.borrow_and_update();
        view.set_observation("default", Observation::Polling);
        assert!(changes.has_changed().unwrap_or(false), "a change notifies");
        changes.borrow_and_update();
        view.set_observation("default", Observation::Polling);
        assert!(
            !changes.has_changed().unwrap_or(true),
            "the same again does not"
        );
        let shown: Vec<_> = view
            .snapshot()
            .into_iter()
            .map(|n| (n.namespace, n.observation))
            .collect();
        assert_eq!(
            shown,
            [
                ("default".to_string(), Some("polling")),
                ("off".to_string(), None)
            ]
        );
        assert!(
            !view.ready(),
            "polling is no observation of the Lease: readiness still waits for a known holder"
        );
    }

    #[test]
    fn readiness_waits_for_a_known_holder() {
        let view = View::new("node-a");
        view.add_namespace("default", Status::Defeat { holder: None }, "ns/l", false);
        view.set_status("default", Status::Defeat { holder: None }, None, None);
        assert!(!view.ready(), "no holder known yet");
        view.set_status(
            "default",
            Status::Defeat {
                holder: Some("node-b".into()),
            },
            Some("node-b_1".into()),
            None,
        );
        assert!(view.ready());
    }
}
