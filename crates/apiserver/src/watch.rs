//! Watch streams: `?watch=1` with resume from a resourceVersion, bookmarks, timeouts, selectors (including an
//! object leaving a label selection, which the client sees as DELETED), Table events for `kubectl get -w`, and
//! the faults that freeze or close watches.
//!
//! Each watch runs as one task that pulls changes from the store's history and writes newline-delimited JSON
//! events into a bounded channel, which the HTTP body drains. A slow client therefore slows only its own task.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::ReceiverStream;

use crate::objects::{Filter, present};
use crate::request::{Ctx, Reply, Result};
use crate::resource::ResourceType;
use crate::state::Shared;
use crate::status::ApiError;
use crate::store::{Change, ChangeType};
use crate::table;

/// The body of a watch response: one JSON event per item.
pub type WatchStream = ReceiverStream<Bytes>;

/// How long a watch lasts without `timeoutSeconds`, like the real server's default request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// How long a watch from a resourceVersion the store has not reached waits for it, like the real server's watch
/// cache (`waitUntilFreshAndBlock`), before it ends with "Too large resource version".
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

struct Watch {
    state: Shared,
    rt: &'static ResourceType,
    namespace: String,
    user: String,
    filter: Filter,
    bookmarks: bool,
    table: Option<TableMode>,
    tx: mpsc::Sender<Bytes>,
    last_rv: u64,
}

struct TableMode {
    ctx_query: Ctx,
    columns_sent: bool,
}

/// Starts a watch for the request; the answer streams until timeout, fault or client disconnect.
pub fn start(ctx: Ctx) -> Result {
    let filter = Filter::from_ctx(&ctx)?;
    let requested = ctx.param("resourceVersion").to_string();
    let timeout = ctx
        .param("timeoutSeconds")
        .parse::<u64>()
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let start_rv = match requested.as_str() {
        "" | "0" => None,
        n => Some(
            n.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {n}")))?,
        ),
    };
    let initial_events = ctx.flag("sendInitialEvents");
    let (tx, rx) = mpsc::channel(64);
    let bookmarks = ctx.flag("allowWatchBookmarks");
    let rt = ctx.req.rt;
    let state = ctx.state.clone();
    let namespace = ctx.req.namespace.clone();
    let user = ctx.user.name.clone();
    let table = ctx.wants_table().then_some(TableMode {
        ctx_query: ctx,
        columns_sent: false,
    });
    let watch = Watch {
        state,
        rt,
        namespace,
        user,
        filter,
        bookmarks,
        table,
        tx,
        last_rv: 0,
    };
    tokio::spawn(watch.run(start_rv, initial_events, Instant::now() + timeout));
    Ok(Reply::Watch(ReceiverStream::new(rx)))
}

impl Watch {
    async fn run(mut self, start_rv: Option<u64>, initial_events: bool, deadline: Instant) {
        let generation = self.state.faults.watch_generation();
        let mut rv_rx = self.state.store.subscribe();
        let mut faults_rx = self.state.faults.subscribe();
        match start_rv {
            Some(rv) if !initial_events => {
                if !self.wait_until_reached(rv).await {
                    return;
                }
                self.last_rv = rv;
            }
            _ => {
                if !self.send_initial(initial_events).await {
                    return;
                }
            }
        }
        let interval = self.state.bookmark_interval;
        let mut next_bookmark = Instant::now() + interval;
        loop {
            if self.state.faults.watch_generation() != generation {
                return;
            }
            let frozen = self.state.faults.watches_frozen(&self.user);
            if !frozen && !self.deliver_changes().await {
                return;
            }
            // Biased, in a fixed order, so that what a watch sends when several things are ready at once (a
            // change and a bookmark at the same instant of a paused clock) never depends on tokio's random
            // branch order: simulations replay exactly.
            tokio::select! {
                biased;
                () = self.tx.closed() => return,
                () = sleep_until(deadline) => return,
                r = faults_rx.changed() => if r.is_err() { return },
                r = rv_rx.changed() => if r.is_err() { return },
                () = sleep_until(next_bookmark) => {
                    next_bookmark = Instant::now() + interval;
                    if self.bookmarks && !frozen && !self.send_bookmark(false).await {
                        return;
                    }
                }
            }
        }
    }

    /// Waits up to [`FRESHNESS_WAIT`] for the store to reach `rv`. A version it does not reach in that time can
    /// only come from before a wipe: like the real server, the watch then sends an ERROR event (504, "Too large
    /// resource version") and ends, and clients relist. Held open instead, it would stay silent until the store
    /// got there again, with bookmarks carrying the unreached version. Returns whether the watch goes on.
    async fn wait_until_reached(&mut self, rv: u64) -> bool {
        let mut rv_rx = self.state.store.subscribe();
        let deadline = Instant::now() + FRESHNESS_WAIT;
        loop {
            let current = self.state.store.current_rv();
            if current >= rv {
                return true;
            }
            // Biased for determinism, as in `run`.
            tokio::select! {
                biased;
                () = self.tx.closed() => return false,
                r = rv_rx.changed() => if r.is_err() { return false },
                () = sleep_until(deadline) => {
                    let current = self.state.store.current_rv();
                    if current >= rv {
                        return true;
                    }
                    let line = event_line("ERROR", &ApiError::too_large_rv(rv, current).body());
                    let _ = self.tx.send(line).await;
                    return false;
                }
            }
        }
    }

