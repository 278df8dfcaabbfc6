//! Reaps orphans when the agent is PID 1.
//!
//! In a container whose init is the agent, every process orphaned anywhere in the PID namespace re-parents to it,
//! and its zombie stays until the agent reaps it. Blindly reaping every child (`waitpid(-1)`) would also steal the
//! exit status of the supervisor's own shims from the runners that await them. So the reaper scans `/proc` for
//! zombie children, skips the pids in [`OwnedChildren`], and reaps the others by pid. It holds the owned set's lock
//! for the whole pass, and the spawn thread holds it from spawn to registration, so a shim that dies at once can't
//! be mistaken for an orphan.

use std::collections::HashSet;
use std::time::Duration;

use rustix::process::{Pid, WaitOptions, getpid, waitpid};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use super::spawner::OwnedChildren;

/// A sweep also runs this often without SIGCHLD, since signals coalesce and can be missed by a busy runtime.
const FALLBACK_SWEEP: Duration = Duration::from_secs(5);

/// Starts the reaper if this process is PID 1.
pub(super) fn spawn_if_pid1(children: OwnedChildren) -> Option<JoinHandle<()>> {
    if !getpid().is_init() {
        return None;
    }
    tracing::info!("running as PID 1: reaping orphaned processes");
    Some(tokio::spawn(reap_loop(children)))
}

async fn reap_loop(children: OwnedChildren) {
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(sigchld) => Some(sigchld),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGCHLD; reaping orphans every {FALLBACK_SWEEP:?} only");
            None
        }
    };
    loop {
        sweep(&children);
        match sigchld.as_mut() {
            Some(sigchld) => {
                tokio::select! {
                    _ = sigchld.recv() => {}
                    () = tokio::time::sleep(FALLBACK_SWEEP) => {}
                }
            }
            None => tokio::time::sleep(FALLBACK_SWEEP).await,
        }
    }
}

/// One pass: reaps every zombie child of ours that the supervisor doesn't own. Returns how many it reaped.
fn sweep(children: &OwnedChildren) -> usize {
    let me = getpid().as_raw_nonzero().get();
    let owned = children.lock();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut reaped = 0;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // not a process, or it is gone already
        };
        let Some(pid) = orphan_zombie(&stat, me, &owned) else {
            continue;
        };
        if let Some(pid) = Pid::from_raw(pid)
            && let Ok(Some(_)) = waitpid(Some(pid), WaitOptions::NOHANG)
        {
            reaped += 1;
            tracing::debug!(
                pid = pid.as_raw_nonzero().get(),
                "reaped an orphaned process"
            );
        }
    }
    reaped
}

/// Reads one `/proc/<pid>/stat` line and returns the pid if it is a zombie child of `me` that is not `owned`.
fn orphan_zombie(stat: &str, me: i32, owned: &HashSet<i32>) -> Option<i32> {
    // "pid (comm) state ppid ...", where comm may itself contain spaces and parentheses.
    let (pid, rest) = stat.split_once(' ')?;
    let pid: i32 = pid.parse().ok()?;
    let (_, after_comm) = rest.rsplit_once(')')?;
    let mut fields = after_comm.split_ascii_whitespace();
    let state = fields.next()?;
    let ppid: i32 = fields.next()?.parse().ok()?;
    (state == "Z" && ppid == me && !owned.contains(&pid)).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unowned_zombie_children_are_reaped() {
        let owned: HashSet<i32> = [42].into_iter().collect();
        assert_eq!(orphan_zombie("7 (sleep) Z 1 7 7 0", 1, &owned), Some(7));
        assert_eq!(
            orphan_zombie("7 (weird) name)) Z 1 7 7 0", 1, &owned),
            Some(7)
        );
        assert_eq!(
            orphan_zombie("42 (leasehold) Z 1 42 42 0", 1, &owned),
            None,
            "the supervisor's own shim"
        );
        assert_eq!(
            orphan_zombie("7 (sleep) S 1 7 7 0", 1, &owned),
            None,
            "still running"
        );
        assert_eq!(
            orphan_zombie("7 (sleep) Z 5 7 7 0", 1, &owned),
            None,
            "someone else's child"
        );
        assert_eq!(orphan_zombie("garbage", 1, &owned), None);
    }
}
