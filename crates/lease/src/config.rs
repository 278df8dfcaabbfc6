//! What one election needs to know: which Lease, who we are, and how fast to move.
//!
//! Every timing default is client-go's (`LeaseDuration` 15 s, `RenewDeadline` 10 s, `RetryPeriod` 2 s), so
//! operators who know client-go's leader election get the same failover time. [`ElectionConfig::validate`]
//! enforces `LD > RD > 1.2·RP > 0`: the gap between RD and LD is the safety margin within which a partitioned
//! leader has stopped before anyone else may start, and RD must leave room for at least one retried renew.

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use k8s_openapi::api::coordination::v1::Lease;
use thiserror::Error;

use leasehold_core::{
    identity::{Identity, IdentityError},
    labels::{CANDIDATES_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RELEASED_BY_ANNOTATION},
    names, timing,
};

/// Configuration of one election (one Lease).
///
/// Build it with [`ElectionConfig::new`] and the chained setters; [`crate::Elector::spawn`] validates it.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectionConfig {
    /// Kubernetes namespace of the Lease. No default: the agent reads `POD_NAMESPACE`.
    pub namespace: String,
    /// Name of the Lease (a DNS-1123 subdomain). No default: the agent derives `leasehold-<election-namespace>`.
    pub lease_name: String,
    /// Our identity, written as `spec.holderIdentity`.
    pub identity: Identity,
    /// LD, how long a holder's term lasts after followers last saw it renewed. Whole seconds, because
    /// `leaseDurationSeconds` is an integer. Default 15 s (client-go). Longer is gentler on a large cluster
    /// (every renew is delivered to every follower's watch) but makes failover slower. A longer
    /// `leaseDurationSeconds` written on the Lease by someone else is honoured, but only up to the larger of
    /// 10 × LD and one hour, so that one bad write cannot stop failover for days.
    pub lease_duration: Duration,
    /// RD, how long a successful renew keeps leadership valid, counted from the moment the renew was *sent*.
    /// Default 10 s (client-go). The leader stops by itself RD after its last good renew, even with the API
    /// server unreachable, and `LD − RD` is the margin before a follower may take over.
    pub renew_deadline: Duration,
    /// RP, the retry period: how soon the leader tries again after a failed renew, how often a follower that cannot
    /// watch polls, and the base of every retry backoff. Default 2 s (client-go). A healthy leader renews less
    /// often, every [`ElectionConfig::renew_interval`].
    pub retry_period: Duration,
    /// J, the takeover spread: a follower that sees the Lease become free waits a delay of at most J that grows
    /// with its rank in `[0, 1)`, a hash of (identity, epoch), before it tries to acquire, log-scaled for the
    /// number of candidates the Lease's winners have estimated, in steps of J/96 or more (see
    /// [`crate::CANDIDATES_ANNOTATION`]); on a new Lease, which has no estimate, 3/8 of the ranks within J/16 and
    /// the rest over J/4 to J/2. `None` (the default) means RP. A larger J means fewer wasted write attempts where a
    /// winner's write is slow to reach every follower, a smaller one a faster takeover.
    pub takeover_spread: Option<Duration>,
    /// How long [`crate::ElectionHandle::step_down`] sits out before campaigning again. `None` (the default)
    /// means LD, so that another candidate has a full term to take over.
    pub cool_down: Option<Duration>,
    /// Labels set on the Lease on every write. Default: `app.kubernetes.io/managed-by=leasehold`. The shared
    /// watch selects Leases by exactly these labels, so elections with equal namespace and labels share one
    /// watch.
    pub labels: BTreeMap<String, String>,
    /// Annotations set on the Lease on every write. Default: none.
    pub annotations: BTreeMap<String, String>,
    /// The highest epoch already seen on this Lease by someone else in this process (for example a process-wide
    /// watch), so that an election spawned late never writes an epoch that was used before the Lease was deleted
    /// or the API server's state was lost. Default 0 (nothing known).
    pub epoch_floor: u64,
    /// What this process already saw of the Lease before the election was spawned (see [`Sighting`]), so that an
    /// election spawned late does not count a version that it has known about for a while as "just seen" and wait
    /// another LD. Default `None` (nothing known: the term runs from the first look, and from the spawn).
    pub last_sighting: Option<Sighting>,
    /// Decides whether an existing Lease is the one this election is for, from its labels and annotations, so
    /// that two things whose names map to one Lease name (a sanitised name, or another kind of Lease whose
    /// prefix lines up) stop with [`crate::ElectorError::NotOurs`] instead of sharing it. Default: none (only the
    /// election-namespace annotation is checked, see [`crate::ELECTION_NAMESPACE_ANNOTATION`]).
    pub owner_check: Option<OwnerCheck>,
    /// Test only: shifts the wall clock written into `renewTime` and `acquireTime`, to show that nobody reads
    /// them (expiry runs on each candidate's own monotonic clock). Default zero. Only with the `test-hooks`
    /// feature, which no shipped build enables: the simulation skews clocks within one process with it.
    #[cfg(feature = "test-hooks")]
    pub wall_clock_offset: jiff::SignedDuration,
}

