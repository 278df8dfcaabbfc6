//! Lease names: what the election, task and member Leases are called, plus the labels and
//! annotations that mark them as ours.
//!
//! A name is `<prefix><infix><raw>`: the infix is empty for an election Lease, `task-` for a
//! task Lease and `member-` for a member Lease; the prefix defaults to `leasehold-`. When
//! that string is already a valid DNS-1123 label (at most 63 characters of `[a-z0-9-]`,
//! starting and ending with a letter or digit) it is used verbatim, so `default` gives
//! `leasehold-default`. Otherwise it is *sanitised* (lower-cased, every other character
//! replaced by `-`, runs of `-` collapsed, `-` trimmed from both ends, cut to 54 characters)
//! and `-` plus the first 8 hex digits of the SHA-256 of the raw name is appended. The raw
//! name is kept in an annotation so that the name can be traced back and checked.
//!
//! # When two raw names give one Lease name
//!
//! Two different `(kind, raw)` pairs map to the same Lease name exactly when one of these
//! holds (with the same prefix):
//!
//! 1. **Across kinds, both verbatim:** an election namespace `task-<t>` and a task `<t>`
//!    (both give `<prefix>task-<t>`). Member identities always contain `_`, so member names
//!    are always hashed and meet only cases 2 and 3.
//! 2. **Both hashed:** their sanitised stems are equal *and* the first 32 bits of the SHA-256
//!    of the two raw names are equal. For `n` raw names sharing a stem the chance is about
//!    `n² / 2³³` (for example 1.2 × 10⁻⁴ for 1,000 names).
//! 3. **One verbatim, one hashed:** a raw name that is itself a valid label ending in
//!    `-<8 hex digits>`, where those digits are the hash of another raw name with the same
//!    stem (e.g. a namespace `foo-xxxxxxxx` next to `Foo`). This needs deliberate effort.
//!
//! Within one kind and when both names are verbatim there is never a collision. The
//! configuration check refuses collisions among the names one agent configures; collisions
//! between agents configured differently, and member identities, are caught at run time by
//! [`LeaseName::check_existing`]: a Lease whose annotation carries a different raw name (or
//! whose kind differs) is refused, never taken over.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

/// The default name prefix.
pub const DEFAULT_PREFIX: &str = "leasehold-";
/// Longest accepted prefix: it leaves room for a 9-character hash suffix and a readable stem.
pub const MAX_PREFIX_LEN: usize = 40;
/// Longest Kubernetes name this module produces (a DNS-1123 label).
pub const MAX_NAME_LEN: usize = 63;
/// Longest stem kept before the `-<hash>` suffix: 63 − 1 − 8.
const MAX_STEM_LEN: usize = MAX_NAME_LEN - 9;

pub use leasehold_core::labels::{KIND_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
pub use leasehold_core::names::is_dns1123_label;

/// What a Lease is for; decides the name infix, the kind label and the raw-name annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeaseKind {
    /// One Lease per election namespace.
    Election,
    /// One Lease per spread-mode task.
    Task,
    /// One Lease per agent that has spread tasks: the membership.
    Member,
}

impl LeaseKind {
    /// All kinds, for checks that look at every annotation.
    pub const ALL: [LeaseKind; 3] = [LeaseKind::Election, LeaseKind::Task, LeaseKind::Member];

    /// The value of [`KIND_LABEL`].
    #[must_use]
    pub fn label_value(self) -> &'static str {
        match self {
            LeaseKind::Election => "election",
            LeaseKind::Task => "task",
            LeaseKind::Member => "member",
        }
    }

    /// The annotation that keeps the raw name.
    #[must_use]
    pub fn annotation(self) -> &'static str {
        match self {
            LeaseKind::Election => "leasehold.dev/election-namespace",
            LeaseKind::Task => "leasehold.dev/task",
            LeaseKind::Member => "leasehold.dev/member",
        }
    }

    fn infix(self) -> &'static str {
        match self {
            LeaseKind::Election => "",
            LeaseKind::Task => "task-",
            LeaseKind::Member => "member-",
        }
    }
}

impl fmt::Display for LeaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label_value())
    }
}

/// Why a prefix is refused, or why an existing Lease is not ours to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseNameError {
    /// The prefix cannot start a DNS-1123 label.
    #[error(
        "lease prefix {prefix:?} is not accepted: use at most {MAX_PREFIX_LEN} characters of \
         a-z, 0-9 and '-', starting with a letter or digit (default {DEFAULT_PREFIX:?})"
    )]
    BadPrefix {
        /// The refused prefix.
        prefix: String,
    },
    /// An existing Lease with our name was made for another raw name: two names collided.
    #[error(
        "Lease {name:?} belongs to {kind} {theirs:?} (annotation {annotation}), not to \
         {ours:?}: the two names map to one Lease name; rename one of them"
    )]
    Collision {
        /// The Lease name.
        name: String,
        /// The kind both sides agree on.
        kind: LeaseKind,
        /// The annotation that differs.
        annotation: &'static str,
        /// Our raw name.
        ours: String,
        /// The raw name found on the Lease.
        theirs: String,
    },
    /// An existing Lease with our name is of another kind.
    #[error(
        "Lease {name:?} is of kind {theirs}, but we need it as kind {ours} for {raw:?}: the \
         two names map to one Lease name; rename one of them"
    )]
    KindCollision {
        /// The Lease name.
        name: String,
        /// The kind we need.
        ours: LeaseKind,
        /// The kind found on the Lease (from its label or annotation).
        theirs: String,
        /// Our raw name.
        raw: String,
    },
}

