//! Field paths and sets, shaped like structured-merge-diff's: path elements ([`Pe`]), the [`Set`] of paths a
//! manager owns with its set operations, and its FieldsV1 encoding. Separate because it is a self-contained data
//! structure that knows nothing about objects.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// One step of a field path, as in SMD: a field name (`f:`), an associative-list key (`k:`), a set value
/// (`v:`) or a list index (`i:`). Ordered like SMD (fields, then keys, values, indexes). Keys and values keep
/// their raw JSON text so that entries written by others round-trip.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Pe {
    /// `f:<name>`.
    Field(String),
    /// `k:<json object>`.
    Key(String),
    /// `v:<json value>`.
    Value(String),
    /// `i:<index>`.
    Index(u64),
}

impl Pe {
    /// Parses a FieldsV1 key; `None` for anything that is not one.
    fn parse(key: &str) -> Option<Self> {
        if let Some(name) = key.strip_prefix("f:") {
            Some(Pe::Field(name.to_owned()))
        } else if let Some(raw) = key.strip_prefix("k:") {
            Some(Pe::Key(raw.to_owned()))
        } else if let Some(raw) = key.strip_prefix("v:") {
            Some(Pe::Value(raw.to_owned()))
        } else {
            key.strip_prefix("i:")
                .and_then(|i| i.parse().ok())
                .map(Pe::Index)
        }
    }

    /// The FieldsV1 key.
    fn key(&self) -> String {
        match self {
            Pe::Field(name) => format!("f:{name}"),
            Pe::Key(raw) => format!("k:{raw}"),
            Pe::Value(raw) => format!("v:{raw}"),
            Pe::Index(i) => format!("i:{i}"),
        }
    }

    /// Appends the step as SMD prints paths: `.name`, `[k=v,...]`, `[=v]`, `[i]`.
    fn write_to(&self, out: &mut String) {
        match self {
            Pe::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Pe::Key(raw) => match serde_json::from_str::<Map<String, Value>>(raw) {
                Ok(keys) => {
                    let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let _ = write!(out, "[{}]", parts.join(","));
                }
                Err(_) => {
                    let _ = write!(out, "[{raw}]");
                }
            },
            Pe::Value(raw) => {
                let _ = write!(out, "[={raw}]");
            }
            Pe::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
}

/// A path as SMD prints it, e.g. `.spec.holderIdentity`.
pub(super) fn path_string(path: &[Pe]) -> String {
    let mut out = String::new();
    for pe in path {
        pe.write_to(&mut out);
    }
    out
}

/// A set of field paths, shaped like SMD's: `members` are paths ending here, `children` hold longer paths.
/// Invariant: no child is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Set {
    members: BTreeSet<Pe>,
    children: BTreeMap<Pe, Set>,
}

impl Set {
    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    pub(super) fn insert(&mut self, path: &[Pe]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub(super) fn union_with(&mut self, other: &Set) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            self.children
                .entry(pe.clone())
                .or_default()
                .union_with(child);
        }
    }

    /// Paths in `self` and not in `other` (exact paths, like SMD's `Difference`, not recursive).
    pub(super) fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        Set { members, children }
    }

    pub(super) fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let both = child.intersection(o);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        Set { members, children }
    }

    /// Whether the set holds `path` or any path below it.
    pub(super) fn owns_at_or_below(&self, path: &[Pe]) -> bool {
        match path {
            [] => !self.is_empty(),
            [last] => self.members.contains(last) || self.children.contains_key(last),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|c| c.owns_at_or_below(rest)),
        }
    }

    /// All paths in SMD's iteration order: at each level the members, then each child's paths.
    pub(super) fn paths(&self) -> Vec<Vec<Pe>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<Pe>, out: &mut Vec<Vec<Pe>>) {
        for pe in &self.members {
            let mut path = prefix.clone();
            path.push(pe.clone());
            out.push(path);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// FieldsV1 JSON: a member with children gets `".":{}` among them; keys are written in order.
    pub(super) fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        let keys: BTreeSet<&Pe> = self.members.iter().chain(self.children.keys()).collect();
        for pe in keys {
            let mut inner = Map::new();
            if let Some(child) = self.children.get(pe) {
                if self.members.contains(pe) {
                    inner.insert(".".to_owned(), Value::Object(Map::new()));
                }
                if let Value::Object(grand) = child.to_fields_v1() {
                    inner.extend(grand);
                }
            }
            map.insert(pe.key(), Value::Object(inner));
        }
        Value::Object(map)
    }

    /// Reads FieldsV1 JSON; `None` when it is not well formed.
    pub(super) fn from_fields_v1(v: &Value) -> Option<Set> {
        let Value::Object(map) = v else {
            return None;
        };
        let mut set = Set::default();
        for (key, inner) in map {
            if key == "." {
                continue;
            }
            let pe = Pe::parse(key)?;
            let Value::Object(inner_map) = inner else {
                return None;
            };
            if inner_map.is_empty() || inner_map.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let child = Set::from_fields_v1(inner)?;
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_with_dot() {
        let v = json!({"f:metadata":{"f:labels":{".":{},"f:a":{}}},"f:spec":{"f:x":{}}});
        let set = Set::from_fields_v1(&v).expect("valid FieldsV1");
        assert_eq!(set.to_fields_v1(), v);
        assert_eq!(
            set.paths()
                .iter()
                .map(|p| path_string(p))
                .collect::<Vec<_>>(),
            vec![".metadata.labels", ".metadata.labels.a", ".spec.x"]
        );
    }
}
