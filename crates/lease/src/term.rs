//! When is the Lease free? Observations on the local monotonic clock, never the remote `renewTime`.
//!
//! Each time we see a new version of the Lease we note the local time. The holder's term ends at the last
//! observation + max(the record's `leaseDurationSeconds`, our own LD). Clock skew between nodes therefore
//! cannot matter, and nothing a third party does can shorten a term: the end only ever moves later, except
//! when the holder itself writes the early-free release (see [`crate::record::is_release_by`]).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use tokio::time::Instant;

use crate::{config::Sighting, record};

/// The longest term a record's `leaseDurationSeconds` can impose on us: the larger of 10 × our LD and one
/// hour. Longer values (a foreign write of 3600 or of `i32::MAX`) are cut to this, so that one bad write cannot
/// stop failover for days; shorter ones are honoured, since a third party must never shorten a term.
pub(crate) fn imposed_cap(our_ld: Duration) -> Duration {
    our_ld.saturating_mul(10).max(Duration::from_secs(3600))
}

/// What we know about the holder's term.
#[derive(Debug, Clone)]
pub(crate) struct Term {
    our_ld: Duration,
    /// The earliest moment anyone but the holder may write.
    busy_until: Instant,
    /// The last non-empty holder observed: whose release we would accept.
    last_holder: Option<String>,
    /// The highest `leaseTransitions` observed, kept across deletion so epochs never repeat.
    last_epoch: Option<u64>,
    /// The holder in the latest observation (`None`: blank, absent or never seen).
    holder: Option<String>,
    /// Whether the latest version seen is still believed to exist: a deletion counts once.
    present: bool,
    /// What the caller's process saw before the election started ([`Sighting`]); consumed by the first
    /// observation, whatever it shows.
    seed: Option<Sighting>,
}

impl Term {
    /// A term that knows nothing yet, for a process that started at `start` (tests; elections start from their
    /// configured epoch floor).
    #[cfg(test)]
    pub(crate) fn new(our_ld: Duration, start: Instant) -> Self {
        Self::with_epoch_floor(our_ld, 0, start)
    }

    /// A term that already knows epochs up to `floor` were used (0: nothing known), for a process that started
    /// at `start`.
    ///
    /// A process knows nothing of the terms granted before it started: a Lease it finds absent may have been
    /// wiped, or restored from a backup, under a leader that still renews against what it believes. Such a
    /// leader stops within its RD (< LD) of its last renew, so the Lease counts as busy until `start` + our LD,
    /// whatever the first look shows. That costs one LD on the very first election of a new Lease, and it is
    /// what keeps a process started after a wipe from leading beside the one the wipe forgot.
    pub(crate) fn with_epoch_floor(our_ld: Duration, floor: u64, start: Instant) -> Self {
        Self {
            our_ld,
            busy_until: start + our_ld,
            last_holder: None,
            last_epoch: (floor > 0).then_some(floor),
            holder: None,
            present: false,
            seed: None,
        }
    }

    /// Adds what the caller's process already saw of the Lease (see [`Sighting`]): used only if the first version
    /// observed carries the same election record.
    pub(crate) fn seeded(mut self, seed: Option<Sighting>) -> Self {
        self.seed = seed;
        self
    }

    /// When the first observation, `lease` seen at `now`, was first seen by this process: the caller's sighting
    /// if it saw this very record (then the start rule runs from that sighting too, which came after the process
    /// started, and the holder it saw before is the one whose release we trust), else `now`. Consumes the seed.
    fn first_seen(&mut self, lease: &Lease, now: Instant) -> Instant {
        let Some(seed) = self.seed.take() else {
            return now;
        };
        if !record::same_record(&seed.lease, lease) {
            return now;
        }
        let at = seed.at.min(now);
        // Nothing else has moved `busy_until` yet (any earlier observation consumed the seed): it is the start rule.
        self.busy_until = self.busy_until.min(at + self.our_ld);
        if self.last_holder.is_none() {
            self.last_holder = seed.last_holder;
        }
        at
    }

    /// Records a new version of the Lease, seen at `now`.
    pub(crate) fn observe(&mut self, lease: &Lease, now: Instant) {
        let now = self.first_seen(lease, now);
        let released = self
            .last_holder
            .as_deref()
            .is_some_and(|last| record::is_release_by(lease, last));
        let d = record::duration(lease)
            .unwrap_or_default()
            .min(imposed_cap(self.our_ld))
            .max(self.our_ld);
        self.present = true;
        self.busy_until = if released {
            now
        } else {
            self.busy_until.max(now + d)
        };
        self.holder = record::holder(lease).map(str::to_owned);
        if let Some(h) = &self.holder {
            self.last_holder = Some(h.clone());
        }
        let epoch = record::transitions(lease);
        self.last_epoch = Some(self.last_epoch.map_or(epoch, |e| e.max(epoch)));
    }

