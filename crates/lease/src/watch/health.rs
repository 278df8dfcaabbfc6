//! How the shared watch is doing, so that electors can fall back to polling when it cannot work.
//!
//! Many existing Roles for client-go's leader election grant only get, create and update on Leases. Under such
//! a Role the watch's list is refused with 403 for good, and an elector that only watched would never see the
//! Lease. The hub therefore publishes whether its list or watch was refused, and since when it has been failing
//! at all; each elector decides from that (and its own LD) whether to poll with GET instead, as client-go does.

use std::time::Duration;

use kube::runtime::watcher;
use tokio::time::Instant;

/// While the list is refused with 403, the hub tries again this often (with jitter), not on the watcher's
/// 30-second backoff: under a get/create/update-only Role every agent of a large cluster would otherwise
/// send a refused list every 30 s, for nothing.
pub(crate) const FORBIDDEN_RETRY: Duration = Duration::from_secs(300);

/// The shared watch's health, as its subscribers see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Health {
    /// The list or watch was refused with 403 Forbidden: our credentials lack list or watch on Leases.
    pub(crate) forbidden: bool,
    /// Since when the watch has been failing without a successful list or event in between; `None` while it
    /// works.
    pub(crate) failing_since: Option<Instant>,
    /// The watch ended and a new list is under way (or due): electors are blind meanwhile, and what they know
    /// may be stale in a way they cannot see (a restored backup erases a live leader's renewals).
    pub(crate) relisting: bool,
}

impl Health {
    /// The health after a failure at `now`.
    pub(crate) fn failed(self, err: &watcher::Error, now: Instant) -> Self {
        Self {
            forbidden: self.forbidden || is_watch_forbidden(err),
            failing_since: Some(self.failing_since.unwrap_or(now)),
            relisting: self.relisting,
        }
    }

    /// Whether an elector with lease duration `ld` should poll instead of waiting for the watch: the list is
    /// forbidden, or the watch has been failing for longer than `ld`. A relist that waits out its backoff does
    /// not count: a poller cannot see a Lease created and erased (by a wipe or a restore) between two reads, and
    /// while the watch relists an elector keeps such reads from starting a takeover of an absent Lease.
    pub(crate) fn should_poll(&self, ld: Duration, now: Instant) -> bool {
        self.forbidden || self.poll_from(ld).is_some_and(|t| now >= t)
    }

    /// When an elector with lease duration `ld` should start polling if nothing changes, if ever.
    pub(crate) fn poll_from(&self, ld: Duration) -> Option<Instant> {
        if self.forbidden {
            return None;
        }
        self.failing_since.map(|t| t + ld)
    }
}

/// Whether a kube-runtime watcher's error is a 403 on its list or watch: the credentials lack `list` or `watch`
/// on the resource, which retrying will not change until someone grants them. Public so that other watches of a
/// process (the agent's spread-mode watch) classify refusals as the election's does.
pub fn is_watch_forbidden(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 403,
        watcher::Error::WatchError(s) => s.code == 403,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    #[test]
    fn only_a_403_is_forbidden() {
        let status = |code: u16| Status::failure("x", "y").with_code(code).boxed();
        let list = |code| watcher::Error::InitialListFailed(kube::Error::Api(status(code)));
        assert!(is_watch_forbidden(&list(403)));
        assert!(is_watch_forbidden(&watcher::Error::WatchError(status(403))));
        assert!(!is_watch_forbidden(&list(500)));
        assert!(!is_watch_forbidden(&watcher::Error::WatchError(status(
            410
        ))));
    }

    #[tokio::test(start_paused = true)]
    async fn forbidden_polls_at_once_and_other_failures_after_ld() {
        let now = Instant::now();
        let ld = Duration::from_secs(15);
        let denied = watcher::Error::InitialListFailed(kube::Error::Api(
            Status::failure("leases is forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        ));
        let h = Health::default().failed(&denied, now);
        assert!(h.forbidden && h.should_poll(ld, now));
        assert_eq!(h.poll_from(ld), None);
        let down = watcher::Error::InitialListFailed(kube::Error::Api(
            Status::failure("boom", "InternalError")
                .with_code(500)
                .boxed(),
        ));
        let h = Health::default().failed(&down, now);
        assert!(!h.forbidden && !h.should_poll(ld, now));
        assert_eq!(h.poll_from(ld), Some(now + ld));
        let later = now + ld;
        let h = h.failed(&down, later);
        assert_eq!(
            h.failing_since,
            Some(now),
            "the outage counts from its first failure"
        );
        assert!(h.should_poll(ld, later));
        assert!(!Health::default().should_poll(ld, later));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_relist_does_not_poll() {
        let now = Instant::now();
        let ld = Duration::from_secs(3);
        let h = Health {
            relisting: true,
            ..Health::default()
        };
        assert!(!h.should_poll(ld, now + ld * 10));
        assert_eq!(h.poll_from(ld), None);
    }
}
