//! Feeds [`Observed`] from a kube-runtime watcher on the spread Leases (`leasehold.dev/kind in (task,member)`),
//! with kube-runtime's relist and backoff.
//!
//! Spread mode needs `list` and `watch` on leases: placement must see every member Lease, and their names (the
//! members' identities) are known only from a list, so there is no GET-only fallback as elections have. Under a
//! Role without them (many client-go Roles grant only get, create and update) the list is refused with 403 for
//! good: that is logged once, as one warning naming the missing permission, shown in the agent's view, and
//! retried every few minutes rather than on the watcher's 30-second backoff, so that every agent of a large
//! cluster does not send a refused list twice a minute, and so that granting the verbs later needs no restart.

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use leasehold_policy::lease_name::{KIND_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use tokio::sync::watch;

use super::Observed;

/// While the list is refused with 403, it is tried again after this long, ±20 % so that the agents of a
/// DaemonSet started together spread out. As the elections' own watch does (leasehold-lease).
pub const FORBIDDEN_RETRY: Duration = Duration::from_secs(300);

/// How far the watch has got, for the spread manager (which waits for `synced`) and the view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The first list has completed: placement can begin.
    pub synced: bool,
    /// The last list or watch was refused with 403 Forbidden (cleared by the next complete list).
    pub forbidden: bool,
}

/// Watches until aborted. `progress` is bumped on every change (the manager re-evaluates on each), and records
/// the first complete list and whether listing is forbidden.
pub async fn run(
    api: Api<Lease>,
    observed: Arc<Mutex<Observed>>,
    progress: watch::Sender<Progress>,
) {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{KIND_LABEL} in (task,member)");
    let config = watcher::Config::default().labels(&selector).timeout(55);
    // Whether the watch is failing: the first error of an outage is a warning, the retries are debug, and the
    // recovery is logged once.
    let mut failing = false;
    loop {
        let mut stream = watcher(api.clone(), config.clone())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            let lock = || observed.lock();
            match event {
                Ok(watcher::Event::Init) => lock().relist_started(),
                Ok(watcher::Event::InitApply(l) | watcher::Event::Apply(l)) => {
                    lock().apply(&l, now)
                }
                Ok(watcher::Event::Delete(l)) => lock().delete(&l, now),
                Ok(watcher::Event::InitDone) => {
                    lock().relist_done(now);
                    if std::mem::take(&mut failing) {
                        tracing::info!("watching spread Leases works again");
                    }
                    progress.send_replace(Progress {
                        synced: true,
                        forbidden: false,
                    });
                }
                Err(e) if leasehold_lease::is_watch_forbidden(&e) => {
                    if !progress.borrow().forbidden {
                        tracing::warn!(error = %e, retry = ?FORBIDDEN_RETRY, "spread mode cannot list or watch Leases (403 Forbidden): the Role needs the list and watch verbs on leases.coordination.k8s.io; no spread task is placed or run until they are granted (leader-mode elections carry on by polling)");
                    }
                    failing = true;
                    progress.send_modify(|p| p.forbidden = true);
                    break;
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "watching spread Leases failed; retrying with backoff (logged once until it recovers)");
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "watching spread Leases failed again");
                    continue;
                }
            }
            // Wake the manager without changing the value: it re-evaluates on every change.
            progress.send_modify(|_| {});
        }
        // Only a 403 ends the stream (kube-runtime's watcher retries everything else by itself): start over
        // with a fresh list after the forbidden retry.
        tokio::time::sleep(FORBIDDEN_RETRY.mul_f64(rand::random_range(0.8..1.2))).await;
    }
}
