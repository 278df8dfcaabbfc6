#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The task supervisor and its watchdog shim, against the real `leasehold` binary.
//!
//! Every wait is for a condition (a state, a file, `/proc`), bounded by [`WAIT`] measured from the end of the fault,
//! so a loaded machine makes these tests slower, not flaky. Two tests re-run this test binary as a helper process
//! (a "fake agent", and a PID 1 in a new PID namespace); the `helper_*` tests do nothing unless started that way.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leasehold_agent::supervisor::{
    BootInstant, Deadline, RestartBackoff, StopOutcome, Supervisor, TaskExit, TaskSpec, TaskState,
};
use rustix::process::{Pid, Signal, kill_process};
use tokio::sync::watch;

const LEASEHOLD: &str = env!("CARGO_BIN_EXE_leasehold");
/// The bound on every wait, measured from the end of the fault.
const WAIT: Duration = Duration::from_secs(10);
/// Selects a helper mode when this binary is re-run as a helper process.
const HELPER_ENV: &str = "LEASEHOLD_TEST_HELPER";

fn supervisor() -> Supervisor {
    Supervisor::new(
        LEASEHOLD.into(),
        vec![leasehold_agent::shim::SUBCOMMAND.into()],
    )
    .unwrap()
}

fn sh(name: &str, script: &str) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        env: Vec::new(),
        grace: Duration::from_secs(5),
    }
}

/// `(state, ppid, session)` of a process, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((
        fields[0].chars().next()?,
        fields[1].parse().ok()?,
        fields[3].parse().ok()?,
    ))
}

/// A process that exists and is not a zombie: it can still run code.
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != 'Z')
}

/// Live processes matching `filter(ppid, session)`.
fn processes(filter: impl Fn(u32, u32) -> bool) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat(pid).is_some_and(|(state, ppid, sid)| state != 'Z' && filter(ppid, sid))
        })
        .collect()
}

/// Every live process of a task: the shim's pid is the id of the task's session.
fn session(sid: u32) -> Vec<u32> {
    processes(|_, session| session == sid)
}

