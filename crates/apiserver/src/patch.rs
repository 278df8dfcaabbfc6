//! PATCH bodies: JSON merge patch, strategic merge patch and JSON patch applied to a stored object, and
//! parsing of server-side apply bodies, with the real kube-apiserver's error codes and messages.
//!
//! Entry points: [`PatchKind::from_content_type`], [`apply_patch`] and [`parse_apply_body`]. Server-side
//! apply itself (merging with field ownership) is `fields::apply`.
//!
//! Decoding errors are worded like the Go server's, which come from Go's `encoding/json`: see
//! [`go_json_syntax_error`], also useful for create/update bodies (`json parse error: invalid character 'n'
//! looking for beginning of object key string`).

use serde_json::{Map, Value};

use crate::go_text::go_type_name;

/// The real server's cap on JSON patch operations (`maxJSONPatchOperations`).
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Errors of [`apply_patch`] and [`parse_apply_body`]; each maps to a Status with [`PatchError::code`] and
/// [`PatchError::reason`], and its Display is the Status message.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not valid JSON, or not the JSON type this patch kind needs (400). The message is the real
    /// server's, e.g. `error decoding patch: invalid character 'n' looking for beginning of object key string`.
    #[error("{message}")]
    Decode {
        /// The full Status message.
        message: String,
    },
    /// A merge patch of `null` (400, evanphx/json-patch's `ErrBadJSONPatch`).
    #[error("Invalid JSON Patch")]
    InvalidMergePatch,
    /// A JSON patch with more operations than the real server accepts (413).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The cap, 10000.
        max: usize,
        /// The number of operations sent.
        got: usize,
    },
    /// A JSON patch operation that is not one (unknown `op`, missing `path` or `value`): 422 with the real
    /// server's generic message; the cause is kept for logs.
    #[error("the server rejected our request due to an error in our request")]
    InvalidOperation(#[source] serde_json::Error),
    /// A JSON patch operation that does not apply (missing path, failed `test`): 422 with the generic message,
    /// as corpus step 25 shows; the cause is kept for logs.
    #[error("the server rejected our request due to an error in our request")]
    OperationFailed(#[source] json_patch::PatchError),
    /// A strategic merge patch directive in the wrong shape (400), e.g. `invalid patch format of retainKeys`,
    /// or an unknown `$patch` value (the real server answers that one with a 500).
    #[error("{0}")]
    StrategicFormat(String),
    /// A strategic merge patch whose content names keys missing from its own `$retainKeys` (422, generic
    /// message; mergepatch's `ErrPatchContentNotMatchRetainKeys`).
    #[error("the server rejected our request due to an error in our request")]
    RetainKeysMismatch,
    /// An apply body that is not YAML/JSON for an object (400), worded like the real server's
    /// `error decoding YAML: ...`.
    #[error("{message}")]
    ApplyBody {
        /// The full Status message.
        message: String,
    },
    /// [`apply_patch`] was called with [`PatchKind::Apply`]: apply bodies go through `fields::apply`, since
    /// they need field ownership. A bug in the caller (500).
    #[error("server-side apply bodies are merged by fields::apply, not by apply_patch")]
    ApplyIsNotAPatch,
}

impl PatchError {
    /// The HTTP status code of the Status to answer.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::Decode { .. }
            | PatchError::InvalidMergePatch
            | PatchError::StrategicFormat(_)
            | PatchError::ApplyBody { .. } => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::InvalidOperation(_)
            | PatchError::OperationFailed(_)
            | PatchError::RetainKeysMismatch => 422,
            PatchError::ApplyIsNotAPatch => 500,
        }
    }

    /// The Status `reason` for [`PatchError::code`]: `BadRequest` (400), `RequestEntityTooLarge` (413),
    /// `Invalid` (422, sent with `"details":{}`), `InternalError` (500).
    pub fn reason(&self) -> &'static str {
        match self.code() {
            400 => "BadRequest",
            413 => "RequestEntityTooLarge",
            422 => "Invalid",
            _ => "InternalError",
        }
    }
}

