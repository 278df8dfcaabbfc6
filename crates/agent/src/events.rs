//! Kubernetes Events on the election Lease, emitted only by the agent whose leadership changed: a 1,000-node
//! cluster must not get 1,000 Events per handover. Written through kube-runtime's Recorder (`events.k8s.io/v1`,
//! which patches a repeated Event instead of creating a new one).
//!
//! Events are a courtesy to operators, never a reason to fail: when they are forbidden (RBAC without
//! `events.k8s.io`), the agent logs that once and carries on.

use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Publishes leadership Events for this agent.
pub struct LeaderEvents {
    recorder: Recorder,
    warned: AtomicBool,
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

    /// "node-a became leader of default (epoch 7)".
    pub async fn became_leader(
        &self,
        lease_ns: &str,
        lease: &str,
        node: &str,
        namespace: &str,
        epoch: u64,
    ) {
        let note = format!("{node} became leader of {namespace} (epoch {epoch})");
        self.publish(
            lease_ns,
            lease,
            "BecameLeader",
            "Acquire",
            note,
            EventType::Normal,
        )
        .await;
    }

    /// "node-a stopped leading default: <why>".
    pub async fn stopped_leading(
        &self,
        lease_ns: &str,
        lease: &str,
        node: &str,
        namespace: &str,
        why: &str,
    ) {
        let note = format!("{node} stopped leading {namespace}: {why}");
        self.publish(
            lease_ns,
            lease,
            "StoppedLeading",
            "Release",
            note,
            EventType::Normal,
        )
        .await;
    }

    async fn publish(
        &self,
        lease_ns: &str,
        lease: &str,
        reason: &str,
        action: &str,
        note: String,
        type_: EventType,
    ) {
        let reference = ObjectReference {
            api_version: Some("coordination.k8s.io/v1".into()),
            kind: Some("Lease".into()),
            name: Some(lease.to_string()),
            namespace: Some(lease_ns.to_string()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
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
