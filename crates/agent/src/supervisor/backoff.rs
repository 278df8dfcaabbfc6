//! Restart delays for a task that keeps exiting: capped exponential backoff with jitter.

use std::time::Duration;

use leasehold_lease::core::backoff;

/// How long to wait before restarting a task that exited by itself.
///
/// The n-th consecutive restart waits `min(initial · 2ⁿ, max)`, plus a random part of up to a quarter of it
/// (`leasehold_core::backoff`, the curve the elector's retries follow too), so tasks that crash together (a shared
/// database is down) don't come back in lockstep, and a crash loop never starts a task more often than once per
/// `initial`. A run that lasted `reset_after` or longer counts as healthy and starts the sequence again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBackoff {
    /// The first delay. Default 1 s: a crash loop costs at most one start a second.
    pub initial: Duration,
    /// The cap before jitter. Default 24 s: with the jitter, a collector that recovers is back within 30 s.
    pub max: Duration,
    /// A run at least this long resets the delay to `initial`. Default 60 s.
    pub reset_after: Duration,
}

impl Default for RestartBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(24),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// The state of one task's backoff: how many quick exits in a row it has had.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    config: RestartBackoff,
    attempt: u32,
}

impl Backoff {
    pub(super) fn new(config: RestartBackoff) -> Self {
        Self { config, attempt: 0 }
    }

    /// The delay before the next start, after a run that lasted `ran_for`.
    pub(super) fn next(&mut self, ran_for: Duration) -> Duration {
        self.next_with_jitter(ran_for, rand::random::<f64>())
    }

    /// [`Backoff::next`] with the random part given: `jitter` in `[0, 1)` adds that fraction of a quarter of the
    /// delay.
    fn next_with_jitter(&mut self, ran_for: Duration, jitter: f64) -> Duration {
        if ran_for >= self.config.reset_after {
            self.attempt = 0;
        }
        let delay = backoff::delay(self.config.initial, self.config.max, self.attempt, jitter);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RestartBackoff {
        RestartBackoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(config());
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.next_with_jitter(Duration::ZERO, 0.0).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        let mut backoff = Backoff::new(config());
        assert_eq!(
            backoff.next_with_jitter(Duration::ZERO, 1.0),
            Duration::from_millis(1250)
        );
        for _ in 0..5 {
            backoff.next_with_jitter(Duration::ZERO, 0.0);
        }
        for _ in 0..100 {
            let delay = backoff.next(Duration::ZERO);
            assert!(
                delay >= Duration::from_secs(30) && delay <= Duration::from_millis(37_500),
                "{delay:?}"
            );
        }
    }

    #[test]
    fn a_long_run_resets_the_sequence() {
        let mut backoff = Backoff::new(config());
        for _ in 0..5 {
            backoff.next_with_jitter(Duration::ZERO, 0.0);
        }
        assert_eq!(
            backoff.next_with_jitter(Duration::from_secs(60), 0.0),
            Duration::from_secs(1)
        );
        assert_eq!(
            backoff.next_with_jitter(Duration::from_secs(59), 0.0),
            Duration::from_secs(2)
        );
    }
}
