//! Tags: DataKit's `k=v,k=v` lists, the escaped `LEASEHOLD_TAGS` form, and which tags a
//! task's data carries.
//!
//! DataKit drops a malformed tag part silently; here every malformed part is an error, so a
//! typo in `ENV_GLOBAL_ELECTION_TAGS` stops start-up instead of quietly losing a tag.
//!
//! Precedence, highest first (docs/design.md §6): the point's own tags, then the task's `tags`, then
//! either the election tags (task under election) or the global host tags (everything else).
//! Data under election never gets the global host tags, so it carries no `host` unless the
//! task sets one itself: the collecting node changes with each election.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// DataKit's placeholder for the host name in `[global_host_tags]` values.
pub const PLACEHOLDER_HOSTNAME: &str = "__datakit_hostname";
/// DataKit's placeholder for the host IP in `[global_host_tags]` values.
pub const PLACEHOLDER_IP: &str = "__datakit_ip";
/// The tag added to election data when the namespace tag is enabled (DataKit's name).
pub const NAMESPACE_TAG: &str = "election_namespace";

/// A set of tags, ordered by key so that printing and comparison are deterministic.
///
/// Serialised as a plain JSON/TOML map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tags(BTreeMap<String, String>);

/// Why a tag list could not be parsed or resolved.
///
/// The messages describe the part at fault; the configuration layer adds the variable or key
/// and the whole value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A part without `=`.
    #[error("part {part:?} has no '='")]
    MissingEquals {
        /// The offending part.
        part: String,
    },
    /// A part with a second `=`, which DataKit's unescaped form cannot carry.
    #[error("part {part:?} has more than one '='")]
    ExtraEquals {
        /// The offending part.
        part: String,
    },
    /// A part whose key is empty.
    #[error("part {part:?} has an empty key")]
    EmptyKey {
        /// The offending part.
        part: String,
    },
    /// A tag whose value is empty; an empty tag value is dropped by every backend.
    #[error("tag {key:?} has an empty value")]
    EmptyValue {
        /// The key with the empty value.
        key: String,
    },
    /// The same key twice in one list: which one was meant is unknowable.
    #[error("tag {key:?} is given more than once")]
    Duplicate {
        /// The repeated key.
        key: String,
    },
    /// A backslash at the very end of an escaped list.
    #[error("a '\\' at the end escapes nothing")]
    DanglingEscape,
    /// A backslash before a character that needs no escape.
    #[error("'\\{0}' is not an escape (only '\\,', '\\=' and '\\\\' are)")]
    UnknownEscape(char),
    /// A placeholder the caller has no value for (for example no host IP is known).
    #[error("tag {key:?} uses {placeholder} but no value for it is known")]
    UnresolvedPlaceholder {
        /// The tag key.
        key: String,
        /// The placeholder (`__datakit_hostname` or `__datakit_ip`).
        placeholder: &'static str,
    },
}

