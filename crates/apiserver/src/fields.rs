//! Field ownership: `metadata.managedFields` bookkeeping after writes, and server-side apply.
//!
//! Entry points: [`record_update`] after a create, update or patch, and [`apply`] for
//! `application/apply-patch+yaml`. Both follow what kube-apiserver does through
//! structured-merge-diff (SMD), checked against `reference/lease-api-corpus.jsonl`:
//!
//! - A manager owns a set of field paths, written as FieldsV1 (`{"f:spec":{"f:holderIdentity":{}}}`).
//!   Maps are granular: each key is its own field. Arrays and the [`Schema`]'s atomic paths are owned whole.
//! - Only what a client may set counts: everything except `apiVersion` and `kind`, and in `metadata` only
//!   `labels`, `annotations`, `ownerReferences`, `finalizers` and `generateName`. Nulls, empty maps and empty
//!   arrays count as unset, like Go's `omitempty`.
//! - A map node is itself a member of a set (FieldsV1 `".":{}`) when an Update *creates* it (the real server
//!   compares against the type's zero value, where `labels` is absent but `spec` is an empty struct), and, in an
//!   apply, when it is an object-valued entry of a free-form map. Struct-typed fields ([`Schema::with_struct`])
//!   never get `"."`: that is why Update entries show `"f:labels":{".":{},...}` while `"f:spec"` has no `"."`, and
//!   Apply entries show no `"."` at all for labels.
//! - Entries are written back sorted like the real server: by operation (`Apply` before `Update`), then time
//!   (whole seconds), then manager name, then apiVersion.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::go_text::{go_quote, go_type_name};

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

/// Errors of [`apply`]: each one is a Status the server answers with (see [`ApplyError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The apply changes fields that other managers own, and `force` was not set. The message is the real
    /// server's, word for word (`Apply failed with 1 conflict: conflict with "mgr-one": .spec.holderIdentity`).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The apply body carries `metadata.managedFields`; the real server refuses it with this message (400).
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsSet,
    /// The apply body's `apiVersion` is not the version of the endpoint it was sent to (400).
    #[error(
        "Incorrect version specified in apply patch. Specified patch version: {specified}, expected: {expected}"
    )]
    VersionMismatch {
        /// The body's `apiVersion` (empty when missing).
        specified: String,
        /// The endpoint's group/version, e.g. `coordination.k8s.io/v1`.
        expected: String,
    },
    /// The apply body is not a JSON object; worded like the real server's YAML decoding error (400).
    #[error(
        "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {found} into Go value of type map[string]interface {{}}"
    )]
    NotAnObject {
        /// Go's name for the JSON type found: `array`, `string`, `number`, `bool`.
        found: &'static str,
    },
}

impl ApplyError {
    /// The HTTP status code of the Status to answer: 409 for conflicts, 400 otherwise.
    pub fn code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            _ => 400,
        }
    }

    /// The Status `reason`: `Conflict` for conflicts (with causes of type `FieldManagerConflict`, see
    /// [`conflict_causes`]), `BadRequest` otherwise.
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::Conflicts(_) => "Conflict",
            _ => "BadRequest",
        }
    }
}

/// One conflict of an apply: a field whose value the apply changes while another manager owns it.
///
/// It keeps the owner's operation and apiVersion because the real message names an Update owner as
/// `"kubectl" using coordination.k8s.io/v1`, and an Apply owner only by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager, e.g. `mgr-one`.
    pub manager: String,
    /// The owner's operation.
    pub operation: Operation,
    /// The owner entry's apiVersion.
    pub api_version: String,
    /// The field, written like the real server: `.spec.holderIdentity`.
    pub field: String,
}

impl Conflict {
    /// The owner as the real server prints it: Go-quoted name, plus ` using <apiVersion>` for Update owners.
    fn owner(&self) -> String {
        match self.operation {
            Operation::Apply => go_quote(&self.manager),
            Operation::Update => format!("{} using {}", go_quote(&self.manager), self.api_version),
        }
    }

