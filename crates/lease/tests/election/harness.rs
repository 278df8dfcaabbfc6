//! Test harness: a fresh leasehold-apiserver per test, candidates that each have their own user, client and
//! watch connection, and a timeline that records every leadership interval on one monotonic clock.

use std::{
    sync::{Arc, Mutex, Once},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use leasehold_apiserver::{Counters, Options, Server};
use leasehold_lease::{ElectionConfig, ElectionHandle, ElectionState, Elector, Identity};
use tokio::{sync::watch, task::JoinHandle};

pub const NS: &str = "default";
pub const LEASE: &str = "leasehold-test";

/// LD 2 s, RD 1.5 s, RP 0.5 s: the short timings most tests use.
pub const LD: Duration = Duration::from_secs(2);
pub const RD: Duration = Duration::from_millis(1500);
pub const RP: Duration = Duration::from_millis(500);

/// A generous bound for "eventually", measured from the end of a fault: LD + RD + 2 s, and then some.
pub fn settle() -> Duration {
    LD + RD + Duration::from_secs(4)
}

pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}

/// Timing tests must not share the two cores: each test holds this for as long as its cluster lives, so
/// the binary is serial even when the harness runs tests on several threads.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One API server and the candidates started against it.
pub struct Cluster {
    pub server: Server,
    pub timeline: Timeline,
    admin: Client,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> anyhow::Result<Self> {
        let serial = SERIAL.lock().await;
        init_tracing();
        let server = leasehold_apiserver::start(options).await?;
        let admin =
            leasehold_lease::client_from_kubeconfig_yaml(&server.kubeconfig(&server.admin_token()))
                .await?;
        Ok(Self {
            server,
            timeline: Timeline::default(),
            admin,
            _serial: serial,
        })
    }

    /// The admin's Lease API, for third-party edits.
    pub fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.admin.clone(), NS)
    }

    pub fn counters(&self) -> Counters {
        self.server.counters()
    }

    /// A new user with its own token and its own client (so its own connections and watch).
    pub async fn client(&self, user: &str) -> anyhow::Result<Client> {
        let token = self.server.add_user(user, &[]);
        Ok(leasehold_lease::client_from_kubeconfig_yaml(&self.server.kubeconfig(&token)).await?)
    }

    /// A candidate `<node>_<instance>` for [`LEASE`], with the short timings, tracked on the timeline.
    pub async fn candidate(&self, node: &str, instance: &str) -> anyhow::Result<Candidate> {
        self.candidate_with(node, instance, |c| c).await
    }

    pub async fn candidate_with(
        &self,
        node: &str,
        instance: &str,
        tweak: impl FnOnce(ElectionConfig) -> ElectionConfig,
    ) -> anyhow::Result<Candidate> {
        let identity = Identity::new(node, instance)?;
        let user = identity.holder();
        let client = self.client(&user).await?;
        let elector = Elector::new(client);
        let config = tweak(ElectionConfig::new(NS, LEASE, identity).timings(LD, RD, RP));
        let handle = elector.spawn(config)?;
        let tracker = self.timeline.track(user.clone(), handle.state());
        Ok(Candidate {
            user,
            handle,
            _elector: elector,
            _tracker: tracker,
        })
    }

    /// Records every version of [`LEASE`] seen by the admin's own watch, with its arrival time.
    pub fn record_versions(&self) -> Versions {
        let versions = Versions::default();
        let store = versions.clone();
        let api = self.leases();
        let task = tokio::spawn(async move {
            let cfg = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
            let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff());
            while let Some(ev) = stream.next().await {
                let at = Instant::now();
                match ev {
                    Ok(watcher::Event::Apply(l) | watcher::Event::InitApply(l)) => {
                        store.push(at, Some(l));
                    }
                    Ok(watcher::Event::Delete(_)) => store.push(at, None),
                    _ => {}
                }
            }
        });
        versions.set_task(task);
        versions
    }
}

