//! The shim's main loop: run the task's group, obey the agent's control lines, and kill the group on the deadline or
//! when the agent goes away.
//!
//! It is a blocking `poll(2)` over three descriptors: stdin (control lines; end of file means the agent is gone), a
//! `CLOCK_BOOTTIME` timerfd armed at the kill deadline (it fires at the right time even across suspend), and a pidfd
//! of the task's leader. It needs nothing from the agent to fire: no heartbeat, no scheduling, no memory.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::process::Signal;
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};

use super::ShimError;
use super::args::ShimArgs;
use super::group::{Group, Members, reap_strays};
use super::protocol::{Control, LineBuffer};
use crate::supervisor::{BootInstant, Deadline};

/// How often to look for the leader's exit when the kernel has no pidfd.
const EXIT_POLL_TICK: Duration = Duration::from_millis(100);
/// How often, at least, to reap group members orphaned to the shim while the task runs.
const ORPHAN_SWEEP: Duration = Duration::from_secs(5);
/// How often to look for the group's remaining members while it drains after SIGTERM.
const DRAIN_TICK: Duration = Duration::from_millis(20);

/// Where the task is in its life.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Running; waiting for the deadline, a control line or the leader's exit.
    Running,
    /// `stop` received and SIGTERM sent; waiting for every member to exit, until `grace_end`.
    Draining { grace_end: Instant },
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The leader exited while the task was running: the rest of the group is killed, the leader's status kept.
    LeaderExited,
    /// Every member exited within the grace after `stop`.
    Drained,
    /// The shim had to SIGKILL the group; the reason is logged and the shim exits with 128 + SIGKILL.
    Killed(&'static str),
}

/// Runs the task to its end and returns the shim's exit code (see [`super::main`]).
pub(super) fn run(args: &ShimArgs) -> Result<u8, ShimError> {
    // Our own session: signals aimed at the agent's process group or terminal (Ctrl-C, `kill -TERM -<pgid>`) don't
    // reach the task behind the agent's back. EPERM means we already lead a group, which is just as good.
    let _ = rustix::process::setsid();
    if let Err(errno) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        note(
            &args.task,
            &format!(
                "cannot become a child subreaper ({errno}); orphaned grandchildren may linger"
            ),
        );
    }
    let timer = DeadlineTimer::new()?;
    timer.arm(args.deadline)?;
    // A shim started late (the agent stalled between deciding and exec'ing us) must not start a task whose
    // leadership may already be someone else's: past the deadline, nothing is spawned at all.
    if args.deadline.has_passed(BootInstant::now()) {
        note(
            &args.task,
            "kill deadline passed before the task started: not starting it",
        );
        return Ok(128 + 9);
    }
    let mut group = Group::spawn(&args.command).map_err(|source| ShimError::Spawn {
        program: args.command.first().cloned().unwrap_or_default(),
        source,
    })?;

    let ending = supervise(args, &timer, &mut group);
    if let Ending::Killed(_) | Ending::LeaderExited = ending {
        group.signal(Signal::KILL);
    }
    group.reap_all();
    reap_strays();

    match (ending, group.leader_exit()) {
        (Ending::Killed(reason), _) => {
            note(
                &args.task,
                &format!("{reason}: killed the task's process group"),
            );
            Ok(128 + 9)
        }
        (_, Some(exit)) => Ok(exit.shell_code()),
        (_, None) => Ok(128 + 9),
    }
}

