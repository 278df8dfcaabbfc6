//! What the agent knows about its elections and tasks, published for the local API, the status command, the
//! probes and the metrics.
//!
//! The electors and the supervisor write; everyone else reads a snapshot. Every change bumps a
//! `tokio::sync::watch` channel, which the server-sent-events stream follows.

use std::collections::BTreeMap;
use std::time::SystemTime;

use leasehold_lease::Observation;
use leasehold_policy::identity::node_of;
use leasehold_policy::status::{Status, StatusKind, StatusReport};
use parking_lot::{Mutex, MutexGuard};
use serde::{Serialize, Serializer};
use tokio::sync::watch;

/// How a task is run, as the API shows it (`mode`).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    /// `leader`: runs on the leader of its election namespace.
    Leader,
    /// `spread`: has its own Lease and is spread over the members.
    Spread,
    /// `always`: `election = false`, runs on every agent.
    Always,
}

/// Where a task is in its life, as the API shows it (`state`): the supervisor's
/// [`TaskState`](crate::supervisor::TaskState) without its data.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStateKind {
    /// `starting`: the shim is being spawned.
    Starting,
    /// `running`: the shim runs.
    Running,
    /// `backing-off`: exited by itself, to be started again.
    BackingOff,
    /// `stopping`: stopped, waiting for the group to go.
    Stopping,
    /// `expired`: the kill deadline passed.
    Expired,
    /// `stopped`: nothing of the task is left.
    Stopped,
}

/// One task as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TaskView {
    /// The task name.
    pub name: String,
    /// `leader`, `spread` or `always` (election = false).
    pub mode: RunMode,
    /// `starting`, `running`, `backing-off`, `stopping`, `expired` or `stopped`.
    pub state: TaskStateKind,
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
    pub status: StatusKind,
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
    #[serde(serialize_with = "observation_word")]
    pub observation: Option<Observation>,
}

/// Serializes an observation as its word ([`Observation::as_str`]); the lease crate has no serde.
fn observation_word<S: Serializer>(o: &Option<Observation>, s: S) -> Result<S::Ok, S::Error> {
    o.map(Observation::as_str).serialize(s)
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

/// Spread mode's state, with the fencing epochs of the spread tasks held here, by task.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SpreadState {
    /// Placement, members and the watch, as spread mode published them.
    #[serde(flatten)]
    pub view: SpreadView,
    /// The epoch of each spread task this agent holds.
    pub epochs: BTreeMap<String, u64>,
}

/// The whole view at one instant, as `GET /v1/election` and its event stream serve it.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    /// Every election namespace, in name order.
    pub namespaces: Vec<NamespaceView>,
    /// Spread mode, when the agent has spread tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<SpreadState>,
}