/// A version of the Lease that the caller's process saw before it spawned the election, and when: an agent that
/// watches its Leases for its own reasons (spread mode's placement) spawns an election only when it needs one, and
/// by then it may have known for a whole term that the holder stopped renewing.
///
/// The election uses it only when the first version it observes itself carries the same election record (uid,
/// holder, renewTime, acquireTime, duration and transitions) as [`Sighting::lease`]: then that version counts as
/// seen at [`Sighting::at`], exactly as if the election had been running since then, and the start rule (the Lease
/// counts as busy until the start + LD) runs from `at` too, which is never before the process's own start. When the
/// first version differs, or the Lease is absent, the sighting is dropped and the usual rules apply. So the election
/// never treats the Lease as free earlier than its own rules would, unless the caller saw that very record earlier,
/// on the same clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The version seen; only its uid and election record are compared.
    pub lease: Lease,
    /// When this process first saw that election record, on the clock the election measures terms on: tokio's.
    /// `tokio::time::Instant::from_std` of a `std::time::Instant` is the same clock unless tokio's clock is paused
    /// (tests). An instant in the future counts as now.
    pub at: tokio::time::Instant,
    /// The last non-empty holder this process saw on the Lease up to and including [`Sighting::lease`]: if
    /// `lease` is that holder's own early-free release, the release is trusted as the election would trust a
    /// release it saw after seeing the holder.
    pub last_holder: Option<String>,
}

/// A caller's rule for whether an existing Lease is ours (see [`ElectionConfig::owner_check`]): given the Lease's
/// labels and annotations, `Ok` or why it belongs to something else. Labels and annotations the Lease lacks are
/// its own business: the next write adds ours.
#[derive(Clone)]
pub struct OwnerCheck(Arc<OwnerCheckFn>);

/// The function inside an [`OwnerCheck`].
type OwnerCheckFn = dyn Fn(&BTreeMap<String, String>, &BTreeMap<String, String>) -> Result<(), String>
    + Send
    + Sync;

impl OwnerCheck {
    /// Wraps `check(labels, annotations)`.
    pub fn new(
        check: impl Fn(&BTreeMap<String, String>, &BTreeMap<String, String>) -> Result<(), String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self(Arc::new(check))
    }

    /// Runs the check on a Lease's labels and annotations.
    pub(crate) fn check(
        &self,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        (self.0)(labels, annotations)
    }
}

/// Two checks are equal when they are the same check (clones of one [`OwnerCheck`]): functions cannot be compared.
impl PartialEq for OwnerCheck {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for OwnerCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerCheck(..)")
    }
}

