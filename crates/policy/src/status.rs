//! Election status per namespace, DataKit's monitor line, and the JSON form the API serves.
//!
//! The five states are DataKit's (`disabled`, `success`, `defeat`, `banned`) plus
//! `impeached`, so dashboards and scripts written for DataKit's monitor keep working.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::go_duration::go_duration;

/// The status of this agent in one election namespace.
///
/// Transitions (driven by the elector, not here): `Disabled` and `Banned` are decided at
/// start-up and never change; `Defeat` ↔ `Success` follow leadership; `Success` →
/// `Impeached` on a step-down request, and `Impeached` → `Defeat` when the cool-down ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Election is off: every task runs, no Lease is used.
    Disabled,
    /// We lead, since the given wall-clock time (for display only; leadership itself is
    /// timed on a monotonic clock by the elector).
    Success {
        /// When leadership was gained.
        since: SystemTime,
    },
    /// Another candidate holds the Lease (its node), or nobody does (`None`).
    Defeat {
        /// The holder's node name, from [`crate::identity::node_of`].
        holder: Option<String>,
    },
    /// This node is not in the whitelist: it watches and never writes.
    Banned {
        /// The current holder's node, when known.
        holder: Option<String>,
    },
    /// We stepped down on request and sit out a cool-down before campaigning again.
    Impeached {
        /// The current holder's node, when known.
        holder: Option<String>,
    },
}

/// The name of a status without its data: the word in the monitor line, the API and the
/// `status` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    /// See [`Status::Disabled`].
    Disabled,
    /// See [`Status::Success`].
    Success,
    /// See [`Status::Defeat`].
    Defeat,
    /// See [`Status::Banned`].
    Banned,
    /// See [`Status::Impeached`].
    Impeached,
}

/// A status word that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown election status {0:?}; accepted: disabled, success, defeat, banned, impeached")]
pub struct StatusError(pub String);

impl StatusKind {
    /// All five, in the order DataKit documents them (plus impeached).
    pub const ALL: [StatusKind; 5] = [
        StatusKind::Disabled,
        StatusKind::Success,
        StatusKind::Defeat,
        StatusKind::Banned,
        StatusKind::Impeached,
    ];

    /// The lowercase word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Disabled => "disabled",
            StatusKind::Success => "success",
            StatusKind::Defeat => "defeat",
            StatusKind::Banned => "banned",
            StatusKind::Impeached => "impeached",
        }
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StatusKind {
    type Err = StatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StatusKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StatusError(s.to_owned()))
    }
}

impl Status {
    /// The status word.
    #[must_use]
    pub fn kind(&self) -> StatusKind {
        match self {
            Status::Disabled => StatusKind::Disabled,
            Status::Success { .. } => StatusKind::Success,
            Status::Defeat { .. } => StatusKind::Defeat,
            Status::Banned { .. } => StatusKind::Banned,
            Status::Impeached { .. } => StatusKind::Impeached,
        }
    }
}

/// One namespace's status as shown to people and programs: the monitor line
/// (`Display`) and the JSON form (`Serialize`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The election namespace.
    pub namespace: String,
    /// The status word.
    pub status: StatusKind,
    /// The leader's node name (ours when `success`), if any.
    pub holder: Option<String>,
    /// When we became leader, RFC 3339 with microseconds (only for `success`).
    pub since: Option<String>,
    /// How long we have led (only for `success`), in seconds in JSON.
    #[serde(rename = "elected_seconds", with = "secs_f64")]
    pub elected: Option<Duration>,
}

