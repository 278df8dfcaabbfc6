//! The election timing rule, `LD > RD > 1.2·RP > 0`, in integer arithmetic.
//!
//! The gap between the renew deadline (RD) and the lease duration (LD) is the safety margin: a leader that cannot
//! renew stops acting at RD, before any follower may take over at LD. RD must exceed 1.2 × the retry period (RP) so
//! that a failed renew can be retried, with its jitter, before the deadline. Configuration loading and the elector
//! both check it; this is the one definition, so a timing one accepts the other cannot refuse.

use std::time::Duration;

/// The rule as written in error messages.
pub const RULE: &str = "LD > RD > 1.2·RP > 0";

/// Which part of [`RULE`] a set of timings breaks. The display text says why the part exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimingViolation {
    /// RP is zero.
    #[error("the retry period must be greater than 0")]
    RetryPeriodZero,
    /// RD ≤ 1.2·RP.
    #[error(
        "the renew deadline must be more than 1.2 × the retry period, so a failed renew can be retried before it"
    )]
    RenewDeadlineTooShort,
    /// LD ≤ RD.
    #[error(
        "the lease duration must be greater than the renew deadline, so a leader stops acting before others may \
         take its Lease"
    )]
    LeaseDurationTooShort,
}

/// Checks `LD > RD > 1.2·RP > 0`, reporting the first part broken (RP, then RD against RP, then LD against RD).
///
/// # Errors
/// The [`TimingViolation`] for the first inequality that does not hold.
pub fn check(ld: Duration, rd: Duration, rp: Duration) -> Result<(), TimingViolation> {
    if rp.is_zero() {
        return Err(TimingViolation::RetryPeriodZero);
    }
    // 1.2·RP < RD  ⇔  6·RP < 5·RD, exactly, in integer nanoseconds.
    if rd.as_nanos() * 5 <= rp.as_nanos() * 6 {
        return Err(TimingViolation::RenewDeadlineTooShort);
    }
    if ld <= rd {
        return Err(TimingViolation::LeaseDurationTooShort);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn client_go_defaults_pass() {
        assert_eq!(check(15 * S, 10 * S, 2 * S), Ok(()));
    }

    #[test]
    fn each_part_is_reported() {
        assert_eq!(
            check(15 * S, 10 * S, Duration::ZERO),
            Err(TimingViolation::RetryPeriodZero)
        );
        assert_eq!(
            check(15 * S, 12 * S, 10 * S),
            Err(TimingViolation::RenewDeadlineTooShort)
        );
        assert_eq!(
            check(10 * S, 10 * S, 2 * S),
            Err(TimingViolation::LeaseDurationTooShort)
        );
    }

    #[test]
    fn the_boundary_is_exact() {
        // RD = 1.2·RP exactly is refused; one nanosecond more is accepted.
        let rp = Duration::from_millis(500);
        let rd = Duration::from_millis(600);
        assert_eq!(
            check(S, rd, rp),
            Err(TimingViolation::RenewDeadlineTooShort)
        );
        assert_eq!(check(S, rd + Duration::from_nanos(1), rp), Ok(()));
    }

    proptest! {
        /// The check agrees with the rule computed in wide integers.
        #[test]
        fn agrees_with_the_rule(ld in 0u64..100_000_000_000, rd in 0u64..100_000_000_000, rp in 0u64..100_000_000_000) {
            let want = rp > 0 && 5 * u128::from(rd) > 6 * u128::from(rp) && ld > rd;
            let got = check(Duration::from_nanos(ld), Duration::from_nanos(rd), Duration::from_nanos(rp));
            prop_assert_eq!(got.is_ok(), want);
        }
    }
}
