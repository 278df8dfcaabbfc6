//! The object store: one global resourceVersion counter, objects by (bucket, namespace, name), and a bounded
//! history of changes that watches resume from.
//!
//! All writes go through [`Store::write`], a read-modify-write under one lock, so optimistic concurrency is exact:
//! the closure sees the live object and decides, and nothing can change in between. Watchers don't get pushed
//! events; they are told the newest resourceVersion through a `tokio::sync::watch` channel and pull what they
//! have not seen from the history. A slow watcher therefore never blocks a writer and never loses events while
//! it stays inside the window; past the window it gets 410 Expired, as from a real server.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

use crate::status::ApiError;

/// The resourceVersion a fresh (or wiped) store starts from. Changes at or below it are "compacted", so a watch
/// from an older resourceVersion gets 410, as from a real server whose etcd has been compacted.
pub const BASE_RV: u64 = 100;

/// What kind of change a history entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// The object was created.
    Added,
    /// The object was updated.
    Modified,
    /// The object was deleted; `obj` is its last state with the deletion's resourceVersion.
    Deleted,
}

/// One committed change, as watches replay it.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion the change was committed at.
    pub rv: u64,
    /// Storage bucket of the object.
    pub bucket: &'static str,
    /// Namespace of the object ("" for cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub kind: ChangeType,
    /// The object after the change (for deletes: the last state).
    pub obj: Arc<Value>,
    /// The object before the change, so label-selected watches can tell an object leaving their selection.
    pub prev: Option<Arc<Value>>,
}

/// What a write closure decided.
pub enum WriteOp {
    /// Store this object (create or replace); the store stamps its resourceVersion.
    Put(Value),
    /// Delete the object.
    Delete,
    /// Leave everything as it is (a no-op update), answering with the live object.
    Keep,
    /// Answer with this object as if it had been written, storing nothing: a dry run (`dryRun=All`).
    Preview(Value),
}

/// The outcome of a committed write.
pub struct Written {
    /// The stored object (for deletes: the last state).
    pub obj: Arc<Value>,
    /// Whether the object did not exist before.
    pub created: bool,
}

type Key = (&'static str, String, String);

/// The store's objects (namespaces included) and resourceVersion at one moment, like an etcd backup: taken by
/// [`Handle::snapshot`](crate::Handle::snapshot) so that [`Handle::restore`](crate::Handle::restore) can later
/// simulate an etcd restore.
///
/// Opaque on purpose: tests only take one and restore it later. Cloning is cheap-ish (the objects are shared
/// `Arc`s, only the keys are copied), so a test may keep several.
#[derive(Clone)]
pub struct Snapshot {
    rv: u64,
    objects: BTreeMap<Key, Arc<Value>>,
}

impl Snapshot {
    /// The resourceVersion the snapshot was taken at, which a restore rewinds the store to; tests compare it with
    /// the resourceVersions clients saw.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("resource_version", &self.rv)
            .field("objects", &self.objects.len())
            .finish()
    }
}

struct Inner {
    rv: u64,
    compacted: u64,
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Arc<Change>>,
    window: usize,
    writes: u64,
}

/// The store shared by every request handler.
pub struct Store {
    inner: Mutex<Inner>,
    rv_tx: watch::Sender<u64>,
}

impl Store {
    /// An empty store keeping the last `window` changes for watches to resume from.
    pub fn new(window: usize) -> Self {
        let (rv_tx, _) = watch::channel(BASE_RV);
        Self {
            inner: Mutex::new(Inner {
                rv: BASE_RV,
                compacted: BASE_RV,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                window: window.max(1),
                writes: 0,
            }),
            rv_tx,
        }
    }

