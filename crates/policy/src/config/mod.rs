//! Configuration: DataKit's environment variables and `[election]` table, plus leasehold's
//! own `LEASEHOLD_*` variables and `[lease]`, `[api]` and `[[task]]` tables.
//!
//! Entry point: [`Config::load`]. Environment variables override the TOML file, which
//! overrides the defaults (each documented once, on its `Default` impl in this module).
//! Tag lists merge key by key in the same order. Every error is a [`ConfigError`] naming
//! the variable or key, the value and what is accepted; the agent prints it and exits 2
//! before starting anything.
//!
//! The crate does no I/O: the caller passes the environment as a map, the file's text (read
//! from [`env::config_path`]), and the service-account namespace if it could read one.

pub mod env;
mod error;
mod layer;
mod merge;
mod model;
mod suggest;
mod toml_file;
mod validate;
pub mod values;

use std::collections::BTreeMap;

pub use error::ConfigError;
pub use model::{
    ApiConfig, Config, ElectionSettings, LeaseConfig, LogFormat, MemberTiming, TaskConfig,
    TaskDefaults, TaskMode, Timing,
};

use crate::eligibility::Eligibility;
use crate::lease_name::LeaseName;
use crate::tags::{TagRules, Tags};

/// Everything the configuration is built from, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The process environment (e.g. `std::env::vars().collect()`).
    pub env: &'a BTreeMap<String, String>,
    /// The text of the file named by `LEASEHOLD_CONFIG`, if there is one.
    pub toml: Option<&'a str>,
    /// The namespace from the service-account directory, used for the Leases when neither
    /// `LEASEHOLD_LEASE_NAMESPACE`, `lease.namespace` nor `POD_NAMESPACE` is set.
    pub service_account_namespace: Option<&'a str>,
}

impl Config {
    /// Builds and validates the configuration: env over TOML over defaults.
    pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
        let env_layer = env::read(sources.env)?;
        let file = match sources.toml {
            Some(text) => toml_file::read(text)?,
            None => layer::Layer::default(),
        };
        merge::merge(env_layer, file, sources.service_account_namespace)
    }

    /// Whether `node` may campaign under this configuration.
    #[must_use]
    pub fn eligibility(&self, node: &str) -> Eligibility {
        Eligibility::decide(self.election.enabled, &self.election.node_whitelist, node)
    }

    /// The tag rules, given the global host tags with placeholders resolved (see
    /// [`crate::tags::resolve_placeholders`]); the rest comes from this configuration.
    #[must_use]
    pub fn tag_rules<'a>(&'a self, resolved_host_tags: &'a Tags) -> TagRules<'a> {
        TagRules {
            election_enabled: self.election.enabled,
            election_tags: &self.election.tags,
            namespace_tag: self.election.namespace_tag,
            global_host_tags: resolved_host_tags,
        }
    }

    /// The election Lease of every configured namespace, in configuration order.
    #[must_use]
    pub fn election_leases(&self) -> Vec<LeaseName> {
        self.election
            .namespaces
            .iter()
            .map(|ns| LeaseName::election(&self.lease.prefix, ns))
            .collect()
    }

    /// The task Lease of every spread-mode task, in configuration order.
    #[must_use]
    pub fn task_leases(&self) -> Vec<LeaseName> {
        self.tasks
            .iter()
            .filter(|t| t.mode == TaskMode::Spread)
            .map(|t| LeaseName::task(&self.lease.prefix, &t.name))
            .collect()
    }
}
