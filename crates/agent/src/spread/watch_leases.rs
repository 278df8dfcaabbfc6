//! Feeds [`Observed`] from a kube-runtime watcher on the spread Leases (`leasehold.dev/kind in (task,member)`),
//! with kube-runtime's relist and backoff.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use leasehold_policy::lease_name::{KIND_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use tokio::sync::watch;

use super::Observed;

/// Watches until aborted; `synced` turns true once the first list is complete, and is bumped on every change.
pub async fn run(api: Api<Lease>, observed: Arc<Mutex<Observed>>, synced: watch::Sender<bool>) {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{KIND_LABEL} in (task,member)");
    let config = watcher::Config::default().labels(&selector).timeout(55);
    let mut stream = watcher(api, config).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        let now = Instant::now();
        match event {
            Ok(watcher::Event::Init) => observed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .relist_started(),
            Ok(watcher::Event::InitApply(l) | watcher::Event::Apply(l)) => {
                observed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .apply(&l, now);
            }
            Ok(watcher::Event::Delete(l)) => observed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .delete(&l, now),
            Ok(watcher::Event::InitDone) => {
                observed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .relist_done(now);
                synced.send_replace(true);
            }
            Err(e) => {
                tracing::warn!(error = %e, "watching spread Leases failed; retrying with backoff");
                continue;
            }
        }
        // Wake the manager without changing the value: it re-evaluates on every change.
        synced.send_modify(|_| {});
    }
}
