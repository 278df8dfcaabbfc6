//! What an election namespace shows while its runner works: the DataKit status line, how the Lease is observed
//! (watching or polling), transition metrics, and Kubernetes Events from the agent whose leadership changed.

use std::sync::Arc;
use std::time::SystemTime;

use leasehold_lease::{Leadership, Observation};
use leasehold_policy::identity::node_of;
use leasehold_policy::status::Status;

use crate::events::{Change, LeaseEvents};
use crate::metrics::Metrics;
use crate::runner::Sink;
use crate::view::View;

/// The sink of one election namespace.
pub struct NamespaceSink {
    /// The election namespace.
    pub namespace: String,
    /// Published state.
    pub view: Arc<View>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Events on the namespace's Lease, when the agent can write them.
    pub events: Option<LeaseEvents>,
}

fn holder_node(holder: Option<&String>) -> Option<String> {
    holder.map(|h| node_of(h).to_string())
}

impl Sink for NamespaceSink {
    fn following(&self, holder: Option<String>) {
        let status = Status::Defeat {
            holder: holder_node(holder.as_ref()),
        };
        self.view.set_status(&self.namespace, status, holder, None);
    }

    fn cooling_down(&self, holder: Option<String>) {
        let status = Status::Impeached {
            holder: holder_node(holder.as_ref()),
        };
        self.view.set_status(&self.namespace, status, holder, None);
    }

    fn leading(&self, l: &Leadership) {
        let status = Status::Success {
            since: SystemTime::now(),
        };
        self.view.set_status(
            &self.namespace,
            status,
            Some(l.holder().to_string()),
            Some(l.epoch()),
        );
        self.metrics.transition(&self.namespace, "acquired");
        tracing::info!(namespace = %self.namespace, epoch = l.epoch(), "became leader");
        if let Some(events) = &self.events {
            events.publish(Change::BecameLeader { epoch: l.epoch() });
        }
    }

    fn leadership_deadline(&self, deadline: Option<std::time::Instant>) {
        self.view.set_leadership_deadline(&self.namespace, deadline);
    }

    fn observation(&self, observation: Observation) {
        self.view.set_observation(&self.namespace, observation);
    }

    fn stopped_leading(&self, l: &Leadership, why: &str) {
        let reason = if why == "impeached" {
            "impeached"
        } else {
            "lost"
        };
        self.metrics.transition(&self.namespace, reason);
        tracing::info!(namespace = %self.namespace, epoch = l.epoch(), why, "stopped leading");
        if let Some(events) = &self.events {
            events.publish(Change::StoppedLeading { why });
        }
    }
}
