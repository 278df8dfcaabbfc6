//! Get, list, create, update, patch and delete for every served resource, with the real server's optimistic
//! concurrency, preconditions, validation and managedFields.

use base64::Engine;
use serde_json::{Value, json};

use crate::fields::{self, Schema};
use crate::meta::{self, meta_mut};
use crate::patch::{self, PatchKind};
use crate::request::{Ctx, Reply, Result};
use crate::resource::{ResourceType, View};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError, Cause};
use crate::store::WriteOp;
use crate::{decode, event_view, table, validate};

/// Dispatches a resource request by verb.
pub fn handle(ctx: &Ctx) -> Result {
    let rt = ctx.req.rt;
    if !ctx.req.subresource.is_empty() && rt.plural != "namespaces" {
        return Err(ApiError::unknown_path());
    }
    match ctx.req.verb {
        "get" => get(ctx),
        "list" => list(ctx),
        "create" => create(ctx),
        "update" => update(ctx),
        "patch" => patch(ctx),
        "delete" => delete(ctx),
        "deletecollection" => delete_collection(ctx),
        verb => Err(ApiError::method_not_allowed(rt, verb)),
    }
}

/// The object as this view presents it.
pub fn present(rt: &ResourceType, stored: &Value) -> Value {
    match rt.view {
        View::Native => stored.clone(),
        View::CoreEvent => event_view::to_core(stored),
    }
}

fn schema(rt: &ResourceType) -> Schema {
    match rt.kind {
        "Event" => Schema::event(),
        "Namespace" => Schema::namespace(),
        _ => Schema::lease(),
    }
}

fn get(ctx: &Ctx) -> Result {
    let rt = ctx.req.rt;
    let obj = ctx
        .state
        .store
        .get(rt.store, &ctx.req.namespace, &ctx.req.name)
        .ok_or_else(|| ApiError::not_found(rt, &ctx.req.name))?;
    let shown = present(rt, &obj);
    if ctx.wants_table() {
        let rv = meta::resource_version(&shown).to_string();
        return Ok(Reply::Json(200, table::table(ctx, rt, &[shown], &rv, true)));
    }
    Ok(Reply::Json(200, shown))
}

/// Parsed list/watch filters.
pub struct Filter {
    /// The label selector.
    pub labels: LabelSelector,
    /// The field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Parses `labelSelector` and `fieldSelector`, answering 400 for malformed or unsupported ones.
    pub fn from_ctx(ctx: &Ctx) -> Result<Self> {
        let labels = LabelSelector::parse(ctx.param("labelSelector"))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(ctx.param("fieldSelector"), ctx.req.rt.field_selectors)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Self { labels, fields })
    }

    /// Whether a presented object passes both selectors.
    pub fn matches(&self, shown: &Value) -> bool {
        self.labels.matches(&meta::labels(shown))
            && self.fields.matches(|f| meta::field_string(shown, f))
    }
}

fn list(ctx: &Ctx) -> Result {
    let rt = ctx.req.rt;
    let filter = Filter::from_ctx(ctx)?;
    let store = &ctx.state.store;
    let current = store.current_rv();
    let requested = ctx.param("resourceVersion");
    if !requested.is_empty() && requested != "0" {
        let n: u64 = requested
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {requested}")))?;
        if n > current {
            return Err(ApiError::too_large_rv(n, current));
        }
    }
    let ns = (!ctx.req.namespace.is_empty()).then_some(ctx.req.namespace.as_str());
    let (items, rv) = store.list(rt.store, ns);
    let key_of = |o: &Value| -> String {
        if ns.is_some() {
            meta::name(o).to_string()
        } else if rt.namespaced {
            format!("{}/{}", meta::namespace(o), meta::name(o))
        } else {
            meta::name(o).to_string()
        }
    };
    let start = decode_continue(ctx.param("continue"))?;
    let mut shown: Vec<Value> = items
        .iter()
        .map(|o| present(rt, o))
        .filter(|o| filter.matches(o))
        .filter(|o| start.as_deref().is_none_or(|s| key_of(o).as_str() > s))
        .collect();
    let limit: usize = ctx.param("limit").parse().unwrap_or(0);
    let mut list_meta = json!({ "resourceVersion": rv.to_string() });
    if limit > 0 && shown.len() > limit {
        let rest = shown.split_off(limit);
        // Like etcd's paging, the token names the key just after the last one returned.
        let last = shown.last().map(key_of).unwrap_or_default();
        list_meta["continue"] = json!(encode_continue(rv, &format!("{last}\u{0}")));
        if filter.labels.is_empty() && ctx.param("fieldSelector").is_empty() {
            list_meta["remainingItemCount"] = json!(rest.len());
        }
    }
    if ctx.wants_table() {
        let mut t = table::table(ctx, rt, &shown, &rv.to_string(), true);
        if let Some(c) = list_meta.get("continue") {
            t["metadata"]["continue"] = c.clone();
        }
        return Ok(Reply::Json(200, t));
    }
    for item in &mut shown {
        if let Some(m) = item.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
    }
    Ok(Reply::Json(
        200,
        json!({
            "kind": rt.list_kind(),
            "apiVersion": rt.api_version(),
            "metadata": list_meta,
            "items": shown,
        }),
    ))
}

