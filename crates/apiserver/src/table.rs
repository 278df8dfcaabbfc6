//! Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), which `kubectl get` asks for:
//! the server, not kubectl, decides the columns (NAME, HOLDER, AGE for Leases).

use serde_json::{Value, json};

use crate::meta;
use crate::request::Ctx;
use crate::resource::ResourceType;

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn column(name: &str, format: &str, description: &str) -> Value {
    json!({ "name": name, "type": "string", "format": format, "description": description, "priority": 0 })
}

/// The column definitions for a resource.
pub fn columns(rt: &ResourceType) -> Value {
    match rt.kind {
        "Lease" => json!([
            column("Name", "name", NAME_DESC),
            column(
                "Holder",
                "",
                "holderIdentity contains the identity of the holder of a current lease."
            ),
            column("Age", "", AGE_DESC),
        ]),
        "Namespace" => json!([
            column("Name", "name", NAME_DESC),
            column("Status", "", "The status of the namespace"),
            column("Age", "", AGE_DESC),
        ]),
        _ => json!([
            column("Last Seen", "", "Time when this Event was last observed"),
            column(
                "Type",
                "",
                "Type of this event (Normal, Warning), new types could be added in the future"
            ),
            column(
                "Reason",
                "",
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."
            ),
            column("Object", "", "The object that this event is about."),
            column(
                "Message",
                "",
                "A human-readable description of the status of this operation."
            ),
        ]),
    }
}

/// The cells of one row.
fn cells(rt: &ResourceType, obj: &Value) -> Value {
    let age = age(meta::meta_str(obj, "creationTimestamp"));
    match rt.kind {
        "Lease" => json!([
            meta::name(obj),
            meta::field_string(obj, "spec.holderIdentity"),
            age
        ]),
        "Namespace" => json!([
            meta::name(obj),
            meta::field_string(obj, "status.phase"),
            age
        ]),
        _ => {
            let (kind_field, regarding, message) = if rt.group.is_empty() {
                ("involvedObject", "involvedObject", "message")
            } else {
                ("regarding", "regarding", "note")
            };
            let object = format!(
                "{}/{}",
                meta::field_string(obj, &format!("{kind_field}.kind")).to_lowercase(),
                meta::field_string(obj, &format!("{regarding}.name"))
            );
            let seen = [
                obj.get("eventTime"),
                obj.get("lastTimestamp"),
                obj.get("deprecatedLastTimestamp"),
            ]
            .into_iter()
            .flatten()
            .find_map(Value::as_str)
            .map_or_else(|| age.clone(), self::age);
            json!([
                seen,
                meta::field_string(obj, "type"),
                meta::field_string(obj, "reason"),
                object,
                meta::field_string(obj, message)
            ])
        }
    }
}

/// The age of an RFC 3339 timestamp, as kubectl's AGE column shows it.
fn age(timestamp: &str) -> String {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().duration_since(t).as_secs()),
        Err(_) => "<unknown>".into(),
    }
}

/// apimachinery's `duration.HumanDuration`: `5s`, `3m20s`, `2d4h`, `3y`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// One row, with the object as `includeObject` asks (default: PartialObjectMetadata).
pub fn row(ctx: &Ctx, rt: &ResourceType, obj: &Value) -> Value {
    let mut row = json!({ "cells": cells(rt, obj) });
    match ctx.param("includeObject") {
        "None" => {}
        "Object" => row["object"] = obj.clone(),
        _ => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            })
        }
    }
    row
}

/// A Table of `objects`; `with_columns` is false for watch events after the first, as the real server does.
pub fn table(
    ctx: &Ctx,
    rt: &ResourceType,
    objects: &[Value],
    rv: &str,
    with_columns: bool,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": rv },
        "columnDefinitions": if with_columns { columns(rt) } else { json!([]) },
        "rows": objects.iter().map(|o| row(ctx, rt, o)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(3), "3s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(5 * 3600 + 60), "5h1m");
        assert_eq!(human_duration(3 * 86400), "3d");
        assert_eq!(human_duration(3 * 365 * 86400), "3y");
    }
}
