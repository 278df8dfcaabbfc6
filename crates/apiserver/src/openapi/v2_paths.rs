//! The Swagger 2.0 path items of each served resource, generated from its [`ResourceType`]: operations, query
//! and path parameters, bodies and responses, as kube-apiserver's OpenAPI builder lays them out. Separate
//! because it is most of the code and the only part that knows the resource table.

use serde_json::{Map, Value, json};

use super::{META, V2_REF, schema_name};
use crate::resource::ResourceType;

/// `api/v1` or `apis/<group>/<version>`: the v3 index key and the paths' prefix (after `/`).
pub(super) fn gv_path(rt: &ResourceType) -> String {
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
pub(super) fn resource_paths(rt: &'static ResourceType, paths: &mut Map<String, Value>) {
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