    /// Records that the Lease is confirmed absent at `now`. The term never ends early: a deleted Lease's holder
    /// may still be acting. And since our last observation may itself be stale (a watch that missed renewals, a
    /// server whose state was wiped), the first sight of the deletion counts as a sighting: the Lease stays busy
    /// for our own LD from `now`.
    /// A long duration that a record imposed is not imposed a second time: it was honoured from its sighting.
    /// Seeing the absence again changes nothing.
    pub(crate) fn observe_absent(&mut self, now: Instant) {
        self.seed = None;
        if std::mem::take(&mut self.present) && self.last_holder.is_some() {
            self.keep_busy(now + self.our_ld);
        }
        self.holder = None;
    }

    /// Records that the Lease is confirmed absent at `now` after the shared watch reported a deletion of a version
    /// we never observed (the watch keeps only the latest news, so a create and a delete can pass while we wait on
    /// a request). Its holder may still be acting, so the deletion costs our LD from `now`, as a deletion we saw.
    pub(crate) fn observe_missed_deletion(&mut self, now: Instant) {
        self.seed = None;
        self.keep_busy(now + self.our_ld);
    }

    /// Keeps the Lease busy until at least `until`. Never shortens the term.
    fn keep_busy(&mut self, until: Instant) {
        self.busy_until = self.busy_until.max(until);
    }

    /// The holder in the latest observation.
    pub(crate) fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    /// The earliest moment a takeover may start (before the rank delay). In the past when free.
    pub(crate) fn free_at(&self) -> Instant {
        self.busy_until
    }

    /// The epoch an acquisition writes: one more than anything seen, on this object or before its deletion.
    pub(crate) fn next_epoch(&self, observed: Option<&Lease>) -> u64 {
        let on_object = observed.map_or(0, record::transitions);
        on_object
            .max(self.last_epoch.unwrap_or(0))
            .saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::coordination::v1::LeaseSpec,
        apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    };

    use super::*;

    const LD: Duration = Duration::from_secs(2);

