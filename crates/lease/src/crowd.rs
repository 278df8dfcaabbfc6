//! How many candidates contend for a Lease, as its takeovers' winners estimate it, so that the takeover spread can
//! follow the size of the crowd (`rank::takeover_delay`).
//!
//! A fixed spread cannot serve both 10 and 5,000 candidates: at 10 the first in line waits a sizeable part of J, at
//! 5,000 neighbouring ranks are closer than the time a winner's write takes to reach every watcher, and each of them
//! writes in vain. A spread scaled to the number of candidates serves both, but no candidate knows that number.
//!
//! The winner of a takeover is, nearly always, the contender of lowest rank, and ranks are uniform in `[0, 1)`. The
//! lowest of N has `E[ln(1/u)] = H(N) ≈ ln N + γ`, so each winner's own rank is one sample of `ln N`. The winner folds
//! it into the estimate the Lease carries ([`CANDIDATES_ANNOTATION`]), as an exponentially weighted mean of
//! logarithms, and writes the result with its acquire. Every follower reads the estimate from the Lease, so all of
//! them use the same one, and an agent that restarts (a rolling update restarts them all) knows it at once. The
//! estimate needs no agreement: it only spaces out writes, and any value is safe. A wrong one costs wasted writes
//! (too small) or a few tens of milliseconds (too large), and corrects itself within a few takeovers.

use k8s_openapi::api::coordination::v1::Lease;

use leasehold_core::labels::CANDIDATES_ANNOTATION;

/// The Euler–Mascheroni constant: `H(N) − ln N` tends to it.
const GAMMA: f64 = 0.577_215_664_901_532_9;

/// The weight of the newest sample. A quarter keeps one unlucky rank (the spread of `ln(1/u)` is about 1.3) from
/// moving the estimate by more than a factor of 1.4, and still follows a cluster that doubles within a few takeovers.
const WEIGHT: f64 = 0.25;

/// How much a winner from the very front raises the estimate, in the log: a factor of √2. Doubling would settle the
/// estimate near 1.5 × N, which costs every takeover most of a step of delay; √2 settles it near N and still
/// climbs from N / 100 to N in about 15 takeovers.
const RISE: f64 = std::f64::consts::LN_2 / 2.0;

/// The largest estimate kept: far above the 5,000 nodes a Kubernetes cluster supports, and low enough that the
/// log-scaled spread stays well inside J.
const MOST: f64 = 100_000.0;

/// An estimate of the number of candidates contending for one Lease, at least 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Crowd(f64);

impl Crowd {
    /// The estimate `lease` carries, if it carries a number. A number out of range (a third party's edit) is
    /// clamped into `[1, 100,000]`; anything else (not a number, infinite, NaN) counts as no estimate.
    pub(crate) fn read(lease: &Lease) -> Option<Self> {
        let text = lease
            .metadata
            .annotations
            .as_ref()?
            .get(CANDIDATES_ANNOTATION)?;
        let n: f64 = text.trim().parse().ok()?;
        n.is_finite().then(|| Self(n.clamp(1.0, MOST)))
    }

    /// The estimate after a takeover of a present Lease that a candidate of rank `rank` won, given the one before
    /// it, if any.
    ///
    /// A winner from the very front of the line (a rank below 1 / (2N̂), which `rank::takeover_delay` sends at once)
    /// may have written together with others there, and the server took whichever came first: its rank is not the
    /// lowest, and says only that the front was crowded. It raises the estimate by √2 instead. Rising this way is
    /// what repairs an estimate far too low (the cluster grew, or an outage let a random candidate win), which
    /// would otherwise send N / (2N̂) candidates at once at every takeover.
    pub(crate) fn after_win(before: Option<Self>, rank: f64) -> Self {
        let sample = ((1.0 / rank).ln() - GAMMA).clamp(0.0, MOST.ln());
        let log = match before {
            Some(Self(n)) if 2.0 * n * rank < 1.0 => n.ln() + RISE,
            Some(Self(n)) => (1.0 - WEIGHT) * n.ln() + WEIGHT * sample,
            None => sample,
        };
        Self(log.exp().clamp(1.0, MOST))
    }

    /// The estimated number of candidates.
    pub(crate) fn size(self) -> f64 {
        self.0
    }

