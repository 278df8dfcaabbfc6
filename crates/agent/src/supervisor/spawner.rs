//! The one long-lived thread that starts every shim, and the record of which children are the supervisor's.
//!
//! Why a dedicated thread: some process attributes belong to the spawning *thread*, not the process (the parent
//! death signal fires when the thread that forked exits), and tokio's worker and blocking-pool threads come and go.
//! Spawning from one thread that lives as long as the supervisor keeps such attributes meaningful, and serialising
//! spawns lets the PID 1 orphan reaper tell the supervisor's own children from orphans without a race.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, mpsc};

use parking_lot::{Mutex, MutexGuard};

use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The pids of the shims the supervisor started and has not reaped yet. The orphan reaper leaves these alone, so
/// their exit status reaches the task runner that waits for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedChildren(Arc<Mutex<HashSet<i32>>>);

impl OwnedChildren {
    /// Locks the set.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashSet<i32>> {
        self.0.lock()
    }

    /// Forgets a child once its runner has reaped it.
    pub(super) fn forget(&self, pid: i32) {
        self.lock().remove(&pid);
    }
}

/// One spawn: the command, and where to send the child.
struct Request {
    command: Command,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// The handle to the spawn thread. Cloned into every task runner; the thread exits when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Spawner {
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl Spawner {
    /// Starts the thread. It spawns inside `runtime`'s context, so the children are tokio children whose exit the
    /// runners can await.
    pub(super) fn start(runtime: Handle, children: OwnedChildren) -> io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("leasehold-spawner".into())
            .spawn(move || {
                let _context = runtime.enter();
                while let Ok(mut request) = incoming.recv() {
                    let mut owned = children.lock();
                    let result = request.command.spawn();
                    let pid = result
                        .as_ref()
                        .ok()
                        .and_then(Child::id)
                        .and_then(|pid| i32::try_from(pid).ok());
                    if let Some(pid) = pid {
                        owned.insert(pid);
                    }
                    drop(owned);
                    if request.reply.send(result).is_err()
                        && let Some(pid) = pid
                    {
                        // The runner is gone; dropping the child closes its control pipe, so the shim kills its group and
                        // exits, and tokio reaps it in the background.
                        children.forget(pid);
                    }
                }
            })?;
        Ok(Self { requests })
    }

    /// Spawns `command` on the spawn thread.
    pub(super) async fn spawn(&self, command: Command) -> io::Result<Child> {
        let (reply, child) = oneshot::channel();
        self.requests
            .send(Request { command, reply })
            .map_err(|_| io::Error::other("the supervisor's spawn thread is gone"))?;
        child
            .await
            .map_err(|_| io::Error::other("the supervisor's spawn thread is gone"))?
    }
}
