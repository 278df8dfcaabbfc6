//! The part of kube-apiserver's bootstrap policy that applies to this server: built-in ClusterRoles and their
//! ClusterRoleBindings, added to every loaded policy. Separate because it is data, not logic.

use super::model::{Binding, PolicyRule, RoleRef, Subject};
use super::users::{AUTHENTICATED_GROUP, MASTERS_GROUP};

/// The part of kube-apiserver's bootstrap ClusterRoles that applies to this server.
pub(super) fn bootstrap_cluster_roles() -> Vec<(&'static str, Vec<PolicyRule>)> {
    vec![
        (
            "cluster-admin",
            vec![
                PolicyRule::rule(&["*"], &["*"], &["*"], &[]),
                PolicyRule::rule(&["*"], &[], &[], &["*"]),
            ],
        ),
        (
            "system:discovery",
            vec![PolicyRule::rule(
                &["get"],
                &[],
                &[],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        (
            "system:public-info-viewer",
            vec![PolicyRule::rule(
                &["get"],
                &[],
                &[],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        (
            "system:basic-user",
            vec![
                PolicyRule::rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &[],
                ),
                PolicyRule::rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &[],
                ),
            ],
        ),
    ]
}

/// kube-apiserver's bootstrap ClusterRoleBindings for the roles above.
pub(super) fn bootstrap_cluster_role_bindings() -> Vec<Binding> {
    let to = |role: &str, groups: &[&str]| Binding {
        role_ref: RoleRef::ClusterRole(role.to_string()),
        subjects: groups
            .iter()
            .map(|g| Subject::Group((*g).to_string()))
            .collect(),
    };
    vec![
        to("cluster-admin", &[MASTERS_GROUP]),
        to("system:discovery", &[AUTHENTICATED_GROUP]),
        to(
            "system:public-info-viewer",
            &[AUTHENTICATED_GROUP, "system:unauthenticated"],
        ),
        to("system:basic-user", &[AUTHENTICATED_GROUP]),
    ]
}
