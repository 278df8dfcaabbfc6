//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>` and `/apis/<group>/<version>`,
//! in the legacy (unaggregated) form that kubectl and kube-rs fall back to.

use serde_json::{Value, json};

use crate::resource::{ALL, ResourceType};

/// The Kubernetes version the stand-in reports. kubectl on this machine is a dispatcher that picks its own
/// version from the server's, so this must be a real release.
pub const GIT_VERSION: &str = "v1.33.1";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
        "gitTreeState": "clean",
        "buildDate": "2025-05-15T08:19:08Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn resource_entry(rt: &ResourceType) -> Value {
    let mut v = json!({
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": rt.verbs(),
        "storageVersionHash": rt.storage_hash,
    });
    if !rt.short_names.is_empty() {
        v["shortNames"] = json!(rt.short_names);
    }
    v
}

/// `/api/v1` or `/apis/<group>/<version>`; `None` when the server does not serve that group-version.
pub fn resources(group: &str, version: &str) -> Option<Value> {
    let mut list: Vec<Value> = ALL
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| resource_entry(r))
        .collect();
    if list.is_empty() {
        return None;
    }
    if group.is_empty() {
        list.push(json!({
            "name": "namespaces/status", "singularName": "", "namespaced": false, "kind": "Namespace",
            "verbs": ["get", "patch", "update"],
        }));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list,
    }))
}

fn group_entry(group: &str) -> Value {
    let gv = json!({ "groupVersion": format!("{group}/v1"), "version": "v1" });
    json!({ "name": group, "versions": [gv.clone()], "preferredVersion": gv })
}

fn groups_served() -> Vec<&'static str> {
    let mut groups: Vec<&str> = ALL
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    groups.dedup();
    groups
}

/// `/apis`.
pub fn groups() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups_served().into_iter().map(group_entry).collect::<Vec<_>>(),
    })
}

/// `/apis/<group>`, or `None` for a group the server does not serve.
pub fn group(name: &str) -> Option<Value> {
    groups_served().contains(&name).then(|| {
        let mut g = group_entry(name);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}
