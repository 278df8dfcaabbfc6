//! Identity: who "we" are in a Lease's `holderIdentity`, `<node>_<instance>`.
//!
//! The node part comes from the same variables DataKit reads, so the whitelist, the status
//! line and the tags name the node as DataKit would. The instance part is the pod UID followed by
//! a per-process nonce (`<pod-uid>.<nonce>`), or the nonce alone outside a pod, so two processes
//! on one node (a DaemonSet rollout with `maxSurge`, a pod still terminating, two wrappers on one
//! host, two containers of one pod, which share the pod UID) are never the same candidate
//! (docs/design.md §3).
//!
//! Kubernetes node names are DNS subdomains and never contain `_`; other host names may. The
//! instance part must not contain `_`, so splitting a holder identity at its **last** `_`
//! always recovers the node, even from a host name with underscores.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

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

/// The separator between node and instance in a holder identity.
pub const SEPARATOR: char = '_';

/// Why an identity could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
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
        source_name: String,
        /// What is wrong and what is accepted.
        reason: &'static str,
    },
    /// The instance is unusable.
    #[error("instance {instance:?} (from {source_name}) is not accepted: {reason}")]
    BadInstance {
        /// The rejected instance.
        instance: String,
        /// Where it came from (`POD_UID` or `nonce`).
        source_name: String,
        /// What is wrong and what is accepted.
        reason: &'static str,
    },
    /// A holder identity that is not `<node>_<instance>`.
    #[error("holder identity {0:?} is not <node>_<instance> with both parts non-empty")]
    Malformed(String),
}

/// This process's candidate identity: node name plus instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    node: String,
    instance: String,
}

/// An [`Identity`] together with where its node name came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedIdentity {
    /// The identity.
    pub identity: Identity,
    /// The variable that named the node, or `"hostname"` for the caller's host name.
    pub node_source: &'static str,
    /// `POD_UID`, or `"nonce"` when the caller's nonce was used.
    pub instance_source: &'static str,
}

impl Identity {
    /// Builds an identity, checking both parts: neither may be empty or contain whitespace
    /// or control characters, and the instance may not contain `_` (see the module docs).
    pub fn new(node: &str, instance: &str) -> Result<Self, IdentityError> {
        check_node(node, "node")?;
        check_instance(instance, "instance")?;
        Ok(Identity {
            node: node.to_owned(),
            instance: instance.to_owned(),
        })
    }

    /// Resolves the identity from the environment map, the host name and a per-process
    /// nonce, all supplied by the caller (this crate reads no environment itself).
    ///
    /// Node: `ENV_K8S_CLUSTER_NODE_NAME`, `ENV_K8S_NODE_NAME`, `NODE_NAME`, `ENV_HOSTNAME`,
    /// then `hostname`; values are trimmed and an empty value counts as unset. Instance:
    /// `<POD_UID>.<nonce>`, else `nonce`. The nonce is always part of it, because containers of
    /// one pod share the pod UID and must still be different candidates.
    pub fn resolve(
        env: &BTreeMap<String, String>,
        hostname: &str,
        nonce: &str,
    ) -> Result<ResolvedIdentity, IdentityError> {
        let from_env = NODE_NAME_VARS.iter().find_map(|var| {
            env.get(*var)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| (*var, v))
        });
        let (node_source, node) = match from_env {
            Some(found) => found,
            None if !hostname.trim().is_empty() => ("hostname", hostname.trim()),
            None => return Err(IdentityError::NoNodeName),
        };
        check_node(node, node_source)?;
        let (instance_source, instance) = match env
            .get(POD_UID_VAR)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            Some(uid) => (POD_UID_VAR, format!("{uid}.{}", nonce.trim())),
            None => ("nonce", nonce.trim().to_owned()),
        };
        check_instance(&instance, instance_source)?;
        Ok(ResolvedIdentity {
            identity: Identity {
                node: node.to_owned(),
                instance,
            },
            node_source,
            instance_source,
        })
    }

    /// Parses a `holderIdentity` written by leasehold, splitting at the last `_`.
    pub fn parse(holder: &str) -> Result<Self, IdentityError> {
        let (node, instance) = holder
            .rsplit_once(SEPARATOR)
            .filter(|(n, i)| !n.is_empty() && !i.is_empty())
            .ok_or_else(|| IdentityError::Malformed(holder.to_owned()))?;
        Identity::new(node, instance).map_err(|_| IdentityError::Malformed(holder.to_owned()))
    }

    /// The node part: what the whitelist, the status line and the tags use.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The instance part (pod UID or nonce).
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The `holderIdentity` string, `<node>_<instance>`.
    #[must_use]
    pub fn holder_identity(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.node, SEPARATOR, self.instance)
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identity::parse(s)
    }
}

