//! The labels and annotations leasehold puts on its Leases. The elector writes them and the agent, the cluster
//! status command and the tests select by them, so each key is spelled once, here.

/// The label every leasehold Lease carries, so `kubectl get lease -l app.kubernetes.io/managed-by=leasehold` finds
/// them all and each shared watch selects only leasehold Leases.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "leasehold";

/// The label naming a Lease's kind (`election`, `task` or `member`), so each watch selects only what it needs
/// (followers never see member renewals).
pub const KIND_LABEL: &str = "leasehold.dev/kind";

/// The annotation a holder writes when it releases a Lease early; its value is the releasing identity, so
/// `kubectl describe lease` shows who stepped down. The elector owns it: configuration may not set it.
pub const RELEASED_BY_ANNOTATION: &str = "leasehold.dev/released-by";

/// The annotation in which each takeover's winner records how many candidates contend for the Lease, as estimated
/// from the ranks of the winners so far (a decimal number, at least 1). Followers read it to spread their takeover
/// writes for that many candidates, and it lives in the Lease so that a restarted agent knows it at once; `kubectl
/// describe lease` shows it. The elector owns it: configuration may not set it.
pub const CANDIDATES_ANNOTATION: &str = "leasehold.dev/candidates";

/// The annotation that keeps the raw election-namespace name of a (possibly sanitised) Lease name, so two election
/// namespaces sanitised to one Lease name are caught instead of silently sharing it.
pub const ELECTION_NAMESPACE_ANNOTATION: &str = "leasehold.dev/election-namespace";
