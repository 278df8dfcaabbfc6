//! Takeover order without a herd: each candidate's place in line for one particular takeover.
//!
//! When a Lease becomes free, every follower sees it at about the same moment. If all of them wrote at once,
//! one would win and the rest would each cost the API server a failed write. Instead each waits a delay that grows
//! with its rank, a hash of (identity, epoch) mapped to `[0, 1)`. The first in line usually acquires before the
//! second starts, and the others see the new holder on their watch and cancel. Hashing the epoch in gives a
//! different order at every takeover, so no node is always first.
//!
//! How rank maps to a delay decides what a takeover costs. What matters is how far apart the first two in line
//! are: every candidate whose delay falls before the winner's write has reached it writes too, in vain. With N
//! candidates spread evenly over J (`rank × J`), the first two are about J / N apart: 2 ms at N = 1,000 and J = 2 s,
//! far less than a watch event takes to reach every follower, and a takeover costs tens of writes; at N = 10 the
//! first in line waits about J / 10. So when the Lease tells how many candidates contend ([`Crowd`]), the delay is
//! `step × log2(2 × N̂ × rank)` (none below 0, at most J), with a step of J/96 up to N̂ = 100 that grows by J/48 with
//! every tenfold beyond (`step`). Near the front of the line, which decides the race, that leaves about one candidate
//! per step / ln 2 (30 ms at the defaults and N̂ ≤ 100, 90 ms at N̂ = 1,000) whatever N is, and the last in line waits
//! step × log2(2N̂): 90 ms at N̂ = 10, 0.69 s at N̂ = 1,000. Without an estimate (a new Lease) the line starts where
//! 5,000 candidates would put its front (`UNKNOWN`) and comes in two waves (`unknown_delay`): ranks below 3/8, where
//! the first of 10 nearly always is, within J/16, and the rest evenly over J/4 to J/2, by when a winner's write has
//! reached every watcher.
//! With thousands of watchers, the winner's write can take longer to reach a follower than a step: so everyone
//! behind the expected first in line reads the Lease when its turn comes and writes only if it is still free
//! ([`reads_first`]); a GET sees the new holder at once.
//! Every delay is at most J, so the takeover bound LD + J + RD holds either way; safety never depends on the delays.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::crowd::Crowd;

