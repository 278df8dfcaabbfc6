//! Prometheus metrics, in the text format, served on the probe listener's `/metrics`.
//!
//! Gauges that describe the current state (`leasehold_election_status`, `leasehold_election_seconds`,
//! `leasehold_election_epoch`, `leasehold_election_polling`, `leasehold_task_running`,
//! `leader_election_master_status`) are rendered from the `View` at scrape time, so a holder that changes never
//! leaves a stale series behind. Counters and the renew histogram are kept here.

use std::sync::Arc;

use leasehold_lease::Observation;
use leasehold_policy::status::StatusKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::view::{Document, TaskStateKind, View};

/// Labels of `leasehold_election_transitions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    /// The election namespace.
    pub namespace: String,
    /// Why: `acquired`, `lost`, `impeached`, `released`.
    pub reason: String,
}

/// Labels of the per-task counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// The election namespace the task belongs to, so dashboards and alerts can show one namespace's tasks.
    pub namespace: String,
    /// The task name.
    pub task: String,
}

/// Labels of `leasehold_api_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// The HTTP method.
    pub verb: String,
    /// The status code, or `error` when no answer came.
    pub code: String,
}

/// The agent's metrics.
pub struct Metrics {
    registry: Registry,
    /// The state the gauges are rendered from; also names the tasks whose restart counters start at 0.
    view: Arc<View>,
    /// Leadership transitions by namespace and reason.
    pub transitions: Family<TransitionLabels, Counter>,
    /// Restarts of tasks that exited by themselves.
    pub task_restarts: Family<TaskLabels, Counter>,
    /// Requests to the Kubernetes API by method and code.
    pub api_requests: Family<ApiLabels, Counter>,
    /// How long Lease renewals took.
    pub renew_seconds: Histogram,
    /// Spread tasks seen moving from one holder to another.
    pub task_moves: Counter,
}

