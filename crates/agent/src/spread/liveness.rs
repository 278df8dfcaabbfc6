//! Which agents placement may count on, beyond their member Lease: an agent whose task Lease ran out without a
//! renewal has stopped renewing (crashed, frozen or cut off), whatever its slow member Lease still says, and so
//! has one that did not take a task placed on it. Until it renews something again, placement must not give it
//! tasks, or a crashed agent's tasks would be placed back on it until its member Lease expires (a minute at the
//! default timing) while the others take them over and hand them back in turn (issue 12).
//!
//! Everything is timed on our own monotonic clock, from the sightings [`super::Observed`] makes.

use std::collections::BTreeMap;
use std::time::Instant;

/// Renewals and lapses per holder identity.
#[derive(Default, Debug)]
pub struct Liveness {
    /// When a new election record naming each holder (on a member or a task Lease) was last seen.
    renewed: BTreeMap<String, Instant>,
    /// Holders that stopped renewing, and since when: the end of a term they let run out, or when they failed to
    /// take a task placed on them.
    lapsed: BTreeMap<String, Instant>,
    /// When each holder was seen renewing again after its last lapse: placement counts it live (for the settle
    /// time) from then, not from when its member Lease first appeared.
    back: BTreeMap<String, Instant>,
}

impl Liveness {
    /// A new election record naming `holder` was seen at `now`: it renews. Ends a lapse that began before.
    pub fn renewed(&mut self, holder: &str, now: Instant) {
        self.renewed.insert(holder.to_owned(), now);
        if self.lapsed.get(holder).is_some_and(|since| now > *since) {
            self.lapsed.remove(holder);
            self.back.insert(holder.to_owned(), now);
        }
    }

    /// A term of `holder` ended at `end` by our clock. Unless we saw it renew something after that, it has stopped
    /// renewing since `end`.
    pub fn term_ended(&mut self, holder: &str, end: Instant) {
        if self.renewed.get(holder).is_some_and(|r| *r > end) {
            return;
        }
        let since = self.lapsed.entry(holder.to_owned()).or_insert(end);
        *since = (*since).max(end);
    }

    /// Whether `holder` has stopped renewing, as far as we know.
    pub fn is_lapsed(&self, holder: &str) -> bool {
        self.lapsed.contains_key(holder)
    }

    /// When `holder` was last seen renewing again after a lapse, if it ever lapsed.
    pub fn back_since(&self, holder: &str) -> Option<Instant> {
        self.back.get(holder).copied()
    }

    /// Keeps only the holders `keep` names, so that agents long gone leave nothing behind.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.renewed.retain(|h, _| keep(h));
        self.lapsed.retain(|h, _| keep(h));
        self.back.retain(|h, _| keep(h));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_term_that_ends_without_a_renewal_lapses_its_holder_until_it_renews_again() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut l = Liveness::default();
        l.renewed("a", t0);
        l.renewed("a", t0 + s);
        // The term of the first renewal ends after the second: that is no lapse.
        l.term_ended("a", t0 + s / 2);
        assert!(!l.is_lapsed("a"));
        // A term that ends after every renewal seen is one.
        l.term_ended("a", t0 + s * 3);
        assert!(l.is_lapsed("a"));
        assert_eq!(l.back_since("a"), None);
        // Seen again the same instant proves nothing; later, it is back, and settles from then.
        l.renewed("a", t0 + s * 3);
        assert!(l.is_lapsed("a"));
        l.renewed("a", t0 + s * 4);
        assert!(!l.is_lapsed("a"));
        assert_eq!(l.back_since("a"), Some(t0 + s * 4));
    }

    #[test]
    fn a_lapse_outlives_the_evidence_and_forgetting_is_explicit() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.renewed("dead", t0);
        l.term_ended("dead", t0 + Duration::from_secs(3));
        // The task Lease that showed it is taken by someone else meanwhile: the lapse stays.
        l.renewed("other", t0 + Duration::from_secs(4));
        assert!(l.is_lapsed("dead"));
        assert!(!l.is_lapsed("other"));
        l.retain(|h| h == "other");
        assert!(!l.is_lapsed("dead"));
    }
}