impl ElectionConfig {
    /// A configuration with client-go's default timings and the default labels.
    #[must_use]
    pub fn new(
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        identity: Identity,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            takeover_spread: None,
            cool_down: None,
            labels: BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned())]),
            annotations: BTreeMap::new(),
            epoch_floor: 0,
            last_sighting: None,
            owner_check: None,
            #[cfg(feature = "test-hooks")]
            wall_clock_offset: jiff::SignedDuration::ZERO,
        }
    }

    /// Sets LD, RD and RP together (see the fields for what each means).
    #[must_use]
    pub fn timings(
        mut self,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Self {
        self.lease_duration = lease_duration;
        self.renew_deadline = renew_deadline;
        self.retry_period = retry_period;
        self
    }

    /// Sets the takeover spread J.
    #[must_use]
    pub fn takeover_spread(mut self, spread: Duration) -> Self {
        self.takeover_spread = Some(spread);
        self
    }

    /// Sets the cool-down after a step-down.
    #[must_use]
    pub fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = Some(cool_down);
        self
    }

    /// Adds (or replaces) a label written on every write and used in the watch selector.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets [`ElectionConfig::owner_check`]: the rule for whether an existing Lease is this election's.
    #[must_use]
    pub fn owner_check(mut self, check: OwnerCheck) -> Self {
        self.owner_check = Some(check);
        self
    }

    /// Sets the epoch floor: the next acquisition writes at least `epoch + 1`, even if the Lease it finds is
    /// gone or was re-created at a lower epoch.
    #[must_use]
    pub fn epoch_floor(mut self, epoch: u64) -> Self {
        self.epoch_floor = epoch;
        self
    }

    /// Sets [`ElectionConfig::last_sighting`]: what this process saw of the Lease before spawning the election.
    #[must_use]
    pub fn last_sighting(mut self, sighting: Sighting) -> Self {
        self.last_sighting = Some(sighting);
        self
    }

    /// Test only: writes `renewTime`/`acquireTime` shifted by `offset`, as a node with a wrong wall clock would.
    /// Only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[must_use]
    pub fn wall_clock_offset_for_test(mut self, offset: jiff::SignedDuration) -> Self {
        self.wall_clock_offset = offset;
        self
    }

    /// Adds (or replaces) an annotation written on every write.
    #[must_use]
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// J as configured, or RP.
    #[must_use]
    pub fn effective_spread(&self) -> Duration {
        self.takeover_spread.unwrap_or(self.retry_period)
    }

    /// How often a healthy leader renews: RD − 2.5 × RP, and never more often than every RP (5 s at the defaults).
    ///
    /// Every renew is a write that the API server delivers to every follower's watch, so this interval sets the
    /// biggest cost an election puts on a large cluster: N / interval watch events per second. It is as long as it
    /// can be while a leader whose renew fails still has three tries before RD, one every RP (at interval,
    /// interval + RP and interval + 2 RP, the last half an RP before the deadline). Followers are not affected:
    /// they count LD from the last change they saw, and LD > RD > interval.
    #[must_use]
    pub fn renew_interval(&self) -> Duration {
        self.renew_deadline
            .saturating_sub(self.retry_period.mul_f64(2.5))
            .max(self.retry_period)
    }

    /// The cool-down as configured, or LD.
    #[must_use]
    pub fn effective_cool_down(&self) -> Duration {
        self.cool_down.unwrap_or(self.lease_duration)
    }

    /// The label selector of the shared watch: the labels as `k=v,k=v`, in key order.
    #[must_use]
    pub fn label_selector(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// LD in seconds, as written to `leaseDurationSeconds`.
    #[must_use]
    pub fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Checks everything that can be checked without talking to the API server.
    ///
    /// # Errors
    /// The first problem found, naming the setting, the value and what is accepted.
    pub fn validate(&self) -> Result<(), ElectionConfigError> {
        check_name(
            "namespace",
            &self.namespace,
            names::is_dns1123_label,
            names::DNS1123_LABEL_RULE,
        )?;
        check_name(
            "lease name",
            &self.lease_name,
            names::is_dns1123_subdomain,
            names::DNS1123_SUBDOMAIN_RULE,
        )?;
        // Identity's constructor checks it; a struct literal could still bypass that.
        Identity::new(self.identity.node(), self.identity.instance())?;
        let (ld, rd, rp) = (self.lease_duration, self.renew_deadline, self.retry_period);
        if ld.subsec_nanos() != 0 || ld.is_zero() {
            return Err(ElectionConfigError::LeaseDurationNotWholeSeconds(ld));
        }
        if ld.as_secs() > i32::MAX as u64 {
            return Err(ElectionConfigError::LeaseDurationTooLong(ld));
        }
        timing::check(ld, rd, rp).map_err(|why| ElectionConfigError::Timings {
            ld,
            rd,
            rp,
            why,
        })?;
        for (k, v) in &self.labels {
            check_label(k, v)?;
        }
        if self.labels.is_empty() {
            return Err(ElectionConfigError::NoLabels);
        }
        for k in self.annotations.keys() {
            if k == RELEASED_BY_ANNOTATION || k == CANDIDATES_ANNOTATION {
                return Err(ElectionConfigError::ReservedAnnotation(k.clone()));
            }
            check_name(
                "annotation key",
                k,
                names::is_qualified_name,
                names::QUALIFIED_NAME_RULE,
            )?;
        }
        Ok(())
    }
}

