//! The value grammar shared by environment variables and TOML strings: booleans, durations,
//! lists, tags, addresses and names. Each parser takes the variable or key so its error can
//! name it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::model::{LogFormat, TaskMode};
use crate::eligibility::Whitelist;
use crate::lease_name::{LeasePrefix, is_dns1123_label};
use crate::tags::Tags;

/// Parses a strict boolean: `true/false`, `1/0`, `yes/no`, `on/off`, `enable/disable` in
/// any case, surrounding spaces ignored. Anything else is an error, unlike DataKit, where any
/// non-empty string (even `false`) is true.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "enable" => Ok(true),
        "false" | "0" | "no" | "off" | "disable" => Ok(false),
        _ => Err(ConfigError::Bool {
            key: key.into(),
            value: value.into(),
        }),
    }
}

/// Parses a duration like `15s`, `500ms`, `1m30s` or `1m 30s` (humantime's grammar; a
/// bare number without a unit is refused, so `15` is never mistaken for 15 ns or 15 min).
pub fn parse_duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| ConfigError::Duration {
        key: key.into(),
        value: value.into(),
        reason: e.to_string(),
    })
}

/// Parses a Lease duration: a duration of whole seconds, at least one, because
/// `leaseDurationSeconds` is an integer and rounding would silently change the term.
pub fn parse_lease_seconds(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(key, value)?;
    if d.subsec_nanos() != 0 || d.as_secs() == 0 || i32::try_from(d.as_secs()).is_err() {
        return Err(ConfigError::WholeSeconds {
            key: key.into(),
            value: value.into(),
        });
    }
    Ok(d)
}

/// Parses a whitelist: a JSON array of strings when the value starts with `[`, else a
/// comma list. Entries are trimmed and empty ones dropped (both DataKit forms).
pub fn parse_whitelist(key: &str, value: &str) -> Result<Whitelist, ConfigError> {
    let trimmed = value.trim();
    if trimmed.starts_with('[') {
        let entries: Vec<String> =
            serde_json::from_str(trimmed).map_err(|e| ConfigError::Whitelist {
                key: key.into(),
                value: value.into(),
                reason: e.to_string(),
            })?;
        Ok(Whitelist::new(entries))
    } else {
        Ok(Whitelist::new(trimmed.split(',')))
    }
}

/// Parses DataKit's `k=v,k=v` tag list strictly ([`Tags::parse_datakit`]).
pub fn parse_tags(key: &str, value: &str) -> Result<Tags, ConfigError> {
    Tags::parse_datakit(value).map_err(|source| ConfigError::Tags {
        key: key.into(),
        value: value.into(),
        source,
    })
}

/// Parses a listen address, `IP:port` (IPv6 in brackets). Host names are refused: this
/// crate resolves nothing, and a name could resolve off loopback.
pub fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .trim()
        .parse::<SocketAddr>()
        .map_err(|e| ConfigError::Address {
            key: key.into(),
            value: value.into(),
            reason: e.to_string(),
        })
}

/// Parses `text` or `json`, in any case.
pub fn parse_log_format(key: &str, value: &str) -> Result<LogFormat, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(ConfigError::LogFormat {
            key: key.into(),
            value: value.into(),
        }),
    }
}

/// Parses `leader` or `spread`, in any case.
pub fn parse_task_mode(key: &str, value: &str) -> Result<TaskMode, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "leader" => Ok(TaskMode::Leader),
        "spread" => Ok(TaskMode::Spread),
        _ => Err(ConfigError::TaskMode {
            key: key.into(),
            value: value.into(),
        }),
    }
}

/// Parses election namespaces from a comma list (`ENV_NAMESPACE=default,db`).
pub fn parse_namespaces(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    check_namespaces(key, value, value.split(','))
}

/// Checks a list of election namespaces: entries trimmed and empty ones dropped; at least
/// one must remain; none may repeat (it would be one Lease campaigned for twice) or contain
/// control characters. Otherwise any text is accepted, as in DataKit: the Lease name is
/// sanitised separately.
pub fn check_namespaces<I, S>(
    key: &str,
    shown: &str,
    entries: I,
) -> Result<Vec<String>, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let err = |reason: String| ConfigError::Namespaces {
        key: key.into(),
        value: shown.into(),
        reason,
    };
    let mut out: Vec<String> = Vec::new();
    for entry in entries {
        let ns = entry.as_ref().trim();
        if ns.is_empty() {
            continue;
        }
        if ns.chars().any(char::is_control) {
            return Err(err(format!("{ns:?} contains control characters")));
        }
        if out.iter().any(|o| o == ns) {
            return Err(err(format!("{ns:?} is listed twice")));
        }
        out.push(ns.to_owned());
    }
    if out.is_empty() {
        return Err(err("no namespace is named".into()));
    }
    Ok(out)
}