/// One candidate: its user name is its holder identity.
pub struct Candidate {
    pub user: String,
    pub handle: ElectionHandle,
    _elector: Elector,
    _tracker: JoinHandle<()>,
}

impl Candidate {
    pub fn state(&self) -> ElectionState {
        self.handle.current()
    }

    pub fn is_leading(&self) -> bool {
        self.state().is_leading()
    }

    /// Waits until this candidate leads, and returns its guard.
    pub async fn wait_leading(
        &self,
        within: Duration,
    ) -> anyhow::Result<leasehold_lease::Leadership> {
        let mut rx = self.handle.state();
        let found = tokio::time::timeout(within, rx.wait_for(ElectionState::is_leading)).await;
        match found {
            Ok(Ok(state)) => state
                .leadership()
                .cloned()
                .context("leading without a guard"),
            Ok(Err(_)) => bail!("{}: state channel closed", self.user),
            Err(_) => bail!(
                "{} did not lead within {within:?}; state {:?}",
                self.user,
                self.state()
            ),
        }
    }
}

/// One leadership interval.
#[derive(Debug, Clone)]
pub struct Interval {
    pub who: String,
    pub epoch: u64,
    pub start: Instant,
    pub end: Option<Instant>,
}

/// Every leadership interval of every candidate of a test, on this process's monotonic clock.
#[derive(Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<Interval>>>);

