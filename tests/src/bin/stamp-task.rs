//! `stamp-task`: the leader-gated task of the end-to-end tests and the `make run` demo. It records when it ran,
//! for whom, and whether another copy was alive at the same moment.
//!
//! On start it takes an exclusive, non-blocking `flock` on `--lock`. If that fails, another copy holds it right
//! now: it appends an `overlap` line and then waits for the lock. The kernel drops a flock when its holder dies,
//! even by SIGKILL, so the lock is an exact overlap detector that needs no clock. Then it appends `start`, a `tick`
//! every `--tick-ms`, and on SIGTERM (or SIGINT) a `stop` line, and exits 0.
//!
//! Each line is `<event> mono=<CLOCK_MONOTONIC ns> pid=<pid> ns=<LEASEHOLD_NAMESPACE> holder=<LEASEHOLD_HOLDER>
//! epoch=<LEASEHOLD_EPOCH> task=<LEASEHOLD_TASK>`, written with one `write` to a file opened with `O_APPEND`, so
//! lines from concurrent copies never interleave. [`leasehold_tests::stamps`] parses and checks the file.
//!
//! `--env-dir DIR` also writes the `LEASEHOLD_*` environment, one `K=V` per line, to
//! `DIR/<task>.<holder>.<epoch>.env` (atomically, by rename) once the lock is held. `--print` echoes each line to
//! stdout, which the agent copies into its log prefixed with the task name.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rustix::fs::{FlockOperation, flock};
use tokio::signal::unix::{SignalKind, signal};

/// Records start, tick and stop stamps and detects overlapping copies with a flock.
#[derive(Parser, Debug)]
struct Args {
    /// The shared stamp file (appended to).
    #[arg(long)]
    stamps: PathBuf,
    /// The shared lock file: at most one copy may hold it.
    #[arg(long)]
    lock: PathBuf,
    /// Milliseconds between `tick` lines.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Write the `LEASEHOLD_*` environment into this directory on start.
    #[arg(long)]
    env_dir: Option<PathBuf>,
    /// Echo every line to stdout.
    #[arg(long)]
    print: bool,
}

/// Who this copy runs for, from the environment the agent set.
struct Term {
    namespace: String,
    holder: String,
    epoch: String,
    task: String,
}

impl Term {
    fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "-".to_string())
        };
        Self {
            namespace: var("LEASEHOLD_NAMESPACE"),
            holder: var("LEASEHOLD_HOLDER"),
            epoch: var("LEASEHOLD_EPOCH"),
            task: var("LEASEHOLD_TASK"),
        }
    }
}

/// Appends one stamp line per call, with one `write`.
struct Stamper {
    file: File,
    term: Term,
    print: bool,
}

impl Stamper {
    fn stamp(&mut self, event: &str) -> anyhow::Result<()> {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let mono = now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128;
        let t = &self.term;
        let line = format!(
            "{event} mono={mono} pid={} ns={} holder={} epoch={} task={}\n",
            std::process::id(),
            t.namespace,
            t.holder,
            t.epoch,
            t.task
        );
        // One write per line: O_APPEND makes each write land whole at the end of the file.
        let written = self.file.write(line.as_bytes())?;
        anyhow::ensure!(written == line.len(), "short write to the stamp file");
        if self.print {
            print!("{line}");
            std::io::stdout().flush()?;
        }
        Ok(())
    }
}

fn write_env(dir: &Path, term: &Term) -> anyhow::Result<()> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("LEASEHOLD_"))
        .collect();
    vars.sort();
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let name = format!("{}.{}.{}.env", term.task, term.holder, term.epoch);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(&name)).with_context(|| format!("renaming to {name}"))?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut term_signal = signal(SignalKind::terminate())?;
    let mut int_signal = signal(SignalKind::interrupt())?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&args.lock)
        .with_context(|| format!("opening the lock file {}", args.lock.display()))?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.stamps)
        .with_context(|| format!("opening the stamp file {}", args.stamps.display()))?;
    let mut stamper = Stamper {
        file,
        term: Term::from_env(),
        print: args.print,
    };

    if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        // Another copy is alive right now: that is the failure the tests look for. Record it, then queue.
        stamper.stamp("overlap")?;
        loop {
            tokio::select! {
                _ = term_signal.recv() => return Ok(()),
                _ = int_signal.recv() => return Ok(()),
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
                        break;
                    }
                }
            }
        }
    }
    if let Some(dir) = &args.env_dir {
        write_env(dir, &stamper.term)?;
    }
    stamper.stamp("start")?;
    let mut ticks = tokio::time::interval(Duration::from_millis(args.tick_ms.max(1)));
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = term_signal.recv() => break,
            _ = int_signal.recv() => break,
            _ = ticks.tick() => stamper.stamp("tick")?,
        }
    }
    stamper.stamp("stop")?;
    // The lock is released when the process exits, after the stop line is on disk.
    drop(lock);
    Ok(())
}