/// Polls `condition` until it holds; panics after [`WAIT`].
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_for`] without blocking the runtime.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_state(
    state: &mut watch::Receiver<TaskState>,
    what: &str,
    f: impl FnMut(&TaskState) -> bool,
) -> TaskState {
    let found = tokio::time::timeout(WAIT, state.wait_for(f)).await;
    *found
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap()
}

async fn running_pid(state: &mut watch::Receiver<TaskState>) -> u32 {
    match wait_state(state, "Running", |s| matches!(s, TaskState::Running { .. })).await {
        TaskState::Running { pid } => pid,
        other => unreachable!("{other:?}"),
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test]
async fn start_passes_env_and_stop_delivers_sigterm_then_the_group_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!(
        r#"trap 'echo term > {d}/term; exit 0' TERM; echo "$GREETING" > {d}/env.tmp; mv {d}/env.tmp {d}/env; sleep 1000 & wait"#
    );
    let mut spec = sh("env-and-term", &script);
    spec.env
        .push(("GREETING".into(), "hello from the agent".into()));
    let handle = supervisor().run(spec, Deadline::None);
    let sid = running_pid(&mut handle.state()).await;
    wait_until("the task to write its env", || {
        dir.path().join("env").exists()
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(dir.path().join("env")).unwrap(),
        "hello from the agent\n"
    );
    assert!(
        session(sid).len() >= 3,
        "shim, sh and sleep: {:?}",
        session(sid)
    );

    let report = handle.stop().await;

    assert_eq!(
        report.outcome,
        StopOutcome::Exited(0),
        "the trap ran and exited 0"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("term")).unwrap(),
        "term\n"
    );
    assert_eq!(
        session(sid),
        Vec::<u32>::new(),
        "stop resolves only once the whole group is gone"
    );
    assert_eq!(report.restarts, 0);
}

#[tokio::test]
async fn a_child_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let mut spec = sh(
        "ignores-term",
        &format!("trap '' TERM; touch {d}/ready; sleep 1000 & wait"),
    );
    spec.grace = Duration::from_millis(600);
    let handle = supervisor().run(spec, Deadline::None);
    let mut state = handle.state();
    let sid = running_pid(&mut state).await;
    wait_until("the TERM trap to be set", || {
        dir.path().join("ready").exists()
    })
    .await;

    let report = handle.stop().await;

    assert_eq!(report.outcome, StopOutcome::Killed);
    assert!(
        report.took >= Duration::from_millis(600),
        "SIGKILL came before the grace was over: {:?}",
        report.took
    );
    assert_eq!(session(sid), Vec::<u32>::new());
    assert_eq!(*state.borrow(), TaskState::Stopped);
}

#[tokio::test]
async fn a_passed_deadline_kills_the_whole_group_without_stop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("sleep 1000 & echo $! > {d}/gc.tmp; mv {d}/gc.tmp {d}/grandchild; wait");
    let deadline = BootInstant::now() + Duration::from_secs(2);
    let handle = supervisor().run(sh("deadline", &script), Deadline::At(deadline));
    let mut state = handle.state();
    let sid = running_pid(&mut state).await;
    wait_until("the grandchild's pid", || {
        dir.path().join("grandchild").exists()
    })
    .await;
    let grandchild = read_pid(&dir.path().join("grandchild")).unwrap();
    assert!(alive(grandchild));

    // No stop, no extension: the shim acts on its own timer.
    let expired = wait_state(&mut state, "Expired", |s| {
        matches!(s, TaskState::Expired { .. })
    })
    .await;

    assert!(BootInstant::now() >= deadline, "killed before the deadline");
    assert_eq!(
        expired,
        TaskState::Expired {
            last_exit: Some(TaskExit::Signal(9))
        }
    );
    assert_eq!(session(sid), Vec::<u32>::new());
    assert!(
        !alive(grandchild),
        "the grandchild sleep outlived the deadline"
    );
    assert!(
        !handle.set_deadline(Deadline::after(Duration::from_secs(60))),
        "a passed deadline is final"
    );
    assert_eq!(handle.restarts(), 0, "an expired task is not restarted");
    assert_eq!(handle.stop().await.outcome, StopOutcome::NotRunning);
}

#[tokio::test]
async fn extending_the_deadline_keeps_the_task_past_the_original_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("sleep 1000 & echo $! > {d}/gc.tmp; mv {d}/gc.tmp {d}/grandchild; wait");
    let original = BootInstant::now() + Duration::from_secs(1);
    let handle = supervisor().run(sh("extended", &script), Deadline::At(original));
    let mut state = handle.state();
    let sid = running_pid(&mut state).await;

    // Heartbeats, as the agent sends after each renew, until well past the original deadline.
    while BootInstant::now() < original + Duration::from_secs(1) {
        assert!(handle.set_deadline(Deadline::after(Duration::from_millis(1500))));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let grandchild = read_pid(&dir.path().join("grandchild")).expect("the task ran its script");
    assert!(
        alive(grandchild),
        "killed although the deadline was extended"
    );
    assert_eq!(*state.borrow(), TaskState::Running { pid: sid });
    assert_eq!(handle.restarts(), 0);
    assert_eq!(handle.stop().await.outcome, StopOutcome::Terminated);
    assert!(!alive(grandchild));
}

#[tokio::test]
async fn dropping_the_handle_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!(
        "trap '' TERM; sleep 1000 & echo $! > {d}/gc.tmp; mv {d}/gc.tmp {d}/grandchild; wait"
    );
    let handle = supervisor().run(sh("dropped", &script), Deadline::None);
    let sid = running_pid(&mut handle.state()).await;
    wait_until("the grandchild's pid", || {
        dir.path().join("grandchild").exists()
    })
    .await;
    let grandchild = read_pid(&dir.path().join("grandchild")).unwrap();

    drop(handle);

    // SIGKILL at once (the task ignores SIGTERM and has a 5 s grace, so only the pipe's end can kill it this soon).
    wait_until("the task's group to be gone", || session(sid).is_empty()).await;
    assert!(!alive(grandchild));
}

#[tokio::test]
async fn a_child_that_exits_is_restarted_with_backoff_and_stop_during_backoff_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let backoff = RestartBackoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(10),
        reset_after: WAIT,
    };
    let supervisor = supervisor().with_restart_backoff(backoff);
    let handle = supervisor.run(
        sh(
            "crashes",
            &format!("echo run >> {}; exit 3", runs.display()),
        ),
        Deadline::None,
    );
    let mut state = handle.state();

    // Delays double from 0.2 s (less up to half for jitter): wait for one with 0.7 s still to go, which only the
    // third backoff or a later one can have, so the stop below lands inside it.
    let backing_off = wait_state(&mut state, "a long backoff", |s| match s {
        TaskState::BackingOff { until, .. } => {
            until.saturating_duration_since(Instant::now()) >= Duration::from_millis(700)
        }
        _ => false,
    })
    .await;
    assert!(matches!(
        backing_off,
        TaskState::BackingOff {
            last_exit: TaskExit::Code(3),
            ..
        }
    ));
    let restarts = handle.restarts();
    assert!(restarts >= 2, "{restarts} restarts");
    assert_eq!(handle.restart_counter().get(), restarts);
    let lines = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(
        u64::try_from(lines).unwrap(),
        restarts + 1,
        "every start ran the command once"
    );

    let report = handle.stop().await;

    assert_eq!(report.outcome, StopOutcome::NotRunning);
    assert_eq!(
        report.restarts, restarts,
        "stop cancelled the pending restart"
    );
    assert_eq!(*state.borrow(), TaskState::Stopped);
}

#[tokio::test]
async fn grandchildren_orphaned_while_the_task_runs_do_not_linger_as_zombies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Each subshell exits at once, orphaning its `true` to the shim, which must reap it while the task runs on.
    let script = format!("for i in 1 2 3; do (true &); done; touch {d}/ready; sleep 1000");
    let handle = supervisor().run(sh("orphans", &script), Deadline::None);
    let sid = running_pid(&mut handle.state()).await;
    wait_until("the orphans to be made", || {
        dir.path().join("ready").exists()
    })
    .await;

    let zombies = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| {
                stat(pid).is_some_and(|(state, _, session)| state == 'Z' && session == sid)
            })
            .count()
    };
    // Heartbeats wake the shim, as they would in the agent; each wake-up reaps what has exited.
    wait_until("the orphans to be reaped", || {
        handle.set_deadline(Deadline::after(Duration::from_secs(60)));
        zombies() == 0
    })
    .await;
    assert_eq!(handle.stop().await.outcome, StopOutcome::Terminated);
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn line_with(&self, needle: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .find(|line| line.contains(needle))
            .map(str::to_owned)
    }
}

// A current-thread runtime, so the task's output forwarders run on this thread, under the scoped subscriber.
#[tokio::test(flavor = "current_thread")]
async fn output_lines_reach_the_log_with_the_task_name() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let handle = supervisor().run(
        sh(
            "chatty-collector",
            "echo out-line-1; echo err-line-1 >&2; sleep 1000",
        ),
        Deadline::None,
    );
    wait_until("both lines in the log", || {
        capture.line_with("out-line-1").is_some() && capture.line_with("err-line-1").is_some()
    })
    .await;
    handle.stop().await;

    let out = capture.line_with("out-line-1").unwrap();
    let err = capture.line_with("err-line-1").unwrap();
    assert!(
        out.contains("task=chatty-collector") && out.contains("stream=\"stdout\""),
        "{out}"
    );
    assert!(
        err.contains("task=chatty-collector") && err.contains("stream=\"stderr\""),
        "{err}"
    );
}

/// A running fake agent (this test binary in helper mode) and the lines it prints.
struct FakeAgent {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl FakeAgent {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "helper_fake_agent",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, "fake-agent")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(line) = line.strip_prefix("FAKE_AGENT ") {
                    let _ = tx.send(line.to_owned());
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: Signal) {
        kill_process(
            Pid::from_raw(i32::try_from(self.pid()).unwrap()).unwrap(),
            signal,
        )
        .unwrap();
    }

    /// Reads lines until one satisfies `f`; returns it.
    fn expect_line(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("fake agent never printed {what}"));
            self.seen.push(line.clone());
            if f(&line) {
                return line;
            }
        }
    }

    /// The shim's pid (= the task's session) once the task runs, and the task's processes once sh has forked.
    fn running_task(&mut self) -> (u32, Vec<u32>) {
        let line = self.expect_line("Running", |l| l.starts_with("state Running"));
        let sid: u32 = line
            .trim_start_matches("state Running { pid: ")
            .trim_end_matches(" }")
            .parse()
            .unwrap();
        wait_for("shim, sh and sleep", || session(sid).len() >= 3);
        (sid, session(sid))
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_sigstopped_agent_loses_its_task_by_the_deadline_and_does_not_resurrect_it() {
    let mut agent = FakeAgent::start();
    let (sid, task) = agent.running_task();

    agent.signal(Signal::STOP);

    // The deadline was at most FAKE_AGENT_DEADLINE ahead; the shim acts alone while the agent is frozen.
    wait_for(
        "the task's group to be gone while the agent is stopped",
        || session(sid).is_empty(),
    );
    assert_eq!(
        stat(agent.pid()).unwrap().0,
        'T',
        "the agent must still be stopped"
    );
    assert!(task.iter().all(|&pid| !alive(pid)), "{task:?}");

    agent.signal(Signal::CONT);

    // The agent's heartbeats resume, but a passed deadline is final: no restart, no new process.
    agent.expect_line("Expired", |l| l.starts_with("state Expired"));
    for _ in 0..3 {
        agent.expect_line("a refused heartbeat", |l| l == "refused");
    }
    let resumed = agent
        .seen
        .iter()
        .skip_while(|l| !l.starts_with("state Running"))
        .skip(1);
    assert!(
        resumed
            .clone()
            .all(|l| !l.contains("Starting") && !l.contains("Running")),
        "{:?}",
        agent.seen
    );
    let agent_pid = agent.pid();
    assert_eq!(
        processes(|ppid, _| ppid == agent_pid),
        Vec::<u32>::new(),
        "the agent restarted something"
    );
}

#[test]
fn a_sigkilled_agent_loses_its_task() {
    let mut agent = FakeAgent::start();
    let (sid, task) = agent.running_task();

    agent.signal(Signal::KILL);

    wait_for("the task's group to be gone after the agent died", || {
        session(sid).is_empty()
    });
    assert!(task.iter().all(|&pid| !alive(pid)), "{task:?}");
}

/// How far ahead the fake agent keeps its task's deadline. Long enough that a shim started late on a loaded
/// machine is still before it (a shim past its deadline starts nothing), short enough that a frozen agent's task
/// dies well within [`WAIT`].
const FAKE_AGENT_DEADLINE: Duration = Duration::from_secs(5);

/// Helper process for the fake-agent tests: runs a task with a [`FAKE_AGENT_DEADLINE`] deadline and extends it every
/// 200 ms, forever, printing every state change and every refused extension.
#[test]
fn helper_fake_agent() {
    if std::env::var(HELPER_ENV).as_deref() != Ok("fake-agent") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let handle = supervisor().run(
            sh("fake-agent-task", "sleep 1000 & wait"),
            Deadline::after(FAKE_AGENT_DEADLINE),
        );
        let mut state = handle.state();
        tokio::spawn(async move {
            loop {
                println!("FAKE_AGENT state {:?}", *state.borrow_and_update());
                if state.changed().await.is_err() {
                    return;
                }
            }
        });
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if !handle.set_deadline(Deadline::after(FAKE_AGENT_DEADLINE)) {
                println!("FAKE_AGENT refused");
            }
        }
    });
}

#[test]
fn orphans_are_reaped_when_the_agent_is_pid_1() {
    let output = Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "helper_pid1_agent",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "pid1")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            eprintln!("skipped: cannot run unshare: {error}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stdout.contains("PID1_HELPER started") {
        eprintln!("skipped: no PID namespace here (unshare: {stderr})");
        return;
    }
    assert!(
        output.status.success() && stdout.contains("PID1_HELPER ok"),
        "{stdout}\n{stderr}"
    );
}

/// Helper process for the PID 1 test: runs as PID 1 of a new PID namespace.
#[test]
fn helper_pid1_agent() {
    if std::env::var(HELPER_ENV).as_deref() != Ok("pid1") {
        return;
    }
    assert!(rustix::process::getpid().is_init());
    println!("PID1_HELPER started");
    // An orphan: sh exits at once and its background sleep re-parents to us, to die shortly as a zombie that nobody
    // but PID 1 can reap.
    let orphan = Command::new("sh")
        .args(["-c", "sleep 0.3 >/dev/null & echo $!"])
        .output()
        .unwrap();
    let orphan: u32 = String::from_utf8(orphan.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        stat(orphan).unwrap().1,
        1,
        "the orphan re-parented to PID 1"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let backoff = RestartBackoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            ..Default::default()
        };
        let supervisor = supervisor().with_restart_backoff(backoff);
        let reaper = supervisor
            .spawn_orphan_reaper_if_pid1()
            .expect("we are PID 1");
        let handle = supervisor.run(sh("exits-3", "exit 3"), Deadline::None);

        // The reaper must never steal the exit status of the supervisor's own shims.
        let mut state = handle.state();
        let mut exits = Vec::new();
        while exits.len() < 6 {
            tokio::time::timeout(WAIT, state.changed())
                .await
                .unwrap()
                .unwrap();
            if let TaskState::BackingOff { last_exit, .. } = *state.borrow_and_update() {
                exits.push(last_exit);
            }
        }
        assert!(
            exits.iter().all(|&exit| exit == TaskExit::Code(3)),
            "{exits:?}"
        );

        wait_until("the orphan to be reaped", || stat(orphan).is_none()).await;
        handle.stop().await;
        reaper.abort();
    });
    println!("PID1_HELPER ok");
}

#[test]
fn a_shim_whose_deadline_has_passed_starts_nothing() {
    // The deadline travels on the command line as CLOCK_BOOTTIME nanoseconds: 1 ns after boot is long past.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let out = Command::new(LEASEHOLD)
        .args([
            leasehold_agent::shim::SUBCOMMAND,
            "--task",
            "late",
            "--deadline",
            "1",
            "--",
        ])
        .args(["sh", "-c", &format!("touch {}", marker.display())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert!(!marker.exists(), "the task ran past its deadline");
    assert!(stderr.contains("not starting it"), "{stderr}");
}

#[test]
fn a_shim_killed_with_sigkill_takes_its_task_with_it() {
    // stdin stays open (piped): a closed control pipe would make the shim kill the task by itself.
    let mut shim = Command::new(LEASEHOLD)
        .args([
            leasehold_agent::shim::SUBCOMMAND,
            "--task",
            "orphan",
            "--deadline",
            "none",
            "--",
        ])
        .args(["sleep", "1000"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let shim_pid = shim.id();
    let mut task = 0;
    wait_for("the task to start under the shim", || {
        task = processes(|ppid, _| ppid == shim_pid)
            .first()
            .copied()
            .unwrap_or(0);
        task != 0
    });
    kill_process(Pid::from_raw(shim_pid as i32).unwrap(), Signal::KILL).unwrap();
    shim.wait().unwrap();
    wait_for("the task to die with its shim", || !alive(task));
}
