//! One run: a fresh `leasehold-apiserver`, N candidates of one implementation spread over a few
//! `bench-candidates` processes, and the event stream they report.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use crate::Impl;
use crate::clock::mono_ns;
use crate::protocol::{Command, Event, Slot, StopReason};

/// The Lease every candidate of a run campaigns for.
pub const LEASE: &str = "bench-election";

/// Request counts of one API user, from the server's counters.
#[derive(Clone, Debug, Default)]
pub struct UserCounts {
    /// Every request.
    pub total: u64,
    /// Write attempts on Leases (create, update, patch), whatever the answer.
    pub writes: u64,
    /// Requests by verb.
    pub by_verb: BTreeMap<String, u64>,
}

/// A snapshot of the server's counters.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Per user.
    pub users: HashMap<String, UserCounts>,
    /// Committed writes.
    pub writes: u64,
    /// Watch events delivered, all users.
    pub watch_events: u64,
}

impl Counters {
    /// Parses the admin endpoint's `GET counters` answer.
    fn parse(v: &Value) -> Self {
        let mut out = Counters {
            writes: v["writes"].as_u64().unwrap_or(0),
            watch_events: v["watch_events"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(Value::as_u64).sum()),
            ..Counters::default()
        };
        if let Some(requests) = v["requests"].as_object() {
            for (key, n) in requests {
                let n = n.as_u64().unwrap_or(0);
                let mut parts = key.split(' ');
                let (user, verb, resource) = (parts.next(), parts.next(), parts.next());
                let (Some(user), Some(verb)) = (user, verb) else {
                    continue;
                };
                let e = out.users.entry(user.to_owned()).or_default();
                e.total += n;
                *e.by_verb.entry(verb.to_owned()).or_default() += n;
                if resource == Some("leases") && matches!(verb, "create" | "update" | "patch") {
                    e.writes += n;
                }
            }
        }
        out
    }

    /// The user's counts in `self` minus those in `earlier`.
    #[must_use]
    pub fn user_delta(&self, earlier: &Counters, user: &str) -> UserCounts {
        let now = self.users.get(user).cloned().unwrap_or_default();
        let then = earlier.users.get(user).cloned().unwrap_or_default();
        UserCounts {
            total: now.total.saturating_sub(then.total),
            writes: now.writes.saturating_sub(then.writes),
            by_verb: now
                .by_verb
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.saturating_sub(then.by_verb.get(k).copied().unwrap_or(0)),
                    )
                })
                .collect(),
        }
    }
}

/// One leadership interval, in CLOCK_MONOTONIC ns; `end` is `None` while it lasts.
#[derive(Clone, Copy, Debug)]
pub struct Interval {
    /// Slot.
    pub slot: usize,
    /// Start.
    pub start: u64,
    /// End.
    pub end: Option<u64>,
}

/// The highest number of intervals that overlap at one moment; open intervals last until `now`. Intervals that
/// only touch (one ends when the next starts) do not overlap.
#[must_use]
pub fn max_overlap(intervals: &[Interval], now: u64) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::with_capacity(intervals.len() * 2);
    for i in intervals {
        edges.push((i.start, 1));
        edges.push((i.end.unwrap_or(now), -1));
    }
    // At equal times an end (-1) sorts before a start (+1).
    edges.sort_unstable();
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in edges {
        cur += d;
        max = max.max(cur);
    }
    usize::try_from(max).unwrap_or(0)
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
}

/// A run in progress: the server, the candidate processes, and what they reported so far.
pub struct Run {
    /// The server (killed on drop).
    pub server: super::server::ApiServer,
    procs: Vec<Proc>,
    events: mpsc::UnboundedReceiver<Event>,
    slot_proc: HashMap<usize, usize>,
    open: HashMap<(usize, u32), u64>,
    /// Every leadership interval so far.
    pub intervals: Vec<Interval>,
    /// Every start so far: (slot, generation, t).
    pub starts: Vec<(usize, u32, u64)>,
    /// Every stop so far: (slot, generation, t, why).
    pub stops: Vec<(usize, u32, u64, StopReason)>,
    /// Every `up` so far: (slot, generation).
    pub ups: Vec<(usize, u32)>,
    /// Candidate errors.
    pub errors: Vec<String>,
    ready: usize,
}