/// The kind of a PATCH, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`: a merge patch that knows list merge keys and `$` directives.
    StrategicMerge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/apply-patch+yaml`: server-side apply, handled by `fields::apply`.
    Apply,
}

impl PatchKind {
    /// Maps a Content-Type (parameters such as `; charset=utf-8` ignored, case-insensitive) to a patch kind.
    /// `None` for anything else, including `application/apply-patch+cbor`, which the real server only accepts
    /// with a feature gate; answer those with 415 Unsupported Media Type.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::StrategicMerge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/apply-patch+yaml" => Some(PatchKind::Apply),
            _ => None,
        }
    }
}

/// Applies a merge, strategic merge or JSON patch `body` to `live` and returns the patched object.
///
/// Merge patches follow RFC 7386. Strategic merge patches are merge patches for types without patch
/// strategies (Lease, Event, Namespace), plus what ObjectMeta declares: `metadata.finalizers` merges as a set
/// and `metadata.ownerReferences` by `uid`. The directives `$patch` (`merge`/`replace`/`delete`),
/// `$retainKeys`, `$deleteFromPrimitiveList/<list>` and `$setElementOrder/<list>` (order ignored) are
/// honoured; malformed ones are errors, never panics. JSON patches follow RFC 6902 with the real server's
/// 10000-operation cap. `null` is an empty patch for strategic and JSON patches, and an error for merge
/// patches, as on the real server. [`PatchKind::Apply`] is refused: use `fields::apply`.
pub fn apply_patch(kind: PatchKind, live: &Value, body: &[u8]) -> Result<Value, PatchError> {
    match kind {
        PatchKind::Merge => merge_patch(live, body),
        PatchKind::StrategicMerge => strategic_merge_patch(live, body),
        PatchKind::Json => json_patch(live, body),
        PatchKind::Apply => Err(PatchError::ApplyIsNotAPatch),
    }
}

/// Parses a server-side apply body, YAML or JSON text, into a JSON object.
///
/// An empty body or `null` gives an empty object (the real server then fails on the missing kind and
/// apiVersion). YAML is read as YAML 1.2 (serde-saphyr), where the Go server reads YAML 1.1: `yes`/`no`
/// and `0755` differ, and only the first document of a stream is meaningful there.
pub fn parse_apply_body(body: &[u8]) -> Result<Value, PatchError> {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            return Err(PatchError::ApplyBody {
                message: format!("error decoding YAML: error converting YAML to JSON: yaml: {e}"),
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value = match serde_json::from_str::<Value>(text) {
        Ok(v) => v,
        Err(_) => serde_saphyr::from_str::<Value>(text).map_err(|e| PatchError::ApplyBody {
            message: format!("error decoding YAML: error converting YAML to JSON: yaml: {e}"),
        })?,
    };
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        other => Err(PatchError::ApplyBody {
            message: format!(
                "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                go_type_name(&other)
            ),
        }),
    }
}

/// Returns the message Go's `encoding/json` gives for `data` when it is not valid JSON (`invalid character
/// '}' after object key`, `unexpected end of JSON input`), or `None` when it is valid JSON. The real server's
/// decoding messages embed this text.
pub fn go_json_syntax_error(data: &[u8]) -> Option<String> {
    let mut scan = Scanner { b: data, i: 0 };
    let result = scan.value().and_then(|()| {
        scan.skip_ws();
        match scan.peek() {
            None => Ok(()),
            Some(c) => Err(Syntax::Bad(c, "after top-level value")),
        }
    });
    match result {
        Ok(()) => None,
        Err(Syntax::Eof) => Some("unexpected end of JSON input".to_owned()),
        Err(Syntax::Bad(c, context)) => {
            Some(format!("invalid character {} {context}", go_quote_char(c)))
        }
    }
}

// ----- merge patch -----

fn merge_patch(live: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch = decode(body, "error decoding patch: ")?;
    match &patch {
        Value::Object(_) => {
            let mut out = live.clone();
            json_patch::merge(&mut out, &patch);
            Ok(out)
        }
        Value::Null => Err(PatchError::InvalidMergePatch),
        other => Err(PatchError::Decode {
            message: format!(
                "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                go_type_name(other)
            ),
        }),
    }
}

// ----- JSON patch -----

