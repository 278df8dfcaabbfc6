//! The leasehold agent, as a library so its parts can be tested: configuration wiring, electors, the task
//! supervisor and its watchdog shim, the local API, metrics and Events. The `leasehold` binary is a thin `main`.
//!
//! This is not a public API. What is `pub` here is what the binary and the integration tests use: the command
//! line, settings, the agent's entry point, the status commands, and the supervisor and its shim (which the
//! supervisor tests drive as separate processes). Everything else is `pub(crate)`.

pub mod agent;
pub(crate) mod api;
pub mod cli;
pub mod cluster_status;
pub(crate) mod events;
pub mod kube_client;
mod lease_names;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod namespace_sink;
pub(crate) mod runner;
pub mod settings;
pub mod shim;
pub mod shutdown;
pub(crate) mod spread;
pub mod status_cmd;
pub mod supervisor;
pub(crate) mod tasks;
pub(crate) mod view;
pub mod wrapper;
