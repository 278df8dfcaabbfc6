//! Validation, as the real server's registry strategies do it, with the same messages.

use serde_json::Value;

use crate::resource::{ResourceType, View};
use crate::status::Cause;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`: the shape of a DNS-1123 label, and of each dot-separated part of a subdomain.
fn is_label_shape(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label(s: &str) -> bool {
    s.len() <= 63 && is_label_shape(s)
}

/// Whether `s` is a DNS-1123 subdomain (what most object names must be): apimachinery's `IsDNS1123Subdomain`, at
/// most 253 characters matching the regex. Unlike a DNS name, no dot-separated part is limited to 63 characters.
pub fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label_shape)
}

fn invalid(field: &str, value: &Value, msg: &str) -> Cause {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {shown}: {msg}"),
        field: Some(field.into()),
    }
}

/// Checks a name the way the real server does for this resource; an empty list means valid.
pub fn name(rt: &ResourceType, name: &str) -> Vec<Cause> {
    let (ok, msg) = if rt.namespaced {
        (is_subdomain(name), SUBDOMAIN_MSG)
    } else {
        (is_label(name), LABEL_MSG)
    };
    if ok {
        vec![]
    } else {
        let mut msg = msg.to_string();
        if name.len() > 253 {
            msg = "must be no more than 253 characters".into();
        }
        vec![invalid("metadata.name", &Value::String(name.into()), &msg)]
    }
}

fn int_field<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = cur.get(p)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// Validates an object of `rt` (after defaulting): name, labels and the resource's own rules.
pub fn object(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    let mut causes = name(rt, crate::meta::name(obj));
    causes.extend(labels(obj));
    if rt.kind == "Lease" {
        causes.extend(lease(obj));
    }
    if rt.view == View::Native && rt.kind == "Event" && rt.group == "events.k8s.io" {
        causes.extend(event(obj));
    }
    causes
}

fn labels(obj: &Value) -> Vec<Cause> {
    let mut causes = vec![];
    let Some(map) = obj
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
    else {
        return causes;
    };
    for (k, v) in map {
        let key_ok = {
            let (prefix, n) = match k.rsplit_once('/') {
                Some((p, n)) => (Some(p), n),
                None => (None, k.as_str()),
            };
            prefix.is_none_or(is_subdomain)
                && !n.is_empty()
                && n.len() <= 63
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                && n.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
                && n.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
        };
        if !key_ok {
            causes.push(invalid(
                "metadata.labels",
                &Value::String(k.clone()),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ));
        }
        let val_ok = match v {
            Value::String(s) => {
                s.is_empty()
                    || (s.len() <= 63
                        && s.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
                        })
                        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
                        && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric))
            }
            _ => false,
        };
        if !val_ok {
            causes.push(invalid(
                "metadata.labels",
                v,
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ));
        }
    }
    causes
}

fn lease(obj: &Value) -> Vec<Cause> {
    let mut causes = vec![];
    if let Some(v) = int_field(obj, &["spec", "leaseDurationSeconds"])
        && v.as_i64().is_none_or(|n| n <= 0)
    {
        {
            causes.push(invalid(
                "spec.leaseDurationSeconds",
                v,
                "must be greater than 0",
            ));
        }
    }
    if let Some(v) = int_field(obj, &["spec", "leaseTransitions"])
        && v.as_i64().is_none_or(|n| n < 0)
    {
        {
            causes.push(invalid(
                "spec.leaseTransitions",
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
    causes
}

fn event(obj: &Value) -> Vec<Cause> {
    let mut causes = vec![];
    if obj.get("eventTime").is_none_or(Value::is_null) {
        causes.push(Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: Some("eventTime".into()),
        });
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{LEASES, NAMESPACES};
    use serde_json::json;

    #[test]
    fn lease_rules_match_the_real_server() {
        let obj = json!({"metadata": {"name": "bad1"}, "spec": {"leaseDurationSeconds": -1, "leaseTransitions": -2}});
        let causes = object(&LEASES, &obj);
        assert_eq!(causes.len(), 2);
        assert_eq!(
            causes[0].message,
            "Invalid value: -1: must be greater than 0"
        );
        assert_eq!(causes[1].field.as_deref(), Some("spec.leaseTransitions"));
    }

    #[test]
    fn names_follow_dns_rules() {
        assert!(name(&LEASES, "a.b-c").is_empty());
        assert_eq!(name(&LEASES, "Bad_Name").len(), 1);
        assert_eq!(name(&NAMESPACES, "a.b").len(), 1);
        assert!(name(&NAMESPACES, "a-b").is_empty());
        // A subdomain's parts are not limited to 63 characters (apimachinery's IsDNS1123Subdomain); its whole is.
        assert!(name(&LEASES, &"a".repeat(64)).is_empty());
        assert!(!name(&LEASES, &"a".repeat(254)).is_empty());
        assert_eq!(name(&NAMESPACES, &"a".repeat(64)).len(), 1);
    }
}
