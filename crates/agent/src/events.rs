//! Kubernetes Events on the election Lease, emitted only by the agent whose leadership changed: a 1,000-node
//! cluster must not get 1,000 Events per handover. Written through kube-runtime's Recorder (`events.k8s.io/v1`,
//! which patches a repeated Event instead of creating a new one).
//!
//! Events are a courtesy to operators, never a reason to fail: when they are forbidden (RBAC without
//! `events.k8s.io`), the agent logs that once and carries on. Publishing never blocks the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Publishes Events for this agent.
pub struct LeaderEvents {
    recorder: Recorder,
    warned: AtomicBool,
}

/// What an Event says about a leadership change.
pub enum Change<'a> {
    /// "node-a became leader of default (epoch 7)".
    BecameLeader {
        /// The new epoch.
        epoch: u64,
    },
    /// `"node-a stopped leading default: <why>"`.
    StoppedLeading {
        /// Why.
        why: &'a str,
    },
}

/// The Lease an election namespace's Events are about.
#[derive(Clone)]
pub struct LeaseEvents {
    /// The publisher.
    pub events: Arc<LeaderEvents>,
    /// The Kubernetes namespace of the Lease.
    pub lease_namespace: String,
    /// The Lease name.
    pub lease_name: String,
    /// Our node name, as the notes say it.
    pub node: String,
    /// The election namespace.
    pub namespace: String,
}

impl LeaderEvents {
    /// A publisher reporting as controller `leasehold`, instance `instance` (our holder identity).
    pub fn new(client: Client, instance: &str) -> Self {
        let reporter = Reporter {
            controller: "leasehold".into(),
            instance: Some(instance.to_string()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
            warned: AtomicBool::new(false),
        }
    }

    async fn publish(&self, reference: ObjectReference, event: Event) {
        match self.recorder.publish(&event, &reference).await {
            Ok(()) => {}
            Err(kube::Error::Api(status)) if status.code == 403 => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(message = %status.message, "Kubernetes Events are forbidden (grant events.k8s.io create and patch to see leadership Events); the election is not affected");
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not write a Kubernetes Event; the election is not affected")
            }
        }
    }
}

impl LeaseEvents {
    /// Publishes an Event about `change` in the background.
    pub fn publish(&self, change: Change<'_>) {
        let (reason, action, note) = match change {
            Change::BecameLeader { epoch } => (
                "BecameLeader",
                "Acquire",
                format!(
                    "{} became leader of {} (epoch {epoch})",
                    self.node, self.namespace
                ),
            ),
            Change::StoppedLeading { why } => (
                "StoppedLeading",
                "Release",
                format!("{} stopped leading {}: {why}", self.node, self.namespace),
            ),
        };
        let reference = ObjectReference {
            api_version: Some("coordination.k8s.io/v1".into()),
            kind: Some("Lease".into()),
            name: Some(self.lease_name.clone()),
            namespace: Some(self.lease_namespace.clone()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let events = self.events.clone();
        tokio::spawn(async move { events.publish(reference, event).await });
    }
}
