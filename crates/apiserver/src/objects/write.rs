//! The steps every write shares: turning a decoded body into its stored form, defaulting, stamping a new
//! object, namespace and validation checks, generated names, keeping server-owned metadata, and deciding the
//! store write (nothing, a dry-run preview, or a put). Separate so each verb's file reads as its own flow.

use serde_json::{Value, json};

use super::{present, schema};
use crate::fields;
use crate::meta::{self, meta_mut};
use crate::request::{Ctx, Reply, Result};
use crate::resource::{ResourceType, View};
use crate::status::ApiError;
use crate::store::WriteOp;
use crate::{event_view, validate};

/// The stored form of a body decoded for `rt`'s view.
pub(super) fn to_stored(rt: &ResourceType, body: Value) -> Value {
    match rt.view {
        View::Native => body,
        View::CoreEvent => event_view::from_core(&body),
    }
}

/// Defaulting that the writer's managedFields entry owns (the real server runs it before field tracking):
/// a Namespace's `kubernetes.io/metadata.name` label.
pub(super) fn default_owned(rt: &ResourceType, obj: &mut Value) {
    if rt.kind == "Namespace" {
        let name = meta::name(obj).to_string();
        let m = meta_mut(obj);
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
}

/// Defaulting done on every write after field tracking, as the resource's strategy would.
pub(super) fn default_object(rt: &ResourceType, obj: &mut Value) {
    default_owned(rt, obj);
    match rt.kind {
        "Event" => event_view::default_stored(obj),
        "Namespace" => {
            // kubectl create namespace sends `"spec":{}` and `"status":{}`; the real strategy still fills both.
            let Some(map) = obj.as_object_mut() else {
                return;
            };
            if let Some(spec) = map
                .entry("spec")
                .or_insert_with(|| json!({}))
                .as_object_mut()
            {
                spec.entry("finalizers")
                    .or_insert_with(|| json!(["kubernetes"]));
            }
            if let Some(status) = map
                .entry("status")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                && status
                    .get("phase")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
            {
                status.insert("phase".into(), json!("Active"));
            }
        }
        _ => {}
    }
}

/// The stored apiVersion, which managedFields entries name.
pub(super) fn stored_api_version(rt: &ResourceType) -> String {
    match rt.view {
        View::CoreEvent => "events.k8s.io/v1".into(),
        View::Native => rt.api_version(),
    }
}

/// Server-set metadata on a new object; the client's values for these are ignored, as the real server does.
pub(super) fn stamp_new(obj: &mut Value, ns: &str, rt: &ResourceType) {
    let now = meta::now_rfc3339();
    let m = meta_mut(obj);
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(now));
    m.remove("resourceVersion");
    m.remove("deletionTimestamp");
    m.remove("managedFields");
    if rt.namespaced {
        m.insert("namespace".into(), json!(ns));
    } else {
        m.remove("namespace");
    }
}

pub(super) fn check_namespace(ctx: &Ctx) -> Result<()> {
    let rt = ctx.req.rt;
    if rt.namespaced
        && ctx
            .state
            .store
            .get("namespaces", "", &ctx.req.namespace)
            .is_none()
    {
        return Err(ApiError::namespace_not_found(&ctx.req.namespace));
    }
    Ok(())
}

pub(super) fn check_body_namespace(ctx: &Ctx, obj: &Value) -> Result<()> {
    let body_ns = meta::namespace(obj);
    if ctx.req.rt.namespaced && !body_ns.is_empty() && body_ns != ctx.req.namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

pub(super) fn validation(rt: &ResourceType, obj: &Value) -> Result<()> {
    let causes = validate::object(rt, obj);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt, meta::name(obj), causes, true))
    }
}

pub(super) fn generate_name(obj: &mut Value) {
    if !meta::name(obj).is_empty() {
        return;
    }
    let prefix = meta::meta_str(obj, "generateName").to_string();
    if prefix.is_empty() {
        return;
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    meta_mut(obj).insert("name".into(), json!(format!("{prefix}{suffix}")));
}

pub(super) fn reply_written(ctx: &Ctx, obj: &Value, created: bool) -> Reply {
    Reply::Json(if created { 201 } else { 200 }, present(ctx.req.rt, obj))
}

/// Carries the server-owned metadata of `live` over to `new`, so clients cannot change it.
pub(super) fn keep_server_metadata(live: &Value, new: &mut Value) {
    let keep = [
        "uid",
        "creationTimestamp",
        "namespace",
        "name",
        "deletionTimestamp",
        "managedFields",
    ];
    let live_meta = live
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let m = meta_mut(new);
    for k in keep {
        match live_meta.get(k) {
            Some(v) => m.insert(k.into(), v.clone()),
            None => m.remove(k),
        };
    }
}

/// Whether two stored objects are equal apart from their resourceVersion.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        meta_mut(&mut v).remove("resourceVersion");
        v
    };
    strip(a) == strip(b)
}

/// The write for a new version of an object: nothing when it equals the live one, a preview on a dry run, else a
/// put.
pub(super) fn put_unless_same(live: Option<&Value>, new: Value, dry_run: bool) -> WriteOp {
    if live.is_some_and(|l| same_object(l, &new)) {
        WriteOp::Keep
    } else if dry_run {
        WriteOp::Preview(new)
    } else {
        WriteOp::Put(new)
    }
}

/// What an update or a patch by `manager` is, once `new` has its server metadata: managedFields recorded, then
/// [`put_unless_same`].
pub(super) struct Updater<'a> {
    pub(super) rt: &'a ResourceType,
    pub(super) manager: &'a str,
    pub(super) api_version: &'a str,
    pub(super) now: &'a str,
    pub(super) dry_run: bool,
}

impl Updater<'_> {
    pub(super) fn op(&self, live: &Value, mut new: Value) -> WriteOp {
        fields::record_update(
            Some(live),
            &mut new,
            self.manager,
            self.api_version,
            self.now,
            &schema(self.rt),
        );
        put_unless_same(Some(live), new, self.dry_run)
    }
}
