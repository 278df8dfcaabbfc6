//! Leader election on `coordination.k8s.io/v1` Leases, for agents that run on every node.
//!
//! One candidate per Lease leads; the others follow by *watching* the Lease (they do not poll), and take
//! over when the holder releases it or stops renewing. What sets this crate apart from client-go's
//! leader election and its Rust ports:
//!
//! - **No trust in remote clocks.** A follower never compares `renewTime` with its own clock. It notes when
//!   it *saw* each new version on its local monotonic clock; the holder's term ends at that moment plus the
//!   longer of the record's and our own lease duration. Clock skew between nodes cannot matter.
//! - **resourceVersion is opaque.** A GET's answer and our own write's answer are the truth, even when an etcd
//!   restore made the resourceVersion go back; only a watch event older than what we already believe is dropped.
//!   Only a change to the election record is a sighting: label or annotation churn does not keep a dead
//!   holder's term alive.
//! - **Guarded writes.** Every write but a create carries the observed `uid` and `resourceVersion`; a 409 is
//!   never retried blindly. Two candidates cannot both win, and a cached object can never silently
//!   re-create a deleted Lease.
//! - **A leader stops by itself.** A renew that succeeds keeps leadership for RD from when it was *sent*,
//!   measured on CLOCK_BOOTTIME (which counts through suspend). The [`Leadership`] guard expires on its own,
//!   even when the API server is unreachable or the elector task is stuck.
//! - **Fencing.** Each acquisition has an epoch (`leaseTransitions`) higher than every earlier one, even
//!   across deletion of the Lease.
//! - **No herd, low cost.** Followers make no requests in steady state; when the Lease frees, they wait in a
//!   per-takeover hashed order, and cancel when the watch shows someone else won. Many Leases share one
//!   watch per Kubernetes namespace and label selector. Without list or watch permission (a Role with only
//!   get, create and update), followers poll with GET every RP instead, as client-go does
//!   ([`ElectionHandle::observation`]).
//! - **One identity, one process.** A Lease that names our identity is ours only while this process leads
//!   that epoch; two processes given one [`Identity`] never both lead.
//! - **Proven by simulation.** `tests/sim` runs the real elector against the stand-in API server on a paused
//!   clock under random faults, thousands of seeds per `make test` (see the project's architecture notes).
//!
//! The algorithm is the one in `docs/design.md` §3; each module documents its part.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use leasehold_lease::{ElectionConfig, ElectionState, Elector, Identity};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // kube's retry layer must be off: the elector does its own retries, within its own deadlines.
//! let client = leasehold_lease::infer_client().await?;
//! let elector = Elector::new(client);
//!
//! let identity = Identity::with_random_instance("node-a")?;
//! let config = ElectionConfig::new("kube-system", "leasehold-default", identity)
//!     .timings(Duration::from_secs(15), Duration::from_secs(10), Duration::from_secs(2));
//! let election = elector.spawn(config)?;
//!
//! let mut state = election.state();
//! loop {
//!     let current = state.borrow_and_update().clone();
//!     match current {
//!         ElectionState::Leading(leadership) => {
//!             println!("leading with epoch {}", leadership.epoch());
//!             // Run the guarded work until leadership ends, then stop it.
//!             leadership.lost().await;
//!             println!("lost leadership");
//!         }
//!         ElectionState::Stopped { error } => {
//!             eprintln!("elector stopped: {error:?}");
//!             break;
//!         }
//!         _ => state.changed().await?,
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The runnable version is `examples/elect.rs`, which starts the bundled `leasehold-apiserver`.

mod api;
mod backoff;
mod client;
mod clock;
mod config;
mod crowd;
mod elector;
mod leadership;
mod random;
mod rank;
mod record;
mod term;
mod watch;

pub use api::ApiError;
pub use client::{ClientError, client_from_config, client_from_kubeconfig_yaml, infer_client};
pub use clock::since_boot;
pub use config::{ElectionConfig, ElectionConfigError, OwnerCheck, Sighting};
pub use elector::{
    ElectionHandle, ElectionState, Elector, ElectorError, Observation, SpawnError, Stopped,
    WatchGuard,
};
pub use leadership::Leadership;
/// The rules this crate shares with `leasehold-policy`: identity, name checks, labels, timing and backoff.
pub use leasehold_core as core;
pub use leasehold_core::identity::{Identity, IdentityError, MAX_HOLDER_LEN};
pub use leasehold_core::labels::{
    CANDIDATES_ANNOTATION, ELECTION_NAMESPACE_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    RELEASED_BY_ANNOTATION,
};
pub use record::same_record;
pub use watch::{WATCH_SILENCE_RELIST, WATCH_TIMEOUT_SECS, is_watch_forbidden};

// The README's example is compiled as a doctest (`no_run`: it needs a cluster), so it stays true to the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
