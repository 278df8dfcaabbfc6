//! leasehold-core: the rules every leasehold crate must agree on, kept in one place.
//!
//! `leasehold-policy` validates configuration before anything starts; `leasehold-lease` validates what an elector is
//! given and writes the Leases. When each had its own copy of a rule, the copies drifted: a node name the policy
//! accepted was refused by the elector later, after the listeners had started. Both now depend on this crate, and
//! neither depends on the other, so policy stays pure and the lease crate depends on kube only.
//!
//! * [`identity`]: a candidate's `<node>_<instance>` identity and what each part may hold.
//! * [`names`]: Kubernetes name checks (DNS-1123 labels and subdomains, label values, qualified names).
//! * [`labels`]: the labels and annotations leasehold puts on its Leases.
//! * [`timing`]: the election timing rule `LD > RD > 1.2·RP > 0`.
//! * [`backoff`]: the capped exponential backoff curve, with jitter that only ever lengthens a delay.

pub mod backoff;
pub mod identity;
pub mod labels;
pub mod names;
pub mod timing;

pub use identity::{Identity, IdentityError, MAX_HOLDER_LEN, SEPARATOR};

// The README's example runs as a doctest, so it stays true to the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
