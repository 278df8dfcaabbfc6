//! What `leasehold status --cluster` knows about each Lease: a pure function of the Leases read and the local
//! time, so the whole report is unit-tested without a server.
//!
//! Health here is judged from the Lease's `renewTime` and this machine's clock. That is a diagnostic for
//! people, not the election's rule: electors never trust a remote timestamp (they time terms on their own
//! monotonic clocks from when they saw a change), so a skewed laptop clock can call a healthy Lease expired.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use leasehold_lease::{RELEASED_BY_ANNOTATION, core::identity::node_of};
use leasehold_policy::lease_name::{KIND_LABEL, LeaseKind};
use serde::Serialize;

/// How a Lease looks from its `renewTime` and the local clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// A holder renewed it within its `leaseDurationSeconds`.
    Renewing,
    /// A holder is named but has not renewed within its term: it is gone, partitioned, or the clocks disagree.
    Expired,
    /// No holder: released by its last holder, or never taken.
    Released,
}

impl Health {
    /// The word the text output shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Renewing => "renewing",
            Health::Expired => "expired",
            Health::Released => "released",
        }
    }
}

/// One Lease as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// The raw name the Lease is for: the election namespace, the task or the member's holder identity.
    pub name: String,
    /// The Lease object's name.
    pub lease: String,
    /// The holder identity, when one is named.
    pub holder: Option<String>,
    /// The holder's node: the holder identity up to its last `_` (the whole identity for foreign holders).
    pub node: Option<String>,
    /// `leaseTransitions`: the election's fencing epoch.
    pub epoch: u64,
    /// Seconds since `renewTime`, by the local clock.
    pub since_renew_seconds: Option<f64>,
    /// Seconds left in the term (`renewTime` + `leaseDurationSeconds` − now); negative once it ended.
    pub term_left_seconds: Option<f64>,
    /// Seconds since `acquireTime`: how long the holder has been in office.
    pub in_office_seconds: Option<f64>,
    /// Who released it last, when the release marker is on the Lease.
    pub released_by: Option<String>,
    /// The judgement from the fields above.
    pub health: Health,
}

/// Every leasehold Lease of one Kubernetes namespace, by kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The Kubernetes namespace the Leases were read from.
    pub namespace: String,
    /// One row per election namespace.
    pub elections: Vec<Row>,
    /// One row per spread task.
    pub tasks: Vec<Row>,
    /// One row per agent that runs spread tasks.
    pub members: Vec<Row>,
}

impl Report {
    /// Sorts `leases` by their kind label into a report, judged at `now`. Leases without a known kind are left
    /// out: they are not leasehold's, whatever their labels say.
    pub fn new(namespace: &str, leases: &[Lease], now: jiff::Timestamp) -> Self {
        let mut report = Report {
            namespace: namespace.to_owned(),
            elections: Vec::new(),
            tasks: Vec::new(),
            members: Vec::new(),
        };
        for lease in leases {
            let kind = lease
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(KIND_LABEL))
                .and_then(|v| LeaseKind::ALL.into_iter().find(|k| k.label_value() == v));
            let Some(kind) = kind else { continue };
            let row = row(lease, kind, now);
            match kind {
                LeaseKind::Election => report.elections.push(row),
                LeaseKind::Task => report.tasks.push(row),
                LeaseKind::Member => report.members.push(row),
            }
        }
        for rows in [
            &mut report.elections,
            &mut report.tasks,
            &mut report.members,
        ] {
            rows.sort_by(|a, b| a.name.cmp(&b.name));
        }
        report
    }

    /// Whether every election namespace has a renewing holder (and there is at least one): the exit code 0 of
    /// the command, for scripts and CI.
    pub fn healthy(&self) -> bool {
        !self.elections.is_empty() && self.elections.iter().all(|r| r.health == Health::Renewing)
    }
}