impl Timeline {
    fn track(&self, who: String, mut rx: watch::Receiver<ElectionState>) -> JoinHandle<()> {
        let intervals = Arc::clone(&self.0);
        tokio::spawn(async move {
            let mut last_epoch = None;
            loop {
                let state = rx.borrow_and_update().clone();
                if let ElectionState::Leading(l) = &state
                    && last_epoch != Some(l.epoch())
                {
                    last_epoch = Some(l.epoch());
                    let idx = {
                        let mut v = intervals.lock().unwrap();
                        v.push(Interval {
                            who: who.clone(),
                            epoch: l.epoch(),
                            start: l.started_at(),
                            end: None,
                        });
                        v.len() - 1
                    };
                    let l = l.clone();
                    let intervals = Arc::clone(&intervals);
                    tokio::spawn(async move {
                        l.lost().await;
                        intervals.lock().unwrap()[idx].end = l.ended_at();
                    });
                }
                if state.is_stopped() || rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    pub fn intervals(&self) -> Vec<Interval> {
        let mut v = self.0.lock().unwrap().clone();
        v.sort_by_key(|i| i.start);
        v
    }

    /// Who leads right now, by the timeline.
    pub fn open(&self) -> Vec<Interval> {
        self.intervals()
            .into_iter()
            .filter(|i| i.end.is_none())
            .collect()
    }

    /// Panics if any two intervals overlap, or if epochs do not strictly increase in time order.
    pub fn assert_no_overlap(&self) {
        let v = self.intervals();
        for pair in v.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let end = a.end.unwrap_or_else(|| {
                panic!(
                    "overlap: {} still leads (epoch {}) while {} started (epoch {})",
                    a.who, a.epoch, b.who, b.epoch
                )
            });
            assert!(
                end <= b.start,
                "overlap: {} (epoch {}) ended {:?} after {} (epoch {}) started",
                a.who,
                a.epoch,
                end - b.start,
                b.who,
                b.epoch
            );
            assert!(
                b.epoch > a.epoch,
                "epoch did not increase: {a:?} then {b:?}"
            );
        }
    }
}

/// Versions of the Lease as the admin's watch saw them (`None`: deleted).
#[derive(Clone, Default)]
pub struct Versions(Arc<Mutex<VersionLog>>);

type VersionLog = (Vec<(Instant, Option<Lease>)>, Option<JoinHandle<()>>);

impl Versions {
    fn push(&self, at: Instant, lease: Option<Lease>) {
        self.0.lock().unwrap().0.push((at, lease));
    }

    fn set_task(&self, task: JoinHandle<()>) {
        self.0.lock().unwrap().1 = Some(task);
    }

    pub fn all(&self) -> Vec<(Instant, Option<Lease>)> {
        self.0.lock().unwrap().0.clone()
    }
}

impl Drop for Versions {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) == 1
            && let Some(t) = self.0.lock().unwrap().1.take()
        {
            t.abort();
        }
    }
}

pub fn holder_of(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// Polls `f` every 10 ms until it holds, or fails after `within`.
pub async fn until(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until exactly one of `candidates` leads, and returns its index.
pub async fn wait_one_leader(candidates: &[Candidate], within: Duration) -> anyhow::Result<usize> {
    let mut found = None;
    until("one leader", within, || {
        let leading: Vec<usize> = (0..candidates.len())
            .filter(|&i| candidates[i].is_leading())
            .collect();
        found = leading.first().copied();
        leading.len() == 1
    })
    .await?;
    found.context("no leader")
}

/// Waits until a candidate other than `old` leads, then until exactly one leads, and returns its index: the end of
/// a takeover from `old`.
pub async fn takeover_from(
    candidates: &[Candidate],
    old: usize,
    within: Duration,
) -> anyhow::Result<usize> {
    until("another candidate takes over", within, || {
        candidates
            .iter()
            .enumerate()
            .any(|(k, c)| k != old && c.is_leading())
    })
    .await?;
    wait_one_leader(candidates, within).await
}

/// Election requests (everything but watches and lists) of `user`.
pub fn election_requests(c: &Counters, user: &str) -> u64 {
    ["get", "create", "update", "patch", "delete"]
        .iter()
        .map(|v| c.requests(user, v))
        .sum()
}

/// Acquire attempts (creates and updates) of `user`.
pub fn writes_by(c: &Counters, user: &str) -> u64 {
    c.requests(user, "create") + c.requests(user, "update")
}

/// The timings of the herd tests: slower for a large group, as the README advises for large clusters (LD 4 s, RD 3 s,
/// RP 1 s), with J at its default, RP. With 30 to 50 clients in one debug-build process on 2 cores, a write takes tens
/// of milliseconds to reach every follower.
pub const HERD_TIMINGS: (Duration, Duration, Duration) = (
    Duration::from_secs(4),
    Duration::from_secs(3),
    Duration::from_secs(1),
);

/// How long a herd test waits for one takeover: LD + RD + 4 s.
pub fn herd_within() -> Duration {
    HERD_TIMINGS.0 + HERD_TIMINGS.1 + Duration::from_secs(4)
}

/// A herd on [`HERD_TIMINGS`]: `<leader>_1`, which leads first (and so creates the Lease alone), then `followers`
/// more (`node-00_1`, ...), each with its own user, client and watch connection. The leader is at index 0.
pub async fn herd(
    cluster: &Cluster,
    leader: &str,
    followers: usize,
) -> anyhow::Result<Vec<Candidate>> {
    let (ld, rd, rp) = HERD_TIMINGS;
    let mut cands = vec![
        cluster
            .candidate_with(leader, "1", |c| c.timings(ld, rd, rp))
            .await?,
    ];
    cands[0].wait_leading(herd_within()).await?;
    for n in 0..followers {
        cands.push(
            cluster
                .candidate_with(&format!("node-{n:02}"), "1", |c| c.timings(ld, rd, rp))
                .await?,
        );
    }
    Ok(cands)
}

/// Each candidate's writes (creates and updates) so far, in the order of `cands`.
pub fn writes_of(cluster: &Cluster, cands: &[Candidate]) -> Vec<u64> {
    let counters = cluster.counters();
    cands
        .iter()
        .map(|c| writes_by(&counters, &c.user))
        .collect()
}

/// The write attempts of one takeover from `old` to `new`, between two [`writes_of`] snapshots: the writes of
/// everyone but the old and the new leader (whose renews and release are no attempts), plus the winner's one acquire.
pub fn takeover_attempts(before: &[u64], after: &[u64], old: usize, new: usize) -> u64 {
    1 + (0..before.len())
        .filter(|k| *k != old && *k != new)
        .map(|k| after[k] - before[k])
        .sum::<u64>()
}
