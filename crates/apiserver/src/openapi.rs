//! OpenAPI documents, which `kubectl apply` needs: `/openapi/v2` (Swagger 2.0) and `/openapi/v3` (an index of
//! one document per group-version).
//!
//! kubectl 1.33 reads the v3 document of an object's group-version to learn whether the server checks fields
//! itself (a `fieldValidation` query parameter on the kind's PATCH operation; then it skips client-side
//! validation and sends `fieldValidation=Strict`) and to build a client-side-apply strategic merge patch (the
//! schema tagged with the kind's `x-kubernetes-group-version-kind`, with its `x-kubernetes-patch-*` merge keys).
//! It only falls back to v2 when v3 lacks the kind, and then it insists on protobuf, which we do not speak: v2
//! is served as JSON to clients that accept it and answered 406 otherwise.
//!
//! The type schemas live in `openapi/definitions.json` (hand-written, v2 form, the real type names and
//! extensions with our own shorter descriptions); the paths are generated here from [`crate::resource::ALL`],
//! so the documents describe exactly what the server serves. The v3 documents are derived from the v2 one the
//! way kube-openapi's builder does (`in: body` parameters become request bodies, `produces` become response
//! content types, `#/definitions/` becomes `#/components/schemas/`), and each carries only the schemas its
//! paths reach. All documents are built once and shared.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::discovery::GIT_VERSION;
use crate::resource::{ALL, ResourceType};

/// The type schemas, in Swagger 2.0 form, keyed by their Go-derived names (`io.k8s.api.coordination.v1.Lease`).
const DEFINITIONS: &str = include_str!("openapi/definitions.json");

const V2_REF: &str = "#/definitions/";
const V3_REF: &str = "#/components/schemas/";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// Why the OpenAPI documents could not be built. Only a broken `definitions.json` can cause this, which the
/// unit tests catch; the server answers 500 rather than panicking.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// `openapi/definitions.json` is not valid JSON.
    #[error("openapi/definitions.json is not valid JSON; fix the file")]
    Definitions(#[source] serde_json::Error),
    /// `openapi/definitions.json` lacks a schema a served resource needs.
    #[error("openapi/definitions.json has no schema {0}; add it")]
    MissingSchema(String),
}

/// Every document, built once.
struct Documents {
    v2: Value,
    v3_index: Value,
    /// Group-version documents by index key (`api/v1`, `apis/coordination.k8s.io/v1`).
    v3: BTreeMap<String, Value>,
    /// The schemas by name, for field checks.
    definitions: Map<String, Value>,
}

fn documents() -> Result<&'static Documents, &'static OpenApiError> {
    static DOCS: OnceLock<Result<Documents, OpenApiError>> = OnceLock::new();
    DOCS.get_or_init(build).as_ref()
}

/// The Swagger 2.0 document (`/openapi/v2`).
pub fn v2() -> Result<&'static Value, &'static OpenApiError> {
    documents().map(|d| &d.v2)
}

/// The v3 index (`/openapi/v3`): each group-version's path with a `serverRelativeURL` whose `hash` changes
/// only when that document does, so clients may cache it.
pub fn v3_index() -> Result<&'static Value, &'static OpenApiError> {
    documents().map(|d| &d.v3_index)
}

/// The v3 document of one group-version (`/openapi/v3/<path>`), `None` for a group-version not served.
pub fn v3(path: &str) -> Result<Option<&'static Value>, &'static OpenApiError> {
    documents().map(|d| d.v3.get(path.trim_matches('/')))
}

/// The schema named `name` (e.g. `io.k8s.api.coordination.v1.Lease`), for the strict field checks in decoding.
pub fn definition(name: &str) -> Result<Option<&'static Value>, &'static OpenApiError> {
    documents().map(|d| d.definitions.get(name))
}

/// The schema name of a resource's kind, as the real documents name it.
pub fn schema_name(rt: &ResourceType) -> String {
    let package = match rt.group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("io.k8s.api.{package}.{}.{}", rt.version, rt.kind)
}

/// Whether `accept` allows the JSON form of the v2 document. kubectl asks for protobuf only; it gets 406.
pub fn v2_acceptable(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|part| {
            let media = part.split(';').next().unwrap_or("").trim();
            matches!(media, "application/json" | "application/*" | "*/*")
        })
}

