//! Reads the stamp file that `stamp-task` copies append to, and checks that the leader-gated task never ran twice
//! at once.
//!
//! A line is `<event> mono=<ns> pid=<pid> ns=<namespace> holder=<holder> epoch=<epoch> task=<task>`, with `event`
//! one of `start`, `tick`, `stop` and `overlap` (another copy held the lock when this one started). The times are
//! CLOCK_MONOTONIC nanoseconds, comparable across processes on one machine.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};

/// What a stamp line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The copy holds the lock and starts working.
    Start,
    /// Still working.
    Tick,
    /// Got SIGTERM and is exiting.
    Stop,
    /// Another copy held the lock when this one started: two copies were alive at once.
    Overlap,
}

/// One parsed stamp line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// What happened.
    pub event: Event,
    /// CLOCK_MONOTONIC, nanoseconds.
    pub mono: u128,
    /// The copy's pid.
    pub pid: u32,
    /// `LEASEHOLD_NAMESPACE`.
    pub namespace: String,
    /// `LEASEHOLD_HOLDER`.
    pub holder: String,
    /// `LEASEHOLD_EPOCH`.
    pub epoch: u64,
    /// `LEASEHOLD_TASK`.
    pub task: String,
}

/// The time one holder ran one task in one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    /// The election namespace.
    pub namespace: String,
    /// The task name.
    pub task: String,
    /// The holder identity (`<node>_<instance>`).
    pub holder: String,
    /// The fencing epoch.
    pub epoch: u64,
    /// The first `start`.
    pub start: u128,
    /// The last `stop`, or the last stamp of any kind when the copy was killed without one (a lower bound: the
    /// flock check catches what the last tick cannot show).
    pub end: u128,
    /// Whether the copy wrote `stop` (it got SIGTERM rather than SIGKILL).
    pub stopped: bool,
    /// The pids that ran in this interval (more than one after a restart within the term).
    pub pids: Vec<u32>,
}

/// The whole stamp file.
#[derive(Clone, Debug, Default)]
pub struct Stamps {
    /// Every line, in file order.
    pub lines: Vec<Stamp>,
}

/// The CLOCK_MONOTONIC reading now, in nanoseconds: the clock the stamps use.
pub fn mono_now() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

fn parse_line(line: &str) -> anyhow::Result<Stamp> {
    let mut parts = line.split_whitespace();
    let event = match parts.next() {
        Some("start") => Event::Start,
        Some("tick") => Event::Tick,
        Some("stop") => Event::Stop,
        Some("overlap") => Event::Overlap,
        other => bail!("unknown event {other:?}"),
    };
    let fields: BTreeMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).collect();
    let field = |k: &str| {
        fields
            .get(k)
            .copied()
            .with_context(|| format!("no {k}= field"))
    };
    Ok(Stamp {
        event,
        mono: field("mono")?.parse().context("mono")?,
        pid: field("pid")?.parse().context("pid")?,
        namespace: field("ns")?.to_string(),
        holder: field("holder")?.to_string(),
        // A task started without an election has no epoch ("-"): count it as 0.
        epoch: field("epoch")?.parse().unwrap_or(0),
        task: field("task")?.to_string(),
    })
}

