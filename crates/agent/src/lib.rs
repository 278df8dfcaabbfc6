//! The leasehold agent, as a library so its parts can be tested: configuration wiring, electors, the task
//! supervisor and its watchdog shim, the local API, metrics and Events. The `leasehold` binary is a thin `main`.

pub mod agent;
pub mod api;
pub mod cli;
pub mod cluster_status;
pub mod events;
pub mod kube_client;
mod lease_names;
pub mod logging;
pub mod metrics;
pub mod namespace_sink;
pub mod runner;
pub mod settings;
pub mod shim;
pub mod shutdown;
pub mod spread;
pub mod status_cmd;
pub mod supervisor;
pub mod tasks;
pub mod view;
pub mod wrapper;
