//! Reading the election record out of a Lease, and writing the acquire, renew and release versions of it.
//!
//! Every write starts from an observed object (or, for a create, from nothing) and keeps its `uid` and
//! `resourceVersion`, so the API server refuses it with 409 if anything changed since we observed it. Every
//! write sets our labels and annotations again, so a Lease whose label was removed comes back into the watch
//! at the next renew.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};

use crate::{RELEASED_BY_ANNOTATION, config::ElectionConfig};

/// The non-empty holder of a Lease, if any.
pub(crate) fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// `leaseDurationSeconds` as a duration, if present and positive.
pub(crate) fn duration(lease: &Lease) -> Option<std::time::Duration> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .map(std::time::Duration::from_secs)
}

/// `leaseTransitions`, with absent or negative (garbage) values read as 0.
pub(crate) fn transitions(lease: &Lease) -> u64 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(0)
}

/// `acquireTime`, which with the holder and the epoch tells one term from another: two processes given one
/// identity can write the same holder and, after a wipe resets `leaseTransitions`, the same epoch, but not the
/// same acquire instant.
pub(crate) fn acquire_time(lease: &Lease) -> Option<&MicroTime> {
    lease.spec.as_ref().and_then(|s| s.acquire_time.as_ref())
}

/// The `leasehold.dev/released-by` annotation.
pub(crate) fn released_by(lease: &Lease) -> Option<&str> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RELEASED_BY_ANNOTATION))
        .map(String::as_str)
}

/// Whether this version is an early-free release written by `last_holder` itself: holderIdentity "",
/// `leaseDurationSeconds: 1` and `released-by` naming that holder. Anything else that blanks the holder
/// (a third party, a half-written release) does not free the Lease early.
pub(crate) fn is_release_by(lease: &Lease, last_holder: &str) -> bool {
    holder(lease).is_none()
        && lease.spec.as_ref().and_then(|s| s.lease_duration_seconds) == Some(1)
        && released_by(lease) == Some(last_holder)
}

/// Whether two versions carry the same election record: holder, renewTime, acquireTime, duration and
/// transitions. Only a change to these is a sighting of the holder; a third party that rewrites labels or
/// annotations (a GitOps reconciler, a policy engine) must not keep a dead holder's term alive.
///
/// Public (as `leasehold_lease::same_record`) so that a caller who watches the Leases itself and passes a
/// [`crate::Sighting`] to a late election judges sightings by the same rule the election does.
#[must_use]
pub fn same_record(a: &Lease, b: &Lease) -> bool {
    let key = |l: &Lease| {
        l.spec.as_ref().map(|s| {
            (
                s.holder_identity.clone(),
                s.renew_time.clone(),
                s.acquire_time.clone(),
                s.lease_duration_seconds,
                s.lease_transitions,
            )
        })
    };
    a.metadata.uid == b.metadata.uid && key(a) == key(b)
}

/// `(uid, resourceVersion)` of an observed object.
pub(crate) fn version(lease: &Lease) -> (Option<&str>, Option<&str>) {
    (
        lease.metadata.uid.as_deref(),
        lease.metadata.resource_version.as_deref(),
    )
}

/// The wall-clock time written into the record (shifted only by the test-only offset of the `test-hooks`
/// feature). Informational: no candidate reads it back to decide anything.
#[cfg_attr(not(feature = "test-hooks"), allow(unused_variables))]
fn now(cfg: &ElectionConfig) -> MicroTime {
    let now = jiff::Timestamp::now();
    #[cfg(feature = "test-hooks")]
    let now = now.checked_add(cfg.wall_clock_offset).unwrap_or(now);
    MicroTime(now)
}