/// The rank of `identity` for the takeover of a Lease whose current epoch is `epoch`, in `[0, 1)`.
pub(crate) fn rank(identity: &str, epoch: u64) -> f64 {
    let mut h = Sha256::new();
    h.update(identity.as_bytes());
    h.update([0]);
    h.update(epoch.to_be_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Keep 53 bits so the quotient is exact in an f64 and strictly below 1.
    let top = u64::from_be_bytes(first) >> 11;
    top as f64 / (1u64 << 53) as f64
}

/// `rank × spread`: spreads work evenly over `spread`. It orders the GETs that confirm a deletion, where the point
/// is to keep N followers from reading in the same instant.
pub(crate) fn delay(identity: &str, epoch: u64, spread: Duration) -> Duration {
    spread.mul_f64(rank(identity, epoch))
}

/// How long a candidate of rank `rank` ([`rank`]) waits before trying to take over a free Lease: log-scaled for the
/// estimated number of candidates, or in two waves when there is no estimate yet (see the module's documentation).
pub(crate) fn takeover_delay(rank: f64, spread: Duration, crowd: Option<Crowd>) -> Duration {
    match crowd {
        Some(crowd) => log_delay(step(spread, crowd), crowd.size(), rank).min(spread),
        None => unknown_delay(spread, rank),
    }
}

/// `step × log2(2 × size × rank)`, none below 0: a rank twice another waits one step more, and ranks below
/// 1 / (2 × size) go at once.
fn log_delay(step: Duration, size: f64, rank: f64) -> Duration {
    // log2(0) is −∞, which the max turns into no wait.
    step.mul_f64((2.0 * size * rank).log2().max(0.0))
}

/// The delay for a Lease that carries no estimate (a new one): two waves. A candidate cannot tell 10 contenders
/// from 5,000, so the line must start where 5,000 would put its front ([`UNKNOWN`]), and at 10 the first in line
/// may hold any rank up to about 3/8 (the lowest of 10 lies above 0.37 once in 100). So ranks below
/// [`FIRST_WAVE`] share the first J/16, log-scaled from 1/10,000, and at N = 10 or 100 the takeover is as quick
/// as with an estimate. At 5,000 the first wave goes out before the winner's write can reach every watch; its
/// members read first ([`reads_first`]), so it costs up to 3/8 × N GETs once in a Lease's life (603 at 5,000 in the
/// bench, where the write reached most watches within about 110 ms), and a write attempt or two. Everyone else waits from J/4 to J/2, evenly by rank, by when a write has reached every watcher,
/// and cancels without a request.
fn unknown_delay(spread: Duration, rank: f64) -> Duration {
    if rank < FIRST_WAVE {
        let span = (2.0 * UNKNOWN * FIRST_WAVE).log2();
        log_delay((spread / 16).div_f64(span), UNKNOWN, rank)
    } else {
        spread / 4 + (spread / 4).mul_f64((rank - FIRST_WAVE) / (1.0 - FIRST_WAVE))
    }
}

/// The share of ranks in the first wave of a takeover without an estimate ([`unknown_delay`]).
const FIRST_WAVE: f64 = 0.375;

/// Whether a candidate of rank `rank` reads the Lease with a GET before its takeover write: everyone behind the
/// expected first in line (a rank of 1/N̂ or more) does. By its turn the winner has usually written, but with thousands of
/// watchers that write may not have reached this candidate's watch yet: a write would fail with 409, and then a
/// GET would show the new holder. Reading first gets the same answer with one request instead of two, and no
/// write. The front of the line, where a winner comes from most of the time, writes at once, so the usual
/// handover has no extra round trip. With no spread at all (J = 0), nobody waits and nobody reads first.
pub(crate) fn reads_first(rank: f64, spread: Duration, crowd: Option<Crowd>) -> bool {
    !spread.is_zero() && assumed_size(crowd) * rank >= 1.0
}

/// How many candidates a takeover assumes: the Lease's estimate, or [`UNKNOWN`] without one. [`takeover_delay`]
/// sends the ranks below 1 / (2 × this) at once, with the estimate or, in [`unknown_delay`]'s first wave, with
/// [`UNKNOWN`], so the line's front and [`reads_first`]'s agree.
fn assumed_size(crowd: Option<Crowd>) -> f64 {
    crowd.map_or(UNKNOWN, Crowd::size)
}

/// The crowd a takeover assumes before any winner has estimated it (a new Lease): the most nodes a Kubernetes
/// cluster supports. Too large an estimate costs only delay, too small one costs writes: at N = 1,000 the first
/// takeover of a new Lease cost 21 write attempts at `rank × J` in the bench, and 1 with this. Its delays come in
/// two waves ([`unknown_delay`]), all under J/2.
const UNKNOWN: f64 = 5_000.0;

/// The log-scaled spread's step: a rank twice another waits one step more. It is J/96 up to 100 candidates and
/// grows by J/48 with every tenfold beyond (J/32 at 1,000), because a winner's write takes longer to reach every
/// watcher the more watchers there are, and the front of the line must be spaced wider than that. Up to 100 watchers
/// a write reaches them all within a few milliseconds (a handover from the front of the line takes 5 to 7 ms in the
/// bench), so the smallest step spaces the front 30 ms apart at the defaults, and a takeover waits no longer than it
/// must. Growing with log N̂ keeps the last in line within J up to 10,000 candidates (J/96 × 5 × log2(20,000) ≈
/// 0.74 J).
fn step(spread: Duration, crowd: Crowd) -> Duration {
    (spread / STEPS).mul_f64((2.0 * (crowd.size() / 10.0).log10() - 1.0).max(1.0))
}

/// J / STEPS is the smallest step of the log-scaled spread.
const STEPS: u32 = 96;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_lie_in_the_unit_interval_and_spread_out() {
        let ranks: Vec<f64> = (0..1000).map(|i| rank(&format!("node-{i}_x"), 3)).collect();
        assert!(ranks.iter().all(|r| (0.0..1.0).contains(r)));
        let low = ranks.iter().filter(|r| **r < 0.1).count();
        assert!((50..150).contains(&low), "{low} of 1000 below 0.1");
    }

    #[test]
    fn order_changes_with_the_epoch() {
        let a = "node-a_1";
        let b = "node-b_1";
        let orders: Vec<bool> = (0..64).map(|e| rank(a, e) < rank(b, e)).collect();
        assert!(orders.contains(&true) && orders.contains(&false));
    }

    #[test]
    fn delay_scales_with_spread() {
        let d = delay("n_1", 1, Duration::from_secs(2));
        assert!(d < Duration::from_secs(2));
        assert_eq!(delay("n_1", 1, Duration::ZERO), Duration::ZERO);
    }

    /// Each of `ids` with its rank and takeover delay, in rank order, checking that the delays keep that order.
    fn by_rank(
        ids: &[String],
        epoch: u64,
        j: Duration,
        crowd: Option<Crowd>,
    ) -> Vec<(f64, Duration)> {
        let mut out: Vec<(f64, Duration)> = ids
            .iter()
            .map(|id| rank(id, epoch))
            .map(|r| (r, takeover_delay(r, j, crowd)))
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(out.windows(2).all(|w| w[0].1 <= w[1].1), "rank order kept");
        out
    }

    /// Without an estimate a takeover comes in two waves; with one, the log-scaled delay keeps the rank order, stays
    /// within J, and spaces the first in line by a step that grows with log N̂ rather than J/N.
    #[test]
    fn takeover_delay_is_log_scaled_for_the_crowd() {
        let j = Duration::from_secs(2);
        let ids: Vec<String> = (0..1000).map(|i| format!("node-{i}_x")).collect();
        let epoch = 7;
        let thousand = Crowd::after_win(None, 0.000_561);
        assert!((thousand.size() - 1000.0).abs() < 1.0);
        let crowd = Some(thousand);
        // Without an estimate: two waves, the ranks below 3/8 within J/16 from 1/10,000 on, the rest over J/4 to J/2.
        let unknown = by_rank(&ids, epoch, j, None);
        for &(r, d) in &unknown {
            if r < 0.000_1 {
                assert_eq!(d, Duration::ZERO, "{r}");
            } else if r < FIRST_WAVE {
                assert!(d > Duration::ZERO && d <= j / 16, "{r}: {d:?}");
            } else {
                assert!(d >= j / 4 && d < j / 2, "{r}: {d:?}");
            }
        }
        let first = unknown.iter().filter(|(r, _)| *r < FIRST_WAVE).count();
        assert!(
            (325..425).contains(&first),
            "{first} of 1000 in the first wave"
        );
        // The first wave is log-scaled: a rank twice another waits the same extra time anywhere in it.
        let wave = |r: f64| unknown_delay(j, r).as_secs_f64();
        let doubling = wave(0.2) - wave(0.1);
        assert!((wave(0.02) - wave(0.01) - doubling).abs() < 1e-9);
        assert!((doubling - 0.125 / (2.0 * UNKNOWN * FIRST_WAVE).log2()).abs() < 1e-9);
        let last = by_rank(&ids, epoch, j, crowd).last().unwrap().1;
        // At N̂ = 1,000 the step is 3 × J/96: J/32 × log2(2 × 1000 × rank) < J/32 × 11 = 687.5 ms.
        assert!(last < Duration::from_micros(687_500), "{last:?}");
        let one = step(j, thousand).as_secs_f64();
        assert!(
            (one - 3.0 * (j / STEPS).as_secs_f64()).abs() < 1e-4,
            "{one}"
        );
        // A rank twice another's waits one step more.
        let at = |r: f64| step(j, thousand).mul_f64((2.0 * 1000.0 * r).log2().max(0.0));
        let mine = takeover_delay(rank("a", 0), j, crowd);
        assert!((mine.as_secs_f64() - at(rank("a", 0)).as_secs_f64()).abs() < 0.002);
        let doubling = (at(0.5) - at(0.25)).as_secs_f64();
        assert!(
            (doubling - one).abs() < 1e-6,
            "one doubling, one step: {doubling}"
        );
        // Up to 100 candidates the step is J/96.
        let small = Crowd::after_win(None, 0.056);
        assert_eq!(step(j, small), j / STEPS);
        let hundred = Crowd::after_win(None, 0.005_62);
        assert!((step(j, hundred).as_secs_f64() - (j / STEPS).as_secs_f64()).abs() < 1e-4);
        // Even an absurd estimate keeps every delay within J.
        let huge = Some(Crowd::after_win(None, 0.0));
        assert!(
            ids.iter()
                .all(|id| takeover_delay(rank(id, epoch), j, huge) <= j)
        );
    }

    /// Everyone behind the expected first in line reads first: about N̂ − 1 of N̂, none when J = 0, and every one of
    /// them waits at least one step, so the front's writes go out first.
    #[test]
    fn the_line_behind_the_front_reads_before_writing() {
        let j = Duration::from_secs(2);
        let hundred = Crowd::after_win(None, 0.0056);
        assert!((hundred.size() - 100.0).abs() < 0.5, "{}", hundred.size());
        let crowd = Some(hundred);
        let ids: Vec<String> = (0..10_000).map(|i| format!("node-{i}_x")).collect();
        let readers: Vec<&String> = ids
            .iter()
            .filter(|id| reads_first(rank(id, 3), j, crowd))
            .collect();
        assert!(
            (9_850..=9_950).contains(&readers.len()),
            "{}",
            readers.len()
        );
        let step = step(j, hundred);
        assert!(
            readers
                .iter()
                .all(|id| takeover_delay(rank(id, 3), j, crowd) >= step)
        );
        let front = ids.iter().filter(|id| !reads_first(rank(id, 3), j, crowd));
        assert!(
            front
                .clone()
                .all(|id| takeover_delay(rank(id, 3), j, crowd) < step)
        );
        assert!(
            !ids.iter()
                .any(|id| reads_first(rank(id, 3), Duration::ZERO, crowd))
        );
        // A new Lease assumes 5,000: about one in 5,000 writes at once, and every reader waits at least one step of
        // the first wave.
        let fronts = ids
            .iter()
            .filter(|id| !reads_first(rank(id, 3), j, None))
            .count();
        assert!(fronts <= 10, "{fronts}");
        let first_step = (j / 16).div_f64((2.0 * UNKNOWN * FIRST_WAVE).log2());
        assert!(
            ids.iter()
                .filter(|id| reads_first(rank(id, 3), j, None))
                .all(|id| takeover_delay(rank(id, 3), j, None) >= first_step)
        );
    }
}
