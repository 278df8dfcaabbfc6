//! Deriving a group-version's OpenAPI v3 document from the v2 paths, the way kube-openapi's builder does
//! (`in: body` parameters become request bodies, `produces` become content types, refs move to
//! `#/components/schemas/`), keeping only the schemas its paths reach, and the hash that versions each document.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{V2_REF, V3_REF};
use crate::discovery::GIT_VERSION;

/// The v3 document of one group-version, derived from the v2 paths under it.
pub(super) fn v3_document(
    gv: &str,
    paths: &Map<String, Value>,
    definitions: &Map<String, Value>,
) -> Value {
    let prefix = format!("/{gv}/");
    let mut out = Map::new();
    for (path, item) in paths.iter().filter(|(p, _)| p.starts_with(&prefix)) {
        out.insert(path.clone(), v3_path_item(item));
    }
    let mut wanted = BTreeSet::new();
    collect_refs(&Value::Object(out.clone()), &mut wanted);
    let mut schemas = Map::new();
    let mut queue: Vec<String> = wanted.iter().cloned().collect();
    while let Some(name) = queue.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        if let Some(schema) = definitions.get(&name) {
            let converted = rewrite_refs(schema);
            let mut found = BTreeSet::new();
            collect_refs(&converted, &mut found);
            queue.extend(found.into_iter().filter(|n| !schemas.contains_key(n)));
            schemas.insert(name, converted);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": GIT_VERSION },
        "paths": out,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": { "type": "apiKey", "name": "authorization", "in": "header",
                                 "description": "Bearer token authentication" }
            }
        },
    })
}

fn v3_path_item(item: &Value) -> Value {
    let mut out = Map::new();
    let Some(map) = item.as_object() else {
        return item.clone();
    };
    for (key, value) in map {
        let converted = if key == "parameters" {
            json!(
                value
                    .as_array()
                    .map(|ps| ps.iter().map(v3_parameter).collect::<Vec<_>>())
                    .unwrap_or_default()
            )
        } else {
            v3_operation(value)
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
}

fn v3_parameter(p: &Value) -> Value {
    let mut out = Map::new();
    let mut schema = Map::new();
    if let Some(map) = p.as_object() {
        for (k, v) in map {
            match k.as_str() {
                "type" | "uniqueItems" | "format" => {
                    schema.insert(k.clone(), v.clone());
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    out.insert("schema".into(), Value::Object(schema));
    Value::Object(out)
}

fn media_content(types: &[Value], schema: &Value) -> Value {
    let mut content = Map::new();
    for t in types.iter().filter_map(Value::as_str) {
        content.insert(t.to_string(), json!({ "schema": schema }));
    }
    Value::Object(content)
}

fn v3_operation(op: &Value) -> Value {
    let Some(map) = op.as_object() else {
        return op.clone();
    };
    let empty = vec![];
    let consumes = map
        .get("consumes")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let produces = map
        .get("produces")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "consumes" | "produces" | "schemes" => {}
            "parameters" => {
                let mut params = vec![];
                for p in v.as_array().unwrap_or(&empty) {
                    if p.get("in").and_then(Value::as_str) == Some("body") {
                        let schema = rewrite_refs(p.get("schema").unwrap_or(&Value::Null));
                        out.insert(
                            "requestBody".into(),
                            json!({ "content": media_content(consumes, &schema), "required": true }),
                        );
                    } else {
                        params.push(v3_parameter(p));
                    }
                }
                out.insert("parameters".into(), json!(params));
            }
            "responses" => {
                let mut rs = Map::new();
                for (code, r) in v.as_object().into_iter().flatten() {
                    let mut converted = json!({ "description": r.get("description").cloned().unwrap_or(json!("")) });
                    if let Some(schema) = r.get("schema") {
                        converted["content"] = media_content(produces, &rewrite_refs(schema));
                    }
                    rs.insert(code.clone(), converted);
                }
                out.insert("responses".into(), Value::Object(rs));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A copy of `v` with every v2 `$ref` pointing into `components/schemas`.
fn rewrite_refs(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => (k.clone(), json!(r.replacen(V2_REF, V3_REF, 1))),
                    _ => (k.clone(), rewrite_refs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rewrite_refs).collect()),
        other => other.clone(),
    }
}

/// The schema names every `$ref` in `v` points at (either form).
pub(super) fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => {
                        let name = r
                            .strip_prefix(V3_REF)
                            .or_else(|| r.strip_prefix(V2_REF))
                            .unwrap_or(r);
                        out.insert(name.to_string());
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// A stable, opaque digest of a document (FNV-1a, 64 bits, twice with different seeds), upper-case hex like
/// the real server's. It changes exactly when the document's JSON does, which is all clients rely on.
pub(super) fn hash(doc: &Value) -> String {
    let bytes = doc.to_string();
    let fnv = |seed: u64| {
        bytes.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016X}{:016X}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}
