//! Who a candidate is: `<node>_<instance>`, so that two processes on one node are never the same candidate.
//!
//! The node part is what operators recognise (the whitelist, the status line and tags use it). The instance part
//! is the pod UID (`POD_UID`, from the downward API) or, without one, a random nonce per process. During a
//! DaemonSet rollout with `maxSurge`, while an old pod is still terminating, or with two wrappers on one host,
//! two processes share a node; the instance keeps them apart. A Lease that names our node but another instance
//! is therefore foreign, exactly like a Lease held by another node.

use std::fmt;

use thiserror::Error;

/// The separator between node and instance in a holder identity.
pub const SEPARATOR: char = '_';

/// Why an [`Identity`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The node part is empty.
    #[error(
        "identity node is empty: set the node name (ENV_K8S_NODE_NAME, NODE_NAME or the hostname)"
    )]
    EmptyNode,
    /// The instance part is empty.
    #[error(
        "identity instance is empty: use the pod UID (POD_UID) or Identity::with_random_instance"
    )]
    EmptyInstance,
    /// A part contains a character that would make the holder string ambiguous or unprintable.
    #[error(
        "identity {part} {value:?} contains {bad:?}; only printable characters other than whitespace are allowed, and the instance may not contain '_'"
    )]
    BadCharacter {
        /// `"node"` or `"instance"`.
        part: &'static str,
        /// The rejected value.
        value: String,
        /// The first offending character.
        bad: char,
    },
    /// The holder string would be longer than we are willing to write into a Lease.
    #[error("identity {value:?} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// The rejected holder string.
        value: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The longest holder identity we write (Kubernetes does not limit `holderIdentity`, but label-sized
/// identities keep `kubectl get lease` readable and the watch events small).
pub const MAX_HOLDER_LEN: usize = 253;

/// A candidate's identity: node plus instance, written to the Lease as `<node>_<instance>`.
///
/// Two `Identity` values are the same candidate only when both parts are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    node: String,
    instance: String,
}

impl Identity {
    /// An identity from a node name and an instance (normally the pod UID).
    ///
    /// # Errors
    /// When either part is empty, contains whitespace or control characters, the instance contains `_`,
    /// or the whole is longer than [`MAX_HOLDER_LEN`].
    pub fn new(
        node: impl Into<String>,
        instance: impl Into<String>,
    ) -> Result<Self, IdentityError> {
        let id = Self {
            node: node.into(),
            instance: instance.into(),
        };
        id.check()?;
        Ok(id)
    }

    /// An identity for `node` with a random 16-hex-digit instance, for processes without a pod UID.
    ///
    /// Each call gives a new candidate, which is what a restarted process must be: it may not inherit the
    /// leadership of its predecessor.
    ///
    /// # Errors
    /// As [`Identity::new`] for the node part.
    pub fn with_random_instance(node: impl Into<String>) -> Result<Self, IdentityError> {
        let nonce: u64 = rand::random();
        Self::new(node, format!("{nonce:016x}"))
    }

    /// The node part: what the whitelist, the status line and the tags use.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The instance part: the pod UID or the per-process nonce.
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The holder string written to `spec.holderIdentity`.
    #[must_use]
    pub fn holder(&self) -> String {
        self.to_string()
    }

    /// Splits a holder string read from a Lease into `(node, instance)`, at the last `_`.
    ///
    /// Returns `None` for strings that are not of our form (other software's holders, garbage); such
    /// holders are simply foreign.
    #[must_use]
    pub fn parse_holder(holder: &str) -> Option<(&str, &str)> {
        let (node, instance) = holder.rsplit_once(SEPARATOR)?;
        (!node.is_empty() && !instance.is_empty()).then_some((node, instance))
    }

    fn check(&self) -> Result<(), IdentityError> {
        if self.node.is_empty() {
            return Err(IdentityError::EmptyNode);
        }
        if self.instance.is_empty() {
            return Err(IdentityError::EmptyInstance);
        }
        let bad = |c: char| c.is_whitespace() || c.is_control();
        if let Some(c) = self.node.chars().find(|&c| bad(c)) {
            return Err(IdentityError::BadCharacter {
                part: "node",
                value: self.node.clone(),
                bad: c,
            });
        }
        if let Some(c) = self.instance.chars().find(|&c| bad(c) || c == SEPARATOR) {
            return Err(IdentityError::BadCharacter {
                part: "instance",
                value: self.instance.clone(),
                bad: c,
            });
        }
        let len = self.node.len() + 1 + self.instance.len();
        if len > MAX_HOLDER_LEN {
            return Err(IdentityError::TooLong {
                value: self.holder(),
                len,
                max: MAX_HOLDER_LEN,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.node, self.instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_joins_node_and_instance() {
        let id = Identity::new("node-a", "5f1c-uid").unwrap();
        assert_eq!(id.holder(), "node-a_5f1c-uid");
        assert_eq!(
            Identity::parse_holder(&id.holder()),
            Some(("node-a", "5f1c-uid"))
        );
    }

    #[test]
    fn same_node_other_instance_is_another_candidate() {
        let a = Identity::new("node-a", "1").unwrap();
        let b = Identity::new("node-a", "2").unwrap();
        assert_ne!(a, b);
        assert_ne!(a.holder(), b.holder());
    }

    #[test]
    fn random_instances_differ() {
        let a = Identity::with_random_instance("n").unwrap();
        let b = Identity::with_random_instance("n").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn bad_identities_are_refused() {
        assert_eq!(Identity::new("", "x"), Err(IdentityError::EmptyNode));
        assert_eq!(Identity::new("n", ""), Err(IdentityError::EmptyInstance));
        assert!(matches!(
            Identity::new("n", "a_b"),
            Err(IdentityError::BadCharacter { .. })
        ));
        assert!(matches!(
            Identity::new("n a", "b"),
            Err(IdentityError::BadCharacter { .. })
        ));
        assert!(matches!(
            Identity::new("n".repeat(300), "b"),
            Err(IdentityError::TooLong { .. })
        ));
    }

    #[test]
    fn garbage_holders_parse_to_none() {
        assert_eq!(Identity::parse_holder("garbage"), None);
        assert_eq!(Identity::parse_holder("_x"), None);
        assert_eq!(Identity::parse_holder("x_"), None);
    }
}
