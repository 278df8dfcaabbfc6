//! Events are stored once, in the `events.k8s.io/v1` form, and also served as core v1 Events.
//!
//! kube-runtime's Recorder writes `events.k8s.io/v1`, while `kubectl describe` reads core v1 with a field
//! selector on `involvedObject.*`; the real server converts between the two through its internal type, and so
//! do we, field by field.

use serde_json::{Map, Value, json};

/// Pairs of (events.k8s.io/v1 field, core v1 field) that carry the same data under different names.
const RENAMED: &[(&str, &str)] = &[
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Fields both forms share unchanged.
const SHARED: &[&str] = &[
    "metadata",
    "eventTime",
    "series",
    "related",
    "action",
    "reason",
    "reportingInstance",
    "type",
];

/// Fills in what the real server defaults on an `events.k8s.io/v1` Event, so stored objects look like its answers.
pub fn default_stored(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.entry("deprecatedFirstTimestamp").or_insert(Value::Null);
        map.entry("deprecatedLastTimestamp").or_insert(Value::Null);
        map.entry("deprecatedSource").or_insert(json!({}));
    }
}

/// The core v1 view of a stored event.
pub fn to_core(stored: &Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!("Event"));
    out.insert("apiVersion".into(), json!("v1"));
    convert(stored, &mut out, |(new, old)| (new, old));
    Value::Object(out)
}

/// The stored (`events.k8s.io/v1`) form of a core v1 Event.
pub fn from_core(core: &Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!("Event"));
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    convert(core, &mut out, |(new, old)| (old, new));
    let mut v = Value::Object(out);
    default_stored(&mut v);
    v
}

fn convert(
    src: &Value,
    out: &mut Map<String, Value>,
    orient: impl Fn((&'static str, &'static str)) -> (&'static str, &'static str),
) {
    for field in SHARED {
        if let Some(v) = src.get(field) {
            out.insert((*field).into(), v.clone());
        }
    }
    for pair in RENAMED {
        let (from, to) = orient(*pair);
        if let Some(v) = src.get(from) {
            out.insert(to.into(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_view_renames_fields_like_the_real_server() {
        let mut stored = json!({"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": {"name": "e"},
            "note": "hi", "regarding": {"kind": "Lease", "name": "l"}, "reportingController": "leasehold"});
        default_stored(&mut stored);
        let core = to_core(&stored);
        assert_eq!(core["message"], "hi");
        assert_eq!(core["involvedObject"]["name"], "l");
        assert_eq!(core["reportingComponent"], "leasehold");
        assert_eq!(core["source"], json!({}));
        assert_eq!(core["firstTimestamp"], Value::Null);
        assert_eq!(from_core(&core)["note"], "hi");
    }
}