fn json_patch(live: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch = decode(body, "error decoding patch: ")?;
    let ops = match patch {
        Value::Null => return Ok(live.clone()),
        Value::Array(ops) => ops,
        other => {
            return Err(PatchError::Decode {
                message: format!(
                    "error decoding patch: json: cannot unmarshal {} into Go value of type []handlers.jsonPatchOp",
                    go_type_name(&other)
                ),
            });
        }
    };
    for op in &ops {
        match op {
            Value::Null => {}
            Value::Object(fields) => {
                for name in ["op", "path", "from"] {
                    match fields.get(name) {
                        None | Some(Value::Null) | Some(Value::String(_)) => {}
                        Some(other) => {
                            return Err(PatchError::Decode {
                                message: format!(
                                    "error decoding patch: json: cannot unmarshal {} into Go struct field jsonPatchOp.{name} of type string",
                                    go_type_name(other)
                                ),
                            });
                        }
                    }
                }
            }
            other => {
                return Err(PatchError::Decode {
                    message: format!(
                        "error decoding patch: json: cannot unmarshal {} into Go value of type handlers.jsonPatchOp",
                        go_type_name(other)
                    ),
                });
            }
        }
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: ops.len(),
        });
    }
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(ops)).map_err(PatchError::InvalidOperation)?;
    // `json_patch::patch` undoes a failed patch and panics when the undo fails (json-patch 4.2.0, e.g. a
    // `move` to the root followed by a failing op); the clone gives atomicity, so skip its undo.
    let mut out = live.clone();
    json_patch::patch_unsafe(&mut out, &patch.0).map_err(PatchError::OperationFailed)?;
    Ok(out)
}

// ----- strategic merge patch -----

fn strategic_merge_patch(live: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch = match decode(body, "")? {
        Value::Object(map) => map,
        Value::Null => return Ok(live.clone()),
        other => {
            return Err(PatchError::Decode {
                message: format!(
                    "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    go_type_name(&other)
                ),
            });
        }
    };
    let mut out = match live {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("delete") {
        return Ok(Value::Object(Map::new()));
    }
    strategic_merge(&mut out, &patch, &mut Vec::new())?;
    Ok(Value::Object(out))
}

/// How a list merges in a strategic merge patch; everything not listed is replaced whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// `patchStrategy=merge` on a list of scalars: union, first occurrence kept.
    MergeScalars,
    /// `patchStrategy=merge` with a `patchMergeKey`: items merged by that key.
    MergeByKey(&'static str),
    /// No strategy: the patch's list replaces the original.
    Replace,
}

/// The list strategies ObjectMeta declares; Lease, Event and Namespace declare none of their own.
fn list_strategy(path: &[String]) -> ListStrategy {
    match path {
        [meta, field] if meta == "metadata" && field == "finalizers" => ListStrategy::MergeScalars,
        [meta, field] if meta == "metadata" && field == "ownerReferences" => {
            ListStrategy::MergeByKey("uid")
        }
        _ => ListStrategy::Replace,
    }
}

const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

fn strategic_merge(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<(), PatchError> {
    match patch.get("$patch") {
        None => {}
        Some(Value::String(s)) if s == "merge" => {}
        Some(Value::String(s)) if s == "replace" => {
            orig.clear();
        }
        Some(Value::String(s)) if s == "delete" => {
            orig.clear();
            return Ok(());
        }
        Some(other) => {
            return Err(PatchError::StrategicFormat(format!(
                "unknown patch type: {} in map: {}",
                other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_owned),
                Value::Object(patch.clone())
            )));
        }
    }
    if let Some(retain) = patch.get("$retainKeys") {
        let keys = retain
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(Value::as_str)
                    .collect::<Option<Vec<&str>>>()
            })
            .ok_or_else(|| {
                PatchError::StrategicFormat("invalid patch format of retainKeys".to_owned())
            })?;
        if patch
            .keys()
            .any(|k| !k.starts_with('$') && !keys.contains(&k.as_str()))
        {
            return Err(PatchError::RetainKeysMismatch);
        }
        orig.retain(|k, _| keys.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(gone) = value else {
                return Err(PatchError::StrategicFormat(
                    "invalid patch format of primitive list".to_owned(),
                ));
            };
            if let Some(Value::Array(items)) = orig.get_mut(list) {
                items.retain(|item| !gone.contains(item));
            }
        } else if key.starts_with(SET_ELEMENT_ORDER) && !value.is_array() {
            return Err(PatchError::StrategicFormat(
                "invalid patch format of setElementOrder list".to_owned(),
            ));
        }
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        path.push(key.clone());
        match value {
            Value::Null => {
                orig.remove(key);
            }
            Value::Object(inner) => {
                if inner.get("$patch").and_then(Value::as_str) == Some("delete") {
                    orig.remove(key);
                } else {
                    let mut target = match orig.remove(key) {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    };
                    strategic_merge(&mut target, inner, path)?;
                    orig.insert(key.clone(), Value::Object(target));
                }
            }
            Value::Array(items) => {
                let merged = merge_list(orig.remove(key), items, list_strategy(path), path)?;
                orig.insert(key.clone(), merged);
            }
            scalar => {
                orig.insert(key.clone(), scalar.clone());
            }
        }
        path.pop();
    }
    Ok(())
}