/// The loop proper: returns once the task is over or must be killed. Killing on the deadline or on the agent's
/// departure happens here, before anything else, so nothing (a log line, a full pipe) can delay it.
fn supervise(args: &ShimArgs, timer: &DeadlineTimer, group: &mut Group) -> Ending {
    let stdin = std::io::stdin();
    let stdin = stdin.as_fd();
    let mut deadline = args.deadline;
    let mut phase = Phase::Running;
    let mut lines = LineBuffer::default();
    let mut buf = [0_u8; 512];
    loop {
        if deadline.has_passed(BootInstant::now()) {
            group.signal(Signal::KILL);
            return Ending::Killed("kill deadline passed");
        }
        let timeout = match phase {
            Phase::Running => {
                if group.leader_exited() {
                    return Ending::LeaderExited;
                }
                group.reap_orphans();
                if group.exit_fd().is_some() {
                    ORPHAN_SWEEP
                } else {
                    EXIT_POLL_TICK
                }
            }
            Phase::Draining { grace_end } => {
                if group.reap_exited() == Members::None {
                    return Ending::Drained;
                }
                let left = grace_end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    group.signal(Signal::KILL);
                    return Ending::Killed("grace period over after SIGTERM");
                }
                left.min(DRAIN_TICK)
            }
        };
        let ready = match wait(stdin, timer.fd.as_fd(), group.exit_fd(), timeout) {
            Ok(ready) => ready,
            Err(Errno::INTR) => continue,
            Err(_) => {
                group.signal(Signal::KILL);
                return Ending::Killed("poll failed");
            }
        };
        if ready.timer {
            timer.clear();
        }
        if !ready.stdin {
            continue;
        }
        let read = match rustix::io::read(stdin, &mut buf) {
            Ok(0) => {
                group.signal(Signal::KILL);
                return Ending::Killed("control pipe closed (the agent is gone)");
            }
            Ok(read) => read,
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(_) => {
                group.signal(Signal::KILL);
                return Ending::Killed("control pipe unreadable");
            }
        };
        let mut killed = None;
        lines.feed(&buf[..read], |control| {
            match control {
                Ok(Control::Deadline(next)) => {
                    // A deadline that has passed is final, even if the timer has not been serviced yet.
                    if deadline.has_passed(BootInstant::now()) {
                        killed = Some("kill deadline passed");
                        return false;
                    }
                    deadline = next;
                    if let Err(errno) = timer.arm(next) {
                        note(
                            &args.task,
                            &format!("cannot arm the deadline timer: {errno}"),
                        );
                        killed = Some("deadline timer failed");
                        return false;
                    }
                }
                Ok(Control::Stop) => {
                    if let Phase::Running = phase {
                        group.signal(Signal::TERM);
                        phase = Phase::Draining {
                            grace_end: Instant::now() + args.grace,
                        };
                    }
                }
                Err(error) => note(&args.task, &format!("ignored control line: {error}")),
            }
            true
        });
        if let Some(reason) = killed {
            group.signal(Signal::KILL);
            return Ending::Killed(reason);
        }
    }
}

/// Which descriptors are ready after [`wait`].
#[derive(Debug, Clone, Copy)]
struct Ready {
    stdin: bool,
    timer: bool,
}

/// Waits until stdin, the timer or the leader's pidfd is ready, or `timeout` passes.
fn wait(
    stdin: BorrowedFd<'_>,
    timer: BorrowedFd<'_>,
    exit: Option<BorrowedFd<'_>>,
    timeout: Duration,
) -> Result<Ready, Errno> {
    // A timeout too large for a timespec can't happen (they are all capped); one second keeps the loop going anyway.
    let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    });
    let mut fds = [
        PollFd::from_borrowed_fd(stdin, PollFlags::IN),
        PollFd::from_borrowed_fd(timer, PollFlags::IN),
        PollFd::from_borrowed_fd(exit.unwrap_or(timer), PollFlags::IN),
    ];
    let used = if exit.is_some() { 3 } else { 2 };
    poll(&mut fds[..used], Some(&timeout))?;
    // HUP and ERR count as readable: the read that follows sees the end of file or the error.
    let readable = |fd: &PollFd<'_>| !fd.revents().is_empty();
    Ok(Ready {
        stdin: readable(&fds[0]),
        timer: readable(&fds[1]),
    })
}

/// A `CLOCK_BOOTTIME` timerfd armed at the kill deadline.
#[derive(Debug)]
struct DeadlineTimer {
    fd: OwnedFd,
}

impl DeadlineTimer {
    fn new() -> Result<Self, ShimError> {
        let fd = timerfd_create(
            TimerfdClockId::Boottime,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )
        .map_err(|source| ShimError::Setup {
            what: "timerfd_create(CLOCK_BOOTTIME)",
            source,
        })?;
        Ok(Self { fd })
    }

    /// Arms the timer at `deadline` (absolute), or disarms it for [`Deadline::None`].
    fn arm(&self, deadline: Deadline) -> Result<(), ShimError> {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = match deadline {
            Deadline::None => zero,
            Deadline::At(at) => at.to_timespec(),
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: value,
        };
        timerfd_settime(&self.fd, TimerfdTimerFlags::ABSTIME, &spec)
            .map(drop)
            .map_err(|source| ShimError::Setup {
                what: "timerfd_settime",
                source,
            })
    }

    /// Consumes an expiry so the descriptor stops polling readable; the loop checks the clock itself.
    fn clear(&self) {
        let mut ticks = [0_u8; 8];
        let _ = rustix::io::read(&self.fd, &mut ticks);
    }
}

/// Writes a diagnostic to stderr (the agent logs it under the task's name), but only if that cannot block: when the
/// agent is stalled its pipe may be full, and the watchdog must never wait on the agent.
pub(super) fn note(task: &str, message: &str) {
    let stderr = std::io::stderr();
    let mut fds = [PollFd::new(&stderr, PollFlags::OUT)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if matches!(poll(&mut fds, Some(&zero)), Ok(1)) && fds[0].revents().contains(PollFlags::OUT) {
        let line = format!("leasehold-shim[{task}]: {message}\n");
        let _ = stderr.lock().write_all(line.as_bytes());
    }
}