    /// The newest committed resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.inner.lock().rv
    }

    /// How many writes (creates, updates, deletes) have been committed since start.
    pub fn writes(&self) -> u64 {
        self.inner.lock().writes
    }

    /// A channel that carries the newest resourceVersion; watchers wait on it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.rv_tx.subscribe()
    }

    /// The live object, if any.
    pub fn get(&self, bucket: &'static str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.inner
            .lock()
            .objects
            .get(&(bucket, ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Every object in a bucket (in one namespace, or all with `None`), sorted by namespace then name, and the
    /// resourceVersion the snapshot was taken at.
    pub fn list(&self, bucket: &'static str, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.inner.lock();
        let items = inner
            .objects
            .range((bucket, String::new(), String::new())..)
            .take_while(|((b, _, _), _)| *b == bucket)
            .filter(|((_, n, _), _)| ns.is_none_or(|want| want == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Atomically reads the live object, lets `decide` choose, and commits the choice at a new resourceVersion.
    /// `decide` gets the live object and the resourceVersion a write would get.
    pub fn write(
        &self,
        bucket: &'static str,
        ns: &str,
        name: &str,
        decide: impl FnOnce(Option<&Value>, u64) -> Result<WriteOp, ApiError>,
    ) -> Result<Written, ApiError> {
        let mut inner = self.inner.lock();
        let key = (bucket, ns.to_string(), name.to_string());
        let live = inner.objects.get(&key).cloned();
        let next = inner.rv + 1;
        let op = decide(live.as_deref(), next)?;
        let (obj, kind) = match op {
            WriteOp::Preview(v) => {
                return Ok(Written {
                    obj: Arc::new(v),
                    created: live.is_none(),
                });
            }
            WriteOp::Keep => {
                let obj =
                    live.ok_or_else(|| ApiError::internal("no-op write of a missing object"))?;
                return Ok(Written {
                    obj,
                    created: false,
                });
            }
            WriteOp::Put(mut v) => {
                set_rv(&mut v, next);
                let obj = Arc::new(v);
                inner.objects.insert(key, obj.clone());
                let kind = if live.is_some() {
                    ChangeType::Modified
                } else {
                    ChangeType::Added
                };
                (obj, kind)
            }
            WriteOp::Delete => {
                let Some(old) = inner.objects.remove(&key) else {
                    return Err(ApiError::internal("delete of a missing object"));
                };
                let mut last = (*old).clone();
                set_rv(&mut last, next);
                (Arc::new(last), ChangeType::Deleted)
            }
        };
        let created = live.is_none();
        inner.commit(Change {
            rv: next,
            bucket,
            namespace: ns.to_string(),
            kind,
            obj: obj.clone(),
            prev: live,
        });
        drop(inner);
        self.rv_tx.send_replace(next);
        Ok(Written { obj, created })
    }

    /// Deletes every object in namespace `ns` of every namespaced bucket, as namespace deletion does.
    pub fn delete_namespace_contents(&self, ns: &str) {
        let mut inner = self.inner.lock();
        let keys: Vec<Key> = inner
            .objects
            .keys()
            .filter(|(b, n, _)| n == ns && *b != "namespaces")
            .cloned()
            .collect();
        if keys.is_empty() {
            return;
        }
        for key in keys {
            if let Some(old) = inner.objects.remove(&key) {
                let rv = inner.rv + 1;
                let mut last = (*old).clone();
                set_rv(&mut last, rv);
                inner.commit(Change {
                    rv,
                    bucket: key.0,
                    namespace: key.1,
                    kind: ChangeType::Deleted,
                    obj: Arc::new(last),
                    prev: Some(old),
                });
            }
        }
        let rv = inner.rv;
        drop(inner);
        self.rv_tx.send_replace(rv);
    }

    /// The changes after `rv`, oldest first, or 410 when some of them fell out of the window.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, ApiError> {
        let inner = self.inner.lock();
        if rv < inner.compacted {
            return Err(ApiError::expired(rv, inner.compacted));
        }
        let start = inner.history.partition_point(|c| c.rv <= rv);
        Ok(inner.history.range(start..).cloned().collect())
    }

    /// Forgets every object and change, and restarts the resourceVersion at [`BASE_RV`], as after an etcd
    /// restore: clients may hold resourceVersions the server has not reached.
    pub fn wipe(&self) {
        let mut inner = self.inner.lock();
        inner.objects.clear();
        inner.history.clear();
        inner.rv = BASE_RV;
        inner.compacted = BASE_RV;
        drop(inner);
        self.rv_tx.send_replace(BASE_RV);
    }

    /// Copies every object (namespaces included) and the newest resourceVersion, as an etcd backup would.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner.lock();
        Snapshot {
            rv: inner.rv,
            objects: inner.objects.clone(),
        }
    }

    /// Puts the store back to `snapshot`, as an etcd restore does: the objects are the snapshot's, with their
    /// uids and resourceVersions; the resourceVersion goes back to the snapshot's, below what clients may have
    /// seen; the history is forgotten (a watch from before the snapshot gets 410, one from beyond it waits and
    /// ends as after a [`Store::wipe`]). The write counter keeps counting, as it counts since start.
    ///
    /// `bump_revision` is etcdutl's `snapshot restore --bump-revision N --mark-compacted`, which the Kubernetes
    /// documentation recommends: the objects keep their old resourceVersions, but the counter jumps N ahead and
    /// everything below is compacted, so no resourceVersion is ever reused and every watch relists. With 0 (a
    /// plain restore), new writes reuse resourceVersions that clients saw before the restore with other content,
    /// so a write prepared against a pre-restore version can pass its resourceVersion precondition.
    pub fn restore(&self, snapshot: &Snapshot, bump_revision: u64) {
        let mut inner = self.inner.lock();
        let rv = snapshot.rv.saturating_add(bump_revision);
        inner.objects = snapshot.objects.clone();
        inner.history.clear();
        inner.rv = rv;
        inner.compacted = rv;
        drop(inner);
        self.rv_tx.send_replace(rv);
    }
}

impl Inner {
    fn commit(&mut self, change: Change) {
        self.rv = change.rv;
        self.writes += 1;
        self.history.push_back(Arc::new(change));
        while self.history.len() > self.window {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
    }
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn put(store: &Store, name: &str) -> u64 {
        let w = store
            .write("leases", "ns", name, |_, _| {
                Ok(WriteOp::Put(json!({"metadata": {"name": name}})))
            })
            .unwrap();
        w.obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn resource_versions_are_global_and_increasing() {
        let store = Store::new(10);
        let a = put(&store, "a");
        let b = put(&store, "b");
        assert_eq!(a, BASE_RV + 1);
        assert_eq!(b, BASE_RV + 2);
        assert_eq!(store.current_rv(), b);
    }

    #[test]
    fn history_window_expires_old_resource_versions() {
        let store = Store::new(2);
        let first = put(&store, "a");
        put(&store, "b");
        put(&store, "c");
        let err = store.changes_since(first - 1).unwrap_err();
        assert_eq!(err.code, 410);
        assert_eq!(store.changes_since(first).unwrap().len(), 2);
    }

    fn rv_of(obj: &Value) -> u64 {
        obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn put_spec(store: &Store, name: &str, holder: &str) -> u64 {
        let w = store
            .write("leases", "ns", name, |live, _| {
                let uid = live.map_or_else(
                    || format!("uid-{name}"),
                    |l| l["metadata"]["uid"].as_str().unwrap().to_string(),
                );
                Ok(WriteOp::Put(json!({
                    "metadata": {"name": name, "uid": uid},
                    "spec": {"holderIdentity": holder},
                })))
            })
            .unwrap();
        rv_of(&w.obj)
    }

    #[test]
    fn restore_brings_back_objects_and_resource_versions_of_the_snapshot() {
        let store = Store::new(10);
        let created = put_spec(&store, "a", "one");
        let snap = store.snapshot();
        assert_eq!(snap.resource_version(), created);
        let uid = store.get("leases", "ns", "a").unwrap()["metadata"]["uid"].clone();
        put_spec(&store, "a", "two");
        let seen = put_spec(&store, "b", "three");
        store.restore(&snap, 0);
        let a = store.get("leases", "ns", "a").unwrap();
        assert_eq!(a["spec"]["holderIdentity"], "one");
        assert_eq!(a["metadata"]["uid"], uid);
        assert_eq!(rv_of(&a), created);
        assert!(store.get("leases", "ns", "b").is_none());
        assert_eq!(store.current_rv(), created);
        assert!(store.current_rv() < seen);
        assert_eq!(*store.subscribe().borrow(), created);
    }

    #[test]
    fn restore_forgets_history_and_writes_repeat_resource_versions() {
        let store = Store::new(10);
        let before = put(&store, "a");
        let snap = store.snapshot();
        let first_after = put(&store, "b");
        store.restore(&snap, 0);
        assert!(
            store
                .changes_since(snap.resource_version())
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.changes_since(before - 1).unwrap_err().code, 410);
        // The next write reuses a resourceVersion a client may already have seen, with different content.
        let again = put(&store, "c");
        assert_eq!(again, first_after);
        let changes = store.changes_since(snap.resource_version()).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].obj["metadata"]["name"], "c");
    }

    #[test]
    fn a_bumped_restore_never_reuses_a_resource_version() {
        let store = Store::new(10);
        let before = put(&store, "a");
        let snap = store.snapshot();
        let seen = put(&store, "a");
        store.restore(&snap, 1_000);
        let restored = store.get("leases", "ns", "a").unwrap();
        assert_eq!(restored["metadata"]["resourceVersion"], before.to_string());
        let next = put(&store, "a");
        assert!(
            next > seen + 999,
            "new writes jump ahead of everything seen: {next}"
        );
        assert!(
            store.changes_since(seen).is_err(),
            "older resourceVersions are compacted"
        );
    }

    #[test]
    fn a_snapshot_is_unaffected_by_later_writes_and_can_be_restored_twice() {
        let store = Store::new(10);
        put(&store, "a");
        let snap = store.snapshot();
        put(&store, "b");
        store.restore(&snap, 0);
        put(&store, "c");
        store.restore(&snap, 0);
        let (items, rv) = store.list("leases", None);
        assert_eq!(items.len(), 1);
        assert_eq!(rv, snap.resource_version());
    }

    #[test]
    fn wipe_restarts_below_what_clients_saw() {
        let store = Store::new(10);
        let seen = put(&store, "a");
        store.wipe();
        assert!(store.current_rv() < seen);
        assert!(store.get("leases", "ns", "a").is_none());
    }
}
