//! The task's group leader dies with the shim. The shim holds the kill deadline; if it is itself SIGKILLed (the
//! OOM killer, a careless `kill -9`), nothing would be left to enforce it and the task would run on unsupervised.
//! The kernel's parent-death signal closes that gap: it is set in the child between fork and exec, which needs the
//! crate's one `unsafe` block, kept here alone.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{Signal, getpid, getppid, set_parent_process_death_signal};

/// Makes `command`'s process receive SIGKILL when the shim, its parent, dies, however it dies. The shim is
/// single-threaded (it runs before any async runtime starts), so "the thread that forked" is the shim itself.
pub(super) fn die_with_the_shim(command: &mut Command) {
    let shim = getpid();
    let hook = move || -> io::Result<()> {
        set_parent_process_death_signal(Some(Signal::KILL))?;
        // The shim may have died between the fork and the prctl: then no signal will ever come, so do not start.
        if getppid() != Some(shim) {
            return Err(io::Error::from(rustix::io::Errno::SRCH));
        }
        Ok(())
    };
    #[allow(unsafe_code)]
    // SAFETY: `pre_exec` runs the hook in the forked child before exec, where only async-signal-safe operations
    // are allowed. The hook makes two raw system calls through rustix (prctl(PR_SET_PDEATHSIG) and getppid),
    // which neither allocate nor take locks, and builds its error from an errno, which does not allocate either.
    // It touches no memory shared with other threads: it captures only a copied pid.
    unsafe {
        command.pre_exec(hook);
    }
}
