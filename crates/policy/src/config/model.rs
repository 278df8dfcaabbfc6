//! The resolved configuration types and their defaults. Each default appears once, in a
//! documented `Default` impl that says where it comes from.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::eligibility::Whitelist;
use crate::lease_name::LeasePrefix;
use crate::tags::Tags;

/// The whole configuration, after env over TOML over defaults and validation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// DataKit's `[election]` settings.
    pub election: ElectionSettings,
    /// DataKit's `[global_host_tags]` / `ENV_GLOBAL_HOST_TAGS`, placeholders unresolved
    /// (resolve with [`crate::tags::resolve_placeholders`] once host name and IP are known).
    pub global_host_tags: Tags,
    /// Where the Leases live and how they are timed.
    pub lease: LeaseConfig,
    /// The local API listeners and logging.
    pub api: ApiConfig,
    /// The `[[task]]` entries, in file order.
    pub tasks: Vec<TaskConfig>,
}

/// DataKit's `[election]` table: the settings of every election namespace, as configured. Not to be confused with
/// `leasehold_lease::ElectionConfig`, what one elector runs with (the agent builds one per Lease from these).
#[derive(Debug, Clone, PartialEq)]
pub struct ElectionSettings {
    /// Whether election is on (`ENV_ENABLE_ELECTION`, `election.enable`).
    pub enabled: bool,
    /// The election namespaces, never empty, each with its own Lease
    /// (`ENV_NAMESPACE` as a comma list, `election.namespace`).
    pub namespaces: Vec<String>,
    /// Whether election data gets `election_namespace=<ns>`
    /// (`ENV_ENABLE_ELECTION_NAMESPACE_TAG`, `election.enable_namespace_tag`).
    pub namespace_tag: bool,
    /// The nodes allowed to campaign; empty allows all
    /// (`ENV_ELECTION_NODE_WHITELIST`, `election.node_whitelist`).
    pub node_whitelist: Whitelist,
    /// Tags for election data (`ENV_GLOBAL_ELECTION_TAGS`, `[election.tags]`).
    pub tags: Tags,
}

impl Default for ElectionSettings {
    /// DataKit's defaults: election off, one namespace `default`, no namespace tag, no
    /// whitelist, no tags.
    fn default() -> Self {
        ElectionSettings {
            enabled: false,
            namespaces: vec!["default".to_owned()],
            namespace_tag: false,
            node_whitelist: Whitelist::default(),
            tags: Tags::default(),
        }
    }
}

/// The election Lease timing: LD, RD and RP (docs/design.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// LD: how long a holder's term lasts after its last observed renew. Whole seconds,
    /// because `leaseDurationSeconds` is an integer.
    pub lease_duration: Duration,
    /// RD: how long after a successful renew the leader may keep acting without another.
    pub renew_deadline: Duration,
    /// RP: how often the leader renews and a candidate retries.
    pub retry_period: Duration,
}

impl Default for Timing {
    /// client-go's leader-election defaults, 15 s / 10 s / 2 s (the values
    /// kube-controller-manager and kube-scheduler use; see `LeaderElectionConfig` in
    /// <https://pkg.go.dev/k8s.io/client-go/tools/leaderelection>). Faster failover costs
    /// more writes and more watch events on every follower; for 1,000 nodes the README
    /// recommends 60 s / 40 s / 10 s.
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The member Lease timing for spread mode (docs/design.md §7): slow, because every renew reaches
/// every agent that has spread tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberTiming {
    /// The member Lease's duration: a member silent for this long leaves the membership.
    pub lease_duration: Duration,
    /// How often a member renews its Lease.
    pub renew_period: Duration,
}

impl Default for MemberTiming {
    /// 60 s / 20 s, the design's example: three renews per term, so one lost write never
    /// drops a member (and reshuffles tasks), at 1/20 write per second per member.
    fn default() -> Self {
        MemberTiming {
            lease_duration: Duration::from_secs(60),
            renew_period: Duration::from_secs(20),
        }
    }
}

