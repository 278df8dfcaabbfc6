//! Takeover order without a herd: each candidate's place in line for one particular takeover.
//!
//! When a Lease becomes free, every follower sees it at about the same moment. If all of them wrote at once,
//! one would win and the rest would each cost the API server a failed write. Instead each waits
//! `rank × J`, where rank is a hash of (identity, epoch) mapped to `[0, 1)`. The first in line usually
//! acquires before the second starts, and the others see the new holder on their watch and cancel. Hashing
//! the epoch in gives a different order at every takeover, so no node is always first.

use std::time::Duration;

use sha2::{Digest, Sha256};

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

/// How long `identity` waits before trying to take over: `rank × spread`.
pub(crate) fn delay(identity: &str, epoch: u64, spread: Duration) -> Duration {
    spread.mul_f64(rank(identity, epoch))
}

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
}
