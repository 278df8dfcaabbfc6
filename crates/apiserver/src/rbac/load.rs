//! Loading Role, ClusterRole, RoleBinding and ClusterRoleBinding manifests into a [`Policy`]: walking documents
//! and `*List`s, checking each object as the API server's validation would, then adding the bootstrap policy and
//! resolving ClusterRole aggregation. The field readers and validators it uses are in `manifest`.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::RbacError;
use super::bootstrap::{bootstrap_cluster_role_bindings, bootstrap_cluster_roles};
use super::manifest::{
    as_obj, get_list, get_obj, get_str, get_string_map, get_strings, is_dns1123_label, json_type,
    label_selector, subject, validate_rule,
};
use super::model::{Binding, ClusterRole, Policy, PolicyRule, RoleRef};
use crate::go_text::go_quote;

pub(super) const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Where a document came from, for error messages.
pub(super) struct Where<'a> {
    pub(super) label: &'a str,
    pub(super) document: usize,
    pub(super) item: Option<usize>,
}

impl Where<'_> {
    pub(super) fn err(&self, reason: impl Into<String>) -> RbacError {
        RbacError::InvalidObject {
            label: self.label.to_string(),
            document: self.document,
            item: self.item.map(|i| format!(", item {i}")).unwrap_or_default(),
            reason: reason.into(),
        }
    }
}

#[derive(Default)]
pub(super) struct Loader {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: BTreeMap<String, ClusterRole>,
    /// Keyed by name so that a later definition replaces an earlier one; the Vec keeps order.
    cluster_role_bindings: Vec<(String, Binding)>,
    role_bindings: Vec<((String, String), Binding)>,
}

impl Loader {
    pub(super) fn object(&mut self, at: &Where<'_>, doc: &Value) -> Result<(), RbacError> {
        let Value::Object(obj) = doc else {
            return Err(at.err(format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                json_type(doc)
            )));
        };
        let kind = match obj.get("kind") {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => return Err(at.err("Object 'Kind' is missing")),
        };
        let api_version = match obj.get("apiVersion") {
            Some(Value::String(v)) => v.clone(),
            _ => String::new(),
        };
        if kind.ends_with("List")
            && let Some(items) = obj.get("items")
        {
            let Value::Array(items) = items else {
                return Err(at.err(format!(
                    "{kind}: items: expected a list, found {}",
                    json_type(items)
                )));
            };
            for (i, item) in items.iter().enumerate() {
                let inner = Where {
                    label: at.label,
                    document: at.document,
                    item: Some(i + 1),
                };
                self.object(&inner, item)?;
            }
            return Ok(());
        }
        if !matches!(
            kind.as_str(),
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
        ) {
            return Ok(());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        if group != RBAC_GROUP {
            // Same kind name in another API group (e.g. a CRD): not ours.
            return Ok(());
        }
        if version != "v1" {
            return Err(at.err(format!(
                "no matches for kind {} in version {}: only rbac.authorization.k8s.io/v1 is served",
                go_quote(&kind),
                go_quote(&api_version)
            )));
        }
        let meta = get_obj(obj, "metadata", "").map_err(|e| at.err(format!("{kind}: {e}")))?;
        let name = match meta.map(|m| get_str(m, "name", "metadata")).transpose() {
            Ok(Some(Some(n))) if !n.is_empty() => n,
            Ok(_) => {
                return Err(at.err(format!(
                    "{kind}: metadata.name: Required value: name is required"
                )));
            }
            Err(e) => return Err(at.err(format!("{kind}: {e}"))),
        };
        let here = |e: String| at.err(format!("{kind} {}: {e}", go_quote(&name)));
        let namespace = || -> Result<String, RbacError> {
            let ns = meta
                .map(|m| get_str(m, "namespace", "metadata"))
                .transpose()
                .map_err(&here)?
                .flatten()
                .unwrap_or_default();
            if ns.is_empty() {
                Ok("default".to_string())
            } else if is_dns1123_label(&ns) {
                Ok(ns)
            } else {
                Err(here(format!(
                    "metadata.namespace: Invalid value: {}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                    go_quote(&ns)
                )))
            }
        };
        match kind.as_str() {
            "Role" | "ClusterRole" => {
                let cluster = kind == "ClusterRole";
                let mut rules = Vec::new();
                for (i, item) in get_list(obj, "rules", "")
                    .map_err(&here)?
                    .iter()
                    .enumerate()
                {
                    let path = format!("rules[{i}]");
                    let r = as_obj(item, &path).map_err(&here)?;
                    let rule = PolicyRule {
                        verbs: get_strings(r, "verbs", &path).map_err(&here)?,
                        api_groups: get_strings(r, "apiGroups", &path).map_err(&here)?,
                        resources: get_strings(r, "resources", &path).map_err(&here)?,
                        resource_names: get_strings(r, "resourceNames", &path).map_err(&here)?,
                        non_resource_urls: get_strings(r, "nonResourceURLs", &path)
                            .map_err(&here)?,
                    };
                    validate_rule(&rule, cluster).map_err(|e| here(format!("{path}.{e}")))?;
                    rules.push(rule);
                }
                if !cluster {
                    let ns = namespace()?;
                    self.roles.insert((ns, name), rules);
                    return Ok(());
                }
                let labels = match meta {
                    Some(m) => get_string_map(m, "labels", "metadata").map_err(&here)?,
                    None => BTreeMap::new(),
                };
                let aggregation = match get_obj(obj, "aggregationRule", "").map_err(&here)? {
                    None => None,
                    Some(agg) => {
                        let mut selectors = Vec::new();
                        let list = get_list(agg, "clusterRoleSelectors", "aggregationRule")
                            .map_err(&here)?;
                        for (i, item) in list.iter().enumerate() {
                            let path = format!("aggregationRule.clusterRoleSelectors[{i}]");
                            selectors.push(label_selector(item, &path).map_err(&here)?);
                        }
                        Some(selectors)
                    }
                };
                self.cluster_roles.insert(
                    name,
                    ClusterRole {
                        rules,
                        labels,
                        aggregation,
                    },
                );
            }
            _ => {
                let cluster = kind == "ClusterRoleBinding";
                let Some(rr) = get_obj(obj, "roleRef", "").map_err(&here)? else {
                    return Err(here("roleRef: Required value".to_string()));
                };
                let rr_group = get_str(rr, "apiGroup", "roleRef")
                    .map_err(&here)?
                    .unwrap_or_default();
                let rr_kind = get_str(rr, "kind", "roleRef")
                    .map_err(&here)?
                    .unwrap_or_default();
                let rr_name = get_str(rr, "name", "roleRef")
                    .map_err(&here)?
                    .unwrap_or_default();
                if rr_group != RBAC_GROUP {
                    return Err(here(format!(
                        "roleRef.apiGroup: Unsupported value: {}: supported values: \"rbac.authorization.k8s.io\"",
                        go_quote(&rr_group)
                    )));
                }
                let role_ref = match (rr_kind.as_str(), cluster) {
                    ("ClusterRole", _) => RoleRef::ClusterRole(rr_name.clone()),
                    ("Role", false) => RoleRef::Role(rr_name.clone()),
                    (k, true) => {
                        return Err(here(format!(
                            "roleRef.kind: Unsupported value: {}: supported values: \"ClusterRole\"",
                            go_quote(k)
                        )));
                    }
                    (k, false) => {
                        return Err(here(format!(
                            "roleRef.kind: Unsupported value: {}: supported values: \"Role\", \"ClusterRole\"",
                            go_quote(k)
                        )));
                    }
                };
                if rr_name.is_empty() {
                    return Err(here("roleRef.name: Required value".to_string()));
                }
                let mut subjects = Vec::new();
                for (i, item) in get_list(obj, "subjects", "")
                    .map_err(&here)?
                    .iter()
                    .enumerate()
                {
                    let path = format!("subjects[{i}]");
                    subjects.push(subject(item, &path, cluster).map_err(&here)?);
                }
                let b = Binding { role_ref, subjects };
                if cluster {
                    self.cluster_role_bindings.retain(|(n, _)| *n != name);
                    self.cluster_role_bindings.push((name, b));
                } else {
                    let key = (namespace()?, name);
                    self.role_bindings.retain(|(k, _)| *k != key);
                    self.role_bindings.push((key, b));
                }
            }
        }
        Ok(())
    }

