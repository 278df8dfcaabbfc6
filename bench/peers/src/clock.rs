//! CLOCK_MONOTONIC timestamps in nanoseconds: one clock shared by every process on the machine, so that the
//! driver can order events reported by different candidate processes.

use std::time::Instant;

/// Now, on CLOCK_MONOTONIC, in nanoseconds.
#[must_use]
pub fn mono_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Converts a `std::time::Instant` (CLOCK_MONOTONIC on Linux) of this process to [`mono_ns`] units.
#[must_use]
pub fn instant_ns(at: Instant) -> u64 {
    let (now_ns, now) = (mono_ns(), Instant::now());
    match now.checked_duration_since(at) {
        Some(ago) => now_ns.saturating_sub(u64::try_from(ago.as_nanos()).unwrap_or(u64::MAX)),
        None => now_ns + u64::try_from(at.duration_since(now).as_nanos()).unwrap_or(0),
    }
}
