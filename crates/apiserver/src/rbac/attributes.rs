//! What the authorizer is asked ([`RequestAttributes`]) and what it answers ([`Decision`]): the plain data
//! exchanged between the HTTP layer and the [`Authorizer`](super::Authorizer), apart from how it decides.

/// What a request asks for, as the RBAC authorizer sees it (kube-apiserver's `RequestInfo`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestAttributes<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for
    /// non-resource requests the lower-cased HTTP method.
    pub verb: &'a str,
    /// `""` for the core group, e.g. `coordination.k8s.io`.
    pub api_group: &'a str,
    /// Plural resource, e.g. `leases`.
    pub resource: &'a str,
    /// e.g. `status`, or `""`.
    pub subresource: &'a str,
    /// `""` = cluster-scoped or all namespaces. Note that kube-apiserver sets this to the
    /// namespace's own name for requests on `/api/v1/namespaces/<name>`.
    pub namespace: &'a str,
    /// Object name, `""` for list/watch/create.
    pub name: &'a str,
    /// False for non-resource URLs like `/version`, `/api`, `/openapi/v2`.
    pub resource_request: bool,
    /// The request path; used only for non-resource requests.
    pub path: &'a str,
}

/// The authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request must be answered 403 Forbidden.
    Deny {
        /// The Status `message`, exactly as kube-apiserver words it, e.g. `leases.coordination.k8s.io
        /// is forbidden: User "x" cannot list resource "leases" in API group
        /// "coordination.k8s.io" in the namespace "ref"`.
        message: String,
    },
}
