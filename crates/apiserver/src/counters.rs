//! Per-client request counters, so tests and benches can measure what each candidate costs the API server.

use std::collections::{BTreeMap, BTreeSet};

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
    /// What each TCP connection carried, in the order the connections were accepted: which client's requests
    /// share a connection (and so can queue behind each other) is part of what a client costs and how fast it is.
    pub connections: Vec<ConnectionUse>,
}

/// The requests one TCP connection carried (in-process requests have no connection and are not listed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionUse {
    /// The users whose requests came over it.
    pub users: BTreeSet<String>,
    /// The resources asked for over it (`leases`, `events`; "" for discovery and other non-resource paths).
    pub resources: BTreeSet<String>,
    /// How many requests it carried.
    pub requests: u64,
}

/// The number the accept loop gives each TCP connection, carried to the handler as a request extension so the
/// counters can say what each connection carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

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
    connections: Mutex<BTreeMap<ConnectionId, ConnectionUse>>,
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

    /// Notes that connection `id` carried a request of `user` for `resource`.
    pub fn connection(&self, id: ConnectionId, user: &str, resource: &str) {
        let mut connections = self.connections.lock();
        let used = connections.entry(id).or_default();
        if !used.users.contains(user) {
            used.users.insert(user.to_string());
        }
        if !used.resources.contains(resource) {
            used.resources.insert(resource.to_string());
        }
        used.requests += 1;
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
            connections: self.connections.lock().values().cloned().collect(),
        }
    }
}
