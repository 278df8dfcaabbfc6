//! Time on `CLOCK_BOOTTIME`, the clock that kill deadlines are measured on.
//!
//! `std::time::Instant` reads `CLOCK_MONOTONIC`, which stops while the machine is suspended or the VM is paused. A
//! deadline measured on it would fire late by the length of the pause, while another node, whose clock kept running,
//! has already taken over. `CLOCK_BOOTTIME` keeps counting through both, which is why the lease renew deadline and the
//! watchdog's kill deadline both use it (docs/design.md §3).

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use rustix::time::Timespec;

/// A point in time on `CLOCK_BOOTTIME`, as nanoseconds since boot.
///
/// The value means the same thing in every process on the machine, so the agent can hand it to the watchdog shim as
/// a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BootInstant {
    nanos: u64,
}

impl BootInstant {
    /// The current time on `CLOCK_BOOTTIME`, read through the elector's clock (`leasehold_lease::since_boot`) so
    /// that the kill deadline and the leadership deadline are on one clock. A vDSO call: cheap enough for every
    /// heartbeat.
    #[must_use]
    pub fn now() -> Self {
        let since_boot = leasehold_lease::since_boot();
        Self::from_nanos(u64::try_from(since_boot.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The instant `nanos` nanoseconds after boot, as written in the shim's control protocol.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    /// Nanoseconds since boot, as written in the shim's control protocol.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// The time left until `self`, or zero when it has passed.
    #[must_use]
    pub fn remaining(self) -> Duration {
        self.saturating_duration_since(Self::now())
    }

    /// Converts to the `timespec` that `timerfd_settime` takes for an absolute `CLOCK_BOOTTIME` timer.
    pub(crate) fn to_timespec(self) -> Timespec {
        let nanos = self.nanos.max(1); // an all-zero it_value would disarm the timer instead of firing at once
        Timespec {
            tv_sec: i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX),
            tv_nsec: i64::try_from(nanos % 1_000_000_000).unwrap_or(0),
        }
    }
}

impl Add<Duration> for BootInstant {
    type Output = Self;

    /// Saturates at the end of time rather than overflowing: a deadline that far away is "never" anyway.
    fn add(self, rhs: Duration) -> Self {
        let rhs = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Self {
            nanos: self.nanos.saturating_add(rhs),
        }
    }
}

impl Sub<Duration> for BootInstant {
    type Output = Self;

    /// Saturates at boot.
    fn sub(self, rhs: Duration) -> Self {
        let rhs = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Self {
            nanos: self.nanos.saturating_sub(rhs),
        }
    }
}

impl fmt::Display for BootInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} after boot", Duration::from_nanos(self.nanos))
    }
}

/// When the watchdog must kill a task's whole process group if the agent has not moved the deadline on.
///
/// Election tasks get [`Deadline::At`], extended by the agent's heartbeats while leadership is valid. Tasks with
/// `election = false` run unconditionally and get [`Deadline::None`]; they are still killed when the agent goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// No kill deadline: the task runs until it is stopped or the agent goes away.
    None,
    /// Kill the group at this instant unless the deadline is moved on before then. Once it has passed it is final: see
    /// [`TaskHandle::set_deadline`](super::TaskHandle::set_deadline).
    At(BootInstant),
}

impl Deadline {
    /// A deadline `after` from now on `CLOCK_BOOTTIME`.
    #[must_use]
    pub fn after(after: Duration) -> Self {
        Self::At(BootInstant::now() + after)
    }

    /// Whether the deadline has passed at `now`. [`Deadline::None`] never passes.
    #[must_use]
    pub fn has_passed(self, now: BootInstant) -> bool {
        match self {
            Self::None => false,
            Self::At(at) => now >= at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_moves_forward_and_arithmetic_saturates() {
        let a = BootInstant::now();
        let b = BootInstant::now();
        assert!(b >= a);
        assert_eq!(
            BootInstant::from_nanos(5) - Duration::from_secs(1),
            BootInstant::from_nanos(0)
        );
        assert_eq!(
            BootInstant::from_nanos(u64::MAX - 1) + Duration::from_secs(1),
            BootInstant::from_nanos(u64::MAX)
        );
        assert_eq!(
            BootInstant::from_nanos(3_000_000_000)
                .saturating_duration_since(BootInstant::from_nanos(1_000_000_000)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn deadline_passes_only_at_or_after_its_instant() {
        let at = BootInstant::from_nanos(1_000);
        assert!(!Deadline::At(at).has_passed(BootInstant::from_nanos(999)));
        assert!(Deadline::At(at).has_passed(at));
        assert!(!Deadline::None.has_passed(BootInstant::from_nanos(u64::MAX)));
    }

    #[test]
    fn timespec_round_trips_and_never_disarms() {
        let ts = BootInstant::from_nanos(2_500_000_001).to_timespec();
        assert_eq!((ts.tv_sec, ts.tv_nsec), (2, 500_000_001));
        let zero = BootInstant::from_nanos(0).to_timespec();
        assert_eq!((zero.tv_sec, zero.tv_nsec), (0, 1));
    }
}
