//! Reading the environment map: DataKit's variable names and leasehold's own `LEASEHOLD_*`.
//!
//! Values are trimmed, and a variable set to the empty string counts as unset, as in DataKit
//! (a manifest's `value: ""` switches nothing on). Tag variables are merged key by key over
//! the TOML tags, as DataKit merges them over `datakit.conf`.

use std::collections::BTreeMap;

use crate::config::error::ConfigError;
use crate::config::layer::{Layer, Setting};
use crate::config::values;

/// Enables election (strict boolean; DataKit's name).
pub const ENABLE_ELECTION: &str = "ENV_ENABLE_ELECTION";
/// Election namespace, or a comma list of them (DataKit's name).
pub const NAMESPACE: &str = "ENV_NAMESPACE";
/// Nodes allowed to campaign: JSON array or comma list (DataKit's name).
pub const NODE_WHITELIST: &str = "ENV_ELECTION_NODE_WHITELIST";
/// Adds `election_namespace=<ns>` to election data (strict boolean; DataKit's name).
pub const ENABLE_NAMESPACE_TAG: &str = "ENV_ENABLE_ELECTION_NAMESPACE_TAG";
/// Election tags, `k=v,k=v` (DataKit's name).
pub const GLOBAL_ELECTION_TAGS: &str = "ENV_GLOBAL_ELECTION_TAGS";
/// DataKit's deprecated name for [`GLOBAL_ELECTION_TAGS`], read only when that is unset.
pub const GLOBAL_ENV_TAGS: &str = "ENV_GLOBAL_ENV_TAGS";
/// Global host tags, `k=v,k=v`, with DataKit's placeholders (DataKit's name).
pub const GLOBAL_HOST_TAGS: &str = "ENV_GLOBAL_HOST_TAGS";
/// DataKit's deprecated name for [`GLOBAL_HOST_TAGS`], read only when that is unset.
pub const GLOBAL_TAGS: &str = "ENV_GLOBAL_TAGS";
/// Adds `cluster_name_k8s=<value>` to both the election and the host tags, unless a tag
/// list already sets that key (DataKit has added it to one or the other across versions).
pub const CLUSTER_NAME_K8S: &str = "ENV_CLUSTER_NAME_K8S";
/// The tag [`CLUSTER_NAME_K8S`] sets.
pub const CLUSTER_NAME_TAG: &str = "cluster_name_k8s";

/// DataKit's address of a DataKit Operator, which there switches collector task election to the operator and
/// takes priority over self-election. leasehold needs no operator (spread mode places tasks across agents), so
/// the variable is read only to warn, once, at start-up.
pub const DATAKIT_OPERATOR: &str = "ENV_DATAKIT_OPERATOR";

/// Path of the TOML configuration file; the caller reads it.
pub const CONFIG: &str = "LEASEHOLD_CONFIG";
/// Kubernetes namespace of the Leases (overrides everything else).
pub const LEASE_NAMESPACE: &str = "LEASEHOLD_LEASE_NAMESPACE";
/// Lease name prefix.
pub const LEASE_PREFIX: &str = "LEASEHOLD_LEASE_PREFIX";
/// LD, whole seconds.
pub const LEASE_DURATION: &str = "LEASEHOLD_LEASE_DURATION";
/// RD.
pub const RENEW_DEADLINE: &str = "LEASEHOLD_RENEW_DEADLINE";
/// Accepted spelling of [`RENEW_DEADLINE`] (the design writes the three timings as
/// `LEASEHOLD_LEASE_DURATION` / `_RENEW_DEADLINE` / `_RETRY_PERIOD`, which reads both ways).
pub const LEASE_RENEW_DEADLINE: &str = "LEASEHOLD_LEASE_RENEW_DEADLINE";
/// RP.
pub const RETRY_PERIOD: &str = "LEASEHOLD_RETRY_PERIOD";
/// Accepted spelling of [`RETRY_PERIOD`], like [`LEASE_RENEW_DEADLINE`].
pub const LEASE_RETRY_PERIOD: &str = "LEASEHOLD_LEASE_RETRY_PERIOD";
/// J, the takeover spread.
pub const TAKEOVER_SPREAD: &str = "LEASEHOLD_TAKEOVER_SPREAD";
/// Spread-mode settle time.
pub const TASK_SETTLE: &str = "LEASEHOLD_TASK_SETTLE";
/// Member Lease duration, whole seconds.
pub const MEMBER_DURATION: &str = "LEASEHOLD_MEMBER_DURATION";
/// Member Lease renew period.
pub const MEMBER_RENEW: &str = "LEASEHOLD_MEMBER_RENEW";
/// Control API listen address.
pub const LISTEN: &str = "LEASEHOLD_LISTEN";
/// Probe and metrics listen address.
pub const PROBE_LISTEN: &str = "LEASEHOLD_PROBE_LISTEN";
/// Bearer token for mutating endpoints.
pub const API_TOKEN: &str = "LEASEHOLD_API_TOKEN";
/// `text` or `json`.
pub const LOG_FORMAT: &str = "LEASEHOLD_LOG_FORMAT";
/// The pod's namespace (downward API).
pub const POD_NAMESPACE: &str = "POD_NAMESPACE";