fn encode_continue(rv: u64, next_key: &str) -> String {
    let token = json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": next_key });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("illegal base64 data"))?;
    let v: Value = serde_json::from_slice(&raw)
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    v.get("start")
        .and_then(Value::as_str)
        .map(|s| Some(s.to_string()))
        .ok_or_else(|| bad("no start key"))
}

/// The stored form of a body decoded for `rt`'s view.
fn to_stored(rt: &ResourceType, body: Value) -> Value {
    match rt.view {
        View::Native => body,
        View::CoreEvent => event_view::from_core(&body),
    }
}

/// Defaulting that the writer's managedFields entry owns (the real server runs it before field tracking):
/// a Namespace's `kubernetes.io/metadata.name` label.
fn default_owned(rt: &ResourceType, obj: &mut Value) {
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
fn default_object(rt: &ResourceType, obj: &mut Value) {
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
fn stored_api_version(rt: &ResourceType) -> String {
    match rt.view {
        View::CoreEvent => "events.k8s.io/v1".into(),
        View::Native => rt.api_version(),
    }
}

/// Server-set metadata on a new object; the client's values for these are ignored, as the real server does.
fn stamp_new(obj: &mut Value, ns: &str, rt: &ResourceType) {
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

fn check_namespace(ctx: &Ctx) -> Result<()> {
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

fn check_body_namespace(ctx: &Ctx, obj: &Value) -> Result<()> {
    let body_ns = meta::namespace(obj);
    if ctx.req.rt.namespaced && !body_ns.is_empty() && body_ns != ctx.req.namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn validation(rt: &ResourceType, obj: &Value) -> Result<()> {
    let causes = validate::object(rt, obj);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt, meta::name(obj), causes, true))
    }
}

fn generate_name(obj: &mut Value) {
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

fn reply_written(ctx: &Ctx, obj: &Value, created: bool) -> Reply {
    Reply::Json(if created { 201 } else { 200 }, present(ctx.req.rt, obj))
}

fn create(ctx: &Ctx) -> Result {
    let rt = ctx.req.rt;
    let mut obj = to_stored(rt, decode::object_validated(ctx)?);
    check_body_namespace(ctx, &obj)?;
    check_namespace(ctx)?;
    generate_name(&mut obj);
    let name = meta::name(&obj).to_string();
    if name.is_empty() {
        return Err(ApiError::invalid(
            rt,
            "",
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: name or generateName is required".into(),
                field: Some("metadata.name".into()),
            }],
            true,
        ));
    }
    if !meta::resource_version(&obj).is_empty() {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    default_owned(rt, &mut obj);
    validation(rt, &obj)?;
    stamp_new(&mut obj, &ctx.req.namespace, rt);
    let now = meta::now_rfc3339();
    fields::record_update(
        None,
        &mut obj,
        &ctx.manager(),
        &stored_api_version(rt),
        &now,
        &schema(rt),
    );
    default_object(rt, &mut obj);
    if ctx.dry_run() {
        return Ok(Reply::Json(201, present(rt, &obj)));
    }
    let written = ctx
        .state
        .store
        .write(rt.store, &ctx.req.namespace, &name, |live, _| {
            if live.is_some() {
                return Err(ApiError::already_exists(rt, &name));
            }
            Ok(WriteOp::Put(obj))
        })?;
    Ok(reply_written(ctx, &written.obj, true))
}

/// Carries the server-owned metadata of `live` over to `new`, so clients cannot change it.
fn keep_server_metadata(live: &Value, new: &mut Value) {
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
fn put_unless_same(live: Option<&Value>, new: Value, dry_run: bool) -> WriteOp {
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
struct Updater<'a> {
    rt: &'a ResourceType,
    manager: &'a str,
    api_version: &'a str,
    now: &'a str,
    dry_run: bool,
}

impl Updater<'_> {
    fn op(&self, live: &Value, mut new: Value) -> WriteOp {
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

fn update(ctx: &Ctx) -> Result {
    let rt = ctx.req.rt;
    let mut body = to_stored(rt, decode::object_validated(ctx)?);
    let name = ctx.req.name.clone();
    if meta::name(&body) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&body)
        )));
    }
    check_body_namespace(ctx, &body)?;
    default_object(rt, &mut body);
    let manager = ctx.manager();
    let api_version = stored_api_version(rt);
    let now = meta::now_rfc3339();
    let exists = ctx
        .state
        .store
        .get(rt.store, &ctx.req.namespace, &name)
        .is_some();
    if !exists {
        // A PUT that creates needs `create` as well as `update`, as the real server checks.
        let r = &ctx.req;
        let attrs = crate::rbac::RequestAttributes {
            verb: "create",
            api_group: rt.group,
            resource: rt.plural,
            subresource: &r.subresource,
            namespace: &r.namespace,
            name: &r.name,
            resource_request: true,
            path: "",
        };
        if let crate::rbac::Decision::Deny { message } =
            ctx.state.authorizer.authorize(&ctx.user, &attrs)
        {
            return Err(ApiError::forbidden(message, rt.group, rt.plural, &r.name));
        }
        check_namespace(ctx)?;
    }
    let dry_run = ctx.dry_run();
    let updater = Updater {
        rt,
        manager: &manager,
        api_version: &api_version,
        now: &now,
        dry_run,
    };
    let written = ctx
        .state
        .store
        .write(rt.store, &ctx.req.namespace, &name, |live, _| {
            let want_uid = meta::uid(&body).to_string();
            let Some(live) = live else {
                if !want_uid.is_empty() {
                    return Err(ApiError::uid_precondition(
                        rt,
                        &ctx.req.namespace,
                        &name,
                        &want_uid,
                        "",
                    ));
                }
                validation(rt, &body)?;
                let mut obj = body.clone();
                stamp_new(&mut obj, &ctx.req.namespace, rt);
                fields::record_update(None, &mut obj, &manager, &api_version, &now, &schema(rt));
                return Ok(put_unless_same(None, obj, dry_run));
            };
            if !want_uid.is_empty() && want_uid != meta::uid(live) {
                return Err(ApiError::uid_precondition(
                    rt,
                    &ctx.req.namespace,
                    &name,
                    &want_uid,
                    meta::uid(live),
                ));
            }
            let rv = meta::resource_version(&body);
            if rv.is_empty() {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                        field: Some("metadata.resourceVersion".into()),
                    }],
                    false,
                ));
            }
            if rv != meta::resource_version(live) {
                return Err(ApiError::stale(rt, &name));
            }
            validation(rt, &body)?;
            let mut new = body.clone();
            keep_server_metadata(live, &mut new);
            Ok(updater.op(live, new))
        })?;
    Ok(reply_written(ctx, &written.obj, written.created))
}