    /// Sort key that groups conflicts like the real server, which sorts by its JSON manager identifier
    /// (`{"manager":"m","operation":"Apply"}`); the trailing quote keeps `a` before `ab` as in that string.
    fn group_key(&self) -> (String, &'static str, &str) {
        (
            format!("{}\"", self.manager),
            self.operation.as_str(),
            &self.api_version,
        )
    }
}

/// The kind of write that gave a manager its fields, as written in a managedFields entry's `operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Create, update (PUT) or any non-apply patch.
    Update,
    /// Server-side apply.
    Apply,
}

impl Operation {
    /// The wire spelling, `Update` or `Apply`, used in entries and in conflict messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Update => "Update",
            Operation::Apply => "Apply",
        }
    }

    /// Parses the wire spelling; anything else is `None` (such entries never match a new operation).
    fn parse(s: &str) -> Option<Self> {
        match s {
            "Update" => Some(Operation::Update),
            "Apply" => Some(Operation::Apply),
            _ => None,
        }
    }
}

/// What the field manager needs to know about a type beyond its JSON: which paths are owned whole and which
/// are structs. Paths are lists of field names from the object's root, e.g. `["spec"]`.
///
/// The default (empty) schema treats every map but the root and `metadata` as a free-form map, so adding one
/// owns its `"."`; fine for unknown types, wrong for Go structs, hence the per-type constructors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Paths owned whole (`+structType=atomic` / `+mapType=atomic`): one leaf, whatever is inside.
    atomic: Vec<Vec<String>>,
    /// Paths of non-pointer struct fields: always present in the type's zero value, so never a member of a set
    /// themselves (no `"."`), and their own children are fields rather than map keys.
    structs: Vec<Vec<String>>,
    /// Paths the field manager ignores on this endpoint (the strategy's reset fields, e.g. `status` on the main
    /// resource of a Namespace): never owned, never compared.
    ignored: Vec<Vec<String>>,
}

impl Schema {
    /// An empty schema: no atomic paths, no structs besides the root and `metadata`, nothing ignored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an atomic path, owned whole like a scalar (`"f:regarding":{}`), e.g. `&["regarding"]`.
    #[must_use]
    pub fn with_atomic(mut self, path: &[&str]) -> Self {
        self.atomic.push(owned_path(path));
        self
    }

    /// Adds a non-pointer struct path (e.g. a Lease's `spec`), which never gets `"."` when created.
    #[must_use]
    pub fn with_struct(mut self, path: &[&str]) -> Self {
        self.structs.push(owned_path(path));
        self
    }

    /// Adds a path the field manager ignores (the strategy resets it), e.g. `status` on a main resource.
    #[must_use]
    pub fn with_ignored(mut self, path: &[&str]) -> Self {
        self.ignored.push(owned_path(path));
        self
    }

    /// `coordination.k8s.io/v1` Lease: `spec` is a struct; no atomic fields.
    pub fn lease() -> Self {
        Self::new().with_struct(&["spec"])
    }

    /// `events.k8s.io/v1` Event: `regarding`, `related`, `series` and `deprecatedSource` are owned whole
    /// (corpus step 51 shows `"f:regarding":{}`).
    pub fn event() -> Self {
        Self::new()
            .with_atomic(&["regarding"])
            .with_atomic(&["related"])
            .with_atomic(&["series"])
            .with_atomic(&["deprecatedSource"])
    }

    /// Core `v1` Event, for writes through `/api/v1/.../events`: `involvedObject` and `related` are atomic
    /// ObjectReferences, `source` is a struct.
    pub fn core_event() -> Self {
        Self::new()
            .with_atomic(&["involvedObject"])
            .with_atomic(&["related"])
            .with_struct(&["source"])
    }

    /// `v1` Namespace main resource: `spec` and `status` are structs, and `status` is ignored (only the
    /// `/status` subresource owns it on the real server).
    pub fn namespace() -> Self {
        Self::new()
            .with_struct(&["spec"])
            .with_struct(&["status"])
            .with_ignored(&["status"])
    }

    /// Whether the value at `path` is owned whole.
    fn is_atomic(&self, path: &[String]) -> bool {
        self.atomic.iter().any(|p| p.as_slice() == path)
    }

