//! The capped exponential backoff curve that every retry in leasehold follows: the elector's requests and the
//! supervisor's task restarts.
//!
//! The n-th consecutive failure waits `min(base · 2ⁿ, cap)`, lengthened by a random part of up to a quarter of it.
//! Jitter only ever lengthens a delay, so `base` is a true floor: a candidate never sends more than one request per
//! RP in an error storm, and a crash-looping task never starts more than once per initial delay. The random part
//! keeps a thousand candidates, or tasks that failed together, from retrying in step.

use std::time::Duration;

/// The largest share of a delay that jitter adds.
pub const MAX_JITTER: f64 = 0.25;

/// The delay before the next try after `failures` failures in a row (0 for the first retry).
///
/// `unit` is a random number in `[0, 1)` (values outside are clamped), supplied by the caller so that simulations
/// can seed it. The result is at least `base` and at most `max(base, cap) · (1 + MAX_JITTER)`.
#[must_use]
pub fn delay(base: Duration, cap: Duration, failures: u32, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.min(16));
    let jitter = 1.0 + MAX_JITTER * unit.clamp(0.0, 1.0);
    exp.min(cap.max(base)).mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_from_base_up_to_the_cap() {
        let delays: Vec<u64> = (0..8).map(|n| delay(S, 30 * S, n, 0.0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn jitter_only_lengthens() {
        assert_eq!(delay(S, 30 * S, 0, 0.0), S);
        assert_eq!(delay(S, 30 * S, 0, 1.0), S.mul_f64(1.25));
        assert_eq!(delay(S, 30 * S, 0, -3.0), S);
    }

    proptest! {
        /// Whatever the inputs, the delay lies between base and the jittered cap.
        #[test]
        fn stays_within_bounds(base in 1u64..10_000, cap in 0u64..100_000, failures: u32, unit in -1.0f64..2.0) {
            let (base, cap) = (Duration::from_millis(base), Duration::from_millis(cap));
            let d = delay(base, cap, failures, unit);
            prop_assert!(d >= base);
            prop_assert!(d <= cap.max(base).mul_f64(1.0 + MAX_JITTER));
        }
    }
}