struct StateCollector {
    view: Arc<View>,
    identity: String,
}

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCollector")
    }
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // One read of the view, so the namespaces and spread mode are from the same instant.
        let Document {
            namespaces: snapshot,
            spread,
        } = self.view.document();
        // Lines the non-blocking log writer dropped because stderr did not keep up: the log pipe stalled, and
        // the election went on rather than wait for it.
        ConstCounter::new(crate::logging::dropped_lines()).encode(encoder.encode_descriptor(
            "leasehold_log_lines_dropped",
            "Log lines dropped because stderr did not keep up (the election never waits for the log)",
            None,
            MetricType::Counter,
        )?)?;
        {
            let mut family = encoder.encode_descriptor(
                "leasehold_election_status",
                "Election status of this agent per namespace (1 for the current status)",
                None,
                MetricType::Gauge,
            )?;
            for ns in &snapshot {
                let holder = ns.holder.clone().unwrap_or_default();
                let labels = [
                    ("namespace", ns.namespace.as_str()),
                    ("id", self.identity.as_str()),
                    ("holder", holder.as_str()),
                    ("status", ns.status.as_str()),
                ];
                ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "leasehold_election_seconds",
                "Seconds this agent has led the namespace (0 when not leading)",
                None,
                MetricType::Gauge,
            )?;
            for ns in &snapshot {
                let labels = [("namespace", ns.namespace.as_str())];
                ConstGauge::new(ns.elected_seconds.unwrap_or(0.0))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        {
            // Only the leader exports the epoch: the View knows the fencing epoch only while this agent leads (a
            // follower's idea of it would be the Lease's transitions as last seen, which lags a takeover). So
            // `max by (namespace)` is the current epoch, and no series means that no agent leads right now. A
            // frozen leader whose term has ended shows no epoch either (the View hides it past the deadline).
            let mut family = encoder.encode_descriptor(
                "leasehold_election_epoch",
                "Fencing epoch of the term this agent leads (exported by the leader only)",
                None,
                MetricType::Gauge,
            )?;
            for ns in &snapshot {
                if let Some(epoch) = ns.epoch {
                    let labels = [("namespace", ns.namespace.as_str())];
                    // Epochs are Lease transitions counts, far below 2^63.
                    let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
                    ConstGauge::new(epoch).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            // An alert on this gauge finds agents whose Role lacks list or watch on leases (or whose watch keeps
            // failing): each such follower costs the API server a GET every RP.
            let mut family = encoder.encode_descriptor(
                "leasehold_election_polling",
                "1 while the election polls its Lease with GET because the Lease watch cannot list or keeps failing",
                None,
                MetricType::Gauge,
            )?;
            for ns in &snapshot {
                let labels = [("namespace", ns.namespace.as_str())];
                let polling = ns.observation == Some(Observation::Polling);
                ConstGauge::new(i64::from(polling)).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "leader_election_master_status",
                "1 when this process leads the Lease, as client-go's metric of the same name",
                None,
                MetricType::Gauge,
            )?;
            for ns in &snapshot {
                let name = ns.lease.rsplit('/').next().unwrap_or(&ns.lease);
                let labels = [("name", name)];
                let leading = i64::from(ns.status == StatusKind::Success);
                ConstGauge::new(leading).encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(spread) = spread {
            let mut family = encoder.encode_descriptor(
                "leasehold_task_held",
                "1 while this agent holds the spread task's Lease",
                None,
                MetricType::Gauge,
            )?;
            for task in &spread.view.tasks {
                let held = i64::from(task.held_here);
                let labels = [
                    ("namespace", task.namespace.as_str()),
                    ("task", task.task.as_str()),
                ];
                ConstGauge::new(held).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "leasehold_task_running",
                "1 while the task's child process runs",
                None,
                MetricType::Gauge,
            )?;
            for (ns, task) in snapshot
                .iter()
                .flat_map(|ns| ns.tasks.iter().map(move |t| (ns, t)))
            {
                let labels = [
                    ("namespace", ns.namespace.as_str()),
                    ("task", task.name.as_str()),
                ];
                ConstGauge::new(i64::from(task.state == TaskStateKind::Running))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Buckets for the renew latency histogram: 1 ms to ~16 s.
fn renew_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15)
}

impl Metrics {
    /// The metrics of an agent, with the state gauges read from `view`.
    pub fn new(view: Arc<View>, identity: &str) -> Self {
        let mut registry = Registry::default();
        let transitions = Family::<TransitionLabels, Counter>::default();
        let task_restarts = Family::<TaskLabels, Counter>::default();
        let api_requests = Family::<ApiLabels, Counter>::default();
        let renew_seconds = Histogram::new(renew_buckets());
        let task_moves = Counter::default();
        registry.register(
            "leasehold_task_moves",
            "Spread tasks seen moving from one holder to another",
            task_moves.clone(),
        );
        registry.register(
            "leasehold_election_transitions",
            "Leadership transitions by namespace and reason",
            transitions.clone(),
        );
        registry.register(
            "leasehold_task_restarts",
            "Restarts of tasks whose child exited by itself",
            task_restarts.clone(),
        );
        registry.register(
            "leasehold_api_requests",
            "Requests to the Kubernetes API by verb and code",
            api_requests.clone(),
        );
        registry.register(
            "leasehold_lease_renew_seconds",
            "How long Lease renewals took",
            renew_seconds.clone(),
        );
        registry.register_collector(Box::new(StateCollector {
            view: view.clone(),
            identity: identity.to_string(),
        }));
        Self {
            registry,
            view,
            transitions,
            task_restarts,
            api_requests,
            renew_seconds,
            task_moves,
        }
    }

    /// Counts a leadership transition.
    pub fn transition(&self, namespace: &str, reason: &str) {
        self.transitions
            .get_or_create(&TransitionLabels {
                namespace: namespace.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The text exposition.
    ///
    /// Every task the view knows has a `leasehold_task_restarts_total` series from the first scrape on, at 0 until
    /// it restarts. `increase()` and `rate()` take a series' first sample as its starting point, so a counter that
    /// appeared only at its first restart would hide that restart from LeaseholdTaskRestarting and the dashboard,
    /// and a healthy task would have no series to show at all.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        for ns in self.view.snapshot() {
            for task in ns.tasks {
                // Creates the series at 0 if absent; the guard is released at once.
                drop(self.task_restarts.get_or_create(&TaskLabels {
                    namespace: ns.namespace.clone(),
                    task: task.name,
                }));
            }
        }
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The value of one series (`name{labels}`) in a text exposition, for the unit tests.
#[cfg(test)]
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use leasehold_policy::status::Status;

    use super::*;
    use crate::view::{RunMode, TaskView};

    #[test]
    fn only_the_leader_exports_the_epoch_and_only_until_its_deadline() -> Result<(), std::fmt::Error>
    {
        let view = Arc::new(View::new("node-a"));
        view.add_namespace("led", Status::Defeat { holder: None }, "ns/la", false);
        view.add_namespace("followed", Status::Defeat { holder: None }, "ns/lb", false);
        let metrics = Metrics::new(view.clone(), "node-a_1");
        view.set_leadership_deadline("led", Some(Instant::now() + Duration::from_secs(60)));
        view.set_status(
            "led",
            Status::Success {
                since: SystemTime::now(),
            },
            Some("node-a_1".into()),
            Some(7),
        );
        view.set_status(
            "followed",
            Status::Defeat {
                holder: Some("node-b".into()),
            },
            Some("node-b_1".into()),
            None,
        );
        let text = metrics.encode()?;
        let epoch = |text: &str, ns: &str| {
            sample(
                text,
                &format!("leasehold_election_epoch{{namespace=\"{ns}\"}}"),
            )
        };
        assert_eq!(epoch(&text, "led"), Some(7.0), "{text}");
        assert_eq!(
            epoch(&text, "followed"),
            None,
            "a follower exports none: {text}"
        );
        assert!(
            text.contains("# TYPE leasehold_election_epoch gauge"),
            "{text}"
        );
        // Frozen past the deadline: the term has ended, so no epoch, as the status shows defeat.
        view.set_leadership_deadline("led", Some(Instant::now() - Duration::from_millis(1)));
        let text = metrics.encode()?;
        assert_eq!(epoch(&text, "led"), None, "{text}");
        assert!(
            text.contains("leasehold_election_status{namespace=\"led\",id=\"node-a_1\",holder=\"node-a_1\",status=\"defeat\"} 1"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn a_known_task_has_a_restart_counter_at_zero_before_its_first_restart()
    -> Result<(), std::fmt::Error> {
        let view = Arc::new(View::new("node-a"));
        view.add_namespace("default", Status::Defeat { holder: None }, "ns/l", false);
        let metrics = Metrics::new(view.clone(), "node-a_1");
        let restarts = |text: &str, task: &str| {
            sample(
                text,
                &format!("leasehold_task_restarts_total{{namespace=\"default\",task=\"{task}\"}}"),
            )
        };
        let text = metrics.encode()?;
        assert_eq!(restarts(&text, "mysql"), None, "no task yet: {text}");
        view.set_task(
            "default",
            TaskView {
                name: "mysql".into(),
                mode: RunMode::Leader,
                state: TaskStateKind::Stopped,
                pid: None,
                restarts: 0,
            },
        );
        let text = metrics.encode()?;
        assert_eq!(restarts(&text, "mysql"), Some(0.0), "{text}");
        metrics
            .task_restarts
            .get_or_create(&TaskLabels {
                namespace: "default".into(),
                task: "mysql".into(),
            })
            .inc();
        let text = metrics.encode()?;
        assert_eq!(restarts(&text, "mysql"), Some(1.0), "{text}");
        Ok(())
    }

    #[test]
    fn the_polling_gauge_is_one_only_while_polling() -> Result<(), std::fmt::Error> {
        let view = Arc::new(View::new("node-a"));
        view.add_namespace("a", Status::Defeat { holder: None }, "ns/la", false);
        view.add_namespace("b", Status::Defeat { holder: None }, "ns/lb", false);
        view.add_namespace("off", Status::Banned { holder: None }, "ns/lo", true);
        let metrics = Metrics::new(view.clone(), "node-a_1");
        view.set_observation("a", Observation::Polling);
        view.set_observation("b", Observation::Watching);
        let text = metrics.encode()?;
        let polling = |ns: &str| {
            sample(
                &text,
                &format!("leasehold_election_polling{{namespace=\"{ns}\"}}"),
            )
        };
        assert_eq!(polling("a"), Some(1.0), "{text}");
        assert_eq!(polling("b"), Some(0.0), "{text}");
        assert_eq!(polling("off"), Some(0.0), "no election, no polling: {text}");
        view.set_observation("a", Observation::Watching);
        let text = metrics.encode()?;
        assert_eq!(
            sample(&text, "leasehold_election_polling{namespace=\"a\"}"),
            Some(0.0),
            "back to watching: {text}"
        );
        Ok(())
    }
}
