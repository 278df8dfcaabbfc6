//! Get and list: reading one object or a filtered, paginated list, with the list filters ([`Filter`]) that watch
//! shares and the continue tokens of paginated lists.

use base64::Engine;
use serde_json::{Value, json};

use super::present;
use crate::meta;
use crate::request::{Ctx, Reply, Result};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::table;

pub(super) fn get(ctx: &Ctx) -> Result {
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

pub(super) fn list(ctx: &Ctx) -> Result {
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
