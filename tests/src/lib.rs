//! leasehold-tests: helpers shared by the end-to-end tests and the bench programs, which drive leasehold's real
//! binaries as separate processes, the way an operator runs them.

pub mod apiserver_process;
pub mod claims;
pub mod grafana;
pub mod harness;
pub mod http_client;
pub mod limits;
pub mod procfs;
pub mod stamps;
