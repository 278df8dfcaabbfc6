//! Identity: who "we" are in a Lease's `holderIdentity`, `<node>_<instance>`, resolved from the environment.
//!
//! The type and its rules are `leasehold_core::identity`'s, shared with the elector, so an identity accepted here
//! is never refused later. This module adds where the parts come from: the node part from the same variables
//! DataKit reads, so the whitelist, the status line and the tags name the node as DataKit would; the instance part
//! from the pod UID followed by a per-process nonce (`<pod-uid>.<nonce>`), or the nonce alone outside a pod, so two
//! processes on one node (a DaemonSet rollout with `maxSurge`, a pod still terminating, two wrappers on one host,
//! two containers of one pod, which share the pod UID) are never the same candidate (docs/design.md §3).

use std::collections::BTreeMap;

pub use leasehold_core::identity::{Identity, IdentityError, SEPARATOR, node_of};

/// The variables that name the node, highest priority first (DataKit's order). After them,
/// the caller's host name is used.
pub const NODE_NAME_VARS: [&str; 4] = [
    "ENV_K8S_CLUSTER_NODE_NAME",
    "ENV_K8S_NODE_NAME",
    "NODE_NAME",
    "ENV_HOSTNAME",
];

/// The variable holding the pod UID (from the downward API), used as the instance.
pub const POD_UID_VAR: &str = "POD_UID";

/// Why an identity could not be resolved from the environment. Each names the variable the bad part came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No variable named the node and the caller's host name is empty.
    #[error(
        "no node name: set ENV_K8S_NODE_NAME (or ENV_K8S_CLUSTER_NODE_NAME, NODE_NAME, \
         ENV_HOSTNAME), or give the host a name"
    )]
    NoNodeName,
    /// The node name is unusable.
    #[error("node name {node:?} (from {source_name}) is not accepted: {reason}")]
    BadNode {
        /// The rejected node name.
        node: String,
        /// Where it came from (a variable name or `hostname`).
        source_name: &'static str,
        /// What is wrong and what is accepted.
        reason: IdentityError,
    },
    /// The instance is unusable.
    #[error("instance {instance:?} (from {source_name}) is not accepted: {reason}")]
    BadInstance {
        /// The rejected instance.
        instance: String,
        /// Where it came from (`POD_UID` or `nonce`).
        source_name: &'static str,
        /// What is wrong and what is accepted.
        reason: IdentityError,
    },
}

/// An [`Identity`] together with where its parts came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedIdentity {
    /// The identity.
    pub identity: Identity,
    /// The variable that named the node, or `"hostname"` for the caller's host name.
    pub node_source: &'static str,
    /// `POD_UID`, or `"nonce"` when the caller's nonce was used.
    pub instance_source: &'static str,
}

