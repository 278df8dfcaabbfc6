//! The test handle that [`Server`](crate::Server) (over TCP) and [`InProcess`](crate::InProcess) (no sockets)
//! share: users, counters, faults, restarts, and snapshots with restores.
//!
//! Both front ends serve the same state the same way; only how requests arrive differs. Keeping the test hooks
//! here, once, means a test written against one front end means the same thing against the other.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::counters::Counters;
use crate::faults::Faults;
use crate::rbac::{self, UserInfo};
use crate::state::{self, Shared};
use crate::store::{Snapshot, Store};
use crate::{Error, Options, counters, new_token};

/// The test hooks of one stand-in API server, whichever way its requests arrive.
///
/// [`Server`](crate::Server) and [`InProcess`](crate::InProcess) dereference to it, so `server.add_user(..)`
/// and `in_process.add_user(..)` are the same call. Cloning is cheap (one `Arc`) and every clone drives the same
/// server, so a test can hand one to a task that injects faults while its clients keep running.
#[derive(Clone)]
pub struct Handle {
    state: Shared,
}

impl Handle {
    /// Builds the state `opts` describe (authorizer, users, seeded namespaces), without listening anywhere and
    /// without spawning anything, so the same constructor serves the TCP server and the in-process one.
    pub(crate) fn build(opts: &Options) -> Result<Self, Error> {
        let authorizer = if opts.rbac.is_empty() {
            rbac::Authorizer::allow_all()
        } else {
            let sources: Vec<(&str, &str)> = opts
                .rbac
                .iter()
                .map(|(l, t)| (l.as_str(), t.as_str()))
                .collect();
            rbac::Authorizer::from_yaml(&sources).map_err(Error::Rbac)?
        };
        let admin_token = opts.admin_token.clone().unwrap_or_else(new_token);
        let mut tokens: HashMap<String, UserInfo> = opts.tokens.iter().cloned().collect();
        tokens.insert(
            admin_token.clone(),
            UserInfo {
                name: "admin".into(),
                uid: "admin".into(),
                groups: vec!["system:masters".into()],
            },
        );
        let store = Store::new(opts.history_window);
        state::seed_namespaces(&store);
        let state = Arc::new(state::State {
            store,
            tokens: RwLock::new(tokens),
            authorizer,
            faults: Faults::default(),
            counters: counters::Recorder::default(),
            bookmark_interval: opts.bookmark_interval,
            admin_token,
            anonymous_auth: opts.anonymous_auth,
            connections: tokio::sync::watch::channel(0).0,
            snapshots: Default::default(),
        });
        Ok(Self { state })
    }

    /// The state requests are served from, for the front ends.
    pub(crate) fn state(&self) -> &Shared {
        &self.state
    }

    /// The admin token; its user `admin` is in `system:masters`, so it may do everything, the admin endpoint
    /// included.
    pub fn admin_token(&self) -> String {
        self.state.admin_token.clone()
    }

    /// Registers a user and returns a fresh bearer token for it. Faults and counters are keyed by user, so each
    /// test client gets its own to be cut off and counted separately.
    pub fn add_user(&self, name: &str, groups: &[&str]) -> String {
        let token = new_token();
        self.state.add_token(
            token.clone(),
            UserInfo {
                name: name.to_string(),
                uid: name.to_string(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
        );
        token
    }

    /// A snapshot of the request counters, so tests can assert what each client cost the server.
    pub fn counters(&self) -> Counters {
        self.state.counters()
    }

    /// The fault switchboard (partitions, latency, injected errors, closed watches).
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The newest resourceVersion, so tests can resume watches from "now" or check that a wipe went back.
    pub fn resource_version(&self) -> u64 {
        self.state.store.current_rv()
    }

    /// Simulates a restart: every connection drops (open watches end, hung requests fail); with `keep_state`
    /// false the store is wiped and the resourceVersion restarts below what clients have seen. It yields once
    /// so that tasks woken by the drop get to run before the caller goes on.
    pub async fn restart(&self, keep_state: bool) {
        self.state.restart(keep_state);
        tokio::task::yield_now().await;
    }

    /// Copies the objects and the resourceVersion as they are now, like an etcd backup, for a later
    /// [`Handle::restore`].
    pub fn snapshot(&self) -> Snapshot {
        self.state.store.snapshot()
    }

    /// Simulates an etcd restore from `snapshot`: objects come back as they were (same uids, their old
    /// resourceVersions), the resourceVersion goes back to the snapshot's (below what clients have seen), the
    /// history is forgotten, and every connection drops as on [`Handle::restart`]. New writes continue from the
    /// snapshot's resourceVersion + 1, so a resourceVersion can come back with different content, as on a real
    /// restored cluster. It yields once, like [`Handle::restart`].
    pub async fn restore(&self, snapshot: &Snapshot) {
        self.state.restore(snapshot, 0);
        tokio::task::yield_now().await;
    }

    /// Simulates an etcd restore done as the Kubernetes documentation recommends (etcdutl's `--bump-revision
    /// <bump> --mark-compacted`): objects come back as they were, with their old resourceVersions, but new
    /// writes continue `bump` above the snapshot's resourceVersion and older ones are compacted, so no
    /// resourceVersion is reused and every watch must relist. Connections drop as on [`Handle::restart`].
    pub async fn restore_bumped(&self, snapshot: &Snapshot, bump: u64) {
        self.state.restore(snapshot, bump);
        tokio::task::yield_now().await;
    }
}
