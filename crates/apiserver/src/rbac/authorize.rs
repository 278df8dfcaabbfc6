//! The [`Authorizer`]: deciding one request against the loaded policy, the way kube-apiserver's authorizer chain
//! does with `--authorization-mode=RBAC`, and wording its 403 message. Loading the manifests lives in `load`.

use serde_json::Value;

use super::RbacError;
use super::attributes::{Decision, RequestAttributes};
use super::load::{Loader, Where};
use super::model::{Binding, Policy, RoleRef};
use super::users::{MASTERS_GROUP, UserInfo};
use crate::go_text::go_quote;

/// Decides requests the way kube-apiserver's authorizer chain does with
/// `--authorization-mode=RBAC`: `system:masters` is always allowed, then RBAC.
///
/// Besides the loaded manifests it carries kube-apiserver's bootstrap policy that matters here:
/// ClusterRoles `cluster-admin` (bound to `system:masters`), `system:discovery` and
/// `system:public-info-viewer` (discovery and health URLs, bound to `system:authenticated`) and
/// `system:basic-user` (self subject access/rules reviews). Manifests that define a ClusterRole
/// of the same name add to its rules, as the bootstrap reconciler would.
#[derive(Clone, Debug)]
pub struct Authorizer {
    /// `None` = allow every authenticated request.
    policy: Option<Policy>,
}

impl Authorizer {
    /// Allows every request of every authenticated user, for servers started without RBAC
    /// manifests (kube-apiserver's `--authorization-mode=AlwaysAllow`).
    pub fn allow_all() -> Self {
        Authorizer { policy: None }
    }

    /// Loads Role, ClusterRole, RoleBinding and ClusterRoleBinding objects
    /// (`rbac.authorization.k8s.io/v1`) from multi-document YAML texts, given as
    /// `(label, text)` pairs where the label (usually the file path) is only used in errors.
    ///
    /// Documents of other kinds (Namespace, ServiceAccount, DaemonSet, ... as in a kustomize
    /// output) are skipped; `kind: List` (or any `*List`) is unpacked. Namespaced objects without
    /// `metadata.namespace` go to `default`, as `kubectl apply` would put them. Objects are checked
    /// like the API server's validation would (names, roleRef kind and apiGroup, subject kinds,
    /// rule shape) so a broken manifest fails here rather than silently granting nothing.
    /// ClusterRole `aggregationRule`s are resolved over all loaded ClusterRoles. A later
    /// definition of the same object replaces an earlier one.
    pub fn from_yaml(sources: &[(&str, &str)]) -> Result<Self, RbacError> {
        let mut loader = Loader::default();
        for (label, text) in sources {
            let mut reader = text.as_bytes();
            let docs = serde_saphyr::read::<_, Value>(&mut reader);
            for (i, doc) in docs.enumerate() {
                let document = i + 1;
                let doc = doc.map_err(|source| RbacError::Yaml {
                    label: (*label).to_string(),
                    document,
                    source: Box::new(source),
                })?;
                let at = Where {
                    label,
                    document,
                    item: None,
                };
                loader.object(&at, &doc)?;
            }
        }
        Ok(Authorizer {
            policy: Some(loader.finish()),
        })
    }

    /// Decides one request for `user`.
    ///
    /// Every user counts as a member of `system:authenticated`. On denial the message is the
    /// one kube-apiserver sends, including its `: RBAC: ...` suffix when a binding that applies to
    /// the user refers to a Role or ClusterRole that does not exist.
    pub fn authorize(&self, user: &UserInfo, attrs: &RequestAttributes<'_>) -> Decision {
        let Some(policy) = &self.policy else {
            // Without manifests every authenticated user may do everything; the anonymous user, as under a real
            // server's default RBAC, nothing.
            if user.is_anonymous() {
                return Decision::Deny {
                    message: forbidden_message(user, attrs, ""),
                };
            }
            return Decision::Allow;
        };
        if user.groups.iter().any(|g| g == MASTERS_GROUP) {
            return Decision::Allow;
        }
        let mut errors: Vec<String> = Vec::new();
        let mut check = |bindings: &[Binding], namespace: &str| -> bool {
            for b in bindings {
                if !b.subjects.iter().any(|s| s.applies_to(user, namespace)) {
                    continue;
                }
                let rules = match &b.role_ref {
                    RoleRef::Role(name) => policy.roles.get(&(namespace.to_string(), name.clone())),
                    RoleRef::ClusterRole(name) => policy.cluster_roles.get(name),
                };
                match rules {
                    Some(rules) => {
                        if rules.iter().any(|r| r.allows(attrs)) {
                            return true;
                        }
                    }
                    None => errors.push(match &b.role_ref {
                        RoleRef::Role(n) => {
                            format!("role.rbac.authorization.k8s.io {} not found", go_quote(n))
                        }
                        RoleRef::ClusterRole(n) => format!(
                            "clusterrole.rbac.authorization.k8s.io {} not found",
                            go_quote(n)
                        ),
                    }),
                }
            }
            false
        };
        if check(&policy.cluster_role_bindings, "") {
            return Decision::Allow;
        }
        if !attrs.namespace.is_empty()
            && let Some(bindings) = policy.role_bindings.get(attrs.namespace)
            && check(bindings, attrs.namespace)
        {
            return Decision::Allow;
        }
        let reason = match errors.len() {
            0 => String::new(),
            1 => format!("RBAC: {}", errors[0]),
            _ => {
                let mut uniq: Vec<String> = Vec::new();
                for e in errors {
                    if !uniq.contains(&e) {
                        uniq.push(e);
                    }
                }
                if uniq.len() == 1 {
                    format!("RBAC: {}", uniq[0])
                } else {
                    format!("RBAC: [{}]", uniq.join(", "))
                }
            }
        };
        Decision::Deny {
            message: forbidden_message(user, attrs, &reason),
        }
    }
}

/// kube-apiserver's 403 message: `responsewriters.forbiddenMessage` wrapped by
/// `errors.NewForbidden`, with the authorizer's reason appended when there is one.
fn forbidden_message(user: &UserInfo, a: &RequestAttributes<'_>, reason: &str) -> String {
    let who = go_quote(&user.name);
    let mut msg = if !a.resource_request {
        format!("User {who} cannot {} path {}", a.verb, go_quote(a.path))
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.to_string()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        if a.namespace.is_empty() {
            format!(
                "User {who} cannot {} resource {} in API group {} at the cluster scope",
                a.verb,
                go_quote(&resource),
                go_quote(a.api_group)
            )
        } else {
            format!(
                "User {who} cannot {} resource {} in API group {} in the namespace {}",
                a.verb,
                go_quote(&resource),
                go_quote(a.api_group),
                go_quote(a.namespace)
            )
        }
    };
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    let (group, resource) = if a.resource_request {
        (a.api_group, a.resource)
    } else {
        ("", "")
    };
    if group.is_empty() && resource.is_empty() {
        return format!("forbidden: {msg}");
    }
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if a.name.is_empty() {
        format!("{qualified} is forbidden: {msg}")
    } else {
        format!("{qualified} {} is forbidden: {msg}", go_quote(a.name))
    }
}