/// Why an [`ElectionConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ElectionConfigError {
    /// LD is zero or has a fractional part.
    #[error(
        "lease duration {0:?} is not a whole number of seconds ≥ 1s (leaseDurationSeconds is an integer); use e.g. 15s"
    )]
    LeaseDurationNotWholeSeconds(Duration),
    /// LD does not fit `leaseDurationSeconds`.
    #[error("lease duration {0:?} does not fit leaseDurationSeconds (a 32-bit integer)")]
    LeaseDurationTooLong(Duration),
    /// The timings break `LD > RD > 1.2·RP > 0`.
    #[error(
        "timings lease duration {ld:?}, renew deadline {rd:?}, retry period {rp:?} are invalid: {why} (required: {})",
        timing::RULE
    )]
    Timings {
        /// LD as given.
        ld: Duration,
        /// RD as given.
        rd: Duration,
        /// RP as given.
        rp: Duration,
        /// Which inequality failed.
        why: timing::TimingViolation,
    },
    /// A name is not a valid Kubernetes name.
    #[error("{what} {value:?} is invalid: it must be {why}")]
    BadName {
        /// Which setting.
        what: &'static str,
        /// The value as given.
        value: String,
        /// What is accepted.
        why: &'static str,
    },
    /// A label value is not a valid Kubernetes label value.
    #[error(
        "label {key:?} has invalid value {value:?}: at most 63 characters of [A-Za-z0-9._-], starting and ending with an alphanumeric, or empty"
    )]
    BadLabelValue {
        /// The label key.
        key: String,
        /// The value as given.
        value: String,
    },
    /// No labels: the watch would select every Lease in the namespace.
    #[error(
        "no labels configured; at least one label is needed so the shared watch selects only leasehold Leases"
    )]
    NoLabels,
    /// The caller tried to set an annotation the elector owns.
    #[error("annotation {0:?} is written by the elector itself and cannot be configured")]
    ReservedAnnotation(String),
    /// The identity is invalid.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

fn check_name(
    what: &'static str,
    value: &str,
    ok: fn(&str) -> bool,
    rule: &'static str,
) -> Result<(), ElectionConfigError> {
    if ok(value) {
        Ok(())
    } else {
        Err(ElectionConfigError::BadName {
            what,
            value: value.to_owned(),
            why: rule,
        })
    }
}

