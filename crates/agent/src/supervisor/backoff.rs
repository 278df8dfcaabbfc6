//! Restart delays for a task that keeps exiting: capped exponential backoff with jitter.

use std::time::Duration;

/// How long to wait before restarting a task that exited by itself.
///
/// The n-th consecutive restart waits `min(initial · 2ⁿ, max)`, less a random part of up to half of it, so tasks
/// that crash together (a shared database is down) don't come back in lockstep. A run that lasted `reset_after` or
/// longer counts as healthy and starts the sequence again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBackoff {
    /// The first delay. Default 1 s: a crash loop costs at most one start a second.
    pub initial: Duration,
    /// The cap. Default 30 s: a collector that recovers is back within half a minute.
    pub max: Duration,
    /// A run at least this long resets the delay to `initial`. Default 60 s.
    pub reset_after: Duration,
}

impl Default for RestartBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
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

    /// [`Backoff::next`] with the random part given: `jitter` in `[0, 1)` takes off that fraction of half the delay.
    fn next_with_jitter(&mut self, ran_for: Duration, jitter: f64) -> Duration {
        if ran_for >= self.config.reset_after {
            self.attempt = 0;
        }
        let factor = 2_u32.saturating_pow(self.attempt.min(31));
        let full = self
            .config
            .initial
            .saturating_mul(factor)
            .min(self.config.max);
        self.attempt = self.attempt.saturating_add(1);
        full.saturating_sub(full.mul_f64(jitter.clamp(0.0, 1.0) / 2.0))
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
    fn jitter_takes_off_at_most_half() {
        let mut backoff = Backoff::new(config());
        assert_eq!(
            backoff.next_with_jitter(Duration::ZERO, 1.0),
            Duration::from_millis(500)
        );
        for _ in 0..5 {
            backoff.next_with_jitter(Duration::ZERO, 0.0);
        }
        for _ in 0..100 {
            let delay = backoff.next(Duration::ZERO);
            assert!(
                delay >= Duration::from_secs(15) && delay <= Duration::from_secs(30),
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