fn build() -> Result<Documents, OpenApiError> {
    let definitions: Map<String, Value> =
        serde_json::from_str(DEFINITIONS).map_err(OpenApiError::Definitions)?;
    let mut paths = Map::new();
    for rt in ALL {
        for name in [schema_name(rt), format!("{}List", schema_name(rt))] {
            if !definitions.contains_key(&name) {
                return Err(OpenApiError::MissingSchema(name));
            }
        }
        resource_paths(rt, &mut paths);
    }
    let v2 = json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": GIT_VERSION },
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": { "type": "apiKey", "name": "authorization", "in": "header",
                             "description": "Bearer token authentication" }
        },
        "security": [{ "BearerToken": [] }],
    });
    let mut v3 = BTreeMap::new();
    let mut index = Map::new();
    let group_versions: BTreeSet<String> = ALL.iter().map(|rt| gv_path(rt)).collect();
    for gv in group_versions {
        let doc = v3_document(&gv, &paths, &definitions);
        let url = format!("/openapi/v3/{gv}?hash={}", hash(&doc));
        index.insert(gv.clone(), json!({ "serverRelativeURL": url }));
        v3.insert(gv, doc);
    }
    Ok(Documents {
        v2,
        v3_index: json!({ "paths": index }),
        v3,
        definitions,
    })
}

/// `api/v1` or `apis/<group>/<version>`: the v3 index key and the paths' prefix (after `/`).
fn gv_path(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        format!("api/{}", rt.version)
    } else {
        format!("apis/{}/{}", rt.group, rt.version)
    }
}

/// `CoordinationV1`, `CoreV1`: the group-version part of operation ids.
fn op_infix(rt: &ResourceType) -> String {
    let group = match rt.group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("{}{}", capitalise(group), capitalise(rt.version))
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "type": ty, "uniqueItems": true, "description": description })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "type": "string", "uniqueItems": true,
            "description": description })
}

fn body(schema: &str) -> Value {
    json!({ "name": "body", "in": "body", "required": true, "schema": { "$ref": format!("{V2_REF}{schema}") } })
}

fn write_params() -> Vec<Value> {
    vec![
        query(
            "dryRun",
            "string",
            "When present, the write is validated and answered but not persisted. Valid values: All.",
        ),
        query(
            "fieldManager",
            "string",
            "The name of the actor making the change, for field ownership; at most 128 printable characters.",
        ),
        query(
            "fieldValidation",
            "string",
            "What to do with unknown or duplicate fields in the body: Ignore (drop them), Warn (drop them and \
             answer a Warning header for each; the default) or Strict (fail the request with 400).",
        ),
    ]
}

fn list_params() -> Vec<Value> {
    [
        (
            "allowWatchBookmarks",
            "boolean",
            "Ask for BOOKMARK watch events.",
        ),
        (
            "continue",
            "string",
            "The continue token of a previous page of a list.",
        ),
        (
            "fieldSelector",
            "string",
            "Restrict the returned objects by their fields.",
        ),
        (
            "labelSelector",
            "string",
            "Restrict the returned objects by their labels.",
        ),
        (
            "limit",
            "integer",
            "The most objects to return in one page.",
        ),
        (
            "resourceVersion",
            "string",
            "What resource versions the answer may be served from.",
        ),
        (
            "resourceVersionMatch",
            "string",
            "How resourceVersion applies to a list.",
        ),
        (
            "sendInitialEvents",
            "boolean",
            "Start a watch with the current objects, ended by a bookmark.",
        ),
        (
            "timeoutSeconds",
            "integer",
            "How long a list or watch call may last.",
        ),
        ("watch", "boolean", "Watch for changes instead of listing."),
    ]
    .into_iter()
    .map(|(n, t, d)| query(n, t, d))
    .collect()
}

fn delete_params() -> Vec<Value> {
    vec![
        body(&format!("{META}DeleteOptions")),
        query(
            "dryRun",
            "string",
            "When present, the delete is checked but not carried out. Valid values: All.",
        ),
        query(
            "gracePeriodSeconds",
            "integer",
            "Seconds before the object is deleted; zero deletes at once.",
        ),
        query(
            "orphanDependents",
            "boolean",
            "Deprecated: use propagationPolicy.",
        ),
        query(
            "propagationPolicy",
            "string",
            "Orphan, Background or Foreground garbage collection of dependents.",
        ),
    ]
}

