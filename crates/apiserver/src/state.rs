//! The state every request handler shares: store, users, authorizer, faults and counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::json;
use tokio::sync::watch;

use crate::counters::Recorder;
use crate::faults::Faults;
use crate::rbac::{Authorizer, UserInfo};
use crate::store::{Snapshot, Store};

/// Shared server state.
pub struct State {
    /// Objects and their history.
    pub store: Store,
    /// Bearer token to user.
    pub tokens: RwLock<HashMap<String, UserInfo>>,
    /// The RBAC authorizer (allow-all without manifests).
    pub authorizer: Authorizer,
    /// Fault injection.
    pub faults: Faults,
    /// Request counters.
    pub counters: Recorder,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// The admin token (its user is in `system:masters`).
    pub admin_token: String,
    /// Whether a request with no credentials is served as `system:anonymous` (see [`crate::Options`]).
    pub anonymous_auth: bool,
    /// Bumped on restart: every open connection closes when it changes.
    pub connections: watch::Sender<u64>,
    /// Snapshots taken through the admin endpoint; an admin snapshot's id is its index here.
    pub snapshots: Mutex<Vec<Snapshot>>,
}

impl State {
    /// The user a bearer token belongs to.
    pub fn user_for(&self, token: &str) -> Option<UserInfo> {
        self.tokens.read().get(token).cloned()
    }

    /// Registers a token for a user.
    pub fn add_token(&self, token: String, user: UserInfo) {
        self.tokens.write().insert(token, user);
    }

    /// Simulates an API server restart: every connection drops (watches and hung requests included). With
    /// `keep_state` false the store is wiped too, and the resourceVersion restarts below what clients have seen.
    pub fn restart(&self, keep_state: bool) {
        if !keep_state {
            self.store.wipe();
            seed_namespaces(&self.store);
        }
        self.connections.send_modify(|g| *g += 1);
    }

    /// Simulates an etcd restore from `snapshot` (see [`Store::restore`]); every connection drops, as on a
    /// restart, so watchers reconnect and find the rewound resourceVersion.
    pub fn restore(&self, snapshot: &Snapshot, bump_revision: u64) {
        self.store.restore(snapshot, bump_revision);
        self.connections.send_modify(|g| *g += 1);
    }

    /// Takes a snapshot and keeps it for a later admin restore, returning its id and its resourceVersion.
    pub fn save_snapshot(&self) -> (usize, u64) {
        let snapshot = self.store.snapshot();
        let rv = snapshot.resource_version();
        let mut saved = self.snapshots.lock();
        saved.push(snapshot);
        (saved.len() - 1, rv)
    }

    /// The snapshot the admin endpoint saved under `id`, if any.
    pub fn saved_snapshot(&self, id: usize) -> Option<Snapshot> {
        self.snapshots.lock().get(id).cloned()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> crate::counters::Counters {
        self.counters.snapshot(self.store.writes())
    }
}

/// A shared handle on the state.
pub type Shared = Arc<State>;

/// The namespaces a fresh cluster has.
pub const INITIAL_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the namespaces every cluster starts with.
pub fn seed_namespaces(store: &crate::store::Store) {
    for name in INITIAL_NAMESPACES {
        let obj = json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": crate::meta::now_rfc3339(),
                "labels": { "kubernetes.io/metadata.name": name },
            },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        });
        // Seeding an empty store cannot conflict; an existing namespace is simply kept.
        let _ = store.write("namespaces", "", name, |live, _| {
            Ok(if live.is_some() {
                crate::store::WriteOp::Keep
            } else {
                crate::store::WriteOp::Put(obj)
            })
        });
    }
}