fn patch(ctx: &Ctx) -> Result {
    let rt = ctx.req.rt;
    let media = ctx.content_type.split(';').next().unwrap_or("").trim();
    let Some(kind) = PatchKind::from_content_type(media) else {
        return Err(ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".to_string(),
            details: Some(json!({})),
        });
    };
    let name = ctx.req.name.clone();
    let now = meta::now_rfc3339();
    let api_version = stored_api_version(rt);
    if kind == PatchKind::Apply {
        return apply(ctx, &name, &now, &api_version);
    }
    let manager = ctx.manager();
    let body = ctx.body.clone();
    // `kubectl diff` patches with dryRun=All: answer the patched object without storing it.
    let updater = Updater {
        rt,
        manager: &manager,
        api_version: &api_version,
        now: &now,
        dry_run: ctx.dry_run(),
    };
    let written = ctx
        .state
        .store
        .write(rt.store, &ctx.req.namespace, &name, |live, _| {
            let live = live.ok_or_else(|| ApiError::not_found(rt, &name))?;
            let shown = present(rt, live);
            let patched = patch::apply_patch(kind, &shown, &body).map_err(|e| ApiError {
                code: e.code(),
                reason: e.reason(),
                message: e.to_string(),
                details: (e.code() == 422).then(|| json!({})),
            })?;
            let mut patched = patched;
            decode::patched_validated(ctx, &mut patched)?;
            let mut new = to_stored(rt, patched);
            let rv = meta::resource_version(&new);
            if !rv.is_empty() && rv != meta::resource_version(live) {
                return Err(ApiError::stale(rt, &name));
            }
            let uid = meta::uid(&new);
            if !uid.is_empty() && uid != meta::uid(live) {
                return Err(ApiError::uid_precondition(
                    rt,
                    &ctx.req.namespace,
                    &name,
                    uid,
                    meta::uid(live),
                ));
            }
            if meta::name(&new) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&new)
                )));
            }
            keep_server_metadata(live, &mut new);
            default_object(rt, &mut new);
            validation(rt, &new)?;
            Ok(updater.op(live, new))
        })?;
    Ok(reply_written(ctx, &written.obj, false))
}

