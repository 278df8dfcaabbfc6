//! The task's process group, seen from the shim: start its leader, signal it as a whole, notice the leader's exit,
//! and reap every member.
//!
//! The command runs as the leader of a new process group, so the group id is the leader's pid. The shim stays out
//! of that group (it must survive the SIGKILL it sends) but in the same session, and is a child subreaper, so
//! members orphaned by their parent's death re-parent to the shim and are reaped here rather than by the agent.
//! The leader is not reaped until the group has been killed: while it is a zombie its pid, and so the group id,
//! cannot be reused, so a group signal can never hit an unrelated process.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use rustix::io::Errno;
use rustix::process::{
    Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, WaitOptions, WaitStatus, getpid,
    kill_process_group, pidfd_open, waitid, waitpgid, waitpid,
};

/// How the group's leader ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// The shell's encoding, which the shim exits with: the status itself, or 128 + the signal.
    pub(super) fn shell_code(self) -> u8 {
        match self {
            Self::Code(code) => u8::try_from(code & 0xff).unwrap_or(1),
            Self::Signal(signal) => u8::try_from(128 + (signal & 0x7f)).unwrap_or(255),
        }
    }

    fn from_status(status: WaitStatus) -> Option<Self> {
        if let Some(code) = status.exit_status() {
            return Some(Self::Code(code));
        }
        status.terminating_signal().map(Self::Signal)
    }
}

/// Whether any member of the group is still around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Members {
    /// At least one member has not been reaped yet.
    Some,
    /// None left: the group id may now be reused, so it must not be signalled any more.
    None,
}

/// A running task: the leader of its own process group.
#[derive(Debug)]
pub(super) struct Group {
    leader: Pid,
    pidfd: Option<OwnedFd>,
    leader_exit: Option<Exit>,
    empty: bool,
}

impl Group {
    /// Starts `command` as the leader of a new process group, with stdin from `/dev/null` (stdin is the agent's
    /// control pipe, which the task must neither read nor keep open) and the shim's stdout and stderr.
    pub(super) fn spawn(command: &[String]) -> io::Result<Self> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| io::Error::other("empty command"))?;
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null()).process_group(0);
        super::pdeathsig::die_with_the_shim(&mut command);
        let child = command.spawn()?;
        let leader = Pid::from_child(&child);
        // Older kernels (< 5.3) have no pidfd; the watchdog then polls for the leader's exit on a short tick.
        let pidfd = pidfd_open(leader, PidfdFlags::empty()).ok();
        Ok(Self {
            leader,
            pidfd,
            leader_exit: None,
            empty: false,
        })
    }

    /// A descriptor that becomes readable when the leader exits, if the kernel has pidfds.
    pub(super) fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(std::os::fd::AsFd::as_fd)
    }

    /// Sends `signal` to every member. Does nothing once the group is known to be empty.
    pub(super) fn signal(&self, signal: Signal) {
        if !self.empty {
            // ESRCH (nobody left) is the only expected error, and it means there is nothing to do.
            let _ = kill_process_group(self.leader, signal);
        }
    }

    /// Whether the leader has exited, without reaping it (see the module docs for why).
    pub(super) fn leader_exited(&self) -> bool {
        if self.leader_exit.is_some() {
            return true;
        }
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        matches!(waitid(WaitId::Pid(self.leader), options), Ok(Some(_)))
    }

    /// Reaps the members that have exited, without blocking, and says whether any are left.
    pub(super) fn reap_exited(&mut self) -> Members {
        self.reap(WaitOptions::NOHANG)
    }

    /// Waits until every member that is our child (all of them, thanks to the subreaper, unless one left the group)
    /// has exited and been reaped. Call after SIGKILL.
    pub(super) fn reap_all(&mut self) {
        let _ = self.reap(WaitOptions::empty());
    }

    /// Reaps exited children other than the leader, without blocking: members orphaned to the shim (a subreaper)
    /// by their parent's death, which would otherwise stay zombies until the task ends. Reads the shim's child list
    /// from `/proc`; without `CONFIG_PROC_CHILDREN` they are reaped at the end instead.
    pub(super) fn reap_orphans(&self) {
        let me = getpid().as_raw_nonzero().get();
        let Ok(children) = std::fs::read_to_string(format!("/proc/self/task/{me}/children")) else {
            return;
        };
        for pid in children
            .split_ascii_whitespace()
            .filter_map(|pid| pid.parse::<i32>().ok())
        {
            match Pid::from_raw(pid) {
                Some(pid) if pid != self.leader => {
                    let _ = waitpid(Some(pid), WaitOptions::NOHANG);
                }
                _ => {}
            }
        }
    }

    /// How the leader ended, once it has been reaped.
    pub(super) fn leader_exit(&self) -> Option<Exit> {
        self.leader_exit
    }

    fn reap(&mut self, options: WaitOptions) -> Members {
        if self.empty {
            return Members::None;
        }
        loop {
            match waitpgid(self.leader, options) {
                Ok(Some((pid, status))) => {
                    if pid == self.leader {
                        self.leader_exit = Exit::from_status(status);
                    }
                }
                Ok(None) => return Members::Some,
                Err(Errno::INTR) => {}
                Err(_) => {
                    // ECHILD: no member is our child any more.
                    self.empty = true;
                    return Members::None;
                }
            }
        }
    }
}

/// Reaps, without blocking, descendants that left the task's group (by `setsid` or `setpgid`) and were orphaned to
/// the shim. They escape the group kill; this only keeps them from lingering as zombies.
pub(super) fn reap_strays() {
    while let Ok(Some(_)) = waitid(WaitId::All, WaitIdOptions::EXITED | WaitIdOptions::NOHANG) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_uses_the_shell_encoding() {
        assert_eq!(Exit::Code(0).shell_code(), 0);
        assert_eq!(Exit::Code(3).shell_code(), 3);
        assert_eq!(Exit::Code(256 + 7).shell_code(), 7);
        assert_eq!(Exit::Signal(9).shell_code(), 137);
        assert_eq!(Exit::Signal(15).shell_code(), 143);
    }
}