    /// Sends ADDED for every matching object, as a watch without a resourceVersion starts.
    async fn send_initial(&mut self, with_end_bookmark: bool) -> bool {
        let ns = (!self.namespace.is_empty()).then_some(self.namespace.as_str());
        let (items, rv) = self.state.store.list(self.rt.store, ns);
        self.last_rv = rv;
        for item in items {
            let shown = present(self.rt, &item);
            if self.filter.matches(&shown) && !self.send("ADDED", shown).await {
                return false;
            }
        }
        if with_end_bookmark && self.bookmarks {
            return self.send_bookmark(true).await;
        }
        true
    }

    async fn deliver_changes(&mut self) -> bool {
        let changes = match self.state.store.changes_since(self.last_rv) {
            Ok(c) => c,
            Err(e) => {
                let _ = self.tx.send(event_line("ERROR", &e.body())).await;
                return false;
            }
        };
        for change in changes {
            self.last_rv = change.rv;
            if let Some((kind, obj)) = self.event_for(&change)
                && !self.send(kind, obj).await
            {
                return false;
            }
        }
        true
    }

    /// What this watch shows for a change, if anything: label-selected watches see an object leave as DELETED
    /// and enter as ADDED.
    fn event_for(&self, change: &Arc<Change>) -> Option<(&'static str, Value)> {
        if change.bucket != self.rt.store
            || (!self.namespace.is_empty() && change.namespace != self.namespace)
        {
            return None;
        }
        let now = present(self.rt, &change.obj);
        let now_matches = self.filter.matches(&now);
        let was_matching = change
            .prev
            .as_ref()
            .is_some_and(|p| self.filter.matches(&present(self.rt, p)));
        let kind = match (change.kind, was_matching, now_matches) {
            (ChangeType::Added, _, true) => "ADDED",
            (ChangeType::Modified, true, true) => "MODIFIED",
            (ChangeType::Modified, false, true) => "ADDED",
            (ChangeType::Modified, true, false) => "DELETED",
            (ChangeType::Deleted, _, true) => "DELETED",
            _ => return None,
        };
        Some((kind, now))
    }

    async fn send(&mut self, kind: &str, obj: Value) -> bool {
        let object = match &mut self.table {
            Some(t) => {
                let rv = crate::meta::resource_version(&obj).to_string();
                let tbl = table::table(&t.ctx_query, self.rt, &[obj], &rv, !t.columns_sent);
                t.columns_sent = true;
                tbl
            }
            None => obj,
        };
        self.state.counters.watch_events(&self.user, 1);
        self.tx.send(event_line(kind, &object)).await.is_ok()
    }

    async fn send_bookmark(&mut self, initial_end: bool) -> bool {
        let mut metadata =
            json!({ "resourceVersion": self.last_rv.to_string(), "creationTimestamp": null });
        if initial_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let object = json!({ "kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata });
        self.tx.send(event_line("BOOKMARK", &object)).await.is_ok()
    }
}

/// One event of a watch response: a line of JSON with `type` before `object`, the order the real server writes
/// (a struct's field order; our `Value` objects would sort the keys). Clients notice the order: kube-rs decodes an
/// event as an adjacently tagged enum, which reads `object` straight into the right variant when `type` came first
/// and buffers the whole object otherwise, so the CPU a client spends per event is measured as on a real server.
/// Serialising a `Value` cannot fail (its keys are strings), so the empty fallback is never used.
fn event_line(kind: &str, object: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct Event<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a Value,
    }
    let mut line = serde_json::to_vec(&Event { kind, object }).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_line_puts_type_before_object_like_the_real_server() {
        // The reference recording (../shared/reference/real-apiserver-leases.md) shows
        // `{"type":"MODIFIED","object":{...}}`; a `json!` object would write `object` first.
        let object = json!({ "metadata": { "name": "w1" }, "kind": "Lease", "apiVersion": "v1" });
        let line = event_line("MODIFIED", &object);
        let text = std::str::from_utf8(&line).unwrap_or_default();
        assert!(
            text.starts_with(r#"{"type":"MODIFIED","object":{"#),
            "{text}"
        );
        assert!(text.ends_with("}}\n"), "one event per line: {text}");
        let back: Value = serde_json::from_str(text).unwrap_or_default();
        assert_eq!(back, json!({ "type": "MODIFIED", "object": object }));
    }
}