impl Document {
    /// The JSON the API serves. It goes through a `serde_json::Value`, whose objects keep their keys sorted, so
    /// the keys come out in alphabetical order, as they always have, rather than in field order.
    pub fn to_json(&self) -> serde_json::Value {
        // Cannot fail: every map key is a string.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// What the view holds, under its one lock.
#[derive(Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    fatal: Option<String>,
    spread: Option<SpreadView>,
    spread_epochs: BTreeMap<String, u64>,
}

/// The shared view.
pub struct View {
    node: String,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl View {
    /// An empty view for an agent on `node`.
    pub fn new(node: &str) -> Self {
        Self {
            node: node.to_string(),
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Tells the event stream that something visible changed. Called after the lock is released.
    fn notify(&self) {
        self.changed.send_modify(|g| *g += 1);
    }

    /// Changes the state and notifies.
    fn change<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.notify();
        r
    }

    /// Registers a namespace with its initial status and Lease.
    pub fn add_namespace(&self, namespace: &str, status: Status, lease: &str, observed: bool) {
        self.change(|s| {
            s.entries.insert(
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
        self.change(|s| {
            if let Some(e) = s.entries.get_mut(namespace) {
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
        self.lock()
            .entries
            .get(namespace)
            .map(|e| e.shown(std::time::Instant::now()).0)
    }

    /// Records how the election of a namespace observes its Lease; a change notifies the event stream, the
    /// same value again does not.
    pub fn set_observation(&self, namespace: &str, observation: Observation) {
        let changed = self
            .lock()
            .entries
            .get_mut(namespace)
            .is_some_and(|e| e.observation.replace(observation) != Some(observation));
        if changed {
            self.notify();
        }
    }

    /// Records a task's state.
    pub fn set_task(&self, namespace: &str, task: TaskView) {
        self.change(|s| {
            if let Some(e) = s.entries.get_mut(namespace) {
                e.tasks.insert(task.name.clone(), task);
            }
        });
    }

    /// Publishes spread mode's placement, when it changed.
    pub fn set_spread(&self, spread: SpreadView) {
        let changed = {
            let mut s = self.lock();
            let changed = s.spread.as_ref() != Some(&spread);
            if changed {
                s.spread = Some(spread);
            }
            changed
        };
        if changed {
            self.notify();
        }
    }

    /// Records the epoch of a spread task we hold (`None`: released).
    pub fn set_spread_epoch(&self, task: &str, epoch: Option<u64>) {
        self.change(|s| match epoch {
            Some(e) => s.spread_epochs.insert(task.to_string(), e),
            None => s.spread_epochs.remove(task),
        });
    }

    /// Spread mode's state, if the agent has spread tasks, with the epochs of the tasks held here.
    fn spread_of(s: &State) -> Option<SpreadState> {
        Some(SpreadState {
            view: s.spread.clone()?,
            epochs: s.spread_epochs.clone(),
        })
    }

    /// Records when our leadership of a namespace ends unless renewed (`None`: we stopped leading).
    pub fn set_leadership_deadline(&self, namespace: &str, deadline: Option<std::time::Instant>) {
        // Not a visible change: no notification, so the heartbeat does not flood the event stream.
        if let Some(e) = self.lock().entries.get_mut(namespace) {
            e.leadership_deadline = deadline;
        }
    }

    /// A namespace whose leadership deadline passed more than 1 s ago while we still had not stepped down, as
    /// client-go's HealthzAdaptor checks: that means the agent is stuck, and kubelet should restart it.
    pub fn overdue_leadership(&self, now: std::time::Instant) -> Option<String> {
        let tolerance = std::time::Duration::from_secs(1);
        self.lock()
            .entries
            .iter()
            .find(|(_, e)| e.leadership_deadline.is_some_and(|d| now > d + tolerance))
            .map(|(ns, _)| ns.clone())
    }

    /// Marks the agent as broken (an elector died); `/healthz` fails from now on.
    pub fn set_fatal(&self, why: String) {
        self.change(|s| s.fatal = Some(why));
    }

    /// Why the agent is broken, if it is.
    pub fn fatal(&self) -> Option<String> {
        self.lock().fatal.clone()
    }

    /// Whether every namespace's Lease has been observed (or needs none).
    pub fn ready(&self) -> bool {
        self.lock().entries.values().all(|e| e.observed)
    }

    /// A receiver that changes on every update.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The current state of every namespace, in name order.
    pub fn snapshot(&self) -> Vec<NamespaceView> {
        self.namespaces(&self.lock())
    }

    /// Every namespace and spread mode, read at one instant.
    pub fn document(&self) -> Document {
        let s = self.lock();
        Document {
            namespaces: self.namespaces(&s),
            spread: Self::spread_of(&s),
        }
    }

    fn namespaces(&self, s: &State) -> Vec<NamespaceView> {
        let now = SystemTime::now();
        let mono = std::time::Instant::now();
        s.entries
            .iter()
            .map(|(ns, e)| {
                let (status, epoch) = e.shown(mono);
                let report = StatusReport::new(ns, &status, &self.node, now);
                NamespaceView {
                    namespace: ns.clone(),
                    status: status.kind(),
                    holder: e.holder.clone(),
                    epoch,
                    elected_seconds: report.elected.map(|d| d.as_secs_f64()),
                    lease: e.lease.clone(),
                    tasks: e.tasks.values().cloned().collect(),
                    line: report.to_string(),
                    observed: e.observed,
                    observation: e.observation,
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
                ("default".to_string(), Some(Observation::Polling)),
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

    /// The JSON `GET /v1/election` serves: field names, values and key order as before the view was typed.
    #[test]
    fn the_document_serializes_to_the_words_and_keys_the_api_has_always_served() {
        let view = View::new("node-a");
        view.add_namespace(
            "default",
            Status::Defeat { holder: None },
            "ns/leasehold-default",
            false,
        );
        view.add_namespace(
            "off",
            Status::Banned {
                holder: Some("node-c".into()),
            },
            "ns/leasehold-off",
            true,
        );
        view.add_namespace("zeta", Status::Disabled, "ns/leasehold-zeta", true);
        view.set_status(
            "default",
            Status::Defeat {
                holder: Some("node-b".into()),
            },
            Some("node-b_1.x".into()),
            None,
        );
        view.set_observation("default", Observation::Polling);
        view.set_observation("zeta", Observation::Watching);
        let tasks = [
            ("a", RunMode::Leader, TaskStateKind::BackingOff, None, 3),
            ("b", RunMode::Always, TaskStateKind::Running, Some(42), 0),
            ("c", RunMode::Spread, TaskStateKind::Stopping, Some(7), 1),
            ("d", RunMode::Leader, TaskStateKind::Starting, None, 0),
            ("e", RunMode::Leader, TaskStateKind::Expired, None, 0),
            ("f", RunMode::Leader, TaskStateKind::Stopped, None, 0),
        ];
        for (name, mode, state, pid, restarts) in tasks {
            view.set_task(
                "default",
                TaskView {
                    name: name.into(),
                    mode,
                    state,
                    pid,
                    restarts,
                },
            );
        }
        let namespaces = r#"{"namespaces":[{"elected_seconds":null,"epoch":null,"holder":"node-b_1.x","lease":"ns/leasehold-default","line":"Elected default::defeat|node-b","namespace":"default","observation":"polling","observed":true,"status":"defeat","tasks":[{"mode":"leader","name":"a","restarts":3,"state":"backing-off"},{"mode":"always","name":"b","pid":42,"restarts":0,"state":"running"},{"mode":"spread","name":"c","pid":7,"restarts":1,"state":"stopping"},{"mode":"leader","name":"d","restarts":0,"state":"starting"},{"mode":"leader","name":"e","restarts":0,"state":"expired"},{"mode":"leader","name":"f","restarts":0,"state":"stopped"}]},{"elected_seconds":null,"epoch":null,"holder":null,"lease":"ns/leasehold-off","line":"Elected off::banned|node-c","namespace":"off","observation":null,"observed":true,"status":"banned","tasks":[]},{"elected_seconds":null,"epoch":null,"holder":null,"lease":"ns/leasehold-zeta","line":"Elected zeta::disabled|","namespace":"zeta","observation":"watching","observed":true,"status":"disabled","tasks":[]}]"#;
        assert_eq!(
            view.document().to_json().to_string(),
            format!("{namespaces}}}"),
            "no spread key without spread tasks"
        );
        view.set_spread(SpreadView {
            watch: SpreadWatch::Forbidden,
            member: true,
            members: vec!["m1".into(), "m2".into()],
            tasks: vec![SpreadTaskView {
                task: "t".into(),
                namespace: "default".into(),
                placed_on: Some("m1".into()),
                holder: None,
                held_here: false,
                campaigning: true,
            }],
        });
        view.set_spread_epoch("t", Some(9));
        let spread = r#""spread":{"epochs":{"t":9},"member":true,"members":["m1","m2"],"tasks":[{"campaigning":true,"held_here":false,"holder":null,"namespace":"default","placed_on":"m1","task":"t"}],"watch":"forbidden"}"#;
        assert_eq!(
            view.document().to_json().to_string(),
            format!("{namespaces},{spread}}}")
        );
    }
}
