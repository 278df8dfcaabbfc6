//! Who a candidate is: `<node>_<instance>`, so that two processes are never the same candidate.
//!
//! The node part is what operators recognise: the whitelist, the status line and the tags use it. The instance part
//! keeps apart processes that share a node (a DaemonSet rollout with `maxSurge`, a pod still terminating, two
//! containers of one pod, which share the pod UID): the agent writes `<pod-uid>.<nonce>`, a fresh nonce per process.
//! A Lease that names our node but another instance is therefore foreign, exactly like one held by another node.
//!
//! Kubernetes node names are DNS subdomains and never contain `_`; other host names may. The instance may not contain
//! `_`, so splitting a holder identity at its **last** `_` always recovers the node.

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::str::FromStr;

use thiserror::Error;

/// The separator between node and instance in a holder identity.
pub const SEPARATOR: char = '_';

/// The longest holder identity leasehold writes. Kubernetes does not limit `holderIdentity`, but identities the
/// size of a DNS subdomain keep `kubectl get lease` readable and the watch events small.
pub const MAX_HOLDER_LEN: usize = 253;

/// Why an [`Identity`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The node part is empty.
    #[error("identity node is empty; a node name is needed")]
    EmptyNode,
    /// The instance part is empty.
    #[error(
        "identity instance is empty; use the pod UID and a per-process nonce, or a random nonce"
    )]
    EmptyInstance,
    /// A part contains a character that would make the holder string ambiguous or unprintable.
    #[error(
        "identity {part} {value:?} contains {bad:?}; only printable characters other than whitespace are allowed, \
         and the instance may not contain '_'"
    )]
    BadCharacter {
        /// `"node"` or `"instance"`.
        part: &'static str,
        /// The rejected value.
        value: String,
        /// The first offending character.
        bad: char,
    },
    /// The holder string would be longer than [`MAX_HOLDER_LEN`].
    #[error("identity {value:?} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// The rejected holder string.
        value: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A holder string that is not `<node>_<instance>` with both parts valid.
    #[error("holder identity {0:?} is not <node>_<instance> with both parts non-empty")]
    Malformed(String),
}

/// A candidate's identity: node plus instance, written to the Lease as `<node>_<instance>`.
///
/// Two `Identity` values are the same candidate only when both parts are equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    node: String,
    instance: String,
}

impl Identity {
    /// An identity from a node name and an instance.
    ///
    /// # Errors
    /// When either part is empty or contains whitespace or control characters, the instance contains `_`, or the
    /// holder string would be longer than [`MAX_HOLDER_LEN`].
    pub fn new(
        node: impl Into<String>,
        instance: impl Into<String>,
    ) -> Result<Self, IdentityError> {
        let id = Self {
            node: node.into(),
            instance: instance.into(),
        };
        check_node(&id.node)?;
        check_instance(&id.instance)?;
        let len = id.node.len() + SEPARATOR.len_utf8() + id.instance.len();
        if len > MAX_HOLDER_LEN {
            return Err(IdentityError::TooLong {
                value: id.to_string(),
                len,
                max: MAX_HOLDER_LEN,
            });
        }
        Ok(id)
    }

    /// An identity for `node` with a random 16-hex-digit instance, for processes without a pod UID.
    ///
    /// Each call gives a new candidate, which is what a restarted process must be: it may not inherit the
    /// leadership of its predecessor. The randomness is the standard library's: the keys of a new
    /// [`RandomState`] are drawn from the operating system, so this crate needs no random-number dependency.
    ///
    /// # Errors
    /// As [`Identity::new`] for the node part.
    pub fn with_random_instance(node: impl Into<String>) -> Result<Self, IdentityError> {
        let nonce = RandomState::new().build_hasher().finish();
        Self::new(node, format!("{nonce:016x}"))
    }

    /// Parses a `holderIdentity` written by leasehold, splitting at the last `_`.
    ///
    /// # Errors
    /// [`IdentityError::Malformed`] when the string is not `<node>_<instance>` with both parts valid.
    pub fn parse(holder: &str) -> Result<Self, IdentityError> {
        let (node, instance) =
            split_holder(holder).ok_or_else(|| IdentityError::Malformed(holder.to_owned()))?;
        Self::new(node, instance).map_err(|_| IdentityError::Malformed(holder.to_owned()))
    }

