//! Eligibility: whether this node may campaign at all (disabled, banned or eligible).
//!
//! It is decided once at start-up from the configuration and the identity's node name, as
//! DataKit does: a banned node never writes a Lease, it only watches and reports `banned`.

use serde::{Deserialize, Serialize};

/// The node names allowed to campaign (`ENV_ELECTION_NODE_WHITELIST`,
/// `[election] node_whitelist`). Empty means every node may campaign.
///
/// Entries are node names, matched exactly and case-sensitively with no wildcards, as in
/// DataKit (the whitelist names nodes, not `<node>_<instance>` identities, so it survives pod
/// restarts). Entries are kept in first-seen order without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Whitelist(Vec<String>);

impl Whitelist {
    /// Builds a whitelist from entries, trimming each and dropping empty ones and repeats,
    /// because a stray comma or space in a manifest should not ban every node.
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out: Vec<String> = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if !entry.is_empty() && !out.iter().any(|e| e == entry) {
                out.push(entry.to_owned());
            }
        }
        Whitelist(out)
    }

    /// Whether the list is empty, which allows every node.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, in first-seen order.
    #[must_use]
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// Whether `node` may campaign: the list is empty or names it exactly.
    #[must_use]
    pub fn allows(&self, node: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|e| e == node)
    }
}

/// Whether this node takes part in elections.
///
/// This is decided before any Lease is touched: only `Eligible` nodes ever write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Eligibility {
    /// Election is switched off: every task runs unconditionally, no Lease is used.
    Disabled,
    /// Election is on but this node is not in the non-empty whitelist: it never campaigns,
    /// runs no election task, and reports `banned`.
    Banned,
    /// Election is on and this node may campaign.
    Eligible,
}

impl Eligibility {
    /// Decides eligibility from the election switch, the whitelist and the node name (the
    /// node part of the identity, never the instance).
    #[must_use]
    pub fn decide(enabled: bool, whitelist: &Whitelist, node: &str) -> Self {
        if !enabled {
            Eligibility::Disabled
        } else if whitelist.allows(node) {
            Eligibility::Eligible
        } else {
            Eligibility::Banned
        }
    }

    /// Whether this node may write Leases.
    #[must_use]
    pub fn may_campaign(self) -> bool {
        self == Eligibility::Eligible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_wins_over_whitelist() {
        let wl = Whitelist::new(["node-b"]);
        assert_eq!(
            Eligibility::decide(false, &wl, "node-a"),
            Eligibility::Disabled
        );
        assert_eq!(
            Eligibility::decide(false, &Whitelist::default(), "node-a"),
            Eligibility::Disabled
        );
    }

    #[test]
    fn empty_whitelist_allows_all() {
        assert_eq!(
            Eligibility::decide(true, &Whitelist::default(), "any"),
            Eligibility::Eligible
        );
        assert!(Eligibility::Eligible.may_campaign());
    }

    #[test]
    fn non_empty_whitelist_bans_others_exactly_and_case_sensitively() {
        let wl = Whitelist::new(["node-a", "node-b"]);
        assert_eq!(
            Eligibility::decide(true, &wl, "node-a"),
            Eligibility::Eligible
        );
        assert_eq!(
            Eligibility::decide(true, &wl, "node-c"),
            Eligibility::Banned
        );
        assert_eq!(
            Eligibility::decide(true, &wl, "Node-A"),
            Eligibility::Banned
        );
        assert_eq!(Eligibility::decide(true, &wl, "node"), Eligibility::Banned);
        assert!(!Eligibility::Banned.may_campaign());
        assert!(!Eligibility::Disabled.may_campaign());
    }

    #[test]
    fn whitelist_trims_and_drops_empty_and_repeated_entries() {
        let wl = Whitelist::new([" node-a ", "", "node-b", "node-a", "  "]);
        assert_eq!(wl.entries(), ["node-a", "node-b"]);
        assert!(!wl.is_empty());
        assert!(Whitelist::new([" "]).is_empty());
    }
}