fn row(lease: &Lease, kind: LeaseKind, now: jiff::Timestamp) -> Row {
    let spec = lease.spec.clone().unwrap_or_default();
    let name = lease.metadata.name.clone().unwrap_or_default();
    let annotations = lease.metadata.annotations.as_ref();
    let raw = annotations
        .and_then(|a| a.get(kind.annotation()))
        .cloned()
        .unwrap_or_else(|| name.clone());
    let holder = spec.holder_identity.filter(|h| !h.is_empty());
    let node = holder.as_deref().map(|h| node_of(h).to_owned());
    let ago = |t: &jiff::Timestamp| now.duration_since(*t).as_secs_f64();
    let since_renew = spec.renew_time.as_ref().map(|t| ago(&t.0));
    let duration = spec.lease_duration_seconds.map(f64::from);
    let term_left = since_renew.zip(duration).map(|(since, d)| d - since);
    let health = match (&holder, term_left) {
        (None, _) => Health::Released,
        (Some(_), Some(left)) if left > 0.0 => Health::Renewing,
        (Some(_), _) => Health::Expired,
    };
    Row {
        name: raw,
        lease: name,
        node,
        epoch: spec
            .lease_transitions
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0),
        since_renew_seconds: since_renew,
        term_left_seconds: term_left,
        in_office_seconds: holder
            .as_ref()
            .and(spec.acquire_time.as_ref())
            .map(|t| ago(&t.0)),
        released_by: annotations
            .and_then(|a| a.get(RELEASED_BY_ANNOTATION))
            .cloned(),
        holder,
        health,
    }
}

/// Seconds as a short human duration: tenths below 10 s, whole seconds above (`4.2s`, `1m 5s`).
pub fn human(seconds: f64) -> String {
    if seconds.abs() < 10.0 {
        return format!("{seconds:.1}s");
    }
    let whole = Duration::from_secs(seconds.abs().round() as u64);
    let sign = if seconds < 0.0 { "-" } else { "" };
    format!("{sign}{}", humantime::format_duration(whole))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

    use super::*;

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn lease(kind: &str, raw: &str, holder: &str, renewed: i64, ld: i32) -> Lease {
        let kind_ = LeaseKind::ALL
            .into_iter()
            .find(|k| k.label_value() == kind)
            .unwrap();
        Lease {
            metadata: ObjectMeta {
                name: Some(format!("leasehold-{raw}")),
                labels: Some([(KIND_LABEL.to_owned(), kind.to_owned())].into()),
                annotations: Some([(kind_.annotation().to_owned(), raw.to_owned())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(ld),
                lease_transitions: Some(4),
                renew_time: Some(MicroTime(at(renewed))),
                acquire_time: Some(MicroTime(at(renewed - 60))),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn health_follows_renew_time_and_the_holder() {
        let now = at(100);
        let leases = [
            lease("election", "b", "node-b_x1", 95, 15),
            lease("election", "a", "node-a_x2", 80, 15),
            lease("election", "c", "", 99, 1),
            lease("task", "t", "node-a_x2", 99, 15),
            lease("member", "node-a_x2", "node-a_x2", 90, 60),
        ];
        let r = Report::new("kube-system", &leases, now);
        let names: Vec<_> = r.elections.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"], "sorted by election namespace");
        assert_eq!(r.elections[0].health, Health::Expired);
        assert_eq!(r.elections[0].term_left_seconds, Some(-5.0));
        assert_eq!(r.elections[1].health, Health::Renewing);
        assert_eq!(r.elections[1].node.as_deref(), Some("node-b"));
        assert_eq!(r.elections[1].since_renew_seconds, Some(5.0));
        assert_eq!(r.elections[1].in_office_seconds, Some(65.0));
        assert_eq!(r.elections[1].epoch, 4);
        assert_eq!(r.elections[2].health, Health::Released);
        assert_eq!(r.elections[2].in_office_seconds, None);
        assert_eq!(r.tasks.len(), 1);
        assert_eq!(r.members[0].health, Health::Renewing);
        assert!(!r.healthy(), "namespace a has expired");
    }

    #[test]
    fn healthy_needs_at_least_one_election_and_all_renewing() {
        let now = at(100);
        assert!(!Report::new("d", &[], now).healthy());
        let ok = [lease("election", "a", "n_1", 99, 15)];
        assert!(Report::new("d", &ok, now).healthy());
    }

    #[test]
    fn leases_of_unknown_kind_and_foreign_holders_are_handled() {
        let now = at(100);
        let mut other = lease("election", "x", "n_1", 99, 15);
        other.metadata.labels = None;
        let foreign = lease("election", "y", "some-controller", 99, 15);
        let r = Report::new("d", &[other, foreign], now);
        assert_eq!(r.elections.len(), 1, "the unlabelled Lease is not ours");
        assert_eq!(r.elections[0].node.as_deref(), Some("some-controller"));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(4.24), "4.2s");
        assert_eq!(human(-3.0), "-3.0s");
        assert_eq!(human(65.4), "1m 5s");
        assert_eq!(human(-7200.0), "-2h");
    }
}
