//! Update (PUT): replacing an object, or creating it when it does not exist, with the real server's optimistic
//! concurrency and managedFields bookkeeping.

use super::schema;
use super::write::{
    Updater, check_body_namespace, check_namespace, default_object, keep_server_metadata,
    put_unless_same, reply_written, stamp_new, stored_api_version, to_stored, validation,
};
use crate::decode;
use crate::fields;
use crate::meta;
use crate::request::{Ctx, Result};
use crate::status::{ApiError, Cause};

pub(super) fn update(ctx: &Ctx) -> Result {
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