fn apply(ctx: &Ctx, name: &str, now: &str, api_version: &str) -> Result {
    let rt = ctx.req.rt;
    let manager = ctx.param("fieldManager").to_string();
    if manager.is_empty() {
        return Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            details: Some(json!({
                "group": "meta.k8s.io",
                "kind": "PatchOptions",
                "causes": [{ "reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager" }]
            })),
        });
    }
    let force = ctx.flag("force");
    let applied =
        patch::parse_apply_body(&ctx.body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    decode::check_kind(rt, &applied, &ctx.body)?;
    decode::applied_validated(rt, &applied)?;
    if !meta::name(&applied).is_empty() && meta::name(&applied) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&applied)
        )));
    }
    // As the real server does, an apply body may leave the name out: the URL names the object.
    let mut applied = applied;
    meta_mut(&mut applied).insert("name".into(), json!(name));
    let applied = to_stored(rt, applied);
    if ctx
        .state
        .store
        .get(rt.store, &ctx.req.namespace, name)
        .is_none()
    {
        check_namespace(ctx)?;
    }
    let dry_run = ctx.dry_run();
    let written = ctx
        .state
        .store
        .write(rt.store, &ctx.req.namespace, name, |live, _| {
            let mut new = fields::apply(
                live,
                &applied,
                &manager,
                force,
                api_version,
                now,
                &schema(rt),
            )
            .map_err(|e| apply_conflict(&e))?;
            match live {
                Some(live) => keep_server_metadata_except_fields(live, &mut new),
                None => {
                    let mf = new
                        .get("metadata")
                        .and_then(|m| m.get("managedFields"))
                        .cloned();
                    stamp_new(&mut new, &ctx.req.namespace, rt);
                    if let Some(mf) = mf {
                        meta_mut(&mut new).insert("managedFields".into(), mf);
                    }
                }
            }
            default_object(rt, &mut new);
            validation(rt, &new)?;
            Ok(put_unless_same(live, new, dry_run))
        })?;
    Ok(reply_written(ctx, &written.obj, written.created))
}

/// Like [`keep_server_metadata`], but keeps the managedFields the apply computed.
fn keep_server_metadata_except_fields(live: &Value, new: &mut Value) {
    let mf = new
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .cloned();
    keep_server_metadata(live, new);
    if let Some(mf) = mf {
        meta_mut(new).insert("managedFields".into(), mf);
    }
}

