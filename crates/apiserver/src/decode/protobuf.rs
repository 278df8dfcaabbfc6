//! Reads the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`) of the objects kubectl's typed
//! clients create, into the JSON the rest of the server works on.
//!
//! kubectl 1.33 sends built-in kinds it creates through client-go's typed clientset as protobuf, and client-go
//! falls back to JSON only after a 415 for CBOR, not for protobuf. Of what we serve, that is only
//! `kubectl create namespace`, so only Namespace is read; other kinds answer 415. Only the fields a client
//! may set on create are read (name, generateName, namespace, labels, annotations, finalizers, spec, status
//! phase); server-set metadata is overwritten on create anyway.
//!
//! The envelope is the magic `k8s\0` followed by a `runtime.Unknown` message: `typeMeta` (1: apiVersion,
//! kind), `raw` (2: the object's own message), `contentEncoding` (3), `contentType` (4).

use serde_json::{Map, Value, json};

use crate::resource::ResourceType;
use crate::status::ApiError;

/// The media type of the Kubernetes protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The magic prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The body does not start with the `k8s\0` magic.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NoMagic,
    /// A field or varint runs past the end of its message.
    #[error("unexpected EOF")]
    Truncated,
    /// A wire type protobuf does not define (or the deprecated groups).
    #[error("proto: illegal wireType {0}")]
    WireType(u64),
    /// A string field is not UTF-8.
    #[error("proto: invalid UTF-8 in a string field")]
    Utf8,
}

/// One field's value on the wire.
enum Wire<'a> {
    Varint,
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of one message, in order: (number, value).
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ProtoError> {
    let mut out = vec![];
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let wire = match key & 7 {
            0 => {
                varint(&mut buf)?;
                Wire::Varint
            }
            1 => {
                buf = buf.get(8..).ok_or(ProtoError::Truncated)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| ProtoError::Truncated)?;
                let bytes = buf.get(..len).ok_or(ProtoError::Truncated)?;
                buf = &buf[len..];
                Wire::Bytes(bytes)
            }
            5 => {
                buf = buf.get(4..).ok_or(ProtoError::Truncated)?;
                Wire::Fixed
            }
            other => return Err(ProtoError::WireType(other)),
        };
        out.push((key >> 3, wire));
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, ProtoError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(ProtoError::Truncated)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ProtoError::Truncated)
}

fn string(bytes: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtoError::Utf8)
}

/// Sets `key` to a non-empty string, as Go's JSON encoding leaves empty `omitempty` strings out.
fn put_string(map: &mut Map<String, Value>, key: &str, bytes: &[u8]) -> Result<(), ProtoError> {
    let s = string(bytes)?;
    if !s.is_empty() {
        map.insert(key.into(), json!(s));
    }
    Ok(())
}

fn push_string(map: &mut Map<String, Value>, key: &str, bytes: &[u8]) -> Result<(), ProtoError> {
    let s = string(bytes)?;
    if let Some(list) = map.entry(key).or_insert_with(|| json!([])).as_array_mut() {
        list.push(json!(s));
    }
    Ok(())
}

/// One `map<string,string>` entry (1: key, 2: value) into `map[key]`.
fn put_entry(map: &mut Map<String, Value>, key: &str, bytes: &[u8]) -> Result<(), ProtoError> {
    let (mut k, mut v) = (String::new(), String::new());
    for (n, wire) in fields(bytes)? {
        match (n, wire) {
            (1, Wire::Bytes(b)) => k = string(b)?,
            (2, Wire::Bytes(b)) => v = string(b)?,
            _ => {}
        }
    }
    if let Some(m) = map.entry(key).or_insert_with(|| json!({})).as_object_mut() {
        m.insert(k, json!(v));
    }
    Ok(())
}

