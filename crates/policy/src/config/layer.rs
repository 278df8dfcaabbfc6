//! One source's partial configuration (a *layer*) and the key each value came from, so that
//! env can override TOML, TOML the defaults, and errors can still name the right variable.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::model::{LogFormat, TaskMode};
use crate::eligibility::Whitelist;
use crate::lease_name::LeasePrefix;
use crate::tags::Tags;

/// A value and the variable or key it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Setting<T> {
    pub value: T,
    pub key: String,
}

impl<T> Setting<T> {
    pub fn new(key: impl Into<String>, value: T) -> Self {
        Setting {
            value,
            key: key.into(),
        }
    }
}

/// Picks the env value, else the TOML value, else the default (named `default <key>`).
pub(crate) fn pick<T>(
    env: Option<Setting<T>>,
    toml: Option<Setting<T>>,
    default: T,
    toml_key: &str,
) -> Setting<T> {
    env.or(toml)
        .unwrap_or_else(|| Setting::new(format!("default {toml_key}"), default))
}

/// One `[[task]]` as written, before defaults and checks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawTask {
    /// `task[i]`, for error messages.
    pub key: String,
    pub name: String,
    pub command: Vec<String>,
    pub election: Option<bool>,
    pub namespace: Option<String>,
    pub mode: Option<TaskMode>,
    pub grace: Option<Duration>,
    pub tags: Tags,
}

/// Everything one source can set; `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Layer {
    pub enabled: Option<Setting<bool>>,
    pub namespaces: Option<Setting<Vec<String>>>,
    pub namespace_tag: Option<Setting<bool>>,
    pub whitelist: Option<Setting<Whitelist>>,
    /// Merged key by key: a later source overrides single tags, not the whole set.
    pub election_tags: Tags,
    /// Merged key by key, like `election_tags`.
    pub host_tags: Tags,
    /// `ENV_CLUSTER_NAME_K8S`.
    pub cluster_name: Option<String>,
    pub lease_namespace: Option<Setting<String>>,
    /// `POD_NAMESPACE`, env only.
    pub pod_namespace: Option<Setting<String>>,
    pub prefix: Option<Setting<LeasePrefix>>,
    pub lease_duration: Option<Setting<Duration>>,
    pub renew_deadline: Option<Setting<Duration>>,
    pub retry_period: Option<Setting<Duration>>,
    pub takeover_spread: Option<Setting<Duration>>,
    pub settle: Option<Setting<Duration>>,
    pub member_duration: Option<Setting<Duration>>,
    pub member_renew: Option<Setting<Duration>>,
    pub listen: Option<Setting<SocketAddr>>,
    pub probe_listen: Option<Setting<SocketAddr>>,
    pub token: Option<Setting<String>>,
    pub log_format: Option<Setting<LogFormat>>,
    /// TOML only.
    pub tasks: Vec<RawTask>,
}
