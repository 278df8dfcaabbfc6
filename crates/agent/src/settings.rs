//! Loads the agent's configuration from the process environment and the TOML file, through the policy crate.
//!
//! This is the only place that reads the environment and the file system for configuration; the rules live in
//! `leasehold-policy`. A bad configuration is reported as one line naming the variable or key, and the caller
//! exits with code 2 before starting anything.

use std::collections::BTreeMap;
use std::path::PathBuf;

use leasehold_policy::config::{Config, ConfigError, Sources, env::config_path};
use leasehold_policy::identity::{self, Identity};
use leasehold_policy::tags::{Tags, resolve_placeholders};

/// Where Kubernetes mounts the service account's namespace.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file named by `LEASEHOLD_CONFIG` could not be read.
    #[error("LEASEHOLD_CONFIG={path}: cannot read the file: {source}")]
    ReadFile {
        /// The path from `LEASEHOLD_CONFIG`.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node or instance could not form a holder identity.
    #[error("{0}")]
    Identity(String),
    /// A command-line value is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// The loaded configuration and who we are.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The validated configuration.
    pub config: Config,
    /// `<node>_<instance>`.
    pub identity: Identity,
    /// The variable the node name came from, for the start-up log line.
    pub node_source: String,
    /// The global host tags with DataKit's placeholders resolved: `__datakit_hostname` to our node name,
    /// `__datakit_ip` to `HOST_IP`.
    pub host_tags: Tags,
    /// Variables that are set but do nothing (DataKit's `ENV_DATAKIT_OPERATOR`, misspelt `LEASEHOLD_*` names),
    /// logged once at start-up: they are warnings, since a migrated DataKit DaemonSet must still start.
    pub warnings: Vec<String>,
}

/// The variable that gives the node's IP for DataKit's `__datakit_ip` placeholder (the downward API's
/// `status.hostIP`).
pub const HOST_IP: &str = "HOST_IP";

/// Reads the process environment and `LEASEHOLD_CONFIG`, then validates.
pub fn load() -> Result<Settings, SettingsError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_from(&env)
}

/// Like [`load`], with the environment given (tests).
pub fn load_from(env: &BTreeMap<String, String>) -> Result<Settings, SettingsError> {
    let toml = match config_path(env) {
        Some(path) => {
            let path = PathBuf::from(path);
            Some(
                std::fs::read_to_string(&path)
                    .map_err(|source| SettingsError::ReadFile { path, source })?,
            )
        }
        None => None,
    };
    let sa_namespace = std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE).ok();
    let config = Config::load(&Sources {
        env,
        toml: toml.as_deref(),
        service_account_namespace: sa_namespace.as_deref().map(str::trim),
    })?;
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let nonce = format!("{:08x}", rand::random::<u32>());
    let resolved = identity::resolve(env, &hostname, &nonce)
        .map_err(|e| SettingsError::Identity(e.to_string()))?;
    let node = resolved.identity.node().to_string();
    let host_tags = resolve_placeholders(
        &config.global_host_tags,
        &node,
        env.get(HOST_IP).map(String::as_str),
    )
    .map_err(|e| {
        SettingsError::Invalid(format!(
            "ENV_GLOBAL_HOST_TAGS / [global_host_tags]: {e} (set {HOST_IP} for __datakit_ip)"
        ))
    })?;
    Ok(Settings {
        warnings: leasehold_policy::config::env::startup_warnings(env, &[]),
        config,
        identity: resolved.identity.clone(),
        node_source: resolved.node_source.to_string(),
        host_tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn datakit_placeholders_resolve_to_the_node_name_and_host_ip() {
        let s = load_from(&env(&[
            ("NODE_NAME", "node-x"),
            ("HOST_IP", "10.1.2.3"),
            (
                "ENV_GLOBAL_HOST_TAGS",
                "host=__datakit_hostname,ip=__datakit_ip",
            ),
        ]))
        .unwrap();
        assert_eq!(s.host_tags.get("host"), Some("node-x"));
        assert_eq!(s.host_tags.get("ip"), Some("10.1.2.3"));
    }

    #[test]
    fn an_unresolvable_placeholder_is_a_configuration_error() {
        let err = load_from(&env(&[
            ("NODE_NAME", "node-x"),
            ("ENV_GLOBAL_HOST_TAGS", "ip=__datakit_ip"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("__datakit_ip") && err.contains("HOST_IP"),
            "{err}"
        );
    }
}
