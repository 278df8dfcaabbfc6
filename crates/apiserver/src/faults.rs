//! Fault injection for tests: partitions per user, added latency, injected 500/429 answers, and closing watches.
//!
//! Faults are keyed by the authenticated user name, so a test that gives each candidate its own token can cut one
//! candidate off while the others carry on. Everything here is driven through [`Faults`], reachable from the
//! library handle and from the admin HTTP endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// How a partitioned user is cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PartitionMode {
    /// New requests hang until the partition ends; open watches keep flowing.
    HangRequests,
    /// Open watches freeze (no events, no bookmarks) while their connections stay open; requests still work.
    FreezeWatches,
    /// Both at once, as a real network partition would do.
    Full,
}

impl PartitionMode {
    fn hangs_requests(self) -> bool {
        matches!(self, Self::HangRequests | Self::Full)
    }
    fn freezes_watches(self) -> bool {
        matches!(self, Self::FreezeWatches | Self::Full)
    }
}

/// A rule that answers requests with an error instead of serving them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInjection {
    /// 500 (InternalError) or 429 (TooManyRequests); other codes answer as 500.
    pub code: u16,
    /// For 429: the `Retry-After` header and `details.retryAfterSeconds`. Default 1.
    #[serde(default)]
    pub retry_after_seconds: Option<u32>,
    /// How many requests to fail before the rule expires; `None` = until cleared.
    #[serde(default)]
    pub count: Option<u64>,
    /// The fraction of matching requests to fail (0..=1); `None` = all.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Only this user's requests; `None` = everyone's.
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Default)]
struct State {
    partitions: HashMap<String, PartitionMode>,
    latency: Option<Duration>,
    errors: Vec<ErrorInjection>,
    watch_generation: u64,
}

/// The fault switchboard shared by every request.
pub struct Faults {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    hung: AtomicUsize,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
            hung: AtomicUsize::new(0),
        }
    }
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut s = self.state.lock();
        let r = f(&mut s);
        drop(s);
        r
    }

    fn bump(&self) {
        self.changed.send_modify(|g| *g += 1);
    }

    /// Cuts `user` off in the given mode until [`Faults::heal`].
    pub fn partition(&self, user: &str, mode: PartitionMode) {
        self.with(|s| s.partitions.insert(user.to_string(), mode));
        self.bump();
    }

    /// Ends `user`'s partition: hung requests proceed and frozen watches resume.
    pub fn heal(&self, user: &str) {
        self.with(|s| s.partitions.remove(user));
        self.bump();
    }

    /// Ends every partition.
    pub fn heal_all(&self) {
        self.with(|s| s.partitions.clear());
        self.bump();
    }

    /// Adds `latency` before every API request is served (`None` removes it).
    pub fn latency(&self, latency: Option<Duration>) {
        self.with(|s| s.latency = latency);
        self.bump();
    }

    /// Adds an error-injection rule.
    pub fn inject(&self, rule: ErrorInjection) {
        self.with(|s| s.errors.push(rule));
        self.bump();
    }

    /// Removes every error-injection rule.
    pub fn clear_errors(&self) {
        self.with(|s| s.errors.clear());
        self.bump();
    }

    /// Ends every open watch; clients see the stream close and must re-watch.
    pub fn close_watches(&self) {
        self.with(|s| s.watch_generation += 1);
        self.bump();
    }

    /// Removes every fault at once.
    pub fn clear(&self) {
        self.with(|s| {
            s.partitions.clear();
            s.latency = None;
            s.errors.clear();
        });
        self.bump();
    }

    /// A receiver that changes whenever any fault changes, for requests and watches waiting on one.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Whether `user`'s new requests must wait.
    pub fn requests_hang(&self, user: &str) -> bool {
        self.with(|s| s.partitions.get(user).is_some_and(|m| m.hangs_requests()))
    }

    /// Whether `user`'s open watches must stay silent.
    pub fn watches_frozen(&self, user: &str) -> bool {
        self.with(|s| s.partitions.get(user).is_some_and(|m| m.freezes_watches()))
    }

    /// The current watch generation; a watch started in an older one must end.
    pub fn watch_generation(&self) -> u64 {
        self.with(|s| s.watch_generation)
    }

    /// The configured added latency.
    pub fn current_latency(&self) -> Option<Duration> {
        self.with(|s| s.latency)
    }

    /// Decides whether this request of `user` fails, consuming one use of the matching rule.
    /// Returns (code, retry-after seconds).
    pub fn take_error(&self, user: &str) -> Option<(u16, u32)> {
        self.with(|s| {
            let idx = s.errors.iter().position(|r| {
                r.user.as_deref().is_none_or(|u| u == user)
                    && r.fraction.is_none_or(|f| rand::random::<f64>() < f)
            })?;
            let rule = &mut s.errors[idx];
            let out = (rule.code, rule.retry_after_seconds.unwrap_or(1));
            if let Some(n) = rule.count.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    s.errors.remove(idx);
                }
            }
            Some(out)
        })
    }

    /// How many requests are hanging in a partition right now, so tests can wait until one has arrived.
    pub fn hung_requests(&self) -> usize {
        self.hung.load(Ordering::SeqCst)
    }

    /// Waits while `user` is partitioned with hanging requests.
    pub async fn wait_unpartitioned(&self, user: &str) {
        if !self.requests_hang(user) {
            return;
        }
        struct Hung<'a>(&'a AtomicUsize);
        impl Drop for Hung<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let mut rx = self.subscribe();
        self.hung.fetch_add(1, Ordering::SeqCst);
        let _hung = Hung(&self.hung);
        while self.requests_hang(user) {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_injection_expires() {
        let f = Faults::default();
        f.inject(ErrorInjection {
            code: 429,
            retry_after_seconds: Some(3),
            count: Some(2),
            ..Default::default()
        });
        assert_eq!(f.take_error("a"), Some((429, 3)));
        assert_eq!(f.take_error("b"), Some((429, 3)));
        assert_eq!(f.take_error("c"), None);
    }

    #[test]
    fn partitions_are_per_user_and_mode() {
        let f = Faults::default();
        f.partition("a", PartitionMode::FreezeWatches);
        assert!(f.watches_frozen("a") && !f.requests_hang("a") && !f.watches_frozen("b"));
        f.partition("a", PartitionMode::Full);
        assert!(f.requests_hang("a"));
        f.heal("a");
        assert!(!f.requests_hang("a") && !f.watches_frozen("a"));
    }
}