/// Variables leasehold sets in a child task's environment. They are known, so a leasehold
/// started under another leasehold does not report them as unknown.
pub const CHILD_VARS: [&str; 5] = [
    "LEASEHOLD_NAMESPACE",
    "LEASEHOLD_EPOCH",
    "LEASEHOLD_HOLDER",
    "LEASEHOLD_TAGS",
    "LEASEHOLD_TASK",
];

/// Every `LEASEHOLD_*` variable this crate reads.
pub const LEASEHOLD_VARS: [&str; 16] = [
    CONFIG,
    LEASE_NAMESPACE,
    LEASE_PREFIX,
    LEASE_DURATION,
    RENEW_DEADLINE,
    LEASE_RENEW_DEADLINE,
    RETRY_PERIOD,
    LEASE_RETRY_PERIOD,
    TAKEOVER_SPREAD,
    TASK_SETTLE,
    MEMBER_DURATION,
    MEMBER_RENEW,
    LISTEN,
    PROBE_LISTEN,
    API_TOKEN,
    LOG_FORMAT,
];

/// A `LEASEHOLD_*` variable that nothing reads, probably a typo, with the closest known
/// name. The agent logs these; they are not errors, because other parts of the product may
/// add variables of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVar {
    /// The variable's name.
    pub name: String,
    /// The closest known variable, if one is close.
    pub suggestion: Option<&'static str>,
}

/// Lists the `LEASEHOLD_*` variables that are neither read here nor set for children.
#[must_use]
pub fn unknown_leasehold_vars(env: &BTreeMap<String, String>) -> Vec<UnknownVar> {
    env.keys()
        .filter(|k| k.starts_with("LEASEHOLD_"))
        .filter(|k| !LEASEHOLD_VARS.contains(&k.as_str()) && !CHILD_VARS.contains(&k.as_str()))
        .map(|k| UnknownVar {
            name: k.clone(),
            suggestion: crate::config::suggest::closest(k, LEASEHOLD_VARS.iter().copied()),
        })
        .collect()
}

/// The start-up warnings for variables that are set but do nothing here: `LEASEHOLD_*` names nothing reads
/// (probably typos; see [`unknown_leasehold_vars`]), and DataKit's [`DATAKIT_OPERATOR`], with what replaces it.
/// Warnings, not errors: a DataKit DaemonSet migrated as it is must still start. `also_known` names the
/// caller's own `LEASEHOLD_*` variables, which this crate does not read.
#[must_use]
pub fn startup_warnings(env: &BTreeMap<String, String>, also_known: &[&str]) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(addr) = get(env, DATAKIT_OPERATOR) {
        warnings.push(format!(
            "{DATAKIT_OPERATOR}={addr:?} is ignored: leasehold elects without a DataKit Operator. To spread \
             collector tasks across the agents, as the operator did, set mode = \"spread\" on their [[task]] \
             entries"
        ));
    }
    for var in unknown_leasehold_vars(env) {
        if also_known.contains(&var.name.as_str()) {
            continue;
        }
        warnings.push(match var.suggestion {
            Some(s) => format!(
                "{} is not a leasehold variable and is ignored; did you mean {s}?",
                var.name
            ),
            None => format!("{} is not a leasehold variable and is ignored", var.name),
        });
    }
    warnings
}

