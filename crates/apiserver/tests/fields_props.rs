//! Properties over arbitrary JSON: nothing panics, and ownership only ever names fields the object has.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use leasehold_apiserver::fields::{Schema, apply, record_update};
use leasehold_apiserver::patch::{PatchKind, apply_patch, parse_apply_body};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const V1: &str = "coordination.k8s.io/v1";

/// Arbitrary JSON, with few distinct keys so that objects overlap, including metadata-like shapes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(|n| json!(n)),
        "[a-c]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("spec".to_owned()),
                    Just("metadata".to_owned()),
                    Just("labels".to_owned()),
                    Just("regarding".to_owned()),
                    Just("status".to_owned()),
                    "[a-d]",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn schemas() -> impl Strategy<Value = Schema> {
    prop_oneof![
        Just(Schema::lease()),
        Just(Schema::event()),
        Just(Schema::namespace()),
        Just(Schema::new().with_atomic(&["spec", "a"])),
    ]
}

/// Follows a FieldsV1 set through the object: every `f:` key must lead to a non-null value, and a `"."`
/// must sit on an object.
fn check_set(fields: &Value, obj: &Value, at: &str) -> Result<(), String> {
    let Value::Object(map) = fields else {
        return Err(format!("{at}: FieldsV1 node is not an object"));
    };
    for (key, inner) in map {
        if key == "." {
            if !obj.is_object() {
                return Err(format!("{at}: '.' on a non-object"));
            }
            continue;
        }
        let name = key
            .strip_prefix("f:")
            .ok_or(format!("{at}: unexpected key {key}"))?;
        let child = obj.get(name).filter(|v| !v.is_null());
        let Some(child) = child else {
            return Err(format!("{at}.{name}: owned but not in the object"));
        };
        check_set(inner, child, &format!("{at}.{name}"))?;
    }
    Ok(())
}

fn check_all(obj: &Value) -> Result<(), String> {
    let Some(entries) = obj.get("metadata").and_then(|m| m.get("managedFields")) else {
        return Ok(());
    };
    for e in entries.as_array().ok_or("managedFields not an array")? {
        check_set(&e["fieldsV1"], obj, "")?;
        if e["fieldsV1"].as_object().is_none_or(Map::is_empty) {
            return Err("empty entry kept".to_owned());
        }
    }
    Ok(())
}

fn strip_managed_fields(v: &mut Value) {
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
    }
}

proptest! {
    #[test]
    fn record_update_never_panics(old in json_value(), new in json_value(), schema in schemas()) {
        let mut new = new;
        record_update(Some(&old), &mut new, "m", V1, "2026-01-01T00:00:00Z", &schema);
        let mut again = new.clone();
        record_update(None, &mut again, "m", V1, "garbage time", &schema);
    }

    #[test]
    fn record_update_only_owns_present_fields(
        steps in prop::collection::vec((json_value(), 0usize..3), 1..5),
        schema in schemas(),
    ) {
        let mut live: Option<Value> = None;
        for (i, (value, who)) in steps.into_iter().enumerate() {
            let mut new = if value.is_object() { value } else { json!({"spec": value}) };
            strip_managed_fields(&mut new);
            let time = format!("2026-01-01T00:00:{i:02}Z");
            record_update(live.as_ref(), &mut new, ["a", "b", "c"][who], V1, &time, &schema);
            prop_assert_eq!(check_all(&new), Ok(()));
            live = Some(new);
        }
    }

    #[test]
    fn apply_never_panics_and_only_owns_present_fields(
        steps in prop::collection::vec((json_value(), 0usize..3, any::<bool>()), 1..5),
        schema in schemas(),
    ) {
        let mut live: Option<Value> = None;
        for (value, who, force) in steps {
            let mut body = if value.is_object() { value } else { json!({"spec": value}) };
            strip_managed_fields(&mut body);
            body["apiVersion"] = json!(V1);
            if let Ok(out) = apply(live.as_ref(), &body, ["a", "b", "c"][who], force, V1, "2026-01-01T00:00:00Z", &schema) {
                prop_assert_eq!(check_all(&out), Ok(()));
                live = Some(out);
            }
        }
        // A raw body of any shape is refused or applied, never a panic.
        let _ = apply(live.as_ref(), &json!([1, {"a": null}]), "z", true, V1, "t", &schema);
    }

    #[test]
    fn patches_never_panic_on_json(live in json_value(), body in json_value()) {
        let bytes = serde_json::to_vec(&body).expect("serialize");
        for kind in [PatchKind::Merge, PatchKind::StrategicMerge, PatchKind::Json, PatchKind::Apply] {
            let _ = apply_patch(kind, &live, &bytes);
        }
        let _ = parse_apply_body(&bytes);
    }

    #[test]
    fn patches_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let live = json!({"spec": {"a": 1}});
        for kind in [PatchKind::Merge, PatchKind::StrategicMerge, PatchKind::Json] {
            let _ = apply_patch(kind, &live, &bytes);
        }
        let _ = parse_apply_body(&bytes);
    }

    #[test]
    fn json_patches_with_real_ops_never_panic(
        ops in prop::collection::vec(
            (prop_oneof![Just("add"), Just("remove"), Just("replace"), Just("move"), Just("copy"), Just("test")],
             "(/[a-c0-9-]{0,2}){0,3}", "(/[a-c0-9-]{0,2}){0,3}", json_value()),
            0..4),
        live in json_value(),
    ) {
        let body: Vec<Value> = ops
            .into_iter()
            .map(|(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}))
            .collect();
        let _ = apply_patch(PatchKind::Json, &live, &serde_json::to_vec(&body).expect("serialize"));
    }
}