    /// Whether the map at `path` is a struct: the root, `metadata`, or a declared struct path.
    fn is_struct(&self, path: &[String]) -> bool {
        path.is_empty()
            || (path.len() == 1 && path[0] == "metadata")
            || self.structs.iter().any(|p| p.as_slice() == path)
    }
}

/// Recomputes `metadata.managedFields` on `new` after a create, update or patch by `manager` (operation Update).
///
/// `old` is the stored object before the write (`None` for a create). Call this on the object as decoded from
/// the request (after defaulting), before the server's own mutations (namespace finalizers, status phase), as
/// the real server does. Then:
/// - the manager takes every field the write added or changed (all fields on a create);
/// - fields the write removed leave every manager's set; taken fields leave other managers' sets;
/// - entries left empty are dropped; an entry that did not change keeps its JSON as it was;
/// - the manager's Update entry for `api_version` gets `time` when the write took any field; other entries
///   keep their time. A write that changes nothing leaves managedFields as they were.
///
/// Like the real server, when `new` already carries a non-empty `metadata.managedFields` (a client that sends
/// them back on PUT, or `[{}]` to reset them) those are the starting point instead of `old`'s. Never panics:
/// a non-object `new` is left alone and unreadable entries are dropped.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    time: &str,
    schema: &Schema,
) {
    if !new.is_object() {
        return;
    }
    let supplied = managed_fields_of(new).filter(|v| v.as_array().is_some_and(|a| !a.is_empty()));
    let mut entries = match supplied {
        Some(v) => parse_entries(v),
        None => old
            .and_then(managed_fields_of)
            .map(parse_entries)
            .unwrap_or_default(),
    };
    let old_view = old.map(|o| tracked_view(o, schema, false));
    let new_view = tracked_view(new, schema, false);
    let cmp = compare(old_view.as_ref(), &new_view, schema);

    let mut taken = cmp.added.clone();
    taken.union_with(&cmp.modified);
    let mut lost = taken.clone();
    lost.union_with(&cmp.removed);
    for entry in &mut entries {
        entry.replace_set(entry.set.difference(&lost));
    }
    if !taken.is_empty() {
        let key = EntryKey::new(manager, Operation::Update, api_version);
        match entries.iter_mut().find(|e| e.matches(&key)) {
            Some(entry) => {
                let mut set = entry.set.clone();
                set.union_with(&taken);
                entry.replace_set(set);
                entry.time = Some(time.to_owned());
            }
            None => entries.push(Entry::fresh(key, time, taken)),
        }
    }
    set_managed_fields(new, entries);
}

