//! The watchdog shim: `leasehold __shim`, the small process that every task runs under.
//!
//! A task must be gone when the agent stops renewing, even if the agent itself is SIGSTOPped, deadlocked, starved of
//! CPU or killed (docs/design.md §6). The agent can't guarantee that about itself, so each task runs under this shim, a
//! separate process with its own timer:
//!
//! - it starts a session, runs the command as the leader of a new process group in it (grandchildren included),
//!   and lets it inherit stdout and stderr, which are pipes the agent reads;
//! - it holds a kill deadline on `CLOCK_BOOTTIME`, set on its command line and moved on by the agent's control
//!   lines on stdin (see [`protocol`]);
//! - it SIGKILLs the whole group at once when the deadline passes or stdin reaches end of file (the agent is gone);
//! - on `stop` it SIGTERMs the group, waits up to the grace for every member to exit, then SIGKILLs what is left;
//! - when the command exits by itself it kills what is left of the group.
//!
//! Exit code: the command's status in the shell's encoding (the code, or 128 + the signal), except 137 (128 +
//! SIGKILL) whenever the shim had to SIGKILL the group (grace over, deadline passed, agent gone); 127 when the
//! command can't be found, 126 when it can't be run, 125 for a shim setup or usage error.
//!
//! Limits: a descendant that leaves the group (`setsid`, `setpgid`, i.e. daemonizes) escapes the group kill, and
//! killing the shim itself with SIGKILL leaves the group running. The container's cgroup is the backstop for both.

mod args;
mod group;
mod pdeathsig;
pub mod protocol;
mod watchdog;

use std::io;
use std::process::ExitCode;

pub use args::{ArgsError, ShimArgs};
pub use protocol::{Control, ProtocolError};

/// The hidden subcommand that runs the shim: `leasehold __shim ...`. Internal; only the supervisor invokes it.
pub const SUBCOMMAND: &str = "__shim";

/// Exit code when the shim can't even start the command (bad usage, a failed system call).
const EXIT_SETUP: u8 = 125;

/// Why the shim could not run its task.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The command line doesn't parse.
    #[error("bad shim arguments")]
    Args(#[from] ArgsError),
    /// A system call the shim needs failed.
    #[error("{what} failed")]
    Setup {
        /// The call.
        what: &'static str,
        /// The error.
        #[source]
        source: rustix::io::Errno,
    },
    /// The command could not be started.
    #[error("cannot run {program:?}")]
    Spawn {
        /// The program.
        program: String,
        /// The error: not found, permission denied, ...
        #[source]
        source: io::Error,
    },
}

impl ShimError {
    /// The shell's exit codes: 127 for a command that isn't there, 126 for one that can't run.
    fn exit_code(&self) -> u8 {
        match self {
            Self::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            Self::Spawn { .. } => 126,
            Self::Args(_) | Self::Setup { .. } => EXIT_SETUP,
        }
    }
}

/// Runs the shim with the arguments that follow [`SUBCOMMAND`] and returns its exit code (see the module docs).
#[must_use]
pub fn main(args: &[String]) -> ExitCode {
    let args = match ShimArgs::parse(args) {
        Ok(args) => args,
        Err(error) => {
            let error = ShimError::from(error);
            report("?", &error);
            return ExitCode::from(error.exit_code());
        }
    };
    match watchdog::run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            report(&args.task, &error);
            ExitCode::from(error.exit_code())
        }
    }
}

/// Writes an error and its causes as one line to stderr.
fn report(task: &str, error: &ShimError) {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    watchdog::note(task, &message);
}