fn responses(codes: &[u16], schema: &str) -> Value {
    let mut out = Map::new();
    for code in codes {
        let description = match code {
            201 => "Created",
            202 => "Accepted",
            _ => "OK",
        };
        out.insert(
            code.to_string(),
            json!({ "description": description, "schema": { "$ref": format!("{V2_REF}{schema}") } }),
        );
    }
    out.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(out)
}

/// One operation: `action` is the `x-kubernetes-action`, `id` the operationId.
struct Op<'a> {
    rt: &'a ResourceType,
    action: &'static str,
    id: String,
    description: String,
    params: Vec<Value>,
    responses: Value,
    consumes: &'static [&'static str],
    produces: &'static [&'static str],
}

const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PRODUCES_LIST: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const CONSUMES_ANY: &[&str] = &["*/*"];
const CONSUMES_PATCH: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

impl Op<'_> {
    fn render(self) -> Value {
        let tag = format!(
            "{}_{}",
            match self.rt.group {
                "" => "core",
                g => g.split('.').next().unwrap_or(g),
            },
            self.rt.version
        );
        json!({
            "description": self.description,
            "operationId": self.id,
            "consumes": self.consumes,
            "produces": self.produces,
            "schemes": ["https"],
            "tags": [tag],
            "parameters": self.params,
            "responses": self.responses,
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": {
                "group": self.rt.group, "version": self.rt.version, "kind": self.rt.kind
            },
        })
    }
}

/// Adds the paths of one resource, namespaced or cluster-scoped, like the real server's.
fn resource_paths(rt: &'static ResourceType, paths: &mut Map<String, Value>) {
    let base = format!("/{}", gv_path(rt));
    let g = op_infix(rt);
    let kind = rt.kind;
    let schema = schema_name(rt);
    let list_schema = format!("{schema}List");
    let status = format!("{META}Status");
    let scope = if rt.namespaced { "Namespaced" } else { "" };
    let (collection, item) = if rt.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", rt.plural),
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", rt.plural),
        )
    } else {
        (
            format!("{base}/{}", rt.plural),
            format!("{base}/{}/{{name}}", rt.plural),
        )
    };
    let mut scope_params = vec![];
    if rt.namespaced {
        scope_params.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    scope_params.push(query(
        "pretty",
        "string",
        "If 'true', then the output is pretty printed.",
    ));
    let op = |action, id: String, description: String, params, responses, consumes, produces| {
        Op {
            rt,
            action,
            id,
            description,
            params,
            responses,
            consumes,
            produces,
        }
        .render()
    };

    let mut coll = Map::new();
    coll.insert(
        "get".into(),
        op(
            "list",
            format!("list{g}{scope}{kind}"),
            format!("list or watch objects of kind {kind}"),
            list_params(),
            responses(&[200], &list_schema),
            CONSUMES_ANY,
            PRODUCES_LIST,
        ),
    );
    let mut create = vec![body(&schema)];
    create.extend(write_params());
    coll.insert(
        "post".into(),
        op(
            "post",
            format!("create{g}{scope}{kind}"),
            format!("create a {kind}"),
            create,
            responses(&[200, 201, 202], &schema),
            CONSUMES_ANY,
            PRODUCES,
        ),
    );
    let mut delete_coll = delete_params();
    delete_coll.extend(list_params());
    coll.insert(
        "delete".into(),
        op(
            "deletecollection",
            format!("delete{g}Collection{scope}{kind}"),
            format!("delete collection of {kind}"),
            delete_coll,
            responses(&[200], &status),
            CONSUMES_ANY,
            PRODUCES,
        ),
    );
    coll.insert("parameters".into(), json!(scope_params));
    paths.insert(collection, Value::Object(coll));

    let mut obj = Map::new();
    obj.insert(
        "get".into(),
        op(
            "get",
            format!("read{g}{scope}{kind}"),
            format!("read the specified {kind}"),
            vec![],
            responses(&[200], &schema),
            CONSUMES_ANY,
            PRODUCES,
        ),
    );
    let mut replace = vec![body(&schema)];
    replace.extend(write_params());
    obj.insert(
        "put".into(),
        op(
            "put",
            format!("replace{g}{scope}{kind}"),
            format!("replace the specified {kind}"),
            replace,
            responses(&[200, 201], &schema),
            CONSUMES_ANY,
            PRODUCES,
        ),
    );
    let mut patch = vec![body(&format!("{META}Patch"))];
    patch.extend(write_params());
    patch.push(query(
        "force",
        "boolean",
        "Take fields other managers own (apply requests only).",
    ));
    obj.insert(
        "patch".into(),
        op(
            "patch",
            format!("patch{g}{scope}{kind}"),
            format!("partially update the specified {kind}"),
            patch,
            responses(&[200, 201], &schema),
            CONSUMES_PATCH,
            PRODUCES,
        ),
    );
    obj.insert(
        "delete".into(),
        op(
            "delete",
            format!("delete{g}{scope}{kind}"),
            format!("delete a {kind}"),
            delete_params(),
            responses(&[200, 202], &status),
            CONSUMES_ANY,
            PRODUCES,
        ),
    );
    let mut item_params = vec![path_param("name", &format!("name of the {kind}"))];
    item_params.extend(scope_params);
    obj.insert("parameters".into(), json!(item_params));
    paths.insert(item, Value::Object(obj));

    if rt.namespaced {
        let list_all = op(
            "list",
            format!("list{g}{kind}ForAllNamespaces"),
            format!("list or watch objects of kind {kind}"),
            vec![],
            responses(&[200], &list_schema),
            CONSUMES_ANY,
            PRODUCES_LIST,
        );
        let mut params = list_params();
        params.push(query(
            "pretty",
            "string",
            "If 'true', then the output is pretty printed.",
        ));
        paths.insert(
            format!("{base}/{}", rt.plural),
            json!({ "get": list_all, "parameters": params }),
        );
    }
}