impl Stamps {
    /// Parses stamp text. A last line without its newline is a write in progress and is skipped.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        let lines = complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| parse_line(l).with_context(|| format!("stamp line {}: {l:?}", i + 1)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { lines })
    }

    /// Reads and parses the stamp file; a file that does not exist yet has no stamps.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The intervals, one per (namespace, task, holder, epoch), in order of their start.
    pub fn intervals(&self) -> Vec<Interval> {
        let mut by_term: BTreeMap<(String, String, String, u64), Interval> = BTreeMap::new();
        for s in &self.lines {
            if s.event == Event::Overlap {
                continue;
            }
            let key = (
                s.namespace.clone(),
                s.task.clone(),
                s.holder.clone(),
                s.epoch,
            );
            let iv = by_term.entry(key).or_insert_with(|| Interval {
                namespace: s.namespace.clone(),
                task: s.task.clone(),
                holder: s.holder.clone(),
                epoch: s.epoch,
                start: s.mono,
                end: s.mono,
                stopped: false,
                pids: Vec::new(),
            });
            iv.start = iv.start.min(s.mono);
            iv.end = iv.end.max(s.mono);
            iv.stopped |= s.event == Event::Stop;
            if !iv.pids.contains(&s.pid) {
                iv.pids.push(s.pid);
            }
        }
        let mut out: Vec<Interval> = by_term.into_values().collect();
        out.sort_by_key(|iv| iv.start);
        out
    }

    /// The intervals of one election namespace, in start order.
    pub fn intervals_in(&self, namespace: &str) -> Vec<Interval> {
        self.intervals()
            .into_iter()
            .filter(|iv| iv.namespace == namespace)
            .collect()
    }

    /// The `overlap` lines.
    pub fn overlaps(&self) -> Vec<&Stamp> {
        self.lines
            .iter()
            .filter(|s| s.event == Event::Overlap)
            .collect()
    }

    /// The stamps written by `holder`.
    pub fn by_holder<'a>(&'a self, holder: &'a str) -> impl Iterator<Item = &'a Stamp> + 'a {
        self.lines.iter().filter(move |s| s.holder == holder)
    }

    /// Checks that each task ran exclusively in every namespace: no `overlap` line, no two intervals of one
    /// (namespace, task) overlapping in time, and epochs strictly increasing in start order.
    pub fn check_exclusive(&self) -> anyhow::Result<()> {
        if let Some(o) = self.overlaps().first() {
            bail!(
                "{} overlap line(s): {} (pid {}, epoch {}) started while another copy held the lock\n{}",
                self.overlaps().len(),
                o.holder,
                o.pid,
                o.epoch,
                self.describe()
            );
        }
        let mut groups: BTreeMap<(&str, &str), Vec<&Interval>> = BTreeMap::new();
        let intervals = self.intervals();
        for iv in &intervals {
            groups
                .entry((&iv.namespace, &iv.task))
                .or_default()
                .push(iv);
        }
        for ((ns, task), ivs) in groups {
            for pair in ivs.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                if b.start <= a.end {
                    bail!(
                        "namespace {ns}, task {task}: {} epoch {} started {:.3} s before {} epoch {} ended\n{}",
                        b.holder,
                        b.epoch,
                        (a.end - b.start) as f64 / 1e9,
                        a.holder,
                        a.epoch,
                        self.describe()
                    );
                }
                if b.epoch <= a.epoch {
                    bail!(
                        "namespace {ns}, task {task}: epoch {} ({}) started after epoch {} ({}): epochs must increase\n{}",
                        b.epoch,
                        b.holder,
                        a.epoch,
                        a.holder,
                        self.describe()
                    );
                }
            }
        }
        Ok(())
    }

    /// A readable summary of the intervals, for failure messages and test logs.
    pub fn describe(&self) -> String {
        let intervals = self.intervals();
        let t0 = intervals.first().map_or(0, |iv| iv.start);
        let secs = |t: u128| t.saturating_sub(t0) as f64 / 1e9;
        let mut out = String::from("intervals (seconds from the first start):\n");
        for iv in &intervals {
            out.push_str(&format!(
                "  ns={} task={} holder={} epoch={} {:.3}..{:.3} {} pids={:?}\n",
                iv.namespace,
                iv.task,
                iv.holder,
                iv.epoch,
                secs(iv.start),
                secs(iv.end),
                if iv.stopped { "stopped" } else { "killed" },
                iv.pids
            ));
        }
        for o in self.overlaps() {
            out.push_str(&format!(
                "  OVERLAP at {:.3}: holder={} epoch={} pid={}\n",
                secs(o.mono),
                o.holder,
                o.epoch,
                o.pid
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn intervals_follow_holder_and_epoch() -> anyhow::Result<()> {
        let s = Stamps::parse(&text(&[
            "start mono=100 pid=1 ns=default holder=a_1 epoch=1 task=t",
            "tick mono=200 pid=1 ns=default holder=a_1 epoch=1 task=t",
            "stop mono=250 pid=1 ns=default holder=a_1 epoch=1 task=t",
            "start mono=300 pid=2 ns=default holder=b_1 epoch=2 task=t",
            "tick mono=400 pid=2 ns=default holder=b_1 epoch=2 task=t",
        ]))?;
        let ivs = s.intervals();
        assert_eq!(ivs.len(), 2);
        assert_eq!((ivs[0].start, ivs[0].end, ivs[0].stopped), (100, 250, true));
        assert_eq!(
            (ivs[1].start, ivs[1].end, ivs[1].stopped),
            (300, 400, false)
        );
        s.check_exclusive()
    }

    #[test]
    fn overlapping_intervals_fail() -> anyhow::Result<()> {
        let s = Stamps::parse(&text(&[
            "start mono=100 pid=1 ns=default holder=a_1 epoch=1 task=t",
            "start mono=150 pid=2 ns=default holder=b_1 epoch=2 task=t",
            "tick mono=200 pid=1 ns=default holder=a_1 epoch=1 task=t",
        ]))?;
        assert!(s.check_exclusive().is_err());
        Ok(())
    }

    #[test]
    fn an_overlap_line_fails() -> anyhow::Result<()> {
        let s = Stamps::parse(&text(&[
            "start mono=100 pid=1 ns=default holder=a_1 epoch=1 task=t",
            "overlap mono=150 pid=2 ns=default holder=b_1 epoch=2 task=t",
        ]))?;
        assert!(s.check_exclusive().is_err());
        Ok(())
    }

    #[test]
    fn epochs_must_increase() -> anyhow::Result<()> {
        let s = Stamps::parse(&text(&[
            "start mono=100 pid=1 ns=default holder=a_1 epoch=3 task=t",
            "stop mono=150 pid=1 ns=default holder=a_1 epoch=3 task=t",
            "start mono=200 pid=2 ns=default holder=b_1 epoch=2 task=t",
        ]))?;
        assert!(s.check_exclusive().is_err());
        Ok(())
    }

    #[test]
    fn namespaces_are_checked_separately_and_partial_lines_skipped() -> anyhow::Result<()> {
        let mut t = text(&[
            "start mono=100 pid=1 ns=alpha holder=a_1 epoch=1 task=t",
            "start mono=110 pid=2 ns=beta holder=b_1 epoch=1 task=u",
            "tick mono=200 pid=1 ns=alpha holder=a_1 epoch=1 task=t",
        ]);
        t.push_str("tick mono=3");
        let s = Stamps::parse(&t)?;
        assert_eq!(s.lines.len(), 3);
        assert_eq!(s.intervals_in("alpha").len(), 1);
        s.check_exclusive()
    }
}
