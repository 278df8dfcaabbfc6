//! Patch in all four flavours: JSON patch, merge patch and strategic merge patch, and server-side apply with its
//! field-manager conflicts answered as the real server's 409.

use serde_json::{Value, json};

use super::write::{
    Updater, check_namespace, default_object, keep_server_metadata, put_unless_same, reply_written,
    stamp_new, stored_api_version, to_stored, validation,
};
use super::{present, schema};
use crate::decode;
use crate::fields;
use crate::meta::{self, meta_mut};
use crate::patch::{self, PatchKind};
use crate::request::{Ctx, Result};
use crate::status::ApiError;

pub(super) fn patch(ctx: &Ctx) -> Result {
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
