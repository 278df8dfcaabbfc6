//! Reading and checking the fields of one manifest object: typed getters that name the field path in their
//! errors, label selectors, and the API server's rule and subject validation with its wording. Separate from
//! `load` so that the walk over documents reads on its own.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::load::RBAC_GROUP;
use super::model::{PolicyRule, Subject};
use crate::go_text::go_quote;
use crate::selector::LabelSelector;

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// `path.key`, or just `key` at the top level: the field paths used in error messages.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn as_obj<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(format!(
            "{path}: expected a mapping, found {}",
            json_type(other)
        )),
    }
}

/// An optional mapping field (`null` counts as absent).
pub(super) fn get_obj<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_obj(v, &join(path, key)).map(Some),
    }
}

/// An optional list field (`null` counts as empty).
pub(super) fn get_list<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a [Value], String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(format!(
            "{}: expected a list, found {}",
            join(path, key),
            json_type(other)
        )),
    }
}

/// An optional string field (`null` counts as absent).
pub(super) fn get_str(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "{}: expected a string, found {}",
            join(path, key),
            json_type(other)
        )),
    }
}

/// An optional list-of-strings field.
pub(super) fn get_strings(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Vec<String>, String> {
    let path = join(path, key);
    let list = match o.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(format!(
                "{path}: expected a list of strings, found {}",
                json_type(other)
            ));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "{path}[{i}]: expected a string, found {}",
                json_type(other)
            )),
        })
        .collect()
}

/// An optional string-to-string mapping field (labels, matchLabels).
pub(super) fn get_string_map(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<BTreeMap<String, String>, String> {
    let path = join(path, key);
    let Some(m) =
        get_obj(o, key, "").map_err(|_| format!("{path}: expected a mapping of strings"))?
    else {
        return Ok(BTreeMap::new());
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!(
                "{path}.{k}: expected a string, found {}",
                json_type(other)
            )),
        })
        .collect()
}

/// A `metav1.LabelSelector` (`matchLabels`, `matchExpressions`) as a [`LabelSelector`].
pub(super) fn label_selector(v: &Value, path: &str) -> Result<LabelSelector, String> {
    let o = as_obj(v, path)?;
    let match_labels = get_string_map(o, "matchLabels", path)?;
    let mut exprs = Vec::new();
    for (i, e) in get_list(o, "matchExpressions", path)?.iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let e = as_obj(e, &p)?;
        exprs.push((
            get_str(e, "key", &p)?.unwrap_or_default(),
            get_str(e, "operator", &p)?.unwrap_or_default(),
            get_strings(e, "values", &p)?,
        ));
    }
    LabelSelector::from_match(&match_labels, &exprs).map_err(|e| format!("{path}: {e}"))
}

pub(super) fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let end_ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.len() <= 63
        && b.first().is_some_and(end_ok)
        && b.last().is_some_and(end_ok)
        && b.iter().all(|c| end_ok(c) || *c == b'-')
}

/// The API server's `ValidatePolicyRule`, with its wording.
pub(super) fn validate_rule(r: &PolicyRule, cluster: bool) -> Result<(), String> {
    if r.verbs.is_empty() {
        return Err("verbs: Required value: verbs must contain at least one value".to_string());
    }
    if !r.non_resource_urls.is_empty() {
        if !cluster {
            return Err(
                "nonResourceURLs: Invalid value: namespaced rules cannot apply to non-resource URLs"
                    .to_string(),
            );
        }
        if !r.api_groups.is_empty() || !r.resources.is_empty() || !r.resource_names.is_empty() {
            return Err(
                "nonResourceURLs: Invalid value: rules cannot apply to both regular resources and non-resource URLs"
                    .to_string(),
            );
        }
        return Ok(());
    }
    if r.api_groups.is_empty() {
        return Err(
            "apiGroups: Required value: resource rules must supply at least one api group"
                .to_string(),
        );
    }
    if r.resources.is_empty() {
        return Err(
            "resources: Required value: resource rules must supply at least one resource"
                .to_string(),
        );
    }
    Ok(())
}

/// Checks one binding subject like the API server's `ValidateRoleBindingSubject`.
pub(super) fn subject(v: &Value, path: &str, cluster: bool) -> Result<Subject, String> {
    let o = as_obj(v, path)?;
    let kind = get_str(o, "kind", path)?.unwrap_or_default();
    let name = get_str(o, "name", path)?.unwrap_or_default();
    let group = get_str(o, "apiGroup", path)?.unwrap_or_default();
    let namespace = get_str(o, "namespace", path)?.filter(|n| !n.is_empty());
    if name.is_empty() {
        return Err(format!("{path}.name: Required value"));
    }
    match kind.as_str() {
        "ServiceAccount" => {
            if !group.is_empty() {
                return Err(format!(
                    "{path}.apiGroup: Unsupported value: {}: supported values: \"\"",
                    go_quote(&group)
                ));
            }
            if cluster && namespace.is_none() {
                return Err(format!("{path}.namespace: Required value"));
            }
            Ok(Subject::ServiceAccount { namespace, name })
        }
        "User" | "Group" => {
            // An omitted apiGroup is accepted: the API server defaults it for these kinds.
            if !group.is_empty() && group != RBAC_GROUP {
                return Err(format!(
                    "{path}.apiGroup: Unsupported value: {}: supported values: \"rbac.authorization.k8s.io\"",
                    go_quote(&group)
                ));
            }
            Ok(if kind == "User" {
                Subject::User(name)
            } else {
                Subject::Group(name)
            })
        }
        other => Err(format!(
            "{path}.kind: Unsupported value: {}: supported values: \"ServiceAccount\", \"User\", \"Group\"",
            go_quote(other)
        )),
    }
}
