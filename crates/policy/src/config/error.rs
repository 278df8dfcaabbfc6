//! The one configuration error type. Every message names the variable or key, the value,
//! and what is accepted, because the agent prints it as its single line before exiting 2.

use crate::lease_name::LeaseNameError;
use crate::tags::TagError;

/// A configuration value or combination that leasehold refuses.
///
/// `key` is an environment variable (`LEASEHOLD_LEASE_DURATION`), a dotted TOML key
/// (`lease.duration`, `task[0].grace`), or `default …` for a value nobody set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A boolean that is not one of the accepted words (DataKit takes any non-empty
    /// string as true, so `false` would enable election there; here it is strict).
    #[error(
        "{key}={value:?} is not a boolean; accepted: true/false, 1/0, yes/no, on/off, \
         enable/disable (any case)"
    )]
    Bool {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
    },
    /// A duration that does not parse.
    #[error("{key}={value:?} is not a duration ({reason}); write it like 15s, 500ms or 1m30s")]
    Duration {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A Lease duration that is not whole seconds, because `leaseDurationSeconds` is an
    /// integer.
    #[error(
        "{key}={value:?} must be a whole number of seconds, at least 1s \
         (leaseDurationSeconds is an integer); write it like 15s or 1m"
    )]
    WholeSeconds {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
    },
    /// A whitelist that starts like JSON but is not a JSON array of strings.
    #[error(
        "{key}={value:?} is not a JSON array of strings ({reason}); write \
         [\"node-a\",\"node-b\"] or node-a,node-b"
    )]
    Whitelist {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
        /// The JSON parser's explanation.
        reason: String,
    },
    /// A malformed tag list.
    #[error(
        "{key}={value:?}: {source}; write comma-separated key=value pairs like \
         project=web,cluster=prod"
    )]
    Tags {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with which part.
        #[source]
        source: TagError,
    },
    /// A listen address that is not `IP:port`.
    #[error(
        "{key}={value:?} is not an IP address with a port ({reason}); write it like \
         127.0.0.1:9530 or [::1]:9530"
    )]
    Address {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
        /// The parser's explanation.
        reason: String,
    },
    /// An unknown log format.
    #[error("{key}={value:?} is not a log format; accepted: text, json")]
    LogFormat {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
    },
    /// An unknown task mode.
    #[error("{key}={value:?} is not a task mode; accepted: leader, spread")]
    TaskMode {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
    },
    /// An unusable election namespace list.
    #[error(
        "{key}={value:?} is not a list of election namespaces: {reason}; write one name or \
         a comma list like default,db"
    )]
    Namespaces {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A Kubernetes namespace that is not a DNS-1123 label.
    #[error(
        "{key}={value:?} is not a Kubernetes namespace; use a DNS-1123 label (a-z, 0-9 and \
         '-', at most 63 characters, starting and ending with a letter or digit)"
    )]
    KubeNamespace {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
    },
    /// An unusable Lease name prefix.
    #[error("{key}={value:?}: {source}")]
    LeasePrefix {
        /// Variable or key.
        key: String,
        /// The value given.
        value: String,
        /// What is accepted (boxed: the collision variants are large).
        #[source]
        source: Box<LeaseNameError>,
    },
    /// An unusable API token. The value is a secret, so only its length is shown.
    #[error("{key} (a {len}-character secret, not shown) is not accepted: {reason}")]
    Token {
        /// Variable or key.
        key: String,
        /// The token's length in characters.
        len: usize,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The file is not TOML at all.
    #[error("the configuration file is not valid TOML: {reason}")]
    Syntax {
        /// The TOML parser's message, with line and column.
        reason: String,
    },
    /// A key leasehold does not know, with the closest known key when one is near.
    #[error(
        "unknown key `{key}` in the configuration file{}; accepted here: {}",
        did_you_mean(.suggestion.as_deref()),
        .accepted.join(", ")
    )]
    UnknownKey {
        /// The full dotted key.
        key: String,
        /// The closest accepted key, if one is close.
        suggestion: Option<String>,
        /// The keys accepted in that table.
        accepted: Vec<String>,
    },
    /// A TOML value of the wrong type.
    #[error("`{key}` = {value} has the wrong type; expected {expected}")]
    WrongType {
        /// The full dotted key.
        key: String,
        /// The value, in TOML syntax.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A required key that is absent.
    #[error("`{key}` is missing; {accepted}")]
    Missing {
        /// The full dotted key.
        key: String,
        /// What to write.
        accepted: &'static str,
    },
    /// A value that parses but breaks a rule, alone or against another setting.
    #[error("{key}={value} is not accepted: {accepted}")]
    Invalid {
        /// Variable or key.
        key: String,
        /// The value given (as written, or formatted like Go durations).
        value: String,
        /// The rule, the other setting involved, and what to do.
        accepted: String,
    },
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!("; did you mean `{s}`?"))
}