fn merge_list(
    orig: Option<Value>,
    patch: &[Value],
    strategy: ListStrategy,
    path: &mut Vec<String>,
) -> Result<Value, PatchError> {
    let mut items = match orig {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    match strategy {
        ListStrategy::Replace => Ok(Value::Array(patch.to_vec())),
        ListStrategy::MergeScalars => {
            for item in patch {
                if !items.contains(item) {
                    items.push(item.clone());
                }
            }
            Ok(Value::Array(items))
        }
        ListStrategy::MergeByKey(merge_key) => {
            if patch
                .iter()
                .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                items.clear();
            }
            for item in patch {
                let Value::Object(fields) = item else {
                    return Err(PatchError::StrategicFormat(format!(
                        "invalid JSON document: list item {item} of {} is not a map",
                        path.join(".")
                    )));
                };
                let directive = fields.get("$patch").and_then(Value::as_str);
                if directive == Some("replace") && fields.len() == 1 {
                    continue;
                }
                let Some(key) = fields.get(merge_key) else {
                    return Err(PatchError::StrategicFormat(format!(
                        "map: {item} does not contain declared merge key: {merge_key}"
                    )));
                };
                let found = items
                    .iter()
                    .position(|existing| existing.get(merge_key) == Some(key));
                if directive == Some("delete") {
                    items.retain(|existing| existing.get(merge_key) != Some(key));
                    continue;
                }
                let mut target = match found.map(|i| items.remove(i)) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                strategic_merge(&mut target, fields, path)?;
                match found {
                    Some(i) => items.insert(i, Value::Object(target)),
                    None => items.push(Value::Object(target)),
                }
            }
            Ok(Value::Array(items))
        }
    }
}

// ----- decoding with Go's messages -----

/// Decodes a patch body, answering syntax errors with Go's message after `prefix`.
fn decode(body: &[u8], prefix: &str) -> Result<Value, PatchError> {
    if let Some(msg) = go_json_syntax_error(body) {
        return Err(PatchError::Decode {
            message: format!("{prefix}{msg}"),
        });
    }
    serde_json::from_slice(body).map_err(|e| PatchError::Decode {
        message: format!("{prefix}{e}"),
    })
}

/// A JSON syntax error, as Go's scanner sees it.
enum Syntax {
    /// The input ended inside a value.
    Eof,
    /// An unexpected byte, with Go's description of what was expected.
    Bad(u8, &'static str),
}

/// A JSON syntax checker that fails where, and with the words, Go's `encoding/json` scanner does.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Result<u8, Syntax> {
        let c = self.peek().ok_or(Syntax::Eof)?;
        self.i += 1;
        Ok(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<(), Syntax> {
        self.skip_ws();
        match self.next()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string(),
            b'-' => match self.next()? {
                b'0' => self.after_int(),
                b'1'..=b'9' => {
                    self.digits();
                    self.after_int()
                }
                c => Err(Syntax::Bad(c, "in numeric literal")),
            },
            b'0' => self.after_int(),
            b'1'..=b'9' => {
                self.digits();
                self.after_int()
            }
            b't' => self.literal(&TRUE),
            b'f' => self.literal(&FALSE),
            b'n' => self.literal(&NULL),
            c => Err(Syntax::Bad(c, "looking for beginning of value")),
        }
    }