    /// Writes the estimate into `lease`'s annotations, to one decimal: enough for the small crowds where a whole
    /// number would round a slowly moving estimate back to where it was.
    pub(crate) fn stamp(self, lease: &mut Lease) {
        lease
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(CANDIDATES_ANNOTATION.to_owned(), format!("{:.1}", self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with(value: &str) -> Lease {
        let mut l = Lease::default();
        l.metadata.annotations =
            Some([(CANDIDATES_ANNOTATION.to_owned(), value.to_owned())].into());
        l
    }

    #[test]
    fn a_written_estimate_reads_back() {
        let mut l = Lease::default();
        assert_eq!(Crowd::read(&l), None);
        Crowd(812.44).stamp(&mut l);
        assert_eq!(
            l.metadata.annotations.as_ref().unwrap()[CANDIDATES_ANNOTATION],
            "812.4"
        );
        assert_eq!(Crowd::read(&l), Some(Crowd(812.4)));
    }

    #[test]
    fn garbage_is_no_estimate_and_out_of_range_is_clamped() {
        for bad in ["", "many", "NaN", "inf", "-inf", "1e400", "0x10"] {
            assert_eq!(Crowd::read(&with(bad)), None, "{bad:?}");
        }
        assert_eq!(Crowd::read(&with("0")), Some(Crowd(1.0)));
        assert_eq!(Crowd::read(&with("-5")), Some(Crowd(1.0)));
        assert_eq!(Crowd::read(&with("1e9")), Some(Crowd(MOST)));
        assert_eq!(Crowd::read(&with(" 12.5 ")), Some(Crowd(12.5)));
    }

    /// Fed the lowest of N uniform ranks takeover after takeover, the estimate settles near N, whatever it started
    /// from. The ranks come from the real hash, as in a cluster.
    #[test]
    fn the_estimate_converges_on_the_number_of_contenders() {
        for n in [3usize, 10, 100, 1000, 5000] {
            let mut crowd = None;
            let mut logs = Vec::new();
            for epoch in 0..400u64 {
                let lowest = (0..n)
                    .map(|i| crate::rank::rank(&format!("node-{i}_x"), epoch))
                    .fold(1.0, f64::min);
                let next = Crowd::after_win(crowd, lowest);
                crowd = Some(next);
                if epoch >= 40 {
                    logs.push(next.size().ln());
                }
            }
            let mean = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
            let ratio = mean / n as f64;
            assert!(
                (0.6..1.6).contains(&ratio),
                "N = {n}: the estimate averaged {mean:.1} ({ratio:.2} × N)"
            );
        }
    }

    #[test]
    fn one_sample_moves_an_estimate_by_a_quarter_of_its_log() {
        let before = Crowd(100.0);
        // A rank of e^-(ln 20 + γ) is a sample of exactly 20 (and, above 1 / (2 × 100), not from the front).
        let rank = (-(20f64.ln() + GAMMA)).exp();
        let after = Crowd::after_win(Some(before), rank).size();
        let expected = (0.75 * 100f64.ln() + 0.25 * 20f64.ln()).exp();
        assert!((after - expected).abs() < 1e-6 * expected, "{after}");
        assert_eq!(Crowd::after_win(None, 0.0).size(), MOST);
        assert_eq!(Crowd::after_win(None, 0.999).size(), 1.0);
    }

    /// A winner that did not wait (rank below 1 / (2N̂)) raises the estimate by √2 whatever its rank says, so an
    /// estimate far too low climbs back: from 10 to 1,000 within 15 such takeovers.
    #[test]
    fn a_winner_from_the_front_raises_the_estimate() {
        let after = Crowd::after_win(Some(Crowd(100.0)), 0.004).size();
        assert!((after - 100.0 * 2f64.sqrt()).abs() < 1e-9, "{after}");
        let mut crowd = Crowd(10.0);
        let mut takeovers = 0;
        while crowd.size() < 1000.0 {
            crowd = Crowd::after_win(Some(crowd), 0.1 / crowd.size());
            takeovers += 1;
        }
        assert_eq!(takeovers, 14);
    }

    proptest! {
        #[test]
        fn any_annotation_reads_without_panic_into_range(value in any::<String>()) {
            if let Some(c) = Crowd::read(&with(&value)) {
                prop_assert!((1.0..=MOST).contains(&c.size()));
            }
        }

        #[test]
        fn any_rank_gives_an_estimate_in_range(rank in 0.0f64..1.0, before in proptest::option::of(1.0f64..MOST)) {
            let c = Crowd::after_win(before.map(Crowd), rank);
            prop_assert!((1.0..=MOST).contains(&c.size()));
        }
    }
}
