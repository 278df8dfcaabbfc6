//! leasehold-policy: the pure rules behind leasehold, with no I/O, no kube and no tokio.
//!
//! Everything leasehold decides before and around an election is a rule here, so it can be
//! read in one place and tested exhaustively:
//!
//! * [`config`]: settings from DataKit's env vars and `[election]` table plus leasehold's
//!   own, env over TOML over defaults, strictly validated ([`config::Config::load`]).
//! * [`identity`]: who we are, `<node>_<instance>`.
//! * [`eligibility`]: whether this node may campaign (disabled, banned, eligible).
//! * [`lease_name`]: what the Leases are called, and the run-time collision check.
//! * [`status`]: the status per namespace, DataKit's monitor line and the JSON form.
//! * [`tags`]: which tags a task's data carries, and the `LEASEHOLD_TAGS` format.
//! * [`placement`]: which member runs which spread-mode task.
//! * [`go_duration`]: Go's duration format for the monitor line.
//!
//! The caller supplies everything from the outside world (environment map, file text, host
//! name, nonce, host IP, current time), so every function here is deterministic.

pub mod config;
pub mod eligibility;
pub mod go_duration;
pub mod identity;
pub mod lease_name;
pub mod placement;
pub mod status;
pub mod tags;

pub use config::{Config, ConfigError, Sources};
pub use eligibility::{Eligibility, Whitelist};
pub use identity::{Identity, ResolveError};
pub use lease_name::{LeaseKind, LeaseName, LeasePrefix};
pub use placement::{place, place_weighted};
pub use status::{Status, StatusKind, StatusReport};
pub use tags::{TagRules, Tags};

// The README's example runs as a doctest, so it stays true to the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