/// Resolves the identity from the environment map, the host name and a per-process nonce, all supplied by the
/// caller (this crate reads no environment itself).
///
/// Node: `ENV_K8S_CLUSTER_NODE_NAME`, `ENV_K8S_NODE_NAME`, `NODE_NAME`, `ENV_HOSTNAME`, then `hostname`; values
/// are trimmed and an empty value counts as unset. Instance: `<POD_UID>.<nonce>`, else `nonce`. The nonce is
/// always part of it, because containers of one pod share the pod UID and must still be different candidates.
///
/// # Errors
/// [`ResolveError`], naming the variable a bad part came from, for anything [`Identity::new`] refuses, including
/// a holder identity longer than [`leasehold_core::MAX_HOLDER_LEN`]: it is refused here, before anything starts.
pub fn resolve(
    env: &BTreeMap<String, String>,
    hostname: &str,
    nonce: &str,
) -> Result<ResolvedIdentity, ResolveError> {
    let from_env = NODE_NAME_VARS.iter().find_map(|var| {
        env.get(*var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| (*var, v))
    });
    let (node_source, node) = match from_env {
        Some(found) => found,
        None if !hostname.trim().is_empty() => ("hostname", hostname.trim()),
        None => return Err(ResolveError::NoNodeName),
    };
    let (instance_source, instance) = match env
        .get(POD_UID_VAR)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        Some(uid) => (POD_UID_VAR, format!("{uid}.{}", nonce.trim())),
        None => ("nonce", nonce.trim().to_owned()),
    };
    let identity = Identity::new(node, instance.clone()).map_err(|reason| match reason {
        IdentityError::EmptyInstance
        | IdentityError::BadCharacter {
            part: "instance", ..
        } => ResolveError::BadInstance {
            instance,
            source_name: instance_source,
            reason,
        },
        reason => ResolveError::BadNode {
            node: node.to_owned(),
            source_name: node_source,
            reason,
        },
    })?;
    Ok(ResolvedIdentity {
        identity,
        node_source,
        instance_source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn node_precedence_follows_datakit() {
        let all = [
            ("ENV_K8S_CLUSTER_NODE_NAME", "cluster-node"),
            ("ENV_K8S_NODE_NAME", "k8s-node"),
            ("NODE_NAME", "plain-node"),
            ("ENV_HOSTNAME", "env-host"),
        ];
        for skip in 0..=all.len() {
            let e = env(&all[skip..]);
            let r = resolve(&e, "real-host", "n1").unwrap();
            let (want_src, want) = all.get(skip).copied().unwrap_or(("hostname", "real-host"));
            assert_eq!(r.node_source, want_src);
            assert_eq!(r.identity.node(), want);
        }
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let e = env(&[("ENV_K8S_NODE_NAME", "  "), ("NODE_NAME", " node-a ")]);
        let r = resolve(&e, "h", "n").unwrap();
        assert_eq!(r.identity.node(), "node-a");
        assert_eq!(r.node_source, "NODE_NAME");
    }

    #[test]
    fn instance_is_pod_uid_else_nonce() {
        let e = env(&[("POD_UID", "1f0e-22"), ("NODE_NAME", "node-a")]);
        let r = resolve(&e, "h", "abc").unwrap();
        assert_eq!(r.identity.to_string(), "node-a_1f0e-22.abc");
        assert_eq!(r.instance_source, "POD_UID");
        let r = resolve(&env(&[]), "host", "abc").unwrap();
        assert_eq!(r.identity.holder(), "host_abc");
        assert_eq!(r.instance_source, "nonce");
    }

    #[test]
    fn no_node_name_is_an_error() {
        let err = resolve(&env(&[]), " ", "n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no node name: set ENV_K8S_NODE_NAME (or ENV_K8S_CLUSTER_NODE_NAME, NODE_NAME, \
             ENV_HOSTNAME), or give the host a name"
        );
    }

    #[test]
    fn bad_node_and_instance_are_errors() {
        let err = resolve(&env(&[("NODE_NAME", "a b")]), "h", "n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "node name \"a b\" (from NODE_NAME) is not accepted: identity node \"a b\" contains ' '; only \
             printable characters other than whitespace are allowed, and the instance may not contain '_'"
        );
        let err = resolve(&env(&[]), "h", "x_y").unwrap_err();
        assert!(
            matches!(&err, ResolveError::BadInstance { source_name: "nonce", instance, .. } if instance == "x_y"),
            "{err}"
        );
        let err = resolve(&env(&[]), "h", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "instance \"\" (from nonce) is not accepted: identity instance is empty; use the pod UID and a \
             per-process nonce, or a random nonce"
        );
    }

    /// A node name the elector would refuse as too long is refused here, naming the variable: before the
    /// listeners start, and so with exit code 2.
    #[test]
    fn a_node_name_too_long_for_a_holder_is_refused_here() {
        let long = "n".repeat(leasehold_core::MAX_HOLDER_LEN);
        let err = resolve(&env(&[("ENV_K8S_NODE_NAME", &long)]), "h", "abc").unwrap_err();
        assert!(
            matches!(
                &err,
                ResolveError::BadNode {
                    source_name: "ENV_K8S_NODE_NAME",
                    reason: IdentityError::TooLong { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("at most 253"), "{err}");
    }

    #[test]
    fn parse_splits_at_last_underscore() {
        let id = Identity::parse("my_host_name_abc123").unwrap();
        assert_eq!(id.node(), "my_host_name");
        assert_eq!(id.instance(), "abc123");
        assert_eq!(id.to_string(), "my_host_name_abc123");
        let id: Identity = "node-a_uid".parse().unwrap();
        assert_eq!(id, Identity::new("node-a", "uid").unwrap());
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in ["", "node", "_uid", "node_", "a b_c"] {
            assert_eq!(
                Identity::parse(bad).unwrap_err().to_string(),
                format!(
                    "holder identity {bad:?} is not <node>_<instance> with both parts non-empty"
                )
            );
        }
    }

    #[test]
    fn node_of_is_for_display() {
        assert_eq!(node_of("node-a_uid"), "node-a");
        assert_eq!(node_of("my_host_uid"), "my_host");
        assert_eq!(node_of("client-go-host"), "client-go-host");
        assert_eq!(node_of(""), "");
        assert_eq!(node_of("trailing_"), "trailing_");
    }
}