/// The node part of any `holderIdentity`, for display: everything before the last `_`, or
/// the whole string when there is none (a holder written by another tool, e.g. client-go's
/// default of the bare host name). An empty holder gives an empty node.
#[must_use]
pub fn node_of(holder: &str) -> &str {
    match holder.rsplit_once(SEPARATOR) {
        Some((node, instance)) if !node.is_empty() && !instance.is_empty() => node,
        _ => holder,
    }
}

fn bad_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_node(node: &str, source: &str) -> Result<(), IdentityError> {
    let reason = if node.is_empty() {
        "it is empty; a node name is needed"
    } else if bad_chars(node) {
        "it contains whitespace or control characters; use the Kubernetes node name"
    } else {
        return Ok(());
    };
    Err(IdentityError::BadNode {
        node: node.to_owned(),
        source_name: source.to_owned(),
        reason,
    })
}

fn check_instance(instance: &str, source: &str) -> Result<(), IdentityError> {
    let reason = if instance.is_empty() {
        "it is empty; pass the pod UID or a random nonce"
    } else if instance.contains(SEPARATOR) {
        "it contains '_', which separates node and instance; use a UID or a hex nonce"
    } else if bad_chars(instance) {
        "it contains whitespace or control characters; use a UID or a hex nonce"
    } else {
        return Ok(());
    };
    Err(IdentityError::BadInstance {
        instance: instance.to_owned(),
        source_name: source.to_owned(),
        reason,
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
            let r = Identity::resolve(&e, "real-host", "n1").unwrap();
            let (want_src, want) = all.get(skip).copied().unwrap_or(("hostname", "real-host"));
            assert_eq!(r.node_source, want_src);
            assert_eq!(r.identity.node(), want);
        }
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let e = env(&[("ENV_K8S_NODE_NAME", "  "), ("NODE_NAME", " node-a ")]);
        let r = Identity::resolve(&e, "h", "n").unwrap();
        assert_eq!(r.identity.node(), "node-a");
        assert_eq!(r.node_source, "NODE_NAME");
    }

    #[test]
    fn instance_is_pod_uid_else_nonce() {
        let e = env(&[("POD_UID", "1f0e-22"), ("NODE_NAME", "node-a")]);
        let r = Identity::resolve(&e, "h", "abc").unwrap();
        assert_eq!(r.identity.to_string(), "node-a_1f0e-22.abc");
        assert_eq!(r.instance_source, "POD_UID");
        let r = Identity::resolve(&env(&[]), "host", "abc").unwrap();
        assert_eq!(r.identity.holder_identity(), "host_abc");
        assert_eq!(r.instance_source, "nonce");
    }

    #[test]
    fn no_node_name_is_an_error() {
        let err = Identity::resolve(&env(&[]), " ", "n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no node name: set ENV_K8S_NODE_NAME (or ENV_K8S_CLUSTER_NODE_NAME, NODE_NAME, \
             ENV_HOSTNAME), or give the host a name"
        );
    }

    #[test]
    fn bad_node_and_instance_are_errors() {
        let err = Identity::resolve(&env(&[("NODE_NAME", "a b")]), "h", "n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "node name \"a b\" (from NODE_NAME) is not accepted: it contains whitespace or \
             control characters; use the Kubernetes node name"
        );
        let err = Identity::resolve(&env(&[]), "h", "x_y").unwrap_err();
        assert_eq!(
            err.to_string(),
            "instance \"x_y\" (from nonce) is not accepted: it contains '_', which separates \
             node and instance; use a UID or a hex nonce"
        );
        let err = Identity::resolve(&env(&[]), "h", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "instance \"\" (from nonce) is not accepted: it is empty; pass the pod UID or a \
             random nonce"
        );
        let err = Identity::new("h", "a\tb").unwrap_err();
        assert_eq!(
            err.to_string(),
            "instance \"a\\tb\" (from instance) is not accepted: it contains whitespace or \
             control characters; use a UID or a hex nonce"
        );
        let err = Identity::new("", "i").unwrap_err();
        assert_eq!(
            err.to_string(),
            "node name \"\" (from node) is not accepted: it is empty; a node name is needed"
        );
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