impl Run {
    /// Starts the server, registers `n` users and spawns `processes` runner processes hosting them.
    pub async fn start(
        implementation: Impl,
        n: usize,
        processes: usize,
        apiserver_bin: &Path,
        candidates_bin: &Path,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let server = super::server::ApiServer::start(apiserver_bin, dir).await?;
        let mut slots = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            let answers = futures::future::join_all(chunk.iter().map(|&slot| {
                let server = &server;
                async move {
                    let user = format!("c{slot}");
                    let token = server.add_user(&user).await?;
                    anyhow::Ok(Slot { slot, user, token })
                }
            }))
            .await;
            for a in answers {
                slots.push(a?);
            }
        }
        let (tx, events) = mpsc::unbounded_channel();
        let mut procs = Vec::new();
        let mut slot_proc = HashMap::new();
        for p in 0..processes {
            let mine: Vec<&Slot> = slots.iter().filter(|s| s.slot % processes == p).collect();
            for s in &mine {
                slot_proc.insert(s.slot, p);
            }
            let file = dir.join(format!("slots-{p}.json"));
            std::fs::write(&file, serde_json::to_vec(&mine)?)?;
            let stderr = std::fs::File::create(dir.join(format!("candidates-{p}.log")))?;
            let mut child = tokio::process::Command::new(candidates_bin)
                .args([
                    "--impl",
                    implementation.name(),
                    "--url",
                    &server.url,
                    "--lease",
                    LEASE,
                    "--slots",
                ])
                .arg(&file)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(stderr))
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", candidates_bin.display()))?;
            let stdout = child.stdout.take().context("no stdout")?;
            let stdin = child.stdin.take().context("no stdin")?;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(ev) = serde_json::from_str::<Event>(&line)
                        && tx.send(ev).is_err()
                    {
                        break;
                    }
                }
            });
            procs.push(Proc { child, stdin });
        }
        Ok(Self {
            server,
            procs,
            events,
            slot_proc,
            open: HashMap::new(),
            intervals: Vec::new(),
            starts: Vec::new(),
            stops: Vec::new(),
            ups: Vec::new(),
            errors: Vec::new(),
            ready: 0,
        })
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Ready { .. } => self.ready += 1,
            Event::Up {
                slot, generation, ..
            } => self.ups.push((slot, generation)),
            Event::Start {
                slot,
                generation,
                t,
            } => {
                self.open.insert((slot, generation), t);
                self.starts.push((slot, generation, t));
            }
            Event::Stop {
                slot,
                generation,
                t,
                why,
            } => {
                if let Some(start) = self.open.remove(&(slot, generation)) {
                    self.intervals.push(Interval {
                        slot,
                        start,
                        end: Some(t),
                    });
                }
                self.stops.push((slot, generation, t, why));
            }
            Event::Gone { .. } => {}
            Event::Error {
                slot,
                generation,
                message,
            } => {
                if self.errors.len() < 20 {
                    self.errors
                        .push(format!("slot {slot} gen {generation}: {message}"));
                }
            }
        }
    }

    /// Handles events until `deadline`, or until `done` holds (checked after each event and at the start).
    /// Returns whether `done` held.
    pub async fn pump_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Run) -> bool,
    ) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(ev)) => self.handle(ev),
                Ok(None) => {
                    tokio::time::sleep(left).await;
                    return done(self);
                }
                Err(_) => return done(self),
            }
        }
    }

    /// Handles events for `d`.
    pub async fn pump_for(&mut self, d: Duration) {
        self.pump_until(Instant::now() + d, |_| false).await;
    }

    /// Whether every process said it is ready.
    pub fn all_ready(&self) -> bool {
        self.ready == self.procs.len()
    }

    /// Slots that lead now, as reported so far.
    pub fn leaders(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.open.keys().map(|(s, _)| *s).collect();
        v.sort_unstable();
        v
    }

    /// The server's counters now.
    pub async fn counters(&self) -> anyhow::Result<Counters> {
        Ok(Counters::parse(&self.server.counters().await?))
    }

    /// Sends a command to the process hosting the command's slot.
    pub async fn command(&mut self, cmd: Command) -> anyhow::Result<()> {
        let slot = match cmd {
            Command::Release(s) | Command::Crash(s) | Command::Spawn(s) => s,
        };
        let p = *self.slot_proc.get(&slot).context("unknown slot")?;
        let proc = self.procs.get_mut(p).context("unknown process")?;
        proc.stdin.write_all(cmd.line().as_bytes()).await?;
        proc.stdin.flush().await?;
        Ok(())
    }

    /// CPU time (user + system) of every candidate process so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        self.procs
            .iter()
            .filter_map(|p| p.child.id())
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .filter_map(|stat| {
                let rest = stat.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                // After the command: state is field 3; utime and stime are fields 14 and 15.
                Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
            })
            .sum::<f64>()
            / ticks
    }

    /// The highest number of simultaneous leaders over intervals starting before `until` (ns), counting
    /// intervals still open as lasting until now.
    pub fn max_leaders(&self, until: u64) -> usize {
        let open = self.open.iter().map(|(&(slot, _), &start)| Interval {
            slot,
            start,
            end: None,
        });
        let all: Vec<Interval> = self
            .intervals
            .iter()
            .copied()
            .chain(open)
            .filter(|i| i.start < until)
            .collect();
        max_overlap(&all, mono_ns())
    }

    /// Ends the candidate processes (no release: the run is over).
    pub async fn stop(mut self) {
        for p in &mut self.procs {
            let _ = p.child.start_kill();
        }
        for p in &mut self.procs {
            let _ = p.child.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(start: u64, end: Option<u64>) -> Interval {
        Interval {
            slot: 0,
            start,
            end,
        }
    }

    #[test]
    fn touching_intervals_do_not_overlap_but_open_ones_do() {
        assert_eq!(max_overlap(&[], 10), 0);
        assert_eq!(max_overlap(&[iv(0, Some(5)), iv(5, Some(9))], 10), 1);
        assert_eq!(
            max_overlap(&[iv(0, Some(6)), iv(5, Some(9)), iv(8, None)], 10),
            2
        );
        assert_eq!(
            max_overlap(&[iv(0, None), iv(1, None), iv(2, Some(3))], 10),
            3
        );
    }

    #[test]
    fn counters_split_users_verbs_and_lease_writes() {
        let v = serde_json::json!({
            "requests": {
                "c1 get leases 200": 3,
                "c1 update leases 409": 2,
                "c1 patch leases 200": 1,
                "c2 watch leases 200": 4,
                "c2 get  200": 1,
            },
            "writes": 7,
            "watch_events": { "c1": 5, "c2": 6 },
        });
        let c = Counters::parse(&v);
        assert_eq!(c.writes, 7);
        assert_eq!(c.watch_events, 11);
        let c1 = &c.users["c1"];
        assert_eq!((c1.total, c1.writes), (6, 3));
        assert_eq!(c.users["c2"].total, 5);
        let d = c.user_delta(&Counters::default(), "c1");
        assert_eq!(d.by_verb["update"], 2);
    }
}