impl Tags {
    /// An empty tag set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses DataKit's `k=v,k=v` form (`ENV_GLOBAL_ELECTION_TAGS`, `ENV_GLOBAL_HOST_TAGS`).
    ///
    /// Keys and values are trimmed and empty parts (a trailing comma) are skipped, as in
    /// DataKit; unlike DataKit, a part without exactly one `=`, an empty key or value, or a
    /// repeated key is an error rather than silently dropped.
    pub fn parse_datakit(text: &str) -> Result<Self, TagError> {
        let mut tags = Tags::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(TagError::MissingEquals { part: part.into() });
            };
            if value.contains('=') {
                return Err(TagError::ExtraEquals { part: part.into() });
            }
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(TagError::EmptyKey { part: part.into() });
            }
            tags.insert_new(key, value)?;
        }
        Ok(tags)
    }

    /// Parses the escaped form written by [`Tags::to_env_string`] (`LEASEHOLD_TAGS` in a
    /// child's environment), so a child can read back exactly the tags it was given.
    ///
    /// `\,`, `\=` and `\\` stand for a literal comma, equals sign and backslash. Nothing is
    /// trimmed, because the form is machine-written and must round-trip exactly.
    pub fn parse_env(text: &str) -> Result<Self, TagError> {
        let mut tags = Tags::new();
        if text.is_empty() {
            return Ok(tags);
        }
        let mut key = String::new();
        let mut value = String::new();
        let mut raw = String::new();
        let mut in_value = false;
        let mut extra_equals = false;
        let mut chars = text.chars();
        loop {
            let c = chars.next();
            match c {
                None | Some(',') => {
                    finish_env_part(&mut tags, &key, &value, &raw, in_value, extra_equals)?;
                    if c.is_none() {
                        return Ok(tags);
                    }
                    key.clear();
                    value.clear();
                    raw.clear();
                    in_value = false;
                    extra_equals = false;
                }
                Some('\\') => {
                    let escaped = match chars.next() {
                        None => return Err(TagError::DanglingEscape),
                        Some(e @ (',' | '=' | '\\')) => e,
                        Some(other) => return Err(TagError::UnknownEscape(other)),
                    };
                    raw.push('\\');
                    raw.push(escaped);
                    if in_value {
                        value.push(escaped);
                    } else {
                        key.push(escaped);
                    }
                }
                Some('=') => {
                    raw.push('=');
                    if in_value {
                        extra_equals = true;
                    }
                    in_value = true;
                }
                Some(other) => {
                    raw.push(other);
                    if in_value {
                        value.push(other);
                    } else {
                        key.push(other);
                    }
                }
            }
        }
    }

    /// Prints the escaped `k=v,k=v` form for `LEASEHOLD_TAGS`: `,`, `=` and `\` inside keys
    /// and values are written as `\,`, `\=` and `\\`, so any tag set survives the trip.
    #[must_use]
    pub fn to_env_string(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            escape_into(&mut out, key);
            out.push('=');
            escape_into(&mut out, value);
        }
        out
    }

    /// Inserts a tag, replacing any earlier value; returns the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// The value of a tag.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Removes a tag (for example through the runtime tags API); returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// The number of tags.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no tags.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The underlying map.
    #[must_use]
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Copies every tag of `lower` whose key is not already here: "never overwrite a tag the
    /// data already has" (docs/design.md §6).
    pub fn fill_missing(&mut self, lower: &Tags) {
        for (key, value) in &lower.0 {
            self.0.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }

    /// Copies every tag of `higher` over this set, replacing values: used where a later
    /// source takes priority (env over TOML, task tags over global tags).
    pub fn overlay(&mut self, higher: &Tags) {
        for (key, value) in &higher.0 {
            self.0.insert(key.clone(), value.clone());
        }
    }

    /// Inserts a parsed tag, refusing empty values and repeated keys.
    pub(crate) fn insert_new(&mut self, key: &str, value: &str) -> Result<(), TagError> {
        if value.is_empty() {
            return Err(TagError::EmptyValue { key: key.into() });
        }
        if self.0.contains_key(key) {
            return Err(TagError::Duplicate { key: key.into() });
        }
        self.0.insert(key.into(), value.into());
        Ok(())
    }
}