/// The configuration file path from `LEASEHOLD_CONFIG`, if set.
#[must_use]
pub fn config_path(env: &BTreeMap<String, String>) -> Option<&str> {
    get(env, CONFIG)
}

fn get<'a>(env: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn setting<T>(
    env: &BTreeMap<String, String>,
    name: &'static str,
    parse: impl Fn(&str, &str) -> Result<T, ConfigError>,
) -> Result<Option<Setting<T>>, ConfigError> {
    get(env, name)
        .map(|v| parse(name, v).map(|value| Setting::new(name, value)))
        .transpose()
}

/// Like [`setting`] for a variable with a second accepted spelling; both set is an error.
fn setting_alias<T>(
    env: &BTreeMap<String, String>,
    name: &'static str,
    alias: &'static str,
    parse: impl Fn(&str, &str) -> Result<T, ConfigError>,
) -> Result<Option<Setting<T>>, ConfigError> {
    if let (Some(_), Some(v)) = (get(env, name), get(env, alias)) {
        return Err(ConfigError::Invalid {
            key: alias.into(),
            value: format!("{v:?}"),
            accepted: format!("it is another spelling of {name}, which is also set; set only one"),
        });
    }
    match setting(env, name, &parse)? {
        Some(s) => Ok(Some(s)),
        None => setting(env, alias, &parse),
    }
}

/// Reads every variable this crate knows into a layer.
pub(crate) fn read(env: &BTreeMap<String, String>) -> Result<Layer, ConfigError> {
    let first = |a: &'static str, b: &'static str| {
        get(env, a)
            .map(|v| (a, v))
            .or_else(|| get(env, b).map(|v| (b, v)))
    };
    let election_tags = match first(GLOBAL_ELECTION_TAGS, GLOBAL_ENV_TAGS) {
        Some((name, v)) => values::parse_tags(name, v)?,
        None => Default::default(),
    };
    let host_tags = match first(GLOBAL_HOST_TAGS, GLOBAL_TAGS) {
        Some((name, v)) => values::parse_tags(name, v)?,
        None => Default::default(),
    };
    Ok(Layer {
        enabled: setting(env, ENABLE_ELECTION, values::parse_bool)?,
        namespaces: setting(env, NAMESPACE, values::parse_namespaces)?,
        namespace_tag: setting(env, ENABLE_NAMESPACE_TAG, values::parse_bool)?,
        whitelist: setting(env, NODE_WHITELIST, values::parse_whitelist)?,
        election_tags,
        host_tags,
        cluster_name: get(env, CLUSTER_NAME_K8S).map(str::to_owned),
        lease_namespace: setting(env, LEASE_NAMESPACE, values::parse_kube_namespace)?,
        pod_namespace: setting(env, POD_NAMESPACE, values::parse_kube_namespace)?,
        prefix: setting(env, LEASE_PREFIX, values::parse_prefix)?,
        lease_duration: setting(env, LEASE_DURATION, values::parse_lease_seconds)?,
        renew_deadline: setting_alias(
            env,
            RENEW_DEADLINE,
            LEASE_RENEW_DEADLINE,
            values::parse_duration,
        )?,
        retry_period: setting_alias(
            env,
            RETRY_PERIOD,
            LEASE_RETRY_PERIOD,
            values::parse_duration,
        )?,
        takeover_spread: setting(env, TAKEOVER_SPREAD, values::parse_duration)?,
        settle: setting(env, TASK_SETTLE, values::parse_duration)?,
        member_duration: setting(env, MEMBER_DURATION, values::parse_lease_seconds)?,
        member_renew: setting(env, MEMBER_RENEW, values::parse_duration)?,
        listen: setting(env, LISTEN, values::parse_addr)?,
        probe_listen: setting(env, PROBE_LISTEN, values::parse_addr)?,
        token: setting(env, API_TOKEN, values::parse_token)?,
        log_format: setting(env, LOG_FORMAT, values::parse_log_format)?,
        tasks: Vec::new(),
    })
}
