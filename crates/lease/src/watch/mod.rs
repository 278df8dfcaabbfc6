//! Many leases, one watch: a shared kube-runtime watcher per (Kubernetes namespace, label selector).
//!
//! An agent in 50 election namespaces holds 50 Leases in one Kubernetes namespace. Watching each separately
//! would cost the API server 50 watch connections per node; instead every elector of a process that shares a
//! namespace and a label selector subscribes to one [`Hub`], which runs kube-runtime's [`watcher`] (list,
//! then watch, with its own resume and backoff) and fans each Lease's latest version out to the elector of
//! that Lease.
//!
//! On top of the watcher the hub adds two things the election needs:
//! - **Relist from scratch** when nothing at all (no event, no bookmark) arrived for [`WATCH_SILENCE_RELIST`], or when the
//!   server answers that our resourceVersion is too large or gone (its state was wiped and its
//!   resourceVersions went back), which the watcher alone would retry forever.
//! - **Deletions are only reported, never believed.** A `DELETED` event, or a Lease missing from a relist,
//!   becomes [`Seen::Gone`]; the elector confirms it with a GET, because removing a label also produces
//!   `DELETED` on a label-selected watch.

mod health;
mod tap;

pub(crate) use health::Health;
pub use health::is_watch_forbidden;

use std::{
    collections::{HashMap, HashSet},
    panic::AssertUnwindSafe,
    pin::pin,
    sync::Arc,
    time::Duration,
};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client, ResourceExt,
    runtime::{
        WatchStreamExt,
        watcher::{self, Event, watcher},
    },
};
use parking_lot::Mutex;
use tokio::{sync::watch, task::JoinHandle, time::Instant};
use tracing::{debug, error, info, warn};

use crate::{backoff::Backoff, random::Random};

/// The mean `timeoutSeconds` of each watch request: the server ends the watch after about this long and the
/// watcher re-opens it, so a follower makes about one request per ten minutes in steady state. Each shared watch
/// draws its own timeout within ±10 % of it (`watch_timeout_secs`), so N followers started together drift apart
/// instead of reopening in the same second. A real kube-apiserver honours any value (its own default is 30 to 60
/// minutes); silence is caught by [`WATCH_SILENCE_RELIST`], not by the timeout.
pub const WATCH_TIMEOUT_SECS: u32 = 600;

/// The timeout of one shared watch: [`WATCH_TIMEOUT_SECS`] ± 10 %, drawn once per watch from `unit` in `[0, 1)`.
pub(crate) fn watch_timeout_secs(unit: f64) -> u32 {
    let spread = f64::from(WATCH_TIMEOUT_SECS) * 0.2;
    let secs = f64::from(WATCH_TIMEOUT_SECS) * 0.9 + spread * unit.clamp(0.0, 1.0);
    // Within 540..=660 by construction, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let secs = secs.round() as u32;
    secs
}

/// Relist from scratch when no event and no bookmark arrived for this long.
pub const WATCH_SILENCE_RELIST: Duration = Duration::from_secs(120);

/// The latest the hub knows about one Lease.
#[derive(Debug, Clone)]
pub(crate) enum Seen {
    /// The first list has not completed yet.
    Unknown,
    /// The latest version from the watch or a list, with where it came from.
    Present(Arc<Lease>, Via),
    /// A `DELETED` event, or absent from a list. Unconfirmed: check with a GET before acting on it.
    Gone {
        /// How many versions of this Lease the hub had published before: an elector that took fewer missed one
        /// (the channel keeps only the latest news), so a version it never saw came and went.
        after: u64,
    },
}

/// Where a version seen by the shared watch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Via {
    /// The number of the list it came from (or followed): versions are comparable by resourceVersion only within
    /// one list and its watch, since a relist may follow a restore that rewound resourceVersions.
    pub(crate) list: u64,
    /// Since when the request that delivered it has been open without a break: the watch request's answer, or the
    /// list's. No restart, wipe or restore of the server happened after this instant, since each drops every
    /// connection.
    pub(crate) unbroken_since: Instant,
    /// This is the hub's `seq`-th published version of this Lease.
    pub(crate) seq: u64,
}

/// One shared watch. Dropping the last reference stops it.
pub(crate) struct Hub {
    table: Arc<Mutex<Table>>,
    health: watch::Receiver<Health>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Table {
    synced: bool,
    slots: HashMap<String, watch::Sender<Seen>>,
    /// How many versions of each Lease have been published.
    published: HashMap<String, u64>,
}

impl Table {
    /// Publishes a version of `name` from list `list`, delivered by a request open since `unbroken_since`.
    fn present(&mut self, name: String, lease: Arc<Lease>, list: u64, unbroken_since: Instant) {
        let n = self.published.entry(name.clone()).or_default();
        *n += 1;
        let via = Via {
            list,
            unbroken_since,
            seq: *n,
        };
        self.publish(name, Seen::Present(lease, via));
    }

