//! Decoding request bodies into objects, with the real server's errors for malformed JSON or YAML and for
//! objects of the wrong kind, and its `fieldValidation` handling of fields the schema does not know.
//!
//! Unknown fields are found by walking the body along the OpenAPI schema the server publishes
//! ([`crate::openapi`]), so what kubectl is told a Lease looks like and what the server accepts cannot drift
//! apart. Like the real server, `Ignore` and `Warn` (the default) drop unknown fields, `Warn` also answers a
//! `Warning` header for each, and `Strict` fails the request.
//!
//! kubectl 1.33's typed clients (`kubectl create namespace`) send protobuf; [`parse`] reads the few kinds
//! they create (Namespace) through [`protobuf`], and answers 415 for the rest.

use crate::go_text::{go_quote, go_type_name};
use serde_json::{Value, json};

use crate::openapi;
use crate::request::Ctx;
use crate::resource::ResourceType;
use crate::status::{ApiError, Cause};

mod protobuf;

/// The body size above which requests answer 413, as kube-apiserver's 3 MiB limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Parses a JSON or YAML body (by content type) into a value, without kind checks.
pub fn parse(rt: &ResourceType, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == protobuf::MEDIA_TYPE {
        return protobuf::decode(rt, body);
    }
    if media == "application/yaml" {
        return serde_saphyr::from_slice::<Value>(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): couldn't get version/kind; yaml parse error: {e}",
                rt.kind
            ))
        });
    }
    serde_json::from_slice::<Value>(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {} ({})",
            rt.kind,
            crate::patch::go_json_syntax_error(body).unwrap_or_else(|| e.to_string()),
            excerpt(body)
        ))
    })
}

/// Parses a body that must be one object of `rt` (by content type), checking `kind` and `apiVersion`.
pub fn object(rt: &ResourceType, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let value = parse(rt, content_type, body)?;
    check_kind(rt, &value, body)?;
    Ok(value)
}

/// Checks that a decoded value is an object of `rt`.
pub fn check_kind(rt: &ResourceType, value: &Value, body: &[u8]) -> Result<(), ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }} ({})",
            rt.kind,
            go_type_name(value),
            excerpt(body)
        )));
    }
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            String::from_utf8_lossy(body).trim()
        )));
    }
    if kind != rt.kind || api_version != rt.api_version() {
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {}: converting ({version}.{kind}) to ({}.{}): unknown conversion",
            rt.kind, rt.internal_group, rt.kind
        )));
    }
    Ok(())
}

/// What the server does with fields the schema does not know (`?fieldValidation=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and answer a `Warning` header for each: the default, as on the real server.
    Warn,
    /// Fail the request (what kubectl sends for `apply` and `create`).
    Strict,
}

impl FieldValidation {
    /// The directive a request asks for; empty and unrecognised values mean `Warn`.
    pub fn of(ctx: &Ctx) -> Self {
        match ctx.param("fieldValidation") {
            "Ignore" => Self::Ignore,
            "Strict" => Self::Strict,
            _ => Self::Warn,
        }
    }
}

/// Decodes a create or update body (checked like [`object`]) and applies the request's `fieldValidation`:
/// unknown fields answer 400 with `Strict`, else they are dropped (with a warning for `Warn`).
pub fn object_validated(ctx: &Ctx) -> Result<Value, ApiError> {
    let rt = ctx.req.rt;
    let mut value = object(rt, &ctx.content_type, &ctx.body)?;
    let unknown = drop_unknown_fields(rt, &mut value)?;
    if unknown.is_empty() {
        return Ok(value);
    }
    match FieldValidation::of(ctx) {
        FieldValidation::Strict => {
            let version = rt.version;
            Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: {}",
                strict_error(&unknown),
                kind = rt.kind
            )))
        }
        FieldValidation::Warn => {
            unknown.iter().for_each(|f| ctx.warn(unknown_field(f)));
            Ok(value)
        }
        FieldValidation::Ignore => Ok(value),
    }
}

