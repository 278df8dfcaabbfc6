//! Capped exponential backoff with jitter, starting at RP: the curve is `leasehold_core::backoff::delay`, shared
//! with the agent's task restarts; this holds one request kind's failure count and the seeded random source.
//!
//! Starting at RP keeps every candidate at or below one request per RP even in an error storm; doubling
//! (capped at LD) makes a long outage cheap; jitter (up to +25 %) keeps a thousand candidates from retrying in
//! step. A 429's `Retry-After` is a floor on top of this.

use std::time::Duration;

use leasehold_core::backoff;

use crate::random::Random;

/// Backoff state for one kind of retried request.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    random: Random,
}

impl Backoff {
    pub(crate) fn new(base: Duration, cap: Duration, random: Random) -> Self {
        Self {
            base,
            cap: cap.max(base),
            failures: 0,
            random,
        }
    }

    /// The delay before the next try, and one more failure counted. Never less than `base`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = backoff::delay(self.base, self.cap, self.failures, self.random.unit());
        self.failures = self.failures.saturating_add(1);
        d
    }

    /// The delay before the next try after a 429 that asked for `retry_after`.
    pub(crate) fn next_delay_at_least(&mut self, retry_after: Option<Duration>) -> Duration {
        let d = self.next_delay();
        retry_after.map_or(d, |r| d.max(r))
    }

    /// Forgets past failures after a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// How many failures in a row.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_base_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5), Random::Os);
        let d: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        let bounds = [1, 2, 4, 5, 5, 5];
        for (d, lo) in d.iter().zip(bounds) {
            let lo = Duration::from_secs(lo);
            assert!(*d >= lo && *d <= lo.mul_f64(1.25), "{d:?} vs {lo:?}");
        }
        assert_eq!(b.failures(), 6);
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(1250));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Random::Os,
        );
        assert!(b.next_delay_at_least(Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert!(b.next_delay_at_least(None) >= Duration::from_millis(200));
    }
}
