//! `metadata.managedFields` entries: their identity, reading them from an object, and writing them back sorted
//! like the real server, with the RFC 3339 time parsing that sorting needs. Separate from the entry points, which
//! decide what goes into the entries.

use serde_json::{Map, Value};

use super::conflicts::Operation;
use super::set::Set;

/// What identifies an entry, as the real server's manager identifier: Apply entries by manager alone (they
/// keep one entry across versions), Update entries by manager and apiVersion; both by subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EntryKey {
    pub(super) manager: String,
    /// `None` for an operation this code does not know (kept, never matched).
    pub(super) operation: Option<Operation>,
    operation_raw: String,
    pub(super) api_version: String,
    subresource: String,
}

impl EntryKey {
    pub(super) fn new(manager: &str, operation: Operation, api_version: &str) -> Self {
        EntryKey {
            manager: manager.to_owned(),
            operation: Some(operation),
            operation_raw: operation.as_str().to_owned(),
            api_version: api_version.to_owned(),
            subresource: String::new(),
        }
    }
}

/// One managedFields entry: its identity, time and set, and its JSON as read (written back untouched when
/// its set did not change).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) key: EntryKey,
    pub(super) time: Option<String>,
    pub(super) set: Set,
    raw: Map<String, Value>,
    pub(super) set_changed: bool,
}

impl Entry {
    pub(super) fn fresh(key: EntryKey, time: &str, set: Set) -> Self {
        Entry {
            key,
            time: Some(time.to_owned()),
            set,
            raw: Map::new(),
            set_changed: true,
        }
    }

    pub(super) fn matches(&self, key: &EntryKey) -> bool {
        self.key.manager == key.manager
            && self.key.operation == key.operation
            && self.key.subresource == key.subresource
            && (key.operation == Some(Operation::Apply) || self.key.api_version == key.api_version)
    }

    pub(super) fn replace_set(&mut self, set: Set) {
        if set != self.set {
            self.set = set;
            self.set_changed = true;
        }
    }

    fn encode(self) -> Value {
        let mut out = if self.set_changed {
            let mut out = Map::new();
            out.insert("manager".to_owned(), Value::String(self.key.manager));
            out.insert(
                "operation".to_owned(),
                Value::String(self.key.operation_raw),
            );
            out.insert("apiVersion".to_owned(), Value::String(self.key.api_version));
            out.insert(
                "fieldsType".to_owned(),
                Value::String("FieldsV1".to_owned()),
            );
            out.insert("fieldsV1".to_owned(), self.set.to_fields_v1());
            if !self.key.subresource.is_empty() {
                out.insert(
                    "subresource".to_owned(),
                    Value::String(self.key.subresource),
                );
            }
            out
        } else {
            self.raw
        };
        match self.time {
            Some(t) => {
                out.insert("time".to_owned(), Value::String(t));
            }
            None => {
                out.remove("time");
            }
        }
        Value::Object(out)
    }
}

pub(super) fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

/// Reads entries; entries that are not objects or whose fieldsV1 is unreadable get an empty set (and so are
/// dropped when written back).
pub(super) fn parse_entries(v: &Value) -> Vec<Entry> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    let text = |m: &Map<String, Value>, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|m| {
            let operation_raw = text(m, "operation");
            let fields_ok = m
                .get("fieldsType")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "FieldsV1");
            let set = m
                .get("fieldsV1")
                .filter(|_| fields_ok)
                .and_then(Set::from_fields_v1)
                .unwrap_or_default();
            Entry {
                key: EntryKey {
                    manager: text(m, "manager"),
                    operation: Operation::parse(&operation_raw),
                    operation_raw,
                    api_version: text(m, "apiVersion"),
                    subresource: text(m, "subresource"),
                },
                time: m.get("time").and_then(Value::as_str).map(str::to_owned),
                set,
                raw: m.clone(),
                set_changed: false,
            }
        })
        .collect()
}

/// Writes entries back, without empty ones, sorted like the real server; removes the key when none is left.
pub(super) fn set_managed_fields(obj: &mut Value, entries: Vec<Entry>) {
    let mut entries: Vec<Entry> = entries.into_iter().filter(|e| !e.set.is_empty()).collect();
    entries.sort_by(|a, b| {
        let ka = (
            &a.key.operation_raw,
            unix_seconds(a.time.as_deref()),
            &a.key.manager,
            &a.key.api_version,
            &a.key.subresource,
        );
        let kb = (
            &b.key.operation_raw,
            unix_seconds(b.time.as_deref()),
            &b.key.manager,
            &b.key.api_version,
            &b.key.subresource,
        );
        ka.cmp(&kb)
    });
    let Value::Object(map) = obj else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert(
            "managedFields".to_owned(),
            Value::Array(entries.into_iter().map(Entry::encode).collect()),
        );
    }
}

/// Whole seconds since the epoch of an RFC 3339 time (`2026-11-26T01:10:16Z`); 0 when absent or unreadable,
/// as the real server sorts entries without a time.
fn unix_seconds(time: Option<&str>) -> i64 {
    time.and_then(parse_rfc3339).unwrap_or(0)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-26T01:10:16Z"), Some(1_795_655_416));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00.5+01:00"), Some(0));
        assert_eq!(parse_rfc3339("nope"), None);
    }
}