fn check_label(key: &str, value: &str) -> Result<(), ElectionConfigError> {
    check_name(
        "label key",
        key,
        names::is_qualified_name,
        names::QUALIFIED_NAME_RULE,
    )?;
    if names::is_label_value(value) {
        Ok(())
    } else {
        Err(ElectionConfigError::BadLabelValue {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ELECTION_NAMESPACE_ANNOTATION;

    fn config() -> ElectionConfig {
        ElectionConfig::new(
            "default",
            "leasehold-default",
            Identity::new("node-a", "1").unwrap(),
        )
    }

    #[test]
    fn defaults_are_client_go_and_valid() {
        let c = config();
        assert_eq!(c.lease_duration, Duration::from_secs(15));
        assert_eq!(c.renew_deadline, Duration::from_secs(10));
        assert_eq!(c.retry_period, Duration::from_secs(2));
        assert_eq!(c.effective_spread(), Duration::from_secs(2));
        assert_eq!(c.effective_cool_down(), Duration::from_secs(15));
        assert_eq!(c.label_selector(), "app.kubernetes.io/managed-by=leasehold");
        c.validate().unwrap();
    }

    /// The renew interval leaves three tries, one every RP, before RD, and is never shorter than RP.
    #[test]
    fn the_renew_interval_leaves_three_tries_before_the_deadline() {
        let ms = Duration::from_millis;
        for (ld, rd, rp, interval) in [
            (15_000, 10_000, 2_000, 5_000),
            (3_000, 2_000, 500, 750),
            (60_000, 40_000, 2_000, 35_000),
            (4_000, 2_500, 1_000, 1_000),
            (5_000, 3_000, 2_000, 2_000),
        ] {
            let c = config().timings(ms(ld), ms(rd), ms(rp));
            c.validate().unwrap();
            let got = c.renew_interval();
            assert_eq!(got, ms(interval), "LD {ld} ms, RD {rd} ms, RP {rp} ms");
            assert!(got >= c.retry_period);
            if c.renew_deadline >= c.retry_period.mul_f64(3.5) {
                assert!(got + c.retry_period * 2 < c.renew_deadline, "{got:?}");
            }
        }
    }

    #[test]
    fn fractional_lease_duration_is_refused() {
        let c = config().timings(
            Duration::from_millis(2500),
            Duration::from_secs(1),
            Duration::from_millis(500),
        );
        assert!(matches!(
            c.validate(),
            Err(ElectionConfigError::LeaseDurationNotWholeSeconds(_))
        ));
    }

    #[test]
    fn timing_errors_name_the_rule() {
        let c = config().timings(
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_secs(2),
        );
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("lease duration must be greater than the renew deadline"),
            "{err}"
        );
        let c = config().timings(
            Duration::from_secs(10),
            Duration::from_millis(2400),
            Duration::from_secs(2),
        );
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("1.2"), "{err}");
        let c = config().timings(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        assert!(c.validate().is_err());
    }

    #[test]
    fn short_test_timings_are_valid() {
        config()
            .timings(
                Duration::from_secs(2),
                Duration::from_millis(1500),
                Duration::from_millis(500),
            )
            .validate()
            .unwrap();
        config()
            .timings(
                Duration::from_secs(1),
                Duration::from_millis(600),
                Duration::from_millis(200),
            )
            .validate()
            .unwrap();
    }

    #[test]
    fn names_labels_and_annotations_are_checked() {
        let mut c = config();
        c.namespace = "Bad_NS".into();
        assert!(matches!(
            c.validate(),
            Err(ElectionConfigError::BadName {
                what: "namespace",
                ..
            })
        ));
        let mut c = config();
        c.lease_name = "-x".into();
        assert!(matches!(
            c.validate(),
            Err(ElectionConfigError::BadName {
                what: "lease name",
                ..
            })
        ));
        let c = config().label("leasehold.dev/kind", "not ok!");
        assert!(matches!(
            c.validate(),
            Err(ElectionConfigError::BadLabelValue { .. })
        ));
        for reserved in [RELEASED_BY_ANNOTATION, CANDIDATES_ANNOTATION] {
            let c = config().annotation(reserved, "x");
            assert_eq!(
                c.validate(),
                Err(ElectionConfigError::ReservedAnnotation(reserved.into()))
            );
        }
        let mut c = config();
        c.labels.clear();
        assert_eq!(c.validate(), Err(ElectionConfigError::NoLabels));
        config()
            .label("leasehold.dev/kind", "election")
            .annotation(ELECTION_NAMESPACE_ANNOTATION, "anything at all")
            .validate()
            .unwrap();
    }

    proptest! {
        #[test]
        fn validate_matches_the_inequality(ld in 1u64..30, rd_ms in 1u64..40_000, rp_ms in 0u64..40_000) {
            let (ld, rd, rp) = (Duration::from_secs(ld), Duration::from_millis(rd_ms), Duration::from_millis(rp_ms));
            let ok = ld > rd && 5 * rd.as_nanos() > 6 * rp.as_nanos() && !rp.is_zero();
            prop_assert_eq!(config().timings(ld, rd, rp).validate().is_ok(), ok);
        }
    }
}