/// Checks a Kubernetes namespace name (a DNS-1123 label).
pub fn parse_kube_namespace(key: &str, value: &str) -> Result<String, ConfigError> {
    let ns = value.trim();
    if is_dns1123_label(ns) {
        Ok(ns.to_owned())
    } else {
        Err(ConfigError::KubeNamespace {
            key: key.into(),
            value: value.into(),
        })
    }
}

/// Checks a Lease name prefix ([`LeasePrefix::new`]).
pub fn parse_prefix(key: &str, value: &str) -> Result<LeasePrefix, ConfigError> {
    LeasePrefix::new(value.trim()).map_err(|source| ConfigError::LeasePrefix {
        key: key.into(),
        value: value.into(),
        source: Box::new(source),
    })
}

/// Checks an API token: it is sent in an `Authorization` header, so it may not contain
/// whitespace or control characters. The value never appears in the error.
pub fn parse_token(key: &str, value: &str) -> Result<String, ConfigError> {
    let token = value.trim();
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::Token {
            key: key.into(),
            len: token.chars().count(),
            reason: "it contains whitespace or control characters; use a random string of \
                     printable characters, e.g. 32 hex digits"
                .into(),
        });
    }
    Ok(token.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_strict() {
        for t in ["true", "TRUE", "1", "yes", "On", "enable", " ENABLE "] {
            assert!(parse_bool("K", t).unwrap(), "{t}");
        }
        for f in ["false", "0", "no", "OFF", "disable", "Disable"] {
            assert!(!parse_bool("K", f).unwrap(), "{f}");
        }
        assert_eq!(
            parse_bool("ENV_ENABLE_ELECTION", "y")
                .unwrap_err()
                .to_string(),
            "ENV_ENABLE_ELECTION=\"y\" is not a boolean; accepted: true/false, 1/0, yes/no, \
             on/off, enable/disable (any case)"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("K", "15s").unwrap(), Duration::from_secs(15));
        assert_eq!(
            parse_duration("K", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("K", "1m30s").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_duration("LEASEHOLD_RETRY_PERIOD", "15")
                .unwrap_err()
                .to_string(),
            "LEASEHOLD_RETRY_PERIOD=\"15\" is not a duration (time unit needed, for example \
             15sec or 15ms); write it like 15s, 500ms or 1m30s"
        );
    }

    #[test]
    fn lease_seconds_must_be_whole() {
        assert_eq!(
            parse_lease_seconds("K", "1m").unwrap(),
            Duration::from_secs(60)
        );
        for bad in ["1500ms", "0s", "500ms"] {
            assert_eq!(
                parse_lease_seconds("LEASEHOLD_LEASE_DURATION", bad)
                    .unwrap_err()
                    .to_string(),
                format!(
                    "LEASEHOLD_LEASE_DURATION={bad:?} must be a whole number of seconds, at \
                     least 1s (leaseDurationSeconds is an integer); write it like 15s or 1m"
                )
            );
        }
        assert!(parse_lease_seconds("K", "100years").is_err());
    }

    #[test]
    fn whitelist_forms() {
        let json = parse_whitelist("K", r#"["node-a", "node-b"]"#).unwrap();
        assert_eq!(json.entries(), ["node-a", "node-b"]);
        let list = parse_whitelist("K", "node-a, node-b,,").unwrap();
        assert_eq!(list, json);
        assert!(parse_whitelist("K", "[]").unwrap().is_empty());
        assert!(parse_whitelist("K", "").unwrap().is_empty());
        assert_eq!(
            parse_whitelist("ENV_ELECTION_NODE_WHITELIST", "[1]")
                .unwrap_err()
                .to_string(),
            "ENV_ELECTION_NODE_WHITELIST=\"[1]\" is not a JSON array of strings (invalid type: \
             integer `1`, expected a string at line 1 column 2); write [\"node-a\",\"node-b\"] \
             or node-a,node-b"
        );
    }

    #[test]
    fn tags_errors_name_the_variable() {
        assert_eq!(
            parse_tags("ENV_GLOBAL_ELECTION_TAGS", "a=1,b")
                .unwrap_err()
                .to_string(),
            "ENV_GLOBAL_ELECTION_TAGS=\"a=1,b\": part \"b\" has no '='; write comma-separated \
             key=value pairs like project=web,cluster=prod"
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("K", "[::1]:9530").unwrap().to_string(),
            "[::1]:9530"
        );
        assert_eq!(
            parse_addr("LEASEHOLD_LISTEN", "localhost:9530")
                .unwrap_err()
                .to_string(),
            "LEASEHOLD_LISTEN=\"localhost:9530\" is not an IP address with a port (invalid \
             socket address syntax); write it like 127.0.0.1:9530 or [::1]:9530"
        );
    }

    #[test]
    fn log_format_and_mode() {
        assert_eq!(parse_log_format("K", "JSON").unwrap(), LogFormat::Json);
        assert_eq!(parse_log_format("K", "text").unwrap(), LogFormat::Text);
        assert_eq!(
            parse_log_format("LEASEHOLD_LOG_FORMAT", "yaml")
                .unwrap_err()
                .to_string(),
            "LEASEHOLD_LOG_FORMAT=\"yaml\" is not a log format; accepted: text, json"
        );
        assert_eq!(parse_task_mode("K", "Spread").unwrap(), TaskMode::Spread);
        assert_eq!(parse_task_mode("K", "leader").unwrap(), TaskMode::Leader);
        assert_eq!(
            parse_task_mode("task[0].mode", "solo")
                .unwrap_err()
                .to_string(),
            "task[0].mode=\"solo\" is not a task mode; accepted: leader, spread"
        );
    }

    #[test]
    fn namespaces() {
        assert_eq!(
            parse_namespaces("K", " default , db,").unwrap(),
            ["default", "db"]
        );
        assert_eq!(
            parse_namespaces("ENV_NAMESPACE", "a,a")
                .unwrap_err()
                .to_string(),
            "ENV_NAMESPACE=\"a,a\" is not a list of election namespaces: \"a\" is listed \
             twice; write one name or a comma list like default,db"
        );
        assert_eq!(
            parse_namespaces("ENV_NAMESPACE", " , ")
                .unwrap_err()
                .to_string(),
            "ENV_NAMESPACE=\" , \" is not a list of election namespaces: no namespace is \
             named; write one name or a comma list like default,db"
        );
        assert_eq!(
            parse_namespaces("ENV_NAMESPACE", "a\u{7}")
                .unwrap_err()
                .to_string(),
            "ENV_NAMESPACE=\"a\\u{7}\" is not a list of election namespaces: \"a\\u{7}\" \
             contains control characters; write one name or a comma list like default,db"
        );
    }

    #[test]
    fn kube_namespace_prefix_and_token() {
        assert_eq!(
            parse_kube_namespace("K", " monitoring ").unwrap(),
            "monitoring"
        );
        assert_eq!(
            parse_kube_namespace("LEASEHOLD_LEASE_NAMESPACE", "Mon")
                .unwrap_err()
                .to_string(),
            "LEASEHOLD_LEASE_NAMESPACE=\"Mon\" is not a Kubernetes namespace; use a DNS-1123 \
             label (a-z, 0-9 and '-', at most 63 characters, starting and ending with a letter \
             or digit)"
        );
        assert_eq!(parse_prefix("K", "lh-").unwrap().as_str(), "lh-");
        assert_eq!(
            parse_prefix("LEASEHOLD_LEASE_PREFIX", "LH")
                .unwrap_err()
                .to_string(),
            "LEASEHOLD_LEASE_PREFIX=\"LH\": lease prefix \"LH\" is not accepted: use at most 40 \
             characters of a-z, 0-9 and '-', starting with a letter or digit (default \
             \"leasehold-\")"
        );
        assert_eq!(parse_token("K", " abc ").unwrap(), "abc");
        assert_eq!(
            parse_token("LEASEHOLD_API_TOKEN", "ab cd")
                .unwrap_err()
                .to_string(),
            "LEASEHOLD_API_TOKEN (a 5-character secret, not shown) is not accepted: it contains \
             whitespace or control characters; use a random string of printable characters, \
             e.g. 32 hex digits"
        );
    }
}