/// Where the Leases live, what they are called, and how they are timed.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseConfig {
    /// The Kubernetes namespace holding the Leases: `LEASEHOLD_LEASE_NAMESPACE`, else
    /// `lease.namespace`, else `POD_NAMESPACE`, else the service-account namespace the
    /// caller read, else `default`.
    pub namespace: String,
    /// The Lease name prefix (`LEASEHOLD_LEASE_PREFIX`, `lease.prefix`).
    pub prefix: LeasePrefix,
    /// LD, RD and RP for election and task Leases.
    pub timing: Timing,
    /// J, the takeover spread: a follower waits `rank × J` before taking a free Lease, so
    /// 1,000 followers do not all write at once.
    pub takeover_spread: Duration,
    /// How long a task's new owner must have been live before the old one releases it.
    pub settle: Duration,
    /// Member Lease timing for spread mode.
    pub member: MemberTiming,
}

impl Default for LeaseConfig {
    /// Namespace `default` (Kubernetes' own default, the last resort when neither the pod
    /// nor the service account says otherwise); prefix `leasehold-`; client-go timing;
    /// takeover spread equal to RP (the design's default; when only RP is configured the
    /// spread follows it); settle 2×RP (issue 6; it also follows RP when only RP is
    /// configured), long enough for the new owner's member Lease to have been seen live.
    fn default() -> Self {
        let timing = Timing::default();
        LeaseConfig {
            namespace: "default".to_owned(),
            prefix: LeasePrefix::default(),
            timing,
            takeover_spread: timing.retry_period,
            settle: timing.retry_period * 2,
            member: MemberTiming::default(),
        }
    }
}

/// The log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default: what a person reads in `kubectl logs`).
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// The local API listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The control API (`LEASEHOLD_LISTEN`, `api.listen`).
    pub listen: SocketAddr,
    /// The read-only probes and metrics (`LEASEHOLD_PROBE_LISTEN`, `api.probe_listen`).
    pub probe_listen: SocketAddr,
    /// The bearer token for mutating endpoints off loopback (`LEASEHOLD_API_TOKEN`,
    /// `api.token`).
    pub token: Option<String>,
    /// The log format (`LEASEHOLD_LOG_FORMAT`, `api.log_format`).
    pub log_format: LogFormat,
}

impl Default for ApiConfig {
    /// Control API on `127.0.0.1:9530`, loopback only so that no token is needed by
    /// default; probes on `0.0.0.0:9531`, so kubelet and Prometheus reach the pod IP
    /// (docs/design.md §8; 9530/9531 sit next to DataKit's 9529). No token; text logs.
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9530),
            probe_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9531),
            token: None,
            log_format: LogFormat::Text,
        }
    }
}

/// How an election task is gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskMode {
    /// Runs on the leader of its election namespace (DataKit's self-election).
    #[default]
    Leader,
    /// Has its own Lease and is spread over the members (task election, docs/design.md §7).
    Spread,
}

/// One `[[task]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    /// Unique name: `LEASEHOLD_TASK`, the task Lease name and the metric label.
    pub name: String,
    /// argv; `command[0]` is the program.
    pub command: Vec<String>,
    /// Whether the task is gated by election; `false` runs it always.
    pub election: bool,
    /// The election namespace it belongs to.
    pub namespace: String,
    /// Leader or spread.
    pub mode: TaskMode,
    /// Time between SIGTERM and SIGKILL when leadership ends.
    pub grace: Duration,
    /// The task's own tags, which win over election and host tags.
    pub tags: Tags,
}

/// The defaults of `[[task]]` keys that may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDefaults {
    /// `election`: true, as in DataKit, where an election-capable collector takes part.
    pub election: bool,
    /// `mode`: leader, DataKit's self-election.
    pub mode: TaskMode,
    /// `grace`: 3 s, or half of LD − RD when that is shorter (see [`TaskDefaults::grace_for`]). A grace must
    /// stay below LD − RD (5 s with client-go's timing), which leaves time for SIGKILL and reaping before a new
    /// leader may start the task.
    pub grace: Duration,
}

impl TaskDefaults {
    /// The grace of a task that sets none, under `timing`: the smaller of [`TaskDefaults::grace`] and half of
    /// LD − RD. A default must never make valid timing fail (3 s is not below LD − RD = 1 s at LD 3 s, RD 2 s);
    /// a grace the user wrote that breaks the rule stays an error.
    #[must_use]
    pub fn grace_for(&self, timing: &Timing) -> Duration {
        let window = timing.lease_duration.saturating_sub(timing.renew_deadline);
        self.grace.min(window / 2)
    }
}

impl Default for TaskDefaults {
    /// See the field docs; the namespace default is the first election namespace.
    fn default() -> Self {
        TaskDefaults {
            election: true,
            mode: TaskMode::Leader,
            grace: Duration::from_secs(3),
        }
    }
}
