//! Election benchmarks of `leasehold-lease` against its crates.io peers (`kube-lease-manager`,
//! `kube-leader-election`, `kube-coordinate`), run side by side on the bundled `leasehold-apiserver`.
//!
//! Two programs share this library:
//!
//! - `bench-candidates` ([`runner`]) hosts K candidates of one implementation in one process. Each candidate has
//!   its own OS thread, its own single-threaded tokio runtime, its own kube `Client` (and so its own
//!   connections) and its own API user, so the server's counters tell candidates apart and a crash can drop one
//!   candidate abruptly without touching the others. It prints [`protocol::Event`]s as JSON lines on stdout and
//!   takes [`protocol::Command`]s on stdin.
//! - `bench-elections` ([`driver`]) starts `leasehold-apiserver`, spreads N candidates over a few
//!   `bench-candidates` processes, measures steady-state cost, handovers, crash failovers, takeover write
//!   attempts, CPU and overlapping leaders, and prints Markdown tables.
//!
//! Every timestamp is CLOCK_MONOTONIC in nanoseconds ([`clock`]), one clock for every process on the machine,
//! so leadership intervals reported by different processes can be compared for overlaps.

pub mod clock;
pub mod driver;
pub mod protocol;
pub mod runner;

/// The election settings every implementation gets, as far as it allows (LD, RD, RP of client-go).
pub mod timings {
    use std::time::Duration;

    /// Lease duration (LD).
    pub const LEASE_DURATION: Duration = Duration::from_secs(15);
    /// Renew deadline (RD).
    pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
    /// Retry period (RP).
    pub const RETRY_PERIOD: Duration = Duration::from_secs(2);
}

/// The implementations under test.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Impl {
    /// `leasehold-lease`, this project's library.
    Leasehold,
    /// `kube-lease-manager` (kube 5).
    KubeLeaseManager,
    /// `kube-leader-election` (kube 4).
    KubeLeaderElection,
    /// `kube-coordinate` (kube 2).
    KubeCoordinate,
}

impl Impl {
    /// Every implementation, leasehold first.
    pub const ALL: [Impl; 4] = [
        Impl::Leasehold,
        Impl::KubeLeaseManager,
        Impl::KubeLeaderElection,
        Impl::KubeCoordinate,
    ];

    /// The name used on the command line and in reports (the crate name).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Impl::Leasehold => "leasehold",
            Impl::KubeLeaseManager => "kube-lease-manager",
            Impl::KubeLeaderElection => "kube-leader-election",
            Impl::KubeCoordinate => "kube-coordinate",
        }
    }
}

impl std::fmt::Display for Impl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Impl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Impl::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Impl::ALL.iter().map(|i| i.name()).collect();
                format!(
                    "unknown implementation {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}
