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
//!
//! This file holds the shared documents and their public accessors; `v2_paths` generates the Swagger 2.0 path
//! items of each served resource, and `v3_convert` derives the per-group-version v3 documents from them.

mod v2_paths;
mod v3_convert;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::discovery::GIT_VERSION;
use crate::resource::{ALL, ResourceType};
use v2_paths::{gv_path, resource_paths};
use v3_convert::{hash, v3_document};

/// The type schemas, in Swagger 2.0 form, keyed by their Go-derived names (`io.k8s.api.coordination.v1.Lease`).
const DEFINITIONS: &str = include_str!("definitions.json");

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

#[cfg(test)]
mod tests {
    use super::v3_convert::collect_refs;
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
