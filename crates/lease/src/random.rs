//! Where jitter comes from: the operating system's generator in production, a seeded one in simulations.
//!
//! Every random delay an elector draws (backoff jitter, relist backoff) goes through [`Random`], so that a
//! deterministic simulation can replay a run exactly from its seed. Production electors use the thread-local
//! generator and never share state between them.

use std::sync::Arc;

use parking_lot::Mutex;

use rand::{Rng, SeedableRng, rngs::StdRng};

/// A source of uniform random numbers, cheap to clone; clones of a seeded source share one sequence.
#[derive(Debug, Clone, Default)]
pub(crate) enum Random {
    /// The thread-local generator, seeded by the operating system.
    #[default]
    Os,
    /// One generator seeded by the caller, shared by every clone, for replayable simulations.
    Seeded(Arc<Mutex<StdRng>>),
}

impl Random {
    /// A seeded source: the same seed gives the same sequence, as long as the draws happen in the same order.
    pub(crate) fn seeded(seed: u64) -> Self {
        Self::Seeded(Arc::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&self) -> f64 {
        match self {
            Self::Os => rand::random::<f64>(),
            Self::Seeded(rng) => rng.lock().random::<f64>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_sequence_and_clones_share_it() {
        let a = Random::seeded(7);
        let b = Random::seeded(7);
        let a2 = a.clone();
        let xs: Vec<f64> = (0..4)
            .map(|i| if i % 2 == 0 { a.unit() } else { a2.unit() })
            .collect();
        let ys: Vec<f64> = (0..4).map(|_| b.unit()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!((0.0..1.0).contains(&Random::Os.unit()));
    }
}