/// Sets our labels and annotations on `meta` and removes a stale `released-by`.
fn stamp(meta: &mut ObjectMeta, cfg: &ElectionConfig, released_by: Option<&str>) {
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.extend(cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    annotations.extend(cfg.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    match released_by {
        Some(id) => {
            annotations.insert(RELEASED_BY_ANNOTATION.to_owned(), id.to_owned());
        }
        None => {
            annotations.remove(RELEASED_BY_ANNOTATION);
        }
    }
    if annotations.is_empty() {
        meta.annotations = None;
    }
    meta.managed_fields = None;
}

fn epoch_i32(epoch: u64) -> i32 {
    i32::try_from(epoch).unwrap_or(i32::MAX)
}

/// The acquire write: a new Lease (`observed` is `None`) or the observed one, claimed by us with
/// `leaseTransitions = epoch`.
pub(crate) fn acquire(observed: Option<&Lease>, cfg: &ElectionConfig, epoch: u64) -> Lease {
    let mut lease = observed.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(cfg.lease_name.clone()),
            namespace: Some(cfg.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    stamp(&mut lease.metadata, cfg, None);
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let t = now(cfg);
    spec.holder_identity = Some(cfg.identity.holder());
    spec.acquire_time = Some(t.clone());
    spec.renew_time = Some(t);
    spec.lease_duration_seconds = Some(cfg.lease_duration_seconds());
    spec.lease_transitions = Some(epoch_i32(epoch));
    lease
}

/// The renew write: our cached object with a fresh `renewTime`, our holder, our duration, our epoch and our
/// `acquireTime` (restored if a third party changed or removed them).
pub(crate) fn renew(
    cached: &Lease,
    cfg: &ElectionConfig,
    epoch: u64,
    acquired: Option<&MicroTime>,
) -> Lease {
    let mut lease = cached.clone();
    stamp(&mut lease.metadata, cfg, None);
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(cfg.identity.holder());
    if let Some(t) = acquired {
        spec.acquire_time = Some(t.clone());
    }
    spec.renew_time = Some(now(cfg));
    spec.lease_duration_seconds = Some(cfg.lease_duration_seconds());
    spec.lease_transitions = Some(epoch_i32(epoch));
    lease
}

/// The early-free release: holder "", `leaseDurationSeconds: 1`, `released-by: <us>`, transitions kept.
pub(crate) fn release(cached: &Lease, cfg: &ElectionConfig) -> Lease {
    let mut lease = cached.clone();
    let me = cfg.identity.holder();
    stamp(&mut lease.metadata, cfg, Some(&me));
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(String::new());
    spec.acquire_time = None;
    spec.renew_time = Some(now(cfg));
    spec.lease_duration_seconds = Some(1);
    lease
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasehold_core::Identity;

    fn cfg() -> ElectionConfig {
        ElectionConfig::new("ns", "l", Identity::new("node", "1").unwrap()).annotation("a.b/c", "d")
    }

    fn observed() -> Lease {
        let mut l = acquire(None, &cfg(), 4);
        l.metadata.uid = Some("u".into());
        l.metadata.resource_version = Some("10".into());
        l.spec.as_mut().unwrap().holder_identity = Some("other_2".into());
        l
    }

    #[cfg(feature = "test-hooks")]
    #[test]
    fn the_test_only_wall_clock_offset_shifts_the_written_times() {
        let shifted = cfg().wall_clock_offset_for_test(jiff::SignedDuration::from_hours(-1));
        let before = jiff::Timestamp::now();
        let l = acquire(None, &shifted, 1);
        let written = l.spec.as_ref().unwrap().renew_time.as_ref().unwrap().0;
        let lag = before.duration_since(written);
        assert!(
            lag >= jiff::SignedDuration::from_mins(59),
            "renewTime should be an hour behind, is {lag:?}"
        );
        assert_eq!(
            l.spec.as_ref().unwrap().acquire_time.as_ref().unwrap().0,
            written
        );
    }

    #[test]
    fn acquire_keeps_uid_and_version_and_bumps_the_epoch() {
        let l = acquire(Some(&observed()), &cfg(), 5);
        assert_eq!(version(&l), (Some("u"), Some("10")));
        assert_eq!(holder(&l), Some("node_1"));
        assert_eq!(transitions(&l), 5);
        assert_eq!(duration(&l), Some(std::time::Duration::from_secs(15)));
        assert_eq!(
            l.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
            "leasehold"
        );
        assert_eq!(l.metadata.annotations.unwrap()["a.b/c"], "d");
    }

    #[test]
    fn renew_and_release_keep_uid_version_and_epoch() {
        let base = acquire(Some(&observed()), &cfg(), 5);
        let ours = acquire_time(&base).cloned();
        let r = renew(&base, &cfg(), 5, ours.as_ref());
        assert_eq!(version(&r), (Some("u"), Some("10")));
        assert_eq!(transitions(&r), 5);
        assert_eq!(acquire_time(&r), ours.as_ref());
        let rel = release(&base, &cfg());
        assert_eq!(version(&rel), (Some("u"), Some("10")));
        // A third party's edit of the epoch is undone by the holder's renew.
        let mut edited = base.clone();
        edited.spec.as_mut().unwrap().lease_transitions = Some(1);
        edited.spec.as_mut().unwrap().acquire_time = None;
        let r = renew(&edited, &cfg(), 5, ours.as_ref());
        assert_eq!(transitions(&r), 5);
        assert_eq!(
            acquire_time(&r),
            ours.as_ref(),
            "and so is a removed acquireTime"
        );
        // A create carries neither.
        assert_eq!(version(&acquire(None, &cfg(), 1)), (None, None));
    }

    #[test]
    fn release_is_recognised_only_for_the_named_holder() {
        let r = release(&acquire(Some(&observed()), &cfg(), 5), &cfg());
        assert!(is_release_by(&r, "node_1"));
        assert!(!is_release_by(&r, "node_2"));
        assert_eq!(transitions(&r), 5);
        // A later acquire removes the release marker again.
        let a = acquire(Some(&r), &cfg(), 6);
        assert_eq!(released_by(&a), None);
        // A blank written by someone else frees nothing.
        let mut blank = observed();
        blank.spec.as_mut().unwrap().holder_identity = Some(String::new());
        assert!(!is_release_by(&blank, "other_2"));
    }

    #[test]
    fn only_the_election_record_makes_a_version_different() {
        let a = observed();
        let mut b = a.clone();
        b.metadata.resource_version = Some("11".into());
        b.metadata.labels = Some([("gitops".to_owned(), "1".to_owned())].into());
        b.metadata.annotations = Some([("x".to_owned(), "y".to_owned())].into());
        assert!(
            same_record(&a, &b),
            "labels, annotations and resourceVersion are not the record"
        );
        let mut c = a.clone();
        c.spec.as_mut().unwrap().lease_duration_seconds = Some(3600);
        assert!(!same_record(&a, &c));
        let mut d = a.clone();
        d.metadata.uid = Some("other".into());
        assert!(!same_record(&a, &d), "a re-created Lease is a new record");
    }

    #[test]
    fn garbage_fields_read_safely() {
        let mut l = observed();
        let s = l.spec.as_mut().unwrap();
        s.lease_transitions = Some(-3);
        s.lease_duration_seconds = Some(-1);
        assert_eq!(transitions(&l), 0);
        assert_eq!(duration(&l), None);
        l.spec = None;
        assert_eq!(holder(&l), None);
        assert_eq!(duration(&l), None);
    }
}
