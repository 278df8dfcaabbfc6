//! The entry points the server calls on each write: [`record_update`] after a create, update or patch,
//! [`apply`] for server-side apply, the Status causes of a conflict, and the default field manager name.
//! Separate from the machinery (sets, views, entries) so that each entry point reads as SMD's algorithm.

use std::cmp::Reverse;

use serde_json::{Map, Value};

use super::conflicts::{ApplyError, Conflict, Operation};
use super::entries::{Entry, EntryKey, managed_fields_of, parse_entries, set_managed_fields};
use super::schema::Schema;
use super::set::path_string;
use super::view::{compare, copy_identity, field_set, merge_into, remove_path, tracked_view};
use crate::go_text::go_type_name;

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
