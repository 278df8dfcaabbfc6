//! Get, list, create, update, patch and delete for every served resource, with the real server's optimistic
//! concurrency, preconditions, validation and managedFields.
//!
//! This file dispatches by verb; `read` serves get and list, `create`, `update`, `patch_apply` and `delete` one
//! write verb each, and `write` holds the steps they share (defaulting, stamping, checks, the write to store).

mod create;
mod delete;
mod patch_apply;
mod read;
mod update;
mod write;

use serde_json::Value;

use crate::event_view;
use crate::fields::Schema;
use crate::request::{Ctx, Result};
use crate::resource::{ResourceType, View};
use crate::status::ApiError;
use create::create;
use delete::{delete, delete_collection};
use patch_apply::patch;
use read::{get, list};
use update::update;

pub use read::Filter;

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