/// A validated name prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasePrefix(String);

impl LeasePrefix {
    /// Checks a prefix: empty, or at most [`MAX_PREFIX_LEN`] characters of `[a-z0-9-]`
    /// starting with a letter or digit, so that every name it starts can be a label.
    pub fn new(prefix: &str) -> Result<Self, LeaseNameError> {
        let ok = prefix.len() <= MAX_PREFIX_LEN
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !prefix.starts_with('-');
        if ok {
            Ok(LeasePrefix(prefix.to_owned()))
        } else {
            Err(LeaseNameError::BadPrefix {
                prefix: prefix.to_owned(),
            })
        }
    }

    /// The prefix text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for LeasePrefix {
    /// [`DEFAULT_PREFIX`].
    fn default() -> Self {
        LeasePrefix(DEFAULT_PREFIX.to_owned())
    }
}

/// A Lease name together with its kind and the raw name it was made from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseName {
    kind: LeaseKind,
    name: String,
    raw: String,
}

impl LeaseName {
    /// The Lease for an election namespace: `<prefix><namespace>`.
    #[must_use]
    pub fn election(prefix: &LeasePrefix, namespace: &str) -> Self {
        Self::build(LeaseKind::Election, prefix, namespace)
    }

    /// The Lease for a spread task: `<prefix>task-<task>`.
    #[must_use]
    pub fn task(prefix: &LeasePrefix, task: &str) -> Self {
        Self::build(LeaseKind::Task, prefix, task)
    }

    /// The member Lease of an agent: `<prefix>member-<identity>` (always hashed, since an
    /// identity contains `_`).
    #[must_use]
    pub fn member(prefix: &LeasePrefix, holder_identity: &str) -> Self {
        Self::build(LeaseKind::Member, prefix, holder_identity)
    }

    /// Builds the name for any kind; see the module docs for the rule.
    #[must_use]
    pub fn build(kind: LeaseKind, prefix: &LeasePrefix, raw: &str) -> Self {
        let verbatim = format!("{}{}{}", prefix.as_str(), kind.infix(), raw);
        let name = if is_dns1123_label(&verbatim) {
            verbatim
        } else {
            let stem = sanitise(&verbatim);
            let hash = short_hash(raw);
            if stem.is_empty() {
                hash
            } else {
                format!("{stem}-{hash}")
            }
        };
        LeaseName {
            kind,
            name,
            raw: raw.to_owned(),
        }
    }

    /// The Kubernetes name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw name (namespace, task name or identity) this was built from.
    #[must_use]
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> LeaseKind {
        self.kind
    }

