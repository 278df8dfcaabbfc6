//! Which versions of the Lease to believe: resourceVersions are opaque, and only stale watch events are dropped.
//!
//! Kubernetes' API conventions make resourceVersion opaque, and an etcd restore proves why: the Lease keeps its
//! uid while its resourceVersion goes back. So an answer to a GET, and the answer to our own write, is always
//! the truth, even when its resourceVersion looks older. Ordering by resourceVersion is used for one thing only:
//! a watch event that is not newer than what this process already saw from the same watch (same list), from a
//! GET or from its own write is stale, because the watch lags behind (a write's answer arrives before its event).

use k8s_openapi::api::coordination::v1::Lease;

use crate::record;

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The shared watch, from the list with this number or the watch that followed it.
    Watch(u64),
    /// A GET: the truth at that moment.
    Get,
    /// The answer to our own write: the truth at that moment.
    Write,
}

/// The newest resourceVersion believed, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Floor {
    uid: Option<String>,
    rv: u64,
    /// `Some(list)` when it came from a watch: it only orders later events of the same list.
    list: Option<u64>,
}

impl Floor {
    /// The floor after believing `lease` from `source`; `None` when its resourceVersion is not a number (then
    /// nothing can be ordered by it).
    pub(crate) fn after(lease: &Lease, source: Source) -> Option<Self> {
        let (uid, rv) = record::version(lease);
        Some(Self {
            uid: uid.map(str::to_owned),
            rv: rv?.parse().ok()?,
            list: match source {
                Source::Watch(list) => Some(list),
                Source::Get | Source::Write => None,
            },
        })
    }

    /// Whether a version from `source` is stale: a watch event of the same object that is not newer than this
    /// floor, where the floor came from a GET, a write, or the same list. Answers to GETs and writes are never
    /// stale, and neither is anything from a newer list (which may follow a restore).
    pub(crate) fn is_stale(&self, lease: &Lease, source: Source) -> bool {
        let Source::Watch(list) = source else {
            return false;
        };
        if self.list.is_some_and(|l| l != list) {
            return false;
        }
        let (uid, rv) = record::version(lease);
        uid == self.uid.as_deref()
            && rv
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|rv| rv <= self.rv)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn v(uid: &str, rv: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            spec: None,
        }
    }

    fn floor(uid: &str, rv: &str, source: Source) -> Floor {
        Floor::after(&v(uid, rv), source).unwrap()
    }

    #[test]
    fn a_lagging_watch_event_is_stale_after_our_write_or_a_get() {
        for source in [Source::Write, Source::Get] {
            let f = floor("a", "10", source);
            assert!(f.is_stale(&v("a", "9"), Source::Watch(1)));
            assert!(f.is_stale(&v("a", "10"), Source::Watch(3)));
            assert!(!f.is_stale(&v("a", "11"), Source::Watch(1)));
        }
    }

    #[test]
    fn gets_and_writes_are_the_truth_even_when_their_version_looks_older() {
        let f = floor("a", "2159", Source::Write);
        // An etcd restore: same uid, resourceVersion rewound.
        assert!(!f.is_stale(&v("a", "2143"), Source::Get));
        assert!(!f.is_stale(&v("a", "2143"), Source::Write));
    }

    #[test]
    fn a_new_list_is_not_ordered_against_an_older_one() {
        let f = floor("a", "2159", Source::Watch(4));
        assert!(f.is_stale(&v("a", "2150"), Source::Watch(4)));
        assert!(
            !f.is_stale(&v("a", "2143"), Source::Watch(5)),
            "a relist after a restore is believed"
        );
    }

    #[test]
    fn another_object_or_an_opaque_version_is_never_stale() {
        let f = floor("a", "10", Source::Write);
        assert!(
            !f.is_stale(&v("b", "2"), Source::Watch(1)),
            "a re-created Lease"
        );
        assert!(!f.is_stale(&v("a", "x9"), Source::Watch(1)));
        assert_eq!(Floor::after(&v("a", "x9"), Source::Get), None);
    }
}
