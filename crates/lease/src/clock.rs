//! The clock that leadership deadlines are measured on: CLOCK_BOOTTIME, which keeps counting through
//! suspend and VM pauses.
//!
//! `Instant` (CLOCK_MONOTONIC on Linux) stops while a machine is suspended. A leader whose VM was paused for a
//! minute would wake up believing its last renew was a moment ago, while every follower's clock ran on and one
//! of them has taken over. Measuring the deadline on CLOCK_BOOTTIME makes the leader see the pause.
//!
//! Observations (when a follower last saw the Lease change) stay on the monotonic clock: a follower that was
//! paused thinks *less* time has passed and so waits longer, which is the safe direction.

use std::time::Duration;

/// A point on the deadline clock, as time since an arbitrary origin.
pub(crate) type Tick = Duration;

/// Source of [`Tick`]s.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    /// CLOCK_BOOTTIME (Linux), or the monotonic clock where that does not exist.
    Boot,
    /// tokio's clock, so that tests and simulations can pause and advance time. It stops during suspend, so
    /// only simulations inject it (see [`crate::Elector::simulated`]).
    Tokio(tokio::time::Instant),
}

impl Clock {
    /// The current time on this clock.
    pub(crate) fn now(self) -> Tick {
        match self {
            Self::Boot => boot_now(),
            Self::Tokio(origin) => tokio::time::Instant::now() - origin,
        }
    }

    /// A tokio clock starting now, for paused-time tests and simulations.
    pub(crate) fn tokio() -> Self {
        Self::Tokio(tokio::time::Instant::now())
    }
}

/// The time since boot on CLOCK_BOOTTIME (Linux), or on the monotonic clock where that does not exist: the clock
/// that [`crate::Leadership::deadline_since_boot`] is read on.
///
/// Public so that a caller who hands a leadership deadline to another process (the agent's watchdog shim) reads
/// the same clock as the elector, from the one place that reads it.
#[must_use]
pub fn since_boot() -> Duration {
    boot_now()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn boot_now() -> Tick {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn boot_now() -> Tick {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_moves_forward() {
        let a = Clock::Boot.now();
        std::thread::sleep(Duration::from_millis(2));
        let b = Clock::Boot.now();
        assert!(b > a);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = Clock::tokio();
        assert_eq!(c.now(), Duration::ZERO);
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(c.now(), Duration::from_secs(3));
    }
}