fn apply_conflict(e: &fields::ApplyError) -> ApiError {
    if !matches!(e, fields::ApplyError::Conflicts(_)) {
        return ApiError {
            code: e.code(),
            reason: e.reason(),
            message: e.to_string(),
            details: None,
        };
    }
    let causes: Vec<Value> = fields::conflict_causes(e)
        .into_iter()
        .map(|(field, message)| json!({ "reason": "FieldManagerConflict", "message": message, "field": field }))
        .collect();
    ApiError {
        code: 409,
        reason: "Conflict",
        message: e.to_string(),
        details: Some(json!({ "causes": causes })),
    }
}

/// Reads DeleteOptions preconditions from the body (if any).
fn delete_preconditions(ctx: &Ctx) -> Result<(String, String)> {
    if ctx.body.iter().all(u8::is_ascii_whitespace) {
        return Ok((String::new(), String::new()));
    }
    let opts: Value = serde_json::from_slice(&ctx.body)
        .map_err(|e| ApiError::bad_request(format!("failed to decode DeleteOptions: {e}")))?;
    let pre = opts.get("preconditions");
    let get = |k: &str| {
        pre.and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok((get("uid"), get("resourceVersion")))
}

fn delete(ctx: &Ctx) -> Result {
    let rt = ctx.req.rt;
    let name = ctx.req.name.clone();
    let (want_uid, want_rv) = delete_preconditions(ctx)?;
    let precondition_failed = |why: String| ApiError {
        code: 409,
        reason: "Conflict",
        message: format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            rt.qualified_kind()
        ),
        details: Some({
            let mut d = json!({ "name": name, "kind": rt.kind });
            if !rt.group.is_empty() {
                d["group"] = json!(rt.group);
            }
            d
        }),
    };
    let dry_run = ctx.dry_run();
    let written = ctx.state.store.write(rt.store, &ctx.req.namespace, &name, |live, _| {
        let live = live.ok_or_else(|| ApiError::not_found(rt, &name))?;
        if !want_uid.is_empty() && want_uid != meta::uid(live) {
            return Err(precondition_failed(format!(
                "Precondition failed: UID in precondition: {want_uid}, UID in object meta: {}",
                meta::uid(live)
            )));
        }
        if !want_rv.is_empty() && want_rv != meta::resource_version(live) {
            return Err(precondition_failed(format!(
                "the ResourceVersion in the precondition ({want_rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                meta::resource_version(live)
            )));
        }
        Ok(if dry_run { WriteOp::Preview(live.clone()) } else { WriteOp::Delete })
    })?;
    let obj = written.obj;
    if rt.plural == "namespaces" {
        if !dry_run {
            ctx.state.store.delete_namespace_contents(&name);
        }
        let mut shown = (*obj).clone();
        meta_mut(&mut shown).insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
        shown["status"] = json!({ "phase": "Terminating" });
        return Ok(Reply::Json(200, shown));
    }
    Ok(Reply::Json(
        200,
        status::delete_success(rt, &name, meta::uid(&obj)),
    ))
}

fn delete_collection(ctx: &Ctx) -> Result {
    let rt = ctx.req.rt;
    let filter = Filter::from_ctx(ctx)?;
    let ns = (!ctx.req.namespace.is_empty()).then_some(ctx.req.namespace.as_str());
    let (items, _) = ctx.state.store.list(rt.store, ns);
    let mut deleted = vec![];
    for item in items.iter().filter(|o| filter.matches(&present(rt, o))) {
        let (ns, name) = (
            meta::namespace(item).to_string(),
            meta::name(item).to_string(),
        );
        if ctx.dry_run() {
            deleted.push(present(rt, item));
            continue;
        }
        if let Ok(w) = ctx.state.store.write(rt.store, &ns, &name, |live, _| {
            live.map(|_| WriteOp::Delete)
                .ok_or_else(|| ApiError::not_found(rt, &name))
        }) {
            deleted.push(present(rt, &w.obj));
        }
    }
    Ok(Reply::Json(
        200,
        json!({
            "kind": rt.list_kind(),
            "apiVersion": rt.api_version(),
            "metadata": { "resourceVersion": ctx.state.store.current_rv().to_string() },
            "items": deleted,
        }),
    ))
}
