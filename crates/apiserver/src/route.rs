//! Turns a request path and method into what it asks for, as kube-apiserver's RequestInfoFactory does.

use http::Method;

use crate::resource::{self, ResourceType};

/// A request for objects of a served resource.
#[derive(Debug)]
pub struct ResourceRequest {
    /// The resource addressed.
    pub rt: &'static ResourceType,
    /// The namespace from the path; "" for cluster-scoped or all-namespaces requests.
    pub namespace: String,
    /// The object name, "" for collection requests.
    pub name: String,
    /// The subresource (`status`), "" for none.
    pub subresource: String,
    /// The Kubernetes verb.
    pub verb: &'static str,
}

/// Everything the server answers.
#[derive(Debug)]
pub enum Route {
    /// `/healthz`, `/readyz`, `/livez` (and their sub-checks).
    Health,
    /// `/version`.
    Version,
    /// `/api`.
    CoreVersions,
    /// `/api/v1`.
    CoreResources,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/apis/<group>/<version>`.
    GroupResources(String, String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3` (the index).
    OpenApiV3Index,
    /// `/openapi/v3/<api|apis/...>`: one group-version's document.
    OpenApiV3(String),
    /// The test-only admin endpoint, with the rest of its path.
    Admin(String),
    /// An object or collection request.
    Resource(ResourceRequest),
    /// A resource-shaped path for a resource the server does not serve (secrets, configmaps, ...). It is still
    /// authorized first, as the real server does, so a forbidden user sees 403 rather than 404.
    UnknownResource {
        /// API group from the path.
        group: String,
        /// Resource from the path.
        plural: String,
        /// Namespace from the path, "" if none.
        namespace: String,
        /// Object name from the path, "" if none.
        name: String,
        /// The verb the method and path imply.
        verb: &'static str,
    },
    /// A known group-version but an unknown resource, or an unknown path.
    NotFound,
}

/// The path prefix of the admin endpoint (outside `/api` and `/apis`).
pub const ADMIN_PREFIX: &str = "/leasehold-admin/";

/// Parses `path` (without the query) for `method`; `watch` is whether `?watch=` was set.
pub fn parse(method: &Method, path: &str, watch: bool) -> Route {
    let trimmed = path.trim_end_matches('/');
    if let Some(rest) = path.strip_prefix(ADMIN_PREFIX) {
        return Route::Admin(rest.to_string());
    }
    for probe in ["/healthz", "/readyz", "/livez"] {
        if trimmed == probe || trimmed.starts_with(&format!("{probe}/")) {
            return Route::Health;
        }
    }
    let segs: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["api", "v1"] => Route::CoreResources,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group((*g).to_string()),
        ["apis", g, v] => Route::GroupResources((*g).to_string(), (*v).to_string()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["api", "v1", rest @ ..] => resource_route(method, "", "v1", rest, watch),
        ["apis", g, v, rest @ ..] => resource_route(method, g, v, rest, watch),
        _ => Route::NotFound,
    }
}

fn resource_route(
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    watch: bool,
) -> Route {
    // namespaces/<ns>/<resource>[/<name>[/<sub>]], or <resource>[/<name>[/<sub>]].
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] if tail.len() <= 2 && !is_namespace_sub(plural) => (
            *ns,
            *plural,
            tail.first().copied().unwrap_or(""),
            tail.get(1).copied().unwrap_or(""),
        ),
        ["namespaces", name, sub] => ("", "namespaces", *name, *sub),
        [plural, tail @ ..] if tail.len() <= 2 => (
            "",
            *plural,
            tail.first().copied().unwrap_or(""),
            tail.get(1).copied().unwrap_or(""),
        ),
        _ => return Route::NotFound,
    };
    let verb = match (method.as_str(), name.is_empty()) {
        ("GET", false) => "get",
        ("GET", true) if watch => "watch",
        ("GET", true) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "delete",
        ("DELETE", true) => "deletecollection",
        _ => "unknown",
    };
    let Some(rt) =
        resource::lookup(group, version, plural).filter(|rt| rt.namespaced || namespace.is_empty())
    else {
        return Route::UnknownResource {
            group: group.to_string(),
            plural: plural.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            verb,
        };
    };
    Route::Resource(ResourceRequest {
        rt,
        namespace: namespace.to_string(),
        name: name.to_string(),
        subresource: sub.to_string(),
        verb,
    })
}

fn is_namespace_sub(s: &str) -> bool {
    matches!(s, "status" | "finalize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(method: Method, path: &str, watch: bool) -> ResourceRequest {
        match parse(&method, path, watch) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_paths() {
        let r = res(
            Method::GET,
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l1",
            false,
        );
        assert_eq!(
            (r.rt.plural, r.namespace.as_str(), r.name.as_str(), r.verb),
            ("leases", "ns", "l1", "get")
        );
        let r = res(Method::GET, "/apis/coordination.k8s.io/v1/leases", true);
        assert_eq!((r.namespace.as_str(), r.verb), ("", "watch"));
        let r = res(Method::GET, "/api/v1/namespaces/ns/events", false);
        assert_eq!((r.rt.group, r.verb), ("", "list"));
    }

    #[test]
    fn namespace_objects() {
        let r = res(Method::DELETE, "/api/v1/namespaces/foo", false);
        assert_eq!(
            (r.rt.plural, r.name.as_str(), r.verb),
            ("namespaces", "foo", "delete")
        );
        let r = res(Method::PUT, "/api/v1/namespaces/foo/finalize", false);
        assert_eq!(
            (r.name.as_str(), r.subresource.as_str()),
            ("foo", "finalize")
        );
    }

    #[test]
    fn unknown_resources_are_authorized_before_not_found() {
        assert!(matches!(
            parse(
                &Method::GET,
                "/apis/coordination.k8s.io/v1/namespaces/ns/nopes",
                false
            ),
            Route::UnknownResource { .. }
        ));
        assert!(matches!(
            parse(&Method::GET, "/nothing", false),
            Route::NotFound
        ));
    }
}