    fn lease(holder: &str, ld: Option<i32>, transitions: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: ld,
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    fn released(by: &str, transitions: i32) -> Lease {
        let mut l = lease("", Some(1), transitions);
        l.metadata.annotations =
            Some([(crate::RELEASED_BY_ANNOTATION.to_owned(), by.to_owned())].into());
        l
    }

    #[tokio::test(start_paused = true)]
    async fn term_runs_from_local_observation_not_renew_time() {
        let mut t = Term::new(LD, Instant::now());
        let t0 = Instant::now();
        let mut l = lease("a_1", Some(2), 1);
        // renewTime an hour in the past or the future changes nothing.
        for offset in [-3600, 3600] {
            let ts = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(offset))
                .unwrap();
            l.spec.as_mut().unwrap().renew_time = Some(MicroTime(ts));
            t.observe(&l, t0);
            assert_eq!(t.free_at(), t0 + LD);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn longer_of_record_and_own_duration_wins() {
        let mut t = Term::new(LD, Instant::now());
        let t0 = Instant::now();
        t.observe(&lease("a_1", Some(10), 1), t0);
        assert_eq!(t.free_at(), t0 + Duration::from_secs(10));
        let mut t = Term::new(LD, Instant::now());
        t.observe(&lease("a_1", None, 1), t0);
        assert_eq!(t.free_at(), t0 + LD);
        let mut t = Term::new(LD, Instant::now());
        t.observe(&lease("a_1", Some(1), 1), t0);
        assert_eq!(t.free_at(), t0 + LD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_record_duration_is_cut_to_the_cap() {
        let t0 = Instant::now();
        for huge in [3600 * 24, i32::MAX] {
            let mut t = Term::new(LD, Instant::now());
            t.observe(&lease("a_1", Some(huge), 1), t0);
            assert_eq!(t.free_at(), t0 + Duration::from_secs(3600));
        }
        let long = Duration::from_secs(600);
        let mut t = Term::new(long, Instant::now());
        t.observe(&lease("a_1", Some(i32::MAX), 1), t0);
        assert_eq!(
            t.free_at(),
            t0 + long * 10,
            "10 × LD when that is longer than an hour"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn third_parties_cannot_shorten_a_term() {
        let mut t = Term::new(LD, Instant::now());
        let t0 = Instant::now();
        t.observe(&lease("a_1", Some(10), 1), t0);
        let t1 = t0 + Duration::from_secs(1);
        // A foreign edit lowering the duration.
        t.observe(&lease("a_1", Some(1), 1), t1);
        assert_eq!(t.free_at(), t0 + Duration::from_secs(10));
        // Blanked by someone else, without the release marker or naming another holder.
        t.observe(&lease("", Some(1), 1), t1);
        assert_eq!(t.free_at(), t0 + Duration::from_secs(10));
        t.observe(&released("b_2", 1), t1);
        assert_eq!(t.free_at(), t0 + Duration::from_secs(10));
        // Deleted: the holder may still be acting, and our last sight of it may be stale, so the deletion
        // counts as a sighting: busy for another term (of the last version seen: ours, LD) from the deletion.
        let t2 = t0 + Duration::from_secs(9);
        t.observe_absent(t2);
        assert_eq!(t.free_at(), t2 + LD);
        assert_eq!(t.holder(), None);
        // Seeing the absence again does not push it further.
        t.observe_absent(t2 + Duration::from_secs(5));
        assert_eq!(t.free_at(), t2 + LD);
        // Keeping it busy longer works; shorter does not.
        let t3 = t2 + Duration::from_secs(6);
        t.keep_busy(t3 + LD);
        assert_eq!(t.free_at(), t3 + LD);
        t.keep_busy(t3);
        assert_eq!(t.free_at(), t3 + LD);
    }

    #[tokio::test(start_paused = true)]
    async fn holders_own_release_frees_at_once() {
        let mut t = Term::new(LD, Instant::now());
        let t0 = Instant::now();
        t.observe(&lease("a_1", Some(10), 3), t0);
        let t1 = t0 + Duration::from_millis(100);
        t.observe(&released("a_1", 3), t1);
        assert_eq!(t.free_at(), t1);
    }

    #[tokio::test(start_paused = true)]
    async fn release_seen_without_its_holder_is_not_trusted() {
        let mut t = Term::new(LD, Instant::now());
        let t0 = Instant::now();
        t.observe(&released("a_1", 3), t0);
        assert_eq!(t.free_at(), t0 + LD);
    }

    #[tokio::test(start_paused = true)]
    async fn epochs_continue_across_deletion() {
        let mut t = Term::new(LD, Instant::now());
        let t0 = Instant::now();
        assert_eq!(t.next_epoch(None), 1);
        t.observe(&lease("a_1", Some(2), 7), t0);
        assert_eq!(t.next_epoch(Some(&lease("a_1", Some(2), 7))), 8);
        t.observe_absent(t0);
        assert_eq!(t.next_epoch(None), 8);
        // A re-created object with a lower count does not pull the epoch back.
        assert_eq!(t.next_epoch(Some(&lease("x_1", Some(2), 2))), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_process_waits_one_lease_duration_from_its_start() {
        let start = Instant::now();
        let mut t = Term::new(LD, start);
        assert_eq!(
            t.free_at(),
            start + LD,
            "nothing known of the terms granted before the start"
        );
        t.observe_absent(start + Duration::from_millis(10));
        assert_eq!(
            t.free_at(),
            start + LD,
            "an absent Lease does not end that wait: a wipe may have forgotten a live leader"
        );
        let mut t = Term::new(LD, start);
        t.observe(&released("a_1", 3), start);
        assert_eq!(
            t.free_at(),
            start + LD,
            "nor does a release by a holder never seen"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deletion_after_an_imposed_term_costs_one_lease_duration_not_another_imposed_term() {
        let t0 = Instant::now();
        let mut t = Term::new(LD, t0);
        t.observe(&lease("a_1", Some(3600), 1), t0);
        assert_eq!(t.free_at(), t0 + Duration::from_secs(3600));
        let later = t0 + Duration::from_secs(4000);
        t.observe_absent(later);
        assert_eq!(t.free_at(), later + LD);
        let mut t = Term::new(LD, t0);
        t.observe(&lease("a_1", Some(3600), 1), t0);
        t.observe_absent(t0 + LD);
        assert_eq!(
            t.free_at(),
            t0 + Duration::from_secs(3600),
            "a deletion never shortens the imposed term"
        );
    }

    fn sighting(lease: &Lease, at: Instant, last_holder: Option<&str>) -> Sighting {
        Sighting {
            lease: lease.clone(),
            at,
            last_holder: last_holder.map(str::to_owned),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_election_counts_a_record_its_process_saw_earlier_from_that_sighting() {
        let seen_at = Instant::now();
        let l = lease("a_1", Some(2), 4);
        tokio::time::advance(Duration::from_secs(5)).await;
        let start = Instant::now();
        let mut t =
            Term::with_epoch_floor(LD, 4, start).seeded(Some(sighting(&l, seen_at, Some("a_1"))));
        t.observe(&l, start);
        assert_eq!(
            t.free_at(),
            seen_at + LD,
            "the term ran out LD after the process first saw the record, not LD after the late spawn"
        );
        assert!(t.free_at() < start, "so it is free at once");
        // Without the sighting, the same first look waits a whole term from the spawn.
        let mut plain = Term::with_epoch_floor(LD, 4, start);
        plain.observe(&l, start);
        assert_eq!(plain.free_at(), start + LD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sighting_of_another_record_changes_nothing() {
        let seen_at = Instant::now();
        let old = lease("a_1", Some(2), 4);
        tokio::time::advance(Duration::from_secs(5)).await;
        let start = Instant::now();
        // The holder renewed (or someone acquired) since the caller looked: a new record, seen now.
        let mut renewed = lease("a_1", Some(2), 4);
        renewed.spec.as_mut().unwrap().renew_time = Some(MicroTime(jiff::Timestamp::now()));
        for first in [renewed, lease("b_2", Some(2), 5)] {
            let mut t = Term::with_epoch_floor(LD, 4, start).seeded(Some(sighting(
                &old,
                seen_at,
                Some("a_1"),
            )));
            t.observe(&first, start);
            assert_eq!(t.free_at(), start + LD);
        }
        // An absent Lease drops the sighting: the start rule stands, and a later version is seen when it is seen.
        let mut t =
            Term::with_epoch_floor(LD, 4, start).seeded(Some(sighting(&old, seen_at, Some("a_1"))));
        t.observe_absent(start);
        t.observe(&old, start);
        assert_eq!(t.free_at(), start + LD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sighting_never_moves_the_term_before_its_own_instant_or_into_the_future() {
        let start = Instant::now();
        let l = lease("a_1", Some(2), 1);
        // A sighting stamped after the observation counts as the observation itself.
        let mut t = Term::with_epoch_floor(LD, 0, start).seeded(Some(sighting(
            &l,
            start + Duration::from_secs(60),
            None,
        )));
        t.observe(&l, start);
        assert_eq!(t.free_at(), start + LD);
        // A longer record duration still runs from the sighting.
        let long = lease("a_1", Some(10), 1);
        let seen_at = Instant::now();
        tokio::time::advance(Duration::from_secs(3)).await;
        let mut t = Term::with_epoch_floor(LD, 0, Instant::now())
            .seeded(Some(sighting(&long, seen_at, None)));
        t.observe(&long, Instant::now());
        assert_eq!(t.free_at(), seen_at + Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_the_process_saw_after_its_holder_is_trusted_by_a_late_election() {
        let seen_at = Instant::now();
        tokio::time::advance(Duration::from_millis(300)).await;
        let start = Instant::now();
        let rel = released("a_1", 3);
        let mut t =
            Term::with_epoch_floor(LD, 3, start).seeded(Some(sighting(&rel, seen_at, Some("a_1"))));
        t.observe(&rel, start);
        assert!(t.free_at() <= start, "free at once");
        // Not when the process never saw that holder: a blank naming someone is not proof.
        let mut t =
            Term::with_epoch_floor(LD, 3, start).seeded(Some(sighting(&rel, seen_at, None)));
        t.observe(&rel, start);
        assert_eq!(t.free_at(), seen_at + LD);
        let mut t =
            Term::with_epoch_floor(LD, 3, start).seeded(Some(sighting(&rel, seen_at, Some("b_2"))));
        t.observe(&rel, start);
        assert_eq!(t.free_at(), seen_at + LD);
    }

    #[tokio::test(start_paused = true)]
    async fn an_epoch_floor_keeps_a_late_election_above_epochs_used_before() {
        let t = Term::with_epoch_floor(LD, 7, Instant::now());
        assert_eq!(
            t.next_epoch(None),
            8,
            "a re-created Lease continues above the floor"
        );
        let l = lease("a_1", Some(15), 2);
        assert_eq!(
            t.next_epoch(Some(&l)),
            8,
            "a lower epoch on the object does not win"
        );
    }
}