/// `ObjectMeta`: the fields a client sets on create.
fn object_meta(bytes: &[u8]) -> Result<Value, ProtoError> {
    let mut m = Map::new();
    for (n, wire) in fields(bytes)? {
        let Wire::Bytes(b) = wire else { continue };
        match n {
            1 => put_string(&mut m, "name", b)?,
            2 => put_string(&mut m, "generateName", b)?,
            3 => put_string(&mut m, "namespace", b)?,
            5 => put_string(&mut m, "uid", b)?,
            6 => put_string(&mut m, "resourceVersion", b)?,
            11 => put_entry(&mut m, "labels", b)?,
            12 => put_entry(&mut m, "annotations", b)?,
            14 => push_string(&mut m, "finalizers", b)?,
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// `core/v1 Namespace`: metadata (1), spec (2: finalizers 1), status (3: phase 1).
fn namespace(bytes: &[u8]) -> Result<Map<String, Value>, ProtoError> {
    let mut out = Map::new();
    for (n, wire) in fields(bytes)? {
        let Wire::Bytes(b) = wire else { continue };
        match n {
            1 => {
                out.insert("metadata".into(), object_meta(b)?);
            }
            2 => {
                let mut spec = Map::new();
                for (n, w) in fields(b)? {
                    if let (1, Wire::Bytes(f)) = (n, w) {
                        push_string(&mut spec, "finalizers", f)?;
                    }
                }
                out.insert("spec".into(), Value::Object(spec));
            }
            3 => {
                let mut status = Map::new();
                for (n, w) in fields(b)? {
                    if let (1, Wire::Bytes(p)) = (n, w) {
                        put_string(&mut status, "phase", p)?;
                    }
                }
                out.insert("status".into(), Value::Object(status));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The envelope: (apiVersion, kind, raw object bytes).
fn envelope(body: &[u8]) -> Result<(String, String, &[u8]), ProtoError> {
    let unknown = body.strip_prefix(MAGIC).ok_or(ProtoError::NoMagic)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, wire) in fields(unknown)? {
        match (n, wire) {
            (1, Wire::Bytes(tm)) => {
                for (n, w) in fields(tm)? {
                    match (n, w) {
                        (1, Wire::Bytes(b)) => api_version = string(b)?,
                        (2, Wire::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    Ok((api_version, kind, raw))
}

/// Decodes a protobuf body for `rt` into JSON (with `apiVersion` and `kind` from the envelope, for the usual
/// kind checks). 415 for kinds we do not read, 400 for bodies that are not valid protobuf.
pub fn decode(rt: &ResourceType, body: &[u8]) -> Result<Value, ApiError> {
    if rt.kind != "Namespace" {
        return Err(ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (this server reads {MEDIA_TYPE} only for Namespaces)"
            ),
            details: Some(json!({})),
        });
    }
    let bad = |e: ProtoError| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {e}",
            rt.kind
        ))
    };
    let (api_version, kind, raw) = envelope(body).map_err(bad)?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    obj.extend(namespace(raw).map_err(bad)?);
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{LEASES, NAMESPACES};

    /// What kubectl 1.33 sends for `kubectl create ns foo` (captured with -v=9).
    const CREATE_NS_FOO: &[u8] = b"k8s\0\n\x0f\n\x02v1\x12\tNamespace\x12\x1b\n\x13\n\x03foo\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x00\x1a\x02\n\x00\x1a\x00\"\x00";

    #[test]
    fn kubectl_create_namespace_body_decodes() {
        let v = decode(&NAMESPACES, CREATE_NS_FOO).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}, "spec": {}, "status": {}})
        );
    }

    #[test]
    fn labels_and_finalizers_decode() {
        // metadata{name:"a", labels{"k":"v"}}, spec{finalizers:["x"]}
        let meta = b"\n\x01a\x5a\x06\n\x01k\x12\x01v";
        let mut raw = vec![0x0a, meta.len() as u8];
        raw.extend_from_slice(meta);
        raw.extend_from_slice(b"\x12\x03\n\x01x");
        let mut body = b"k8s\0\n\x0f\n\x02v1\x12\tNamespace\x12".to_vec();
        body.push(raw.len() as u8);
        body.extend_from_slice(&raw);
        let v = decode(&NAMESPACES, &body).unwrap();
        assert_eq!(v["metadata"]["labels"], json!({"k": "v"}));
        assert_eq!(v["spec"]["finalizers"], json!(["x"]));
    }

    #[test]
    fn garbage_is_a_bad_request_and_other_kinds_unsupported() {
        assert_eq!(decode(&NAMESPACES, b"nope").unwrap_err().code, 400);
        assert_eq!(decode(&NAMESPACES, b"k8s\0\n\xff").unwrap_err().code, 400);
        assert_eq!(decode(&LEASES, CREATE_NS_FOO).unwrap_err().code, 415);
    }
}