/// Applies the request's `fieldValidation` to the result of a JSON, merge or strategic merge patch (in the
/// view's form): with `Strict` an unknown field answers 422 naming the `patch` field, like the real server's
/// patch handlers; otherwise it is dropped (with a warning for `Warn`).
pub fn patched_validated(ctx: &Ctx, patched: &mut Value) -> Result<(), ApiError> {
    let rt = ctx.req.rt;
    let unknown = drop_unknown_fields(rt, patched)?;
    if unknown.is_empty() {
        return Ok(());
    }
    match FieldValidation::of(ctx) {
        FieldValidation::Strict => {
            // The real server quotes the patch as Go prints the decoded map (strategic merge) or the patched
            // object's JSON (merge and JSON patches).
            let media = ctx.content_type.split(';').next().unwrap_or("").trim();
            let quoted = if media == "application/strategic-merge-patch+json" {
                serde_json::from_slice::<Value>(&ctx.body)
                    .map(|v| go_format(&v))
                    .unwrap_or_default()
            } else {
                patched.to_string()
            };
            let message = format!(
                "Invalid value: {}: {}",
                go_quote(&quoted),
                strict_error(&unknown)
            );
            let cause = Cause {
                reason: "FieldValueInvalid".into(),
                message: message.clone(),
                field: Some("patch".into()),
            };
            Err(ApiError {
                code: 422,
                reason: "Invalid",
                message: format!(" \"\" is invalid: patch: {message}"),
                details: Some(json!({ "causes": crate::status::causes_json(&[cause]) })),
            })
        }
        FieldValidation::Warn => {
            unknown.iter().for_each(|f| ctx.warn(unknown_field(f)));
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

/// Server-side apply knows only the schema's fields, whatever `fieldValidation` says: an unknown one answers
/// 400, as the real field manager fails to build its typed patch.
pub fn applied_validated(rt: &ResourceType, applied: &Value) -> Result<(), ApiError> {
    let mut copy = applied.clone();
    let unknown = drop_unknown_fields(rt, &mut copy)?;
    if unknown.is_empty() {
        return Ok(());
    }
    let group = if rt.group.is_empty() {
        String::new()
    } else {
        rt.group.to_string()
    };
    Err(ApiError::bad_request(format!(
        "failed to create typed patch object ({group}/{}, Kind={}): {}",
        rt.version,
        rt.kind,
        unknown
            .iter()
            .map(|f| format!(".{f}: field not declared in schema"))
            .collect::<Vec<_>>()
            .join("\n")
    )))
}

/// `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`.
fn strict_error(unknown: &[String]) -> String {
    format!(
        "strict decoding error: {}",
        unknown
            .iter()
            .map(|f| unknown_field(f))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn unknown_field(path: &str) -> String {
    format!("unknown field \"{path}\"")
}

/// Removes every field of `value` that `rt`'s schema does not declare, returning their paths as the real
/// strict decoder names them (`spec.foo`, `metadata.ownerReferences[0].bar`).
pub fn drop_unknown_fields(rt: &ResourceType, value: &mut Value) -> Result<Vec<String>, ApiError> {
    let name = openapi::schema_name(rt);
    let schema = openapi::definition(&name)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::internal(format!("no OpenAPI schema {name}")))?;
    let mut unknown = vec![];
    walk(value, schema, "", &mut unknown)?;
    Ok(unknown)
}

/// Resolves a `$ref` (the definitions use v2 form) to its schema.
fn resolve(schema: &'static Value) -> Result<&'static Value, ApiError> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/definitions/");
            openapi::definition(name)
                .map_err(|e| ApiError::internal(e.to_string()))?
                .ok_or_else(|| ApiError::internal(format!("dangling OpenAPI $ref {r}")))
        }
        None => Ok(schema),
    }
}

fn walk(
    value: &mut Value,
    schema: &'static Value,
    path: &str,
    unknown: &mut Vec<String>,
) -> Result<(), ApiError> {
    let schema = resolve(schema)?;
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let mut drop = vec![];
                for (key, child) in map.iter_mut() {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match props.get(key) {
                        Some(child_schema) => walk(child, child_schema, &child_path, unknown)?,
                        None => {
                            unknown.push(child_path);
                            drop.push(key.clone());
                        }
                    }
                }
                for key in drop {
                    map.remove(&key);
                }
            } else if let Some(items) = schema.get("additionalProperties") {
                for (key, child) in map.iter_mut() {
                    walk(child, items, &format!("{path}[{key}]"), unknown)?;
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), unknown)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A decoded JSON value as Go's `%+v` prints a `map[string]interface{}`: `map[spec:map[foo:1]]`.
fn go_format(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_format(&map[k])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_format).collect::<Vec<_>>().join(" ")
        ),
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// The start of a body, as the real server quotes it in decode errors.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(100).collect();
    if text.chars().count() > 100 {
        s.push_str(" ...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::LEASES;

    #[test]
    fn malformed_json_reads_like_go() {
        let err = object(&LEASES, "application/json", b"{not json").unwrap_err();
        assert_eq!(
            err.message,
            "the object provided is unrecognized (must be of type Lease): couldn't get version/kind; json parse error: invalid character 'n' looking for beginning of object key string ({not json)"
        );
    }

    #[test]
    fn wrong_kind_is_a_bad_request() {
        let err = object(
            &LEASES,
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x3"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "ConfigMap in version \"v1\" cannot be handled as a Lease: converting (v1.ConfigMap) to (coordination.Lease): unknown conversion"
        );
    }
}