    /// Adds the bootstrap policy, resolves aggregation and indexes bindings.
    pub(super) fn finish(self) -> Policy {
        let mut cluster_roles = self.cluster_roles;
        for (name, rules) in bootstrap_cluster_roles() {
            let entry = cluster_roles.entry(name.to_string()).or_default();
            for r in rules {
                if !entry.rules.contains(&r) {
                    entry.rules.push(r);
                }
            }
        }
        // Aggregation, iterated to a fixed point so that aggregated roles that are themselves
        // selected (admin <- edit <- view) end up with everything, as the controller converges.
        let mut effective: BTreeMap<String, Vec<PolicyRule>> = cluster_roles
            .iter()
            .map(|(n, r)| (n.clone(), r.rules.clone()))
            .collect();
        for _ in 0..=cluster_roles.len() {
            let mut changed = false;
            for (name, role) in &cluster_roles {
                let Some(selectors) = &role.aggregation else {
                    continue;
                };
                let mut rules: Vec<PolicyRule> = Vec::new();
                for (other, other_role) in &cluster_roles {
                    if other == name || !selectors.iter().any(|s| s.matches(&other_role.labels)) {
                        continue;
                    }
                    for r in effective.get(other).into_iter().flatten() {
                        if !rules.contains(r) {
                            rules.push(r.clone());
                        }
                    }
                }
                if effective.get(name) != Some(&rules) {
                    effective.insert(name.clone(), rules);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut cluster_role_bindings = bootstrap_cluster_role_bindings();
        cluster_role_bindings.extend(self.cluster_role_bindings.into_iter().map(|(_, b)| b));
        let mut role_bindings: HashMap<String, Vec<Binding>> = HashMap::new();
        for ((ns, _), b) in self.role_bindings {
            role_bindings.entry(ns).or_default().push(b);
        }
        Policy {
            roles: self.roles,
            cluster_roles: effective.into_iter().collect(),
            cluster_role_bindings,
            role_bindings,
        }
    }
}