fn finish_env_part(
    tags: &mut Tags,
    key: &str,
    value: &str,
    raw: &str,
    in_value: bool,
    extra_equals: bool,
) -> Result<(), TagError> {
    if raw.is_empty() {
        return Ok(());
    }
    if !in_value {
        return Err(TagError::MissingEquals { part: raw.into() });
    }
    if extra_equals {
        return Err(TagError::ExtraEquals { part: raw.into() });
    }
    if key.is_empty() {
        return Err(TagError::EmptyKey { part: raw.into() });
    }
    tags.insert_new(key, value)
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        if matches!(c, ',' | '=' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

impl fmt::Display for Tags {
    /// The escaped `LEASEHOLD_TAGS` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_env_string())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Tags(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Replaces DataKit's placeholders in global host tag values: a value that is exactly
/// `__datakit_hostname` becomes `hostname`, and exactly `__datakit_ip` becomes `ip`.
///
/// The caller passes the values because this crate does no I/O; `hostname` should be the
/// identity's node name, as DataKit uses its (node-overridden) host name. A placeholder with
/// no value (`ip` is `None`) is an error rather than a literal `__datakit_ip` in the data.
pub fn resolve_placeholders(
    tags: &Tags,
    hostname: &str,
    ip: Option<&str>,
) -> Result<Tags, TagError> {
    let mut out = Tags::new();
    for (key, value) in tags.iter() {
        let missing = |placeholder| TagError::UnresolvedPlaceholder {
            key: key.into(),
            placeholder,
        };
        let resolved = match value {
            PLACEHOLDER_HOSTNAME => Some(hostname)
                .filter(|h| !h.is_empty())
                .ok_or_else(|| missing(PLACEHOLDER_HOSTNAME))?,
            PLACEHOLDER_IP => ip
                .filter(|i| !i.is_empty())
                .ok_or_else(|| missing(PLACEHOLDER_IP))?,
            other => other,
        };
        out.insert(key, resolved);
    }
    Ok(out)
}

/// The inputs of the tag rules, borrowed from the configuration once placeholders are
/// resolved, so that computing a task's tags needs nothing else.
#[derive(Debug, Clone, Copy)]
pub struct TagRules<'a> {
    /// Whether election is enabled at all; when it is off every task gets the host tags.
    pub election_enabled: bool,
    /// `[election.tags]` merged with `ENV_GLOBAL_ELECTION_TAGS`.
    pub election_tags: &'a Tags,
    /// Whether to add `election_namespace=<ns>` to election data.
    pub namespace_tag: bool,
    /// The global host tags with placeholders already resolved ([`resolve_placeholders`]).
    pub global_host_tags: &'a Tags,
}

impl TagRules<'_> {
    /// The election tags for one election namespace: `[election.tags]`, plus
    /// `election_namespace=<ns>` when enabled (which wins over a hand-written tag of that
    /// name, because it is the namespace the data was really collected under).
    #[must_use]
    pub fn election_tags_for(&self, namespace: &str) -> Tags {
        let mut tags = self.election_tags.clone();
        if self.namespace_tag {
            tags.insert(NAMESPACE_TAG, namespace);
        }
        tags
    }

    /// The tags a task's data gets before the point's own tags are considered: the task's
    /// own `tags` over either the election tags (election on and the task under election)
    /// or the global host tags (otherwise). This is the set passed as `LEASEHOLD_TAGS`.
    #[must_use]
    pub fn for_task(&self, task_election: bool, namespace: &str, task_tags: &Tags) -> Tags {
        let mut tags = if self.election_enabled && task_election {
            self.election_tags_for(namespace)
        } else {
            self.global_host_tags.clone()
        };
        tags.overlay(task_tags);
        tags
    }
}

/// Adds `base` (from [`TagRules::for_task`]) to a point's tags without overwriting any:
/// point tags win over everything.
pub fn apply_to_point(point: &mut Tags, base: &Tags) {
    point.fill_missing(base);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().copied().collect()
    }

    #[test]
    fn datakit_form_parses_documented_examples() {
        assert_eq!(
            Tags::parse_datakit("tag1=val,tag2=val2").unwrap(),
            tags(&[("tag1", "val"), ("tag2", "val2")])
        );
        assert_eq!(
            Tags::parse_datakit(
                "host=__datakit_hostname,host_ip=__datakit_ip,cluster_name_k8s=k8s-prod"
            )
            .unwrap(),
            tags(&[
                ("host", PLACEHOLDER_HOSTNAME),
                ("host_ip", PLACEHOLDER_IP),
                ("cluster_name_k8s", "k8s-prod")
            ])
        );
    }

    #[test]
    fn datakit_form_trims_and_skips_empty_parts() {
        assert_eq!(
            Tags::parse_datakit(" a = 1 , ,b=2,").unwrap(),
            tags(&[("a", "1"), ("b", "2")])
        );
        assert!(Tags::parse_datakit("").unwrap().is_empty());
    }

    #[test]
    fn datakit_form_rejects_malformed_parts() {
        assert_eq!(
            Tags::parse_datakit("a=1,b").unwrap_err().to_string(),
            "part \"b\" has no '='"
        );
        assert_eq!(
            Tags::parse_datakit("a=1=2").unwrap_err().to_string(),
            "part \"a=1=2\" has more than one '='"
        );
        assert_eq!(
            Tags::parse_datakit("=1").unwrap_err().to_string(),
            "part \"=1\" has an empty key"
        );
        assert_eq!(
            Tags::parse_datakit("a=").unwrap_err().to_string(),
            "tag \"a\" has an empty value"
        );
        assert_eq!(
            Tags::parse_datakit("a=1,a=2").unwrap_err().to_string(),
            "tag \"a\" is given more than once"
        );
    }

    #[test]
    fn env_form_escapes_and_round_trips() {
        let t = tags(&[("a,b", "x=y"), ("back\\slash", "v,"), ("plain", "p")]);
        let s = t.to_env_string();
        assert_eq!(s, "a\\,b=x\\=y,back\\\\slash=v\\,,plain=p");
        assert_eq!(Tags::parse_env(&s).unwrap(), t);
        assert_eq!(t.to_string(), s);
        assert!(Tags::parse_env("").unwrap().is_empty());
    }

    #[test]
    fn env_form_rejects_malformed_parts() {
        assert_eq!(
            Tags::parse_env("a=1\\").unwrap_err().to_string(),
            "a '\\' at the end escapes nothing"
        );
        assert_eq!(
            Tags::parse_env("a=\\n").unwrap_err().to_string(),
            "'\\n' is not an escape (only '\\,', '\\=' and '\\\\' are)"
        );
        assert_eq!(
            Tags::parse_env("a").unwrap_err(),
            TagError::MissingEquals { part: "a".into() }
        );
        assert_eq!(
            Tags::parse_env("a=b=c").unwrap_err(),
            TagError::ExtraEquals {
                part: "a=b=c".into()
            }
        );
        assert_eq!(
            Tags::parse_env("=c").unwrap_err(),
            TagError::EmptyKey { part: "=c".into() }
        );
        assert_eq!(
            Tags::parse_env("a=1,a=2").unwrap_err(),
            TagError::Duplicate { key: "a".into() }
        );
    }

    #[test]
    fn placeholders_resolve_from_caller_values() {
        let t = tags(&[
            ("host", PLACEHOLDER_HOSTNAME),
            ("ip", PLACEHOLDER_IP),
            ("x", "prefix__datakit_ip"),
        ]);
        let r = resolve_placeholders(&t, "node-a", Some("10.0.0.7")).unwrap();
        assert_eq!(
            r,
            tags(&[
                ("host", "node-a"),
                ("ip", "10.0.0.7"),
                ("x", "prefix__datakit_ip")
            ])
        );
        assert_eq!(
            resolve_placeholders(&t, "node-a", None)
                .unwrap_err()
                .to_string(),
            "tag \"ip\" uses __datakit_ip but no value for it is known"
        );
        assert_eq!(
            resolve_placeholders(&t, "", Some("1.2.3.4"))
                .unwrap_err()
                .to_string(),
            "tag \"host\" uses __datakit_hostname but no value for it is known"
        );
    }

    #[test]
    fn election_data_gets_election_tags_and_no_host_tags() {
        let election = tags(&[("project", "p")]);
        let host = tags(&[("host", "node-a"), ("cluster", "c")]);
        let rules = TagRules {
            election_enabled: true,
            election_tags: &election,
            namespace_tag: true,
            global_host_tags: &host,
        };
        let got = rules.for_task(true, "ns1", &Tags::new());
        assert_eq!(
            got,
            tags(&[("project", "p"), ("election_namespace", "ns1")])
        );
        assert_eq!(got.get("host"), None);
    }

    #[test]
    fn namespace_tag_only_when_enabled() {
        let election = tags(&[("project", "p")]);
        let host = Tags::new();
        let rules = TagRules {
            election_enabled: true,
            election_tags: &election,
            namespace_tag: false,
            global_host_tags: &host,
        };
        assert_eq!(rules.election_tags_for("ns1"), election);
    }

    #[test]
    fn non_election_task_and_disabled_election_get_host_tags() {
        let election = tags(&[("project", "p")]);
        let host = tags(&[("host", "node-a")]);
        let on = TagRules {
            election_enabled: true,
            election_tags: &election,
            namespace_tag: true,
            global_host_tags: &host,
        };
        assert_eq!(on.for_task(false, "ns", &Tags::new()), host);
        let off = TagRules {
            election_enabled: false,
            ..on
        };
        assert_eq!(off.for_task(true, "ns", &Tags::new()), host);
    }

    #[test]
    fn task_tags_win_over_global_and_point_tags_win_over_all() {
        let election = tags(&[("project", "p"), ("host", "from-election")]);
        let host = tags(&[("host", "node-a")]);
        let rules = TagRules {
            election_enabled: true,
            election_tags: &election,
            namespace_tag: false,
            global_host_tags: &host,
        };
        let task = tags(&[("host", "real-mysql-instance-name")]);
        let base = rules.for_task(true, "ns", &task);
        assert_eq!(base.get("host"), Some("real-mysql-instance-name"));
        let mut point = tags(&[("project", "from-point")]);
        apply_to_point(&mut point, &base);
        assert_eq!(point.get("project"), Some("from-point"));
        assert_eq!(point.get("host"), Some("real-mysql-instance-name"));
    }

    #[test]
    fn tags_map_helpers() {
        let mut t = Tags::new();
        assert_eq!(t.insert("a", "1"), None);
        assert_eq!(t.insert("a", "2"), Some("1".into()));
        assert_eq!(t.len(), 1);
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![("a", "2")]);
        assert_eq!(t.as_map().len(), 1);
        assert_eq!(t.remove("a"), Some("2".into()));
        assert!(t.is_empty());
        let json = serde_json::to_string(&tags(&[("k", "v")])).unwrap();
        assert_eq!(json, r#"{"k":"v"}"#);
    }
}