    /// Publishes a deletion of `name`.
    fn gone(&mut self, name: String) {
        let gone = self.gone_after(&name);
        self.publish(name, gone);
    }

    /// What a deletion of `name` reports: how many versions came before it.
    fn gone_after(&self, name: &str) -> Seen {
        let after = self.published.get(name).copied().unwrap_or(0);
        Seen::Gone { after }
    }

    fn publish(&mut self, name: String, seen: Seen) {
        match self.slots.get(&name) {
            Some(slot) => {
                slot.send_replace(seen);
            }
            None => {
                self.slots.insert(name, watch::Sender::new(seen));
            }
        }
    }

    /// After a complete list: everything not listed is gone.
    fn listed(&mut self, names: &HashSet<String>) {
        self.synced = true;
        for (name, slot) in &self.slots {
            if !names.contains(name) {
                let gone = self.gone_after(name);
                slot.send_if_modified(|s| {
                    let changed = !matches!(s, Seen::Gone { .. });
                    *s = gone;
                    changed
                });
            }
        }
    }
}

impl Hub {
    /// Starts watching Leases in `namespace` that match `selector`.
    pub(crate) fn start(client: Client, namespace: &str, selector: &str, random: Random) -> Self {
        let table = Arc::new(Mutex::new(Table::default()));
        let watched = Arc::clone(&table);
        let (health_tx, health) = watch::channel(Health::default());
        let (namespace, selector) = (namespace.to_owned(), selector.to_owned());
        let task = tokio::spawn(async move {
            let outcome = AssertUnwindSafe(run(
                client,
                namespace.clone(),
                selector.clone(),
                Arc::clone(&watched),
                health_tx,
                random,
            ))
            .catch_unwind()
            .await;
            if let Err(panic) = outcome {
                let msg = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .unwrap_or("non-string panic payload");
                error!(%namespace, %selector, panic = msg, "shared Lease watch panicked");
            }
            // Dropping the senders tells every subscribed elector that it can no longer observe.
            watched.lock().slots.clear();
        });
        Self {
            table,
            health,
            task,
        }
    }