    /// The labels to set on every write: managed-by and kind.
    #[must_use]
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (KIND_LABEL.to_owned(), self.kind.label_value().to_owned()),
        ])
    }

    /// The annotations to set on every write: the raw name under the kind's key.
    #[must_use]
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(self.kind.annotation().to_owned(), self.raw.clone())])
    }

    /// Checks that an existing Lease with this name is ours to use: the run-time collision
    /// check. It fails when the Lease's annotation for our kind names another raw name, or
    /// when its kind label or another kind's annotation shows it is a different kind.
    /// Missing labels and annotations are accepted (the next write adds them).
    pub fn check_existing(
        &self,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), LeaseNameError> {
        if let Some(theirs) = labels.get(KIND_LABEL)
            && theirs != self.kind.label_value()
        {
            return Err(self.kind_collision(theirs));
        }
        for other in LeaseKind::ALL {
            if other != self.kind && annotations.contains_key(other.annotation()) {
                return Err(self.kind_collision(other.label_value()));
            }
        }
        match annotations.get(self.kind.annotation()) {
            Some(theirs) if *theirs != self.raw => Err(LeaseNameError::Collision {
                name: self.name.clone(),
                kind: self.kind,
                annotation: self.kind.annotation(),
                ours: self.raw.clone(),
                theirs: theirs.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn kind_collision(&self, theirs: &str) -> LeaseNameError {
        LeaseNameError::KindCollision {
            name: self.name.clone(),
            ours: self.kind,
            theirs: theirs.to_owned(),
            raw: self.raw.clone(),
        }
    }
}

impl fmt::Display for LeaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

fn sanitise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    out.truncate(MAX_STEM_LEN);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn short_hash(raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn p() -> LeasePrefix {
        LeasePrefix::default()
    }

    #[test]
    fn valid_names_are_verbatim() {
        assert_eq!(
            LeaseName::election(&p(), "default").name(),
            "leasehold-default"
        );
        assert_eq!(
            LeaseName::task(&p(), "mysql").name(),
            "leasehold-task-mysql"
        );
        let custom = LeasePrefix::new("dk-").unwrap();
        assert_eq!(LeaseName::election(&custom, "ns1").name(), "dk-ns1");
    }

    #[test]
    fn invalid_names_are_sanitised_with_hash_of_raw() {
        let n = LeaseName::election(&p(), "My_Namespace");
        let hash = short_hash("My_Namespace");
        assert_eq!(n.name(), format!("leasehold-my-namespace-{hash}"));
        assert_eq!(n.raw(), "My_Namespace");
        assert!(is_dns1123_label(n.name()));
        // Known SHA-256 prefix, pinned so the names never change between releases.
        assert_eq!(short_hash("abc"), "ba7816bf");
        assert_eq!(
            LeaseName::election(&p(), "ABC").name(),
            format!("leasehold-abc-{}", short_hash("ABC"))
        );
    }

    #[test]
    fn member_names_are_always_hashed() {
        let n = LeaseName::member(&p(), "node-a_1234");
        assert_eq!(
            n.name(),
            format!("leasehold-member-node-a-1234-{}", short_hash("node-a_1234"))
        );
        assert_eq!(n.kind(), LeaseKind::Member);
    }

    #[test]
    fn long_names_are_cut_to_63() {
        let raw = "a".repeat(100);
        let n = LeaseName::task(&p(), &raw);
        assert_eq!(n.name().len(), 63);
        assert!(is_dns1123_label(n.name()));
        // A raw name that fits exactly is verbatim.
        let fits = "b".repeat(63 - "leasehold-".len());
        assert_eq!(
            LeaseName::election(&p(), &fits).name(),
            format!("leasehold-{fits}")
        );
    }

    #[test]
    fn all_symbol_names_keep_the_prefix_or_become_the_hash() {
        let n = LeaseName::election(&p(), "日本");
        assert_eq!(n.name(), format!("leasehold-{}", short_hash("日本")));
        let empty = LeasePrefix::new("").unwrap();
        let n = LeaseName::election(&empty, "___");
        assert_eq!(n.name(), short_hash("___"));
        assert!(is_dns1123_label(n.name()));
    }

    #[test]
    fn cross_kind_verbatim_collision_is_documented_case_1() {
        assert_eq!(
            LeaseName::election(&p(), "task-x").name(),
            LeaseName::task(&p(), "x").name()
        );
    }

    #[test]
    fn label_checks() {
        assert!(is_dns1123_label("a"));
        assert!(is_dns1123_label("a-1"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label("a-"));
        assert!(!is_dns1123_label("A"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }

    #[test]
    fn prefix_validation() {
        assert!(LeasePrefix::new("leasehold-").is_ok());
        assert!(LeasePrefix::new("").is_ok());
        assert_eq!(LeasePrefix::new("x1").unwrap().as_str(), "x1");
        for bad in ["-x", "X-", "a_b", &"a".repeat(41)] {
            let err = LeasePrefix::new(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "lease prefix {bad:?} is not accepted: use at most 40 characters of a-z, \
                     0-9 and '-', starting with a letter or digit (default \"leasehold-\")"
                )
            );
        }
    }

    #[test]
    fn labels_and_annotations() {
        let n = LeaseName::election(&p(), "default");
        assert_eq!(n.labels()[MANAGED_BY_LABEL], "leasehold");
        assert_eq!(n.labels()[KIND_LABEL], "election");
        assert_eq!(
            n.annotations()["leasehold.dev/election-namespace"],
            "default"
        );
        assert_eq!(n.to_string(), "leasehold-default");
        assert_eq!(LeaseKind::Task.to_string(), "task");
        assert_eq!(LeaseKind::Member.annotation(), "leasehold.dev/member");
    }

    #[test]
    fn check_existing_accepts_ours_and_unmarked() {
        let n = LeaseName::election(&p(), "default");
        assert!(n.check_existing(&n.labels(), &n.annotations()).is_ok());
        assert!(n.check_existing(&BTreeMap::new(), &BTreeMap::new()).is_ok());
    }

    #[test]
    fn check_existing_refuses_a_different_raw_name() {
        let n = LeaseName::election(&p(), "Foo");
        let other = BTreeMap::from([(
            "leasehold.dev/election-namespace".to_owned(),
            "FOO".to_owned(),
        )]);
        let err = n.check_existing(&n.labels(), &other).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Lease \"{}\" belongs to election \"FOO\" (annotation \
                 leasehold.dev/election-namespace), not to \"Foo\": the two names map to one \
                 Lease name; rename one of them",
                n.name()
            )
        );
    }

    #[test]
    fn check_existing_refuses_another_kind() {
        let election = LeaseName::election(&p(), "task-x");
        let task = LeaseName::task(&p(), "x");
        let err = election
            .check_existing(&task.labels(), &task.annotations())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Lease \"leasehold-task-x\" is of kind task, but we need it as kind election for \
             \"task-x\": the two names map to one Lease name; rename one of them"
        );
        // Without labels, the other kind's annotation still gives it away.
        let err = election
            .check_existing(&BTreeMap::new(), &task.annotations())
            .unwrap_err();
        assert!(matches!(err, LeaseNameError::KindCollision { .. }));
    }
}
