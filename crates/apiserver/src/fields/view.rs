//! The part of an object fields are tracked on (its tracked view), how two views compare (SMD's `Comparison`),
//! the set of fields an apply body names, and merging an apply body into an object or removing a field from it.
//! Separate from the entry points, which combine these steps.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::schema::Schema;
use super::set::{Pe, Set};

/// The metadata fields a client owns; everything else in `metadata` is the server's and is never tracked.
///
/// `generateName` is not in the brief's list, but the real server tracks it (it is not stripped by its
/// field manager), so it is kept here to match.
const TRACKED_METADATA: [&str; 5] = [
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "generateName",
];

fn field_path(path: &[String]) -> Vec<Pe> {
    path.iter().map(|s| Pe::Field(s.clone())).collect()
}

/// The part of an object that fields are tracked on: no apiVersion/kind, only tracked metadata, no ignored
/// paths, and no unset values (nulls; and unless `keep_empty`, empty maps and arrays).
pub(super) fn tracked_view(obj: &Value, schema: &Schema, keep_empty: bool) -> Value {
    let mut out = Map::new();
    if let Value::Object(map) = obj {
        for (k, v) in map {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    let mut meta = Map::new();
                    if let Value::Object(m) = v {
                        for key in TRACKED_METADATA {
                            if let Some(x) = m.get(key) {
                                meta.insert(key.to_owned(), x.clone());
                            }
                        }
                    }
                    out.insert(k.clone(), Value::Object(meta));
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let mut root = Value::Object(out);
    for path in &schema.ignored {
        remove_field(&mut root, path);
    }
    normalize(&mut root, &mut Vec::new(), schema, keep_empty);
    root
}

/// Drops unset values below a granular map node, depth first.
fn normalize(v: &mut Value, path: &mut Vec<String>, schema: &Schema, keep_empty: bool) {
    let Value::Object(map) = v else {
        return;
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        path.push(k.clone());
        let atomic = schema.is_atomic(path);
        let unset = match map.get_mut(&k) {
            Some(child) => {
                if !atomic {
                    normalize(child, path, schema, keep_empty);
                }
                is_unset(child, keep_empty)
            }
            None => false,
        };
        if unset {
            map.remove(&k);
        }
        path.pop();
    }
}

fn is_unset(v: &Value, keep_empty: bool) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => !keep_empty && m.is_empty(),
        Value::Array(a) => !keep_empty && a.is_empty(),
        _ => false,
    }
}

/// Removes the value at a path of field names, if there.
fn remove_field(root: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for name in parents {
        match node.get_mut(name.as_str()) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Value::Object(map) = node {
        map.remove(last);
    }
}

/// What a write did to the tracked fields, as SMD's `Comparison`.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    pub(super) added: Set,
    pub(super) modified: Set,
    pub(super) removed: Set,
}

