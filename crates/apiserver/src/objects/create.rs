//! Create (POST): a new object, with a generated name when asked, defaulted, validated and stamped.

use super::write::{
    check_body_namespace, check_namespace, default_object, default_owned, generate_name,
    reply_written, stamp_new, stored_api_version, to_stored, validation,
};
use super::{present, schema};
use crate::decode;
use crate::fields;
use crate::meta;
use crate::request::{Ctx, Reply, Result};
use crate::status::{ApiError, Cause};
use crate::store::WriteOp;

pub(super) fn create(ctx: &Ctx) -> Result {
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