    fn object(&mut self) -> Result<(), Syntax> {
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            match self.next()? {
                b'"' => self.string()?,
                c => return Err(Syntax::Bad(c, "looking for beginning of object key string")),
            }
            self.skip_ws();
            match self.next()? {
                b':' => {}
                c => return Err(Syntax::Bad(c, "after object key")),
            }
            self.value()?;
            self.skip_ws();
            match self.next()? {
                b',' => {}
                b'}' => return Ok(()),
                c => return Err(Syntax::Bad(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> Result<(), Syntax> {
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value()?;
            self.skip_ws();
            match self.next()? {
                b',' => {}
                b']' => return Ok(()),
                c => return Err(Syntax::Bad(c, "after array element")),
            }
        }
    }

    fn string(&mut self) -> Result<(), Syntax> {
        loop {
            match self.next()? {
                b'"' => return Ok(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        for _ in 0..4 {
                            let c = self.next()?;
                            if !c.is_ascii_hexdigit() {
                                return Err(Syntax::Bad(c, "in \\u hexadecimal character escape"));
                            }
                        }
                    }
                    c => return Err(Syntax::Bad(c, "in string escape code")),
                },
                c if c < 0x20 => return Err(Syntax::Bad(c, "in string literal")),
                _ => {}
            }
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    /// After the integer part: an optional fraction and exponent. End of input here completes the number.
    fn after_int(&mut self) -> Result<(), Syntax> {
        if self.peek() == Some(b'.') {
            self.i += 1;
            match self.next()? {
                b'0'..=b'9' => self.digits(),
                c => return Err(Syntax::Bad(c, "after decimal point in numeric literal")),
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            match self.next()? {
                b'0'..=b'9' => self.digits(),
                c => return Err(Syntax::Bad(c, "in exponent of numeric literal")),
            }
        }
        Ok(())
    }

    /// The rest of `true`, `false` or `null`, each byte with Go's context for a mismatch.
    fn literal(&mut self, rest: &[(u8, &'static str)]) -> Result<(), Syntax> {
        for &(want, context) in rest {
            let c = self.next()?;
            if c != want {
                return Err(Syntax::Bad(c, context));
            }
        }
        Ok(())
    }
}

/// After `t`: the expected bytes of `true` and Go's context when another byte comes.
const TRUE: [(u8, &str); 3] = [
    (b'r', "in literal true (expecting 'r')"),
    (b'u', "in literal true (expecting 'u')"),
    (b'e', "in literal true (expecting 'e')"),
];
/// After `f`: the rest of `false`.
const FALSE: [(u8, &str); 4] = [
    (b'a', "in literal false (expecting 'a')"),
    (b'l', "in literal false (expecting 'l')"),
    (b's', "in literal false (expecting 's')"),
    (b'e', "in literal false (expecting 'e')"),
];
/// After `n`: the rest of `null`.
const NULL: [(u8, &str); 3] = [
    (b'u', "in literal null (expecting 'u')"),
    (b'l', "in literal null (expecting 'l')"),
    (b'l', "in literal null (expecting 'l')"),
];

/// Go's `quoteChar`: a byte in single quotes, escaped like `strconv.Quote` does for the rune of that value.
fn go_quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        b'\\' => r"'\\'".to_owned(),
        0x07 => r"'\a'".to_owned(),
        0x08 => r"'\b'".to_owned(),
        0x0c => r"'\f'".to_owned(),
        b'\n' => r"'\n'".to_owned(),
        b'\r' => r"'\r'".to_owned(),
        b'\t' => r"'\t'".to_owned(),
        0x0b => r"'\v'".to_owned(),
        c if c < 0x20 || c == 0x7f => format!(r"'\x{c:02x}'"),
        c if (0x80..=0xa0).contains(&c) || c == 0xad => format!(r"'\u{:04x}'", u32::from(c)),
        c => format!("'{}'", char::from(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "{not json",
                "invalid character 'n' looking for beginning of object key string",
            ),
            ("", "unexpected end of JSON input"),
            ("{\"a\":1", "unexpected end of JSON input"),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            (
                "[1,]",
                "invalid character ']' looking for beginning of value",
            ),
            ("{} x", "invalid character 'x' after top-level value"),
            ("tru", "unexpected end of JSON input"),
            (
                "trUe",
                "invalid character 'U' in literal true (expecting 'u')",
            ),
            (
                "nul!",
                "invalid character '!' in literal null (expecting 'l')",
            ),
            ("-x", "invalid character 'x' in numeric literal"),
            (
                "1.x",
                "invalid character 'x' after decimal point in numeric literal",
            ),
            ("1e+", "unexpected end of JSON input"),
            ("\"a\\q\"", "invalid character 'q' in string escape code"),
            (
                "\"\\u12g4\"",
                "invalid character 'g' in \\u hexadecimal character escape",
            ),
            ("\"a\nb\"", "invalid character '\\n' in string literal"),
            (
                "'x'",
                "invalid character '\\'' looking for beginning of value",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                go_json_syntax_error(input.as_bytes()).as_deref(),
                Some(*want),
                "input {input:?}"
            );
        }
        for ok in [
            "{}",
            "[]",
            "0",
            "-0.5e-3",
            "\"\\u00e9\"",
            " null ",
            "[true,false,{}]",
        ] {
            assert_eq!(go_json_syntax_error(ok.as_bytes()), None, "input {ok:?}");
        }
    }
}