impl Comparison {
    pub(super) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares two tracked views; `old == None` compares against the type's zero value.
pub(super) fn compare(old: Option<&Value>, new: &Value, schema: &Schema) -> Comparison {
    let mut cmp = Comparison::default();
    compare_node(old, Some(new), &mut Vec::new(), schema, &mut cmp);
    cmp
}

fn compare_node(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Vec<String>,
    schema: &Schema,
    cmp: &mut Comparison,
) {
    let granular = |v: &Value| v.is_object() && (path.is_empty() || !schema.is_atomic(path));
    match (old, new) {
        (None, None) => {}
        (Some(o), Some(n)) if granular(o) && granular(n) => {
            let (Value::Object(om), Value::Object(nm)) = (o, n) else {
                return;
            };
            let keys: BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
            for k in keys {
                path.push(k.clone());
                compare_node(om.get(k), nm.get(k), path, schema, cmp);
                path.pop();
            }
        }
        (Some(o), Some(n)) if granular(o) || granular(n) => {
            // A map became a leaf or the other way round: the old fields go, the new ones come.
            compare_node(Some(o), None, path, schema, cmp);
            compare_node(None, Some(n), path, schema, cmp);
        }
        (Some(o), Some(n)) => {
            if o != n {
                cmp.modified.insert(&field_path(path));
            }
        }
        (None, Some(n)) => {
            if let Value::Object(nm) = n
                && granular(n)
            {
                if !schema.is_struct(path) {
                    cmp.added.insert(&field_path(path));
                }
                for (k, v) in nm {
                    path.push(k.clone());
                    compare_node(None, Some(v), path, schema, cmp);
                    path.pop();
                }
            } else {
                cmp.added.insert(&field_path(path));
            }
        }
        (Some(o), None) => {
            if let Value::Object(om) = o
                && granular(o)
            {
                if !schema.is_struct(path) {
                    cmp.removed.insert(&field_path(path));
                }
                for (k, v) in om {
                    path.push(k.clone());
                    compare_node(Some(v), None, path, schema, cmp);
                    path.pop();
                }
            } else {
                cmp.removed.insert(&field_path(path));
            }
        }
    }
}

/// The fields an apply body names (SMD's `ToFieldSet`): leaves, plus object-valued entries of free-form maps.
pub(super) fn field_set(view: &Value, schema: &Schema) -> Set {
    let mut set = Set::default();
    collect_field_set(view, &mut Vec::new(), schema, &mut set);
    set
}

fn collect_field_set(v: &Value, path: &mut Vec<String>, schema: &Schema, set: &mut Set) {
    let Value::Object(map) = v else {
        return;
    };
    let parent_is_struct = schema.is_struct(path);
    for (k, child) in map {
        path.push(k.clone());
        if child.is_object() && !schema.is_atomic(path) {
            if !parent_is_struct {
                set.insert(&field_path(path));
            }
            collect_field_set(child, path, schema, set);
        } else {
            set.insert(&field_path(path));
        }
        path.pop();
    }
}

/// Merges an apply body's tracked view into the object: maps key by key, everything else replaced.
pub(super) fn merge_into(
    target: &mut Value,
    patch: &Value,
    path: &mut Vec<String>,
    schema: &Schema,
) {
    let Value::Object(patch_map) = patch else {
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (k, pv) in patch_map {
        path.push(k.clone());
        let atomic = schema.is_atomic(path);
        match target_map.get_mut(k) {
            Some(tv) if !atomic && tv.is_object() && pv.is_object() => {
                merge_into(tv, pv, path, schema);
            }
            _ => {
                target_map.insert(k.clone(), pv.clone());
            }
        }
        path.pop();
    }
}

/// Sets what an apply body says about the object's identity: on a create its apiVersion, kind, name,
/// namespace and generateName; on an update only what the live object lacks (apiVersion and kind).
pub(super) fn copy_identity(merged: &mut Value, body: &Map<String, Value>, create: bool) {
    let Value::Object(out) = merged else {
        return;
    };
    for key in ["apiVersion", "kind"] {
        if let Some(v) = body.get(key)
            && (create || !out.contains_key(key))
        {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if !create {
        return;
    }
    let Some(Value::Object(meta_in)) = body.get("metadata") else {
        return;
    };
    let meta_out = out
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta_out) = meta_out {
        for key in ["name", "namespace", "generateName"] {
            if let Some(v @ Value::String(_)) = meta_in.get(key) {
                meta_out.insert(key.to_owned(), v.clone());
            }
        }
    }
}

/// Removes the value at `path` from the object, then any free-form map left empty above it.
pub(super) fn remove_path(root: &mut Value, path: &[Pe], schema: &Schema) {
    let mut names = Vec::with_capacity(path.len());
    for pe in path {
        match pe {
            Pe::Field(name) => names.push(name.clone()),
            _ => return,
        }
    }
    remove_field(root, &names);
    while names.len() > 1 {
        names.pop();
        if schema.is_struct(&names) {
            break;
        }
        let mut node: &Value = root;
        for name in &names {
            match node.get(name.as_str()) {
                Some(next) => node = next,
                None => return,
            }
        }
        if node.as_object().is_some_and(Map::is_empty) {
            remove_field(root, &names);
        } else {
            break;
        }
    }
}
