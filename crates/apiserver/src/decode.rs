//! Decoding request bodies into objects, with the real server's errors for malformed JSON or YAML and for
//! objects of the wrong kind.

use serde_json::Value;

use crate::resource::ResourceType;
use crate::status::ApiError;

/// The body size above which requests answer 413, as kube-apiserver's 3 MiB limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Parses a JSON or YAML body (by content type) into a value, without kind checks.
pub fn parse(rt: &ResourceType, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
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

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Object(_) => "object",
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