    /// The node part: what the whitelist, the status line and the tags use.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The instance part: the pod UID and nonce, or the nonce alone.
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The holder string written to `spec.holderIdentity`.
    #[must_use]
    pub fn holder(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.node, self.instance)
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Splits a holder string read from a Lease into `(node, instance)` at the last `_`, or `None` when it is not of
/// our form (another tool's holder, garbage): such holders are simply foreign.
#[must_use]
pub fn split_holder(holder: &str) -> Option<(&str, &str)> {
    let (node, instance) = holder.rsplit_once(SEPARATOR)?;
    (!node.is_empty() && !instance.is_empty()).then_some((node, instance))
}

/// The node part of any `holderIdentity`, for display: everything before the last `_`, or the whole string when
/// it is not of our form (client-go's default holder is the bare host name). An empty holder gives an empty node.
#[must_use]
pub fn node_of(holder: &str) -> &str {
    split_holder(holder).map_or(holder, |(node, _)| node)
}

fn unprintable(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

fn check_node(node: &str) -> Result<(), IdentityError> {
    if node.is_empty() {
        return Err(IdentityError::EmptyNode);
    }
    match node.chars().find(|&c| unprintable(c)) {
        Some(bad) => Err(IdentityError::BadCharacter {
            part: "node",
            value: node.to_owned(),
            bad,
        }),
        None => Ok(()),
    }
}

fn check_instance(instance: &str) -> Result<(), IdentityError> {
    if instance.is_empty() {
        return Err(IdentityError::EmptyInstance);
    }
    match instance.chars().find(|&c| unprintable(c) || c == SEPARATOR) {
        Some(bad) => Err(IdentityError::BadCharacter {
            part: "instance",
            value: instance.to_owned(),
            bad,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn holder_joins_node_and_instance() {
        let id = Identity::new("node-a", "5f1c-uid.9a").unwrap();
        assert_eq!(id.holder(), "node-a_5f1c-uid.9a");
        assert_eq!(split_holder(&id.holder()), Some(("node-a", "5f1c-uid.9a")));
        assert_eq!(Identity::parse(&id.holder()).unwrap(), id);
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
        assert_eq!(a.instance().len(), 16);
    }

    #[test]
    fn a_node_with_underscores_splits_at_the_last_one() {
        let id = Identity::new("host_with_underscores", "n1").unwrap();
        assert_eq!(
            Identity::parse(&id.holder()).unwrap().node(),
            "host_with_underscores"
        );
        assert_eq!(node_of(&id.holder()), "host_with_underscores");
    }

    #[test]
    fn bad_identities_are_refused() {
        assert_eq!(Identity::new("", "x"), Err(IdentityError::EmptyNode));
        assert_eq!(Identity::new("n", ""), Err(IdentityError::EmptyInstance));
        assert!(matches!(
            Identity::new("n", "a_b"),
            Err(IdentityError::BadCharacter {
                part: "instance",
                bad: '_',
                ..
            })
        ));
        assert!(matches!(
            Identity::new("a b", "x"),
            Err(IdentityError::BadCharacter {
                part: "node",
                bad: ' ',
                ..
            })
        ));
        let long = "n".repeat(MAX_HOLDER_LEN);
        assert!(matches!(
            Identity::new(long, "x"),
            Err(IdentityError::TooLong { len, max: MAX_HOLDER_LEN, .. }) if len == MAX_HOLDER_LEN + 2
        ));
        assert!(Identity::new("n".repeat(MAX_HOLDER_LEN - 2), "x").is_ok());
    }

    #[test]
    fn foreign_holders_are_not_ours() {
        assert_eq!(split_holder("bare-host"), None);
        assert_eq!(node_of("bare-host"), "bare-host");
        assert_eq!(node_of(""), "");
        assert_eq!(split_holder("_x"), None);
        assert!(matches!(
            Identity::parse("node_"),
            Err(IdentityError::Malformed(_))
        ));
    }

    proptest! {
        /// Whatever the two parts, an accepted identity round-trips through its holder string.
        #[test]
        fn accepted_identities_round_trip(node in "\\PC{0,80}", instance in "\\PC{0,40}") {
            if let Ok(id) = Identity::new(node.clone(), instance.clone()) {
                prop_assert_eq!(Identity::parse(&id.holder()), Ok(id.clone()));
                let holder = id.holder();
                prop_assert_eq!(node_of(&holder), node.as_str());
                prop_assert!(id.holder().len() <= MAX_HOLDER_LEN);
            }
        }

        /// Parsing never panics, and what it accepts prints back as given.
        #[test]
        fn parse_accepts_only_what_it_can_print(s in "\\PC{0,300}") {
            if let Ok(id) = Identity::parse(&s) {
                prop_assert_eq!(id.holder(), s);
            }
        }
    }
}