/// Server-side apply of `applied` (the parsed apply body) onto `live` (`None` for a create) for `manager`.
///
/// Follows SMD's `Updater.Apply`:
/// - the result is `live` with `applied` merged in (maps merged key by key, arrays and atomic paths replaced),
///   keeping live's `metadata.name/namespace/uid/resourceVersion/creationTimestamp`; on a create, `apiVersion`,
///   `kind`, `metadata.name`, `metadata.namespace` and `metadata.generateName` come from `applied`;
/// - a field this manager applied before and omits now is removed, unless another manager owns it (or
///   something under it);
/// - a field whose value the apply changes and that another manager owns (any operation) is a conflict:
///   `Err(ApplyError::Conflicts)` listing all of them, unless `force`, in which case they move to this manager;
///   a field another manager owns with the same value is shared, not a conflict;
/// - the manager's Apply entry's set becomes exactly the fields in `applied`; its time is set when the
///   object or that set changed; other managers lose the fields the apply took or removed.
///
/// Errors other than conflicts: a body that is not an object, carries `metadata.managedFields`, or whose
/// `apiVersion` is not `api_version`. Never panics.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    time: &str,
    schema: &Schema,
) -> Result<Value, ApplyError> {
    let Value::Object(body) = applied else {
        return Err(ApplyError::NotAnObject {
            found: go_type_name(applied),
        });
    };
    let specified = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if specified != api_version {
        return Err(ApplyError::VersionMismatch {
            specified: specified.to_owned(),
            expected: api_version.to_owned(),
        });
    }
    if body
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::ManagedFieldsSet);
    }

    let live = live.filter(|v| v.is_object());
    let mut entries = live
        .and_then(managed_fields_of)
        .map(parse_entries)
        .unwrap_or_default();
    let config_view = tracked_view(applied, schema, false);
    let config_set = field_set(&config_view, schema);

    let mut merged = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    merge_into(
        &mut merged,
        &tracked_view(applied, schema, true),
        &mut Vec::new(),
        schema,
    );
    copy_identity(&mut merged, body, live.is_none());

    let key = EntryKey::new(manager, Operation::Apply, api_version);
    let mine = entries.iter().position(|e| e.matches(&key));
    let last_set = mine.map(|i| entries[i].set.clone()).unwrap_or_default();

    // Prune what this manager applied before and dropped now, unless someone (this apply included) owns it.
    let mut owned = config_set.clone();
    for (i, entry) in entries.iter().enumerate() {
        if Some(i) != mine {
            owned.union_with(&entry.set);
        }
    }
    let mut stale = last_set.difference(&config_set).paths();
    stale.sort_by_key(|p| Reverse(p.len()));
    for path in stale {
        if !owned.owns_at_or_below(&path) {
            remove_path(&mut merged, &path, schema);
        }
    }

    let live_view = live.map(|l| tracked_view(l, schema, false));
    let merged_view = tracked_view(&merged, schema, false);
    let cmp = compare(live_view.as_ref(), &merged_view, schema);
    let mut taken = cmp.added.clone();
    taken.union_with(&cmp.modified);

    let mut conflicts = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if Some(i) == mine {
            continue;
        }
        for path in entry.set.intersection(&taken).paths() {
            conflicts.push(Conflict {
                manager: entry.key.manager.clone(),
                operation: entry.key.operation.unwrap_or(Operation::Update),
                api_version: entry.key.api_version.clone(),
                field: path_string(&path),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| a.group_key().cmp(&b.group_key()));
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (i, entry) in entries.iter_mut().enumerate() {
        if Some(i) != mine {
            entry.replace_set(entry.set.difference(&taken).difference(&cmp.removed));
        }
    }
    let object_changed = !cmp.is_empty();
    match mine {
        Some(i) => {
            let entry = &mut entries[i];
            let set_changed = entry.set != config_set || entry.key.api_version != api_version;
            if set_changed {
                entry.key.api_version = api_version.to_owned();
                entry.set = config_set;
                entry.set_changed = true;
            }
            if set_changed || object_changed {
                entry.time = Some(time.to_owned());
            }
        }
        None => entries.push(Entry::fresh(key, time, config_set)),
    }
    set_managed_fields(&mut merged, entries);
    Ok(merged)
}

/// The Status `details.causes` of a conflict error, as `(field, message)` pairs in message order:
/// `(".spec.holderIdentity", "conflict with \"mgr-one\"")`, to send with reason `FieldManagerConflict`.
/// Other errors have no causes.
pub fn conflict_causes(err: &ApplyError) -> Vec<(String, String)> {
    match err {
        ApplyError::Conflicts(conflicts) => conflicts
            .iter()
            .map(|c| (c.field.clone(), format!("conflict with {}", c.owner())))
            .collect(),
        _ => Vec::new(),
    }
}

/// The field manager name the real server uses when a write gives no `fieldManager`: the User-Agent up to its
/// first `/`, without non-printable characters, cut to 128 bytes (`kubectl/v1.33.1 (linux/amd64) ...` →
/// `kubectl`). An empty result becomes `unknown` (the real server would leave the name empty).
pub fn manager_from_user_agent(ua: &str) -> String {
    let prefix = ua.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars() {
        if c.is_control() || (c.is_whitespace() && c != ' ') {
            continue;
        }
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "unknown".to_owned()
    } else {
        out
    }
}

// ----- messages -----

/// Builds the real server's conflict message (fieldmanager's `getConflictMessage`), conflicts already sorted.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.owner(),
            only.field
        );
    }
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<(String, &'static str, &str)> = None;
    for c in conflicts {
        let key = c.group_key();
        if current.as_ref() != Some(&key) {
            lines.push(format!("conflicts with {}:", c.owner()));
            current = Some(key);
        }
        lines.push(format!("- {}", c.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

// ----- field paths and sets -----

/// One step of a field path, as in SMD: a field name (`f:`), an associative-list key (`k:`), a set value
/// (`v:`) or a list index (`i:`). Ordered like SMD (fields, then keys, values, indexes). Keys and values keep
/// their raw JSON text so that entries written by others round-trip.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pe {
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
fn path_string(path: &[Pe]) -> String {
    let mut out = String::new();
    for pe in path {
        pe.write_to(&mut out);
    }
    out
}

/// A set of field paths, shaped like SMD's: `members` are paths ending here, `children` hold longer paths.
/// Invariant: no child is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Set {
    members: BTreeSet<Pe>,
    children: BTreeMap<Pe, Set>,
}

impl Set {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    fn insert(&mut self, path: &[Pe]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    fn union_with(&mut self, other: &Set) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            self.children
                .entry(pe.clone())
                .or_default()
                .union_with(child);
        }
    }

    /// Paths in `self` and not in `other` (exact paths, like SMD's `Difference`, not recursive).
    fn difference(&self, other: &Set) -> Set {
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

    fn intersection(&self, other: &Set) -> Set {
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
    fn owns_at_or_below(&self, path: &[Pe]) -> bool {
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
    fn paths(&self) -> Vec<Vec<Pe>> {
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
    fn to_fields_v1(&self) -> Value {
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
    fn from_fields_v1(v: &Value) -> Option<Set> {
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

// ----- object views and comparison -----

fn owned_path(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| (*s).to_owned()).collect()
}

fn field_path(path: &[String]) -> Vec<Pe> {
    path.iter().map(|s| Pe::Field(s.clone())).collect()
}

/// The part of an object that fields are tracked on: no apiVersion/kind, only tracked metadata, no ignored
/// paths, and no unset values (nulls; and unless `keep_empty`, empty maps and arrays).
fn tracked_view(obj: &Value, schema: &Schema, keep_empty: bool) -> Value {
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
struct Comparison {
    added: Set,
    modified: Set,
    removed: Set,
}

impl Comparison {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares two tracked views; `old == None` compares against the type's zero value.
fn compare(old: Option<&Value>, new: &Value, schema: &Schema) -> Comparison {
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
fn field_set(view: &Value, schema: &Schema) -> Set {
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
fn merge_into(target: &mut Value, patch: &Value, path: &mut Vec<String>, schema: &Schema) {
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
fn copy_identity(merged: &mut Value, body: &Map<String, Value>, create: bool) {
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
fn remove_path(root: &mut Value, path: &[Pe], schema: &Schema) {
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

// ----- managedFields entries -----

/// What identifies an entry, as the real server's manager identifier: Apply entries by manager alone (they
/// keep one entry across versions), Update entries by manager and apiVersion; both by subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntryKey {
    manager: String,
    /// `None` for an operation this code does not know (kept, never matched).
    operation: Option<Operation>,
    operation_raw: String,
    api_version: String,
    subresource: String,
}

impl EntryKey {
    fn new(manager: &str, operation: Operation, api_version: &str) -> Self {
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
struct Entry {
    key: EntryKey,
    time: Option<String>,
    set: Set,
    raw: Map<String, Value>,
    set_changed: bool,
}

impl Entry {
    fn fresh(key: EntryKey, time: &str, set: Set) -> Self {
        Entry {
            key,
            time: Some(time.to_owned()),
            set,
            raw: Map::new(),
            set_changed: true,
        }
    }

    fn matches(&self, key: &EntryKey) -> bool {
        self.key.manager == key.manager
            && self.key.operation == key.operation
            && self.key.subresource == key.subresource
            && (key.operation == Some(Operation::Apply) || self.key.api_version == key.api_version)
    }

    fn replace_set(&mut self, set: Set) {
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

fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

/// Reads entries; entries that are not objects or whose fieldsV1 is unreadable get an empty set (and so are
/// dropped when written back).
fn parse_entries(v: &Value) -> Vec<Entry> {
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
fn set_managed_fields(obj: &mut Value, entries: Vec<Entry>) {
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

    #[test]
    fn rfc3339_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-26T01:10:16Z"), Some(1_795_655_416));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00.5+01:00"), Some(0));
        assert_eq!(parse_rfc3339("nope"), None);
    }
}
