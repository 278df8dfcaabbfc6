//! The RBAC objects as loaded: policy rules, binding subjects, role references, bindings, ClusterRoles and the
//! whole [`Policy`]. Separate from loading (which builds them from manifests) and from the authorizer (which
//! reads them), and holds the rule and subject matching that both rely on.

use std::collections::{BTreeMap, HashMap};

use super::UserInfo;
use super::attributes::RequestAttributes;
use super::users::AUTHENTICATED_GROUP;
use crate::selector::LabelSelector;

/// One `PolicyRule`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PolicyRule {
    pub(super) verbs: Vec<String>,
    pub(super) api_groups: Vec<String>,
    pub(super) resources: Vec<String>,
    pub(super) resource_names: Vec<String>,
    pub(super) non_resource_urls: Vec<String>,
}

impl PolicyRule {
    /// The RBAC authorizer's `RuleAllows`.
    pub(super) fn allows(&self, a: &RequestAttributes<'_>) -> bool {
        let verb_ok = self.verbs.iter().any(|v| v == "*" || v == a.verb);
        if !verb_ok {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || u == a.path
                    || (u.ends_with('*') && a.path.starts_with(u.trim_end_matches('*')))
            });
        }
        let combined = if a.subresource.is_empty() {
            a.resource.to_string()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.api_groups.iter().any(|g| g == "*" || g == a.api_group)
            && self.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (!a.subresource.is_empty()
                        && r.len() == a.subresource.len() + 2
                        && r.starts_with("*/")
                        && r.ends_with(a.subresource))
            })
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == a.name))
    }

    pub(super) fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], urls: &[&str]) -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_string()).collect();
        PolicyRule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            resource_names: Vec::new(),
            non_resource_urls: v(urls),
        }
    }
}

/// A binding subject, checked at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Subject {
    User(String),
    Group(String),
    /// `namespace` is `None` when the manifest left it to default to the binding's namespace.
    ServiceAccount {
        namespace: Option<String>,
        name: String,
    },
}

impl Subject {
    /// The RBAC authorizer's `appliesToUser`. `namespace` is the binding's namespace for a
    /// RoleBinding and empty for a ClusterRoleBinding.
    pub(super) fn applies_to(&self, user: &UserInfo, namespace: &str) -> bool {
        match self {
            Subject::User(n) => user.name == *n,
            Subject::Group(g) => {
                (g == AUTHENTICATED_GROUP && !user.is_anonymous())
                    || user.groups.iter().any(|x| x == g)
            }
            Subject::ServiceAccount {
                namespace: ns,
                name,
            } => {
                let ns = ns.as_deref().unwrap_or(namespace);
                !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}")
            }
        }
    }
}

/// What a binding grants: a Role in the binding's namespace, or a ClusterRole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RoleRef {
    Role(String),
    ClusterRole(String),
}

#[derive(Clone, Debug)]
pub(super) struct Binding {
    pub(super) role_ref: RoleRef,
    pub(super) subjects: Vec<Subject>,
}

/// A loaded ClusterRole: its own rules, its labels (for aggregation) and its aggregation rule.
#[derive(Clone, Debug, Default)]
pub(super) struct ClusterRole {
    pub(super) rules: Vec<PolicyRule>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) aggregation: Option<Vec<LabelSelector>>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Policy {
    /// Keyed by (namespace, name).
    pub(super) roles: HashMap<(String, String), Vec<PolicyRule>>,
    /// Effective rules (after aggregation), keyed by name.
    pub(super) cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// In load order (built-in defaults first), like the lister's order.
    pub(super) cluster_role_bindings: Vec<Binding>,
    /// Keyed by namespace, in load order.
    pub(super) role_bindings: HashMap<String, Vec<Binding>>,
}