/// The v3 document of one group-version, derived from the v2 paths under it.
fn v3_document(gv: &str, paths: &Map<String, Value>, definitions: &Map<String, Value>) -> Value {
    let prefix = format!("/{gv}/");
    let mut out = Map::new();
    for (path, item) in paths.iter().filter(|(p, _)| p.starts_with(&prefix)) {
        out.insert(path.clone(), v3_path_item(item));
    }
    let mut wanted = BTreeSet::new();
    collect_refs(&Value::Object(out.clone()), &mut wanted);
    let mut schemas = Map::new();
    let mut queue: Vec<String> = wanted.iter().cloned().collect();
    while let Some(name) = queue.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        if let Some(schema) = definitions.get(&name) {
            let converted = rewrite_refs(schema);
            let mut found = BTreeSet::new();
            collect_refs(&converted, &mut found);
            queue.extend(found.into_iter().filter(|n| !schemas.contains_key(n)));
            schemas.insert(name, converted);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": GIT_VERSION },
        "paths": out,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": { "type": "apiKey", "name": "authorization", "in": "header",
                                 "description": "Bearer token authentication" }
            }
        },
    })
}

fn v3_path_item(item: &Value) -> Value {
    let mut out = Map::new();
    let Some(map) = item.as_object() else {
        return item.clone();
    };
    for (key, value) in map {
        let converted = if key == "parameters" {
            json!(
                value
                    .as_array()
                    .map(|ps| ps.iter().map(v3_parameter).collect::<Vec<_>>())
                    .unwrap_or_default()
            )
        } else {
            v3_operation(value)
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
}

fn v3_parameter(p: &Value) -> Value {
    let mut out = Map::new();
    let mut schema = Map::new();
    if let Some(map) = p.as_object() {
        for (k, v) in map {
            match k.as_str() {
                "type" | "uniqueItems" | "format" => {
                    schema.insert(k.clone(), v.clone());
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    out.insert("schema".into(), Value::Object(schema));
    Value::Object(out)
}

fn media_content(types: &[Value], schema: &Value) -> Value {
    let mut content = Map::new();
    for t in types.iter().filter_map(Value::as_str) {
        content.insert(t.to_string(), json!({ "schema": schema }));
    }
    Value::Object(content)
}

fn v3_operation(op: &Value) -> Value {
    let Some(map) = op.as_object() else {
        return op.clone();
    };
    let empty = vec![];
    let consumes = map
        .get("consumes")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let produces = map
        .get("produces")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "consumes" | "produces" | "schemes" => {}
            "parameters" => {
                let mut params = vec![];
                for p in v.as_array().unwrap_or(&empty) {
                    if p.get("in").and_then(Value::as_str) == Some("body") {
                        let schema = rewrite_refs(p.get("schema").unwrap_or(&Value::Null));
                        out.insert(
                            "requestBody".into(),
                            json!({ "content": media_content(consumes, &schema), "required": true }),
                        );
                    } else {
                        params.push(v3_parameter(p));
                    }
                }
                out.insert("parameters".into(), json!(params));
            }
            "responses" => {
                let mut rs = Map::new();
                for (code, r) in v.as_object().into_iter().flatten() {
                    let mut converted = json!({ "description": r.get("description").cloned().unwrap_or(json!("")) });
                    if let Some(schema) = r.get("schema") {
                        converted["content"] = media_content(produces, &rewrite_refs(schema));
                    }
                    rs.insert(code.clone(), converted);
                }
                out.insert("responses".into(), Value::Object(rs));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A copy of `v` with every v2 `$ref` pointing into `components/schemas`.
fn rewrite_refs(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => (k.clone(), json!(r.replacen(V2_REF, V3_REF, 1))),
                    _ => (k.clone(), rewrite_refs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rewrite_refs).collect()),
        other => other.clone(),
    }
}

/// The schema names every `$ref` in `v` points at (either form).
fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => {
                        let name = r
                            .strip_prefix(V3_REF)
                            .or_else(|| r.strip_prefix(V2_REF))
                            .unwrap_or(r);
                        out.insert(name.to_string());
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// A stable, opaque digest of a document (FNV-1a, 64 bits, twice with different seeds), upper-case hex like
/// the real server's. It changes exactly when the document's JSON does, which is all clients rely on.
fn hash(doc: &Value) -> String {
    let bytes = doc.to_string();
    let fnv = |seed: u64| {
        bytes.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016X}{:016X}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::LEASES;

    #[test]
    fn definitions_parse_and_cover_every_served_kind() {
        let docs = documents().expect("documents build");
        for rt in ALL {
            assert!(
                docs.definitions.contains_key(&schema_name(rt)),
                "{}",
                rt.kind
            );
        }
    }

    #[test]
    fn every_ref_resolves() {
        let docs = documents().expect("documents build");
        let mut refs = BTreeSet::new();
        collect_refs(&docs.v2, &mut refs);
        for r in &refs {
            assert!(docs.definitions.contains_key(r), "dangling $ref {r}");
        }
        for (gv, doc) in &docs.v3 {
            let mut refs = BTreeSet::new();
            collect_refs(doc, &mut refs);
            let schemas = &doc["components"]["schemas"];
            for r in refs {
                assert!(schemas.get(&r).is_some(), "{gv}: dangling $ref {r}");
            }
            assert!(!doc.to_string().contains(V2_REF), "{gv} has a v2 $ref");
        }
    }

    #[test]
    fn lease_patch_operation_declares_field_validation_and_strategic_merge() {
        let doc = v3("apis/coordination.k8s.io/v1").unwrap().unwrap();
        let patch = &doc["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]
            ["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "coordination.k8s.io", "version": "v1", "kind": "Lease"})
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_some()
        );
        let lease = &doc["components"]["schemas"]["io.k8s.api.coordination.v1.Lease"];
        assert_eq!(lease["x-kubernetes-group-version-kind"][0]["kind"], "Lease");
        assert!(
            doc["components"]["schemas"]
                .get("io.k8s.api.core.v1.Namespace")
                .is_none()
        );
    }

    #[test]
    fn index_lists_each_group_version_with_a_stable_hash() {
        let index = v3_index().unwrap();
        let paths = index["paths"].as_object().unwrap();
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "api/v1",
                "apis/coordination.k8s.io/v1",
                "apis/events.k8s.io/v1"
            ]
        );
        let url = paths["apis/coordination.k8s.io/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let doc = v3("apis/coordination.k8s.io/v1").unwrap().unwrap();
        assert_eq!(
            url,
            format!("/openapi/v3/apis/coordination.k8s.io/v1?hash={}", hash(doc))
        );
        assert_eq!(hash(doc), hash(&doc.clone()));
    }

    #[test]
    fn schema_names_follow_the_real_packages() {
        assert_eq!(schema_name(&LEASES), "io.k8s.api.coordination.v1.Lease");
        assert_eq!(
            schema_name(&crate::resource::CORE_EVENTS),
            "io.k8s.api.core.v1.Event"
        );
        assert_eq!(
            schema_name(&crate::resource::EVENTS),
            "io.k8s.api.events.v1.Event"
        );
    }

    #[test]
    fn v2_is_json_only() {
        assert!(v2_acceptable(""));
        assert!(v2_acceptable("application/json, */*"));
        assert!(!v2_acceptable(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        ));
    }
}
