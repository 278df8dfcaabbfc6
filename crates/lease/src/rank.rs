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
//! `step × log2(2 × N̂ × rank)` (none below 0, at most J), with a step of J/64 up to N̂ = 100 that grows by J/64 with
//! every tenfold beyond (`step`). Near the front of the line, which decides the race, that leaves about one candidate
//! per step / ln 2 (45 ms at the defaults and N̂ ≤ 100, 90 ms at N̂ = 1,000) whatever N is, and the last in line waits
//! step × log2(2N̂): 0.14 s at N̂ = 10, 0.69 s at N̂ = 1,000. Without an estimate (a new Lease), N̂ is taken as 5,000
//! with the smallest step (`UNKNOWN`).
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

/// How long `identity` waits before trying to take over a free Lease: log-scaled for the estimated number of
/// candidates, or for 5,000 when there is no estimate yet (see the module's documentation).
pub(crate) fn takeover_delay(
    identity: &str,
    epoch: u64,
    spread: Duration,
    crowd: Option<Crowd>,
) -> Duration {
    let step = crowd.map_or(spread / STEPS, |crowd| step(spread, crowd));
    // log2(0) is −∞, which the max turns into no wait.
    step.mul_f64(
        (2.0 * assumed_size(crowd) * rank(identity, epoch))
            .log2()
            .max(0.0),
    )
    .min(spread)
}

/// Whether `identity` reads the Lease with a GET before its takeover write: everyone behind the expected first in
/// line (a rank of 1/N̂ or more) does. By its turn the winner has usually written, but with thousands of
/// watchers that write may not have reached this candidate's watch yet: a write would fail with 409, and then a
/// GET would show the new holder. Reading first gets the same answer with one request instead of two, and no
/// write. The front of the line, where a winner comes from most of the time, writes at once, so the usual
/// handover has no extra round trip. With no spread at all (J = 0), nobody waits and nobody reads first.
pub(crate) fn reads_first(
    identity: &str,
    epoch: u64,
    spread: Duration,
    crowd: Option<Crowd>,
) -> bool {
    !spread.is_zero() && assumed_size(crowd) * rank(identity, epoch) >= 1.0
}

/// How many candidates a takeover assumes: the Lease's estimate, or [`UNKNOWN`] without one. The delay and the
/// front of the line both follow it, so they agree on where the front ends.
fn assumed_size(crowd: Option<Crowd>) -> f64 {
    crowd.map_or(UNKNOWN, Crowd::size)
}

/// The crowd a takeover assumes before any winner has estimated it (a new Lease): the most nodes a Kubernetes
/// cluster supports, with the smallest step. Too large an estimate costs only delay, too small one costs writes: at
/// N = 1,000 the first takeover of a new Lease cost 21 write attempts at `rank × J` in the bench, and 1 with this;
/// at N = 10 the first in line waits about J/64 × log2(1,000) ≈ 0.3 s (245 ms in the bench) instead of about J/10.
/// Every delay stays under J/64 × log2(10,000) ≈ J/5.
const UNKNOWN: f64 = 5_000.0;

/// The log-scaled spread's step: a rank twice another waits one step more. It is J/64 up to 100 candidates and
/// grows by J/64 with every tenfold beyond, because a winner's write takes longer to reach every watcher the more
/// watchers there are, and the front of the line must be spaced wider than that. Growing with log N̂ keeps the last
/// in line within J up to 10,000 candidates (J/64 × 3 × log2(20,000) ≈ 0.67 J).
fn step(spread: Duration, crowd: Crowd) -> Duration {
    (spread / STEPS).mul_f64((crowd.size() / 10.0).log10().max(1.0))
}

/// J / STEPS is the smallest step of the log-scaled spread.
const STEPS: u32 = 64;

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

    /// Without an estimate a takeover assumes 5,000 candidates; with one, the log-scaled delay keeps the rank order, stays
    /// within J, and spaces the first in line by a step that grows with log N̂ rather than J/N.
    #[test]
    fn takeover_delay_is_log_scaled_for_the_crowd() {
        let j = Duration::from_secs(2);
        let ids: Vec<String> = (0..1000).map(|i| format!("node-{i}_x")).collect();
        let epoch = 7;
        let thousand = Crowd::after_win(None, 0.000_561);
        assert!((thousand.size() - 1000.0).abs() < 1.0);
        let crowd = Some(thousand);
        // Without an estimate: 5,000 candidates and the smallest step.
        for id in &ids {
            let expected = (j / STEPS).mul_f64((10_000.0 * rank(id, epoch)).log2().max(0.0));
            let got = takeover_delay(id, epoch, j, None);
            assert!(
                (got.as_secs_f64() - expected.as_secs_f64()).abs() < 1e-6,
                "{got:?}"
            );
            assert!(got < Duration::from_millis(416), "{got:?}");
        }
        let mut by_rank: Vec<(f64, Duration)> = ids
            .iter()
            .map(|id| (rank(id, epoch), takeover_delay(id, epoch, j, crowd)))
            .collect();
        by_rank.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            by_rank.windows(2).all(|w| w[0].1 <= w[1].1),
            "rank order kept"
        );
        let last = by_rank.last().unwrap().1;
        // At N̂ = 1,000 the step is 2 × J/64: J/32 × log2(2 × 1000 × rank) < J/32 × 11 = 687.5 ms.
        assert!(last < Duration::from_micros(687_500), "{last:?}");
        let one = step(j, thousand).as_secs_f64();
        assert!(
            (one - 2.0 * (j / STEPS).as_secs_f64()).abs() < 1e-4,
            "{one}"
        );
        // A rank twice another's waits one step more.
        let at = |r: f64| step(j, thousand).mul_f64((2.0 * 1000.0 * r).log2().max(0.0));
        let mine = takeover_delay("a", 0, j, crowd);
        assert!((mine.as_secs_f64() - at(rank("a", 0)).as_secs_f64()).abs() < 0.002);
        let doubling = (at(0.5) - at(0.25)).as_secs_f64();
        assert!(
            (doubling - one).abs() < 1e-6,
            "one doubling, one step: {doubling}"
        );
        // Up to 100 candidates the step is J/64.
        let small = Crowd::after_win(None, 0.056);
        assert_eq!(step(j, small), j / STEPS);
        // Even an absurd estimate keeps every delay within J.
        let huge = Some(Crowd::after_win(None, 0.0));
        assert!(ids.iter().all(|id| takeover_delay(id, epoch, j, huge) <= j));
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
            .filter(|id| reads_first(id, 3, j, crowd))
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
                .all(|id| takeover_delay(id, 3, j, crowd) >= step)
        );
        let front = ids.iter().filter(|id| !reads_first(id, 3, j, crowd));
        assert!(
            front
                .clone()
                .all(|id| takeover_delay(id, 3, j, crowd) < step)
        );
        assert!(
            !ids.iter()
                .any(|id| reads_first(id, 3, Duration::ZERO, crowd))
        );
        // A new Lease assumes 5,000: about one in 5,000 writes at once.
        let fronts = ids.iter().filter(|id| !reads_first(id, 3, j, None)).count();
        assert!(fronts <= 10, "{fronts}");
    }
}