    /// The watch's health: whether electors should poll instead of waiting for it.
    pub(crate) fn health(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// The latest version of Lease `name`, and every later one.
    pub(crate) fn subscribe(&self, name: &str) -> watch::Receiver<Seen> {
        let mut table = self.table.lock();
        let initial = if table.synced {
            table.gone_after(name)
        } else {
            Seen::Unknown
        };
        table
            .slots
            .entry(name.to_owned())
            .or_insert_with(|| watch::Sender::new(initial))
            .subscribe()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a watcher error means our resourceVersion is unusable and only a fresh list will do.
fn needs_relist(err: &watcher::Error) -> bool {
    let status = match err {
        watcher::Error::WatchError(status) => Some(status.as_ref()),
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::InitialListFailed(kube::Error::Api(status)) => Some(status.as_ref()),
        _ => None,
    };
    status.is_some_and(|s| {
        let too_large = s
            .message
            .to_ascii_lowercase()
            .contains("too large resource version")
            || s.details.as_ref().is_some_and(|d| {
                d.causes
                    .iter()
                    .any(|c| c.reason == "ResourceVersionTooLarge")
            });
        too_large || s.code == 410
    })
}

/// The delay a 429 asked for (`details.retryAfterSeconds`; kube's error type keeps no headers).
fn throttled_for(err: &watcher::Error) -> Option<Duration> {
    let status = match err {
        watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::InitialListFailed(kube::Error::Api(s)) => s,
        _ => return None,
    };
    (status.code == 429)
        .then(|| status.details.as_ref().map(|d| d.retry_after_seconds))
        .flatten()
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(u64::from(s)))
}

async fn run(
    client: Client,
    namespace: String,
    selector: String,
    table: Arc<Mutex<Table>>,
    health: watch::Sender<Health>,
    random: Random,
) {
    let activity = tap::Activity::new();
    let api: Api<Lease> = Api::namespaced(tap::tapped(client, activity.clone()), &namespace);
    let config = watcher::Config::default()
        .labels(&selector)
        .timeout(watch_timeout_secs(random.unit()));
    let mut relist_backoff = Backoff::new(
        Duration::from_secs(1),
        Duration::from_secs(30),
        random.clone(),
    );
    // Whether the watch is failing: the first error of an outage is a warning, the retries are debug, and the
    // recovery is logged once, so an unreachable API server is visible without a line per retry.
    let mut failing = false;
    let mut session = 0u64;
    let mut forbidden_backoff = Backoff::new(
        health::FORBIDDEN_RETRY,
        health::FORBIDDEN_RETRY,
        random.clone(),
    );
    loop {
        let mut stream = pin!(watcher(api.clone(), config.clone()).default_backoff());
        activity.touch();
        let mut listing: Option<HashSet<String>> = None;
        // When this list completed: the relist backoff is forgotten only once a list has served for a while,
        // so that a watch that fails right after every list (410s, a flapping server) cannot drive a loop of
        // list + watch every half second.
        let mut listed_at: Option<Instant> = None;
        loop {
            let silent_at = activity.last() + WATCH_SILENCE_RELIST;
            let event = tokio::select! {
                // Biased, so that a simulation replays the same order when both are ready at one instant.
                biased;
                event = stream.next() => event,
                () = tokio::time::sleep_until(silent_at) => {
                    if activity.last() + WATCH_SILENCE_RELIST <= Instant::now() {
                        warn!(%namespace, %selector, "no watch event or bookmark for {WATCH_SILENCE_RELIST:?}; relisting");
                        break;
                    }
                    continue;
                }
            };
            if let Some(Ok(e)) = &event {
                let relisting = matches!(e, Event::Init | Event::InitApply(_));
                let healthy = Health {
                    relisting,
                    ..Health::default()
                };
                health.send_if_modified(|h| std::mem::replace(h, healthy) != healthy);
            }
            match event {
                None => break,
                Some(Ok(Event::Init)) => {
                    session += 1;
                    listing = Some(HashSet::new());
                }
                Some(Ok(Event::InitApply(lease))) => {
                    let name = lease.name_any();
                    listing
                        .get_or_insert_with(HashSet::new)
                        .insert(name.clone());
                    // The list was answered by now, after anything that erased history before it.
                    table
                        .lock()
                        .present(name, Arc::new(lease), session, Instant::now());
                }
                Some(Ok(Event::InitDone)) => {
                    table.lock().listed(&listing.take().unwrap_or_default());
                    listed_at = Some(Instant::now());
                    if std::mem::take(&mut failing) {
                        info!(%namespace, %selector, "Lease watch recovered");
                    }
                }
                Some(Ok(Event::Apply(lease))) => {
                    let opened = activity.watch_opened();
                    table
                        .lock()
                        .present(lease.name_any(), Arc::new(lease), session, opened);
                }
                Some(Ok(Event::Delete(lease))) => table.lock().gone(lease.name_any()),
                Some(Err(err)) if health::is_watch_forbidden(&err) => {
                    if !health.borrow().forbidden {
                        warn!(%namespace, %selector, error = %err, "the Lease watch is forbidden (no list or watch permission on leases); electors poll the Lease with GET instead, and the watch is retried every {:?}", health::FORBIDDEN_RETRY);
                    }
                    health.send_modify(|h| *h = h.failed(&err, Instant::now()));
                    failing = true;
                    tokio::time::sleep(forbidden_backoff.next_delay()).await;
                    break;
                }
                Some(Err(err)) if needs_relist(&err) => {
                    warn!(%namespace, %selector, error = %err, "watch resourceVersion unusable; relisting");
                    break;
                }
                Some(Err(err)) if !failing => {
                    health.send_modify(|h| *h = h.failed(&err, Instant::now()));
                    failing = true;
                    warn!(%namespace, %selector, error = %err, "Lease watch failing; retrying with backoff (logged once until it recovers)");
                    if let Some(delay) = throttled_for(&err) {
                        tokio::time::sleep(delay).await;
                    }
                }
                Some(Err(err)) => {
                    health.send_modify(|h| *h = h.failed(&err, Instant::now()));
                    debug!(%namespace, %selector, error = %err, "watch error; the watcher retries");
                    if let Some(delay) = throttled_for(&err) {
                        // kube-runtime's backoff does not read the server's delay; honour it on top.
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        health.send_if_modified(|h| !std::mem::replace(&mut h.relisting, true));
        if listed_at.is_some_and(|t| t.elapsed() >= RELIST_SETTLED) {
            relist_backoff.reset();
        }
        tokio::time::sleep(relist_backoff.next_delay()).await;
    }
}

/// How long a completed list must serve before the relist backoff starts over.
const RELIST_SETTLED: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    #[test]
    fn each_watch_draws_a_timeout_within_ten_percent_of_ten_minutes() {
        assert_eq!(watch_timeout_secs(0.0), 540);
        assert_eq!(watch_timeout_secs(0.5), 600);
        assert_eq!(watch_timeout_secs(0.999_999), 660);
        assert_eq!(watch_timeout_secs(-1.0), 540);
        assert_eq!(watch_timeout_secs(7.0), 660);
        // A thousand followers started in the same second reopen over two minutes, not all at once.
        let distinct: std::collections::BTreeSet<u32> = (0..1000)
            .map(|i| watch_timeout_secs(f64::from(i) / 1000.0))
            .collect();
        assert_eq!(distinct.len(), 121);
    }

    /// A fake API server: lists return no Leases; watches open and then never send a byte.
    #[derive(Clone, Default)]
    struct SilentServer {
        lists: Arc<std::sync::atomic::AtomicUsize>,
        watches: Arc<std::sync::atomic::AtomicUsize>,
    }

    type Reply = http::Response<
        http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::convert::Infallible>,
    >;

    impl tower::Service<http::Request<kube::client::Body>> for SilentServer {
        type Response = Reply;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Reply, std::convert::Infallible>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
            use std::sync::atomic::Ordering::SeqCst;

            use http_body_util::BodyExt;
            let body = if req.uri().query().unwrap_or_default().contains("watch=true") {
                self.watches.fetch_add(1, SeqCst);
                http_body_util::StreamBody::new(futures::stream::pending()).boxed_unsync()
            } else {
                self.lists.fetch_add(1, SeqCst);
                http_body_util::Full::new(bytes::Bytes::from_static(
                    br#"{"apiVersion":"coordination.k8s.io/v1","kind":"LeaseList","metadata":{"resourceVersion":"5"},"items":[]}"#,
                ))
                .boxed_unsync()
            };
            std::future::ready(Ok(http::Response::new(body)))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn relists_after_two_silent_minutes() {
        use std::sync::atomic::Ordering::SeqCst;
        let server = SilentServer::default();
        let hub = Hub::start(
            Client::new(server.clone(), "default"),
            "default",
            "a=b",
            Random::Os,
        );
        let rx = hub.subscribe("l");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(server.lists.load(SeqCst), 1);
        assert!(
            matches!(*rx.borrow(), Seen::Gone { .. }),
            "listed without it: absent"
        );
        // The silent watch stays open (its timeout, about ten minutes, is far longer than the silence allowed) ...
        tokio::time::sleep(WATCH_SILENCE_RELIST - Duration::from_secs(2)).await;
        assert_eq!(server.lists.load(SeqCst), 1);
        assert_eq!(server.watches.load(SeqCst), 1);
        // ... and after two minutes without a byte, the hub relists from scratch.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(server.lists.load(SeqCst), 2);
    }

    #[test]
    fn relists_on_too_large_or_gone() {
        let too_large =
            Status::failure("Too large resource version: 12, current: 3", "Timeout").with_code(504);
        assert!(needs_relist(&watcher::Error::WatchStartFailed(
            kube::Error::Api(too_large.clone().boxed())
        )));
        assert!(needs_relist(&watcher::Error::WatchError(too_large.boxed())));
        let gone = Status::failure("too old resource version", "Expired").with_code(410);
        assert!(needs_relist(&watcher::Error::WatchStartFailed(
            kube::Error::Api(gone.boxed())
        )));
        let other = Status::failure("boom", "InternalError").with_code(500);
        assert!(!needs_relist(&watcher::Error::WatchStartFailed(
            kube::Error::Api(other.boxed())
        )));
    }

    #[test]
    fn listing_marks_the_unlisted_gone_once() {
        let mut t = Table::default();
        t.present("a".into(), Arc::new(Lease::default()), 1, Instant::now());
        let rx_b = {
            t.slots
                .insert("b".into(), watch::Sender::new(Seen::Unknown));
            t.slots["b"].subscribe()
        };
        t.listed(&HashSet::from(["a".to_owned()]));
        assert!(t.synced);
        assert!(matches!(*rx_b.borrow(), Seen::Gone { after: 0 }));
        assert!(rx_b.has_changed().unwrap());
        let mut rx_b = rx_b;
        rx_b.borrow_and_update();
        t.listed(&HashSet::from(["a".to_owned()]));
        assert!(!rx_b.has_changed().unwrap());
        assert!(matches!(*t.slots["a"].borrow(), Seen::Present(..)));
    }
}