impl StatusReport {
    /// Builds the report for `status` in `namespace`, where `own_node` is our node name (the
    /// holder shown while we lead) and `now` is the current wall-clock time. A `since` in the
    /// future (clock stepped back) counts as zero elapsed.
    #[must_use]
    pub fn new(namespace: &str, status: &Status, own_node: &str, now: SystemTime) -> Self {
        let (holder, since, elected) = match status {
            Status::Disabled => (None, None, None),
            Status::Success { since } => (
                Some(own_node.to_owned()),
                Some(humantime::format_rfc3339_micros(*since).to_string()),
                Some(now.duration_since(*since).unwrap_or(Duration::ZERO)),
            ),
            Status::Defeat { holder }
            | Status::Banned { holder }
            | Status::Impeached { holder } => (holder.clone(), None, None),
        };
        StatusReport {
            namespace: namespace.to_owned(),
            status: status.kind(),
            holder,
            since,
            elected,
        }
    }
}

impl fmt::Display for StatusReport {
    /// DataKit's monitor line: `Elected <ns>::<status>|<holder>`, followed by
    /// `(elected: <Go duration>)` while leading.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Elected {}::{}|{}",
            self.namespace,
            self.status,
            self.holder.as_deref().unwrap_or("")
        )?;
        if let (StatusKind::Success, Some(elected)) = (self.status, self.elected) {
            write!(f, "(elected: {})", go_duration(elected))?;
        }
        Ok(())
    }
}

mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let secs = Option::<f64>::deserialize(d)?;
        secs.map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn success_line_matches_datakit() {
        let since = at(1_700_000_000, 0);
        let now = since + Duration::from_nanos(280_554_909_000);
        let r = StatusReport::new("default", &Status::Success { since }, "node-a", now);
        assert_eq!(
            r.to_string(),
            "Elected default::success|node-a(elected: 4m40.554909s)"
        );
    }

    #[test]
    fn defeat_line_matches_datakit() {
        let s = Status::Defeat {
            holder: Some("node-a".into()),
        };
        let r = StatusReport::new("default", &s, "node-b", at(0, 0));
        assert_eq!(r.to_string(), "Elected default::defeat|node-a");
    }

    #[test]
    fn other_lines() {
        let now = at(10, 0);
        let line = |s: Status| StatusReport::new("ns", &s, "me", now).to_string();
        assert_eq!(line(Status::Disabled), "Elected ns::disabled|");
        assert_eq!(line(Status::Banned { holder: None }), "Elected ns::banned|");
        assert_eq!(
            line(Status::Impeached {
                holder: Some("x".into())
            }),
            "Elected ns::impeached|x"
        );
        assert_eq!(line(Status::Defeat { holder: None }), "Elected ns::defeat|");
    }

    #[test]
    fn future_since_counts_as_zero() {
        let r = StatusReport::new("ns", &Status::Success { since: at(20, 0) }, "me", at(10, 0));
        assert_eq!(r.to_string(), "Elected ns::success|me(elected: 0s)");
    }

    #[test]
    fn json_form_round_trips() {
        let since = at(1_700_000_000, 5_000);
        let r = StatusReport::new(
            "default",
            &Status::Success { since },
            "node-a",
            since + Duration::from_millis(1500),
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "namespace": "default",
                "status": "success",
                "holder": "node-a",
                "since": "2023-11-14T22:13:20.000005Z",
                "elected_seconds": 1.5
            })
        );
        let back: StatusReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let d = StatusReport::new("ns", &Status::Disabled, "me", since);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"namespace":"ns","status":"disabled","holder":null,"since":null,"elected_seconds":null}"#
        );
    }

    #[test]
    fn bad_elected_seconds_is_a_json_error() {
        let err = serde_json::from_str::<StatusReport>(
            r#"{"namespace":"n","status":"success","holder":null,"since":null,"elected_seconds":-1.0}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }

    #[test]
    fn status_words_parse_and_print() {
        for k in StatusKind::ALL {
            assert_eq!(k.as_str().parse::<StatusKind>().unwrap(), k);
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(
            "won".parse::<StatusKind>().unwrap_err().to_string(),
            "unknown election status \"won\"; accepted: disabled, success, defeat, banned, \
             impeached"
        );
        assert_eq!(
            Status::Success { since: at(0, 0) }.kind(),
            StatusKind::Success
        );
    }
}
