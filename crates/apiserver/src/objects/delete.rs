//! Delete and deletecollection, with DeleteOptions preconditions (uid and resourceVersion).

use serde_json::{Value, json};

use super::{Filter, present};
use crate::meta::{self, meta_mut};
use crate::request::{Ctx, Reply, Result};
use crate::status::{self, ApiError};
use crate::store::WriteOp;

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

pub(super) fn delete(ctx: &Ctx) -> Result {
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

pub(super) fn delete_collection(ctx: &Ctx) -> Result {
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
