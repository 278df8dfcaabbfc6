//! Per-client request counters, so tests and benches can measure what each candidate costs the API server.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::Serialize;

/// One counted dimension: who asked what of which resource, and what they got.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RequestKey {
    /// The authenticated user (`system:anonymous` when the token was missing or unknown).
    pub user: String,
    /// The Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// The resource (`leases`, `events`, `namespaces`), or "" for discovery and other non-resource paths.
    pub resource: String,
    /// The HTTP status answered.
    pub code: u16,
}

/// A snapshot of the counters at one moment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counters {
    /// Requests by user, verb, resource and code.
    pub requests: BTreeMap<String, u64>,
    #[serde(skip)]
    by_key: BTreeMap<RequestKey, u64>,
    /// Committed writes (creates, updates, patches and deletes that changed the store).
    pub writes: u64,
    /// Watch events delivered, by user (bookmarks excluded).
    pub watch_events: BTreeMap<String, u64>,
}

impl Counters {
    /// Requests by `user` with `verb` (`"*"` matches any user or any verb), over every resource and code.
    pub fn requests(&self, user: &str, verb: &str) -> u64 {
        self.by_key
            .iter()
            .filter(|(k, _)| (user == "*" || k.user == user) && (verb == "*" || k.verb == verb))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests matching every given dimension (`None` = any).
    pub fn requests_where(
        &self,
        user: Option<&str>,
        verb: Option<&str>,
        resource: Option<&str>,
        code: Option<u16>,
    ) -> u64 {
        self.by_key
            .iter()
            .filter(|(k, _)| {
                user.is_none_or(|u| k.user == u)
                    && verb.is_none_or(|v| k.verb == v)
                    && resource.is_none_or(|r| k.resource == r)
                    && code.is_none_or(|c| k.code == c)
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Committed writes.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Watch events delivered to `user` (`"*"` = everyone).
    pub fn watch_events(&self, user: &str) -> u64 {
        self.watch_events
            .iter()
            .filter(|(u, _)| user == "*" || *u == user)
            .map(|(_, n)| n)
            .sum()
    }
}

/// The live counters.
#[derive(Default)]
pub struct Recorder {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    watch_events: Mutex<BTreeMap<String, u64>>,
}

impl Recorder {
    /// Counts one answered request.
    pub fn request(&self, user: &str, verb: &str, resource: &str, code: u16) {
        let key = RequestKey {
            user: user.to_string(),
            verb: verb.to_string(),
            resource: resource.to_string(),
            code,
        };
        *self.requests.lock().entry(key).or_default() += 1;
    }

    /// Counts `n` watch events delivered to `user`.
    pub fn watch_events(&self, user: &str, n: u64) {
        let mut m = self.watch_events.lock();
        match m.get_mut(user) {
            Some(c) => *c += n,
            None => {
                m.insert(user.to_string(), n);
            }
        }
    }

    /// A snapshot, with `writes` filled in from the store.
    pub fn snapshot(&self, writes: u64) -> Counters {
        let by_key = self.requests.lock().clone();
        let requests = by_key
            .iter()
            .map(|(k, n)| {
                (
                    format!("{} {} {} {}", k.user, k.verb, k.resource, k.code),
                    *n,
                )
            })
            .collect();
        Counters {
            requests,
            by_key,
            writes,
            watch_events: self.watch_events.lock().clone(),
        }
    }
}
