//! The invariants every run must keep, checked over what the run recorded.
//!
//! (a) No two leadership guards are valid at the same virtual instant, judged by the guards' own deadlines.
//! (b) Epochs strictly increase from one leadership to the next, unless the Lease's history was lost between
//!     them (the server's state wiped or restored, the Lease deleted or its leaseTransitions rewritten by a
//!     third party): then a process that never saw the lost epochs cannot know them.
//! (c) Once the last fault is over and every live candidate is back in touch with the server (a watch open, or a
//!     request answered), exactly one leader within LD + RD + J + 1 s, and it stays. A candidate learns that a
//!     fault is over only by trying again, after the backoff its last failure started (at least RP): the moment
//!     it is back in touch is measured, not assumed.
//! (d) No candidate sends more than 5 requests in any virtual second after its first minute.
//! (e) The Lease's final holder is the leader that the candidates report.

use std::{collections::BTreeMap, fmt, time::Duration};

use crate::trace::Mark;

/// One leadership, as its guard saw it: from the acquisition until `lost()` resolved (or the process died).
#[derive(Debug, Clone)]
pub struct Interval {
    /// The process (`c1`, `c1'`, ...).
    pub process: String,
    /// Its holder identity.
    pub identity: String,
    pub epoch: u64,
    /// When the server first stored this epoch under this holder (the acquire's write); at most `start`.
    pub written: Mark,
    pub start: Duration,
    /// `None`: still current at the end of the run.
    pub end: Option<Duration>,
}

/// Requests one process sent, per virtual second since the run's start.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    /// When the process started.
    pub born: Duration,
    /// When it died (crash or shutdown), if it did.
    pub died: Option<Duration>,
    pub per_second: BTreeMap<u64, u32>,
}

/// A broken invariant, with what a person needs to find it in the trace.
#[derive(Debug, Clone)]
pub struct Violation {
    pub invariant: char,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant ({}) broken: {}", self.invariant, self.what)
    }
}

/// The most requests a process may send in one virtual second, after its first minute.
pub const MAX_REQUESTS_PER_SECOND: u32 = 5;
/// More requests than this in one virtual second is a busy loop, even in a process's first minute.
const BUSY: u32 = 100;
/// How long a process may send what it likes before (d) applies.
const WARM_UP: Duration = Duration::from_secs(60);

/// (a) and (b): no overlap between guards, epochs strictly increasing in order of start (across no history
/// loss: `losses` are the times the Lease's history was lost). An epoch is in the history from its write, which
/// may come before the leadership takes effect; a loss after the earlier epoch's write and before the later
/// one's excuses the later one. Both are [`Mark`]s, so a write and a loss in one virtual instant are ordered as the
/// trace logged them, and a loss is marked once the fault has been carried out.
pub fn safety(intervals: &[Interval], end_of_run: Duration, losses: &[Mark]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut sorted: Vec<&Interval> = intervals.iter().collect();
    sorted.sort_by_key(|i| (i.start, i.end.unwrap_or(end_of_run)));
    for (k, a) in sorted.iter().enumerate() {
        let a_end = a.end.unwrap_or(end_of_run);
        for b in sorted.iter().skip(k + 1) {
            if b.start >= a_end {
                break;
            }
            let same = if a.identity == b.identity {
                format!(
                    " (both with identity {}: two processes share one identity)",
                    a.identity
                )
            } else {
                String::new()
            };
            out.push(Violation {
                invariant: 'a',
                what: format!(
                    "{} led epoch {} from {:.3}s to {:.3}s while {} led epoch {} from {:.3}s{same}",
                    a.process,
                    a.epoch,
                    a.start.as_secs_f64(),
                    a_end.as_secs_f64(),
                    b.process,
                    b.epoch,
                    b.start.as_secs_f64(),
                ),
            });
        }
    }
    for pair in sorted.windows(2) {
        let lost = losses
            .iter()
            .any(|t| pair[0].written < *t && *t <= pair[1].written);
        if !lost && pair[1].epoch <= pair[0].epoch {
            out.push(Violation {
                invariant: 'b',
                what: format!(
                    "{} led epoch {} from {:.3}s after {} led epoch {} from {:.3}s",
                    pair[1].process,
                    pair[1].epoch,
                    pair[1].start.as_secs_f64(),
                    pair[0].process,
                    pair[0].epoch,
                    pair[0].start.as_secs_f64(),
                ),
            });
        }
    }
    out
}

/// (c): some leadership that started by `deadline` is still current at the end of the run, and nothing else
/// led after `deadline`. Returns the leader's interval when it holds.
pub fn liveness(intervals: &[Interval], deadline: Duration) -> Result<&Interval, Violation> {
    let after: Vec<&Interval> = intervals
        .iter()
        .filter(|i| i.end.is_none_or(|e| e > deadline))
        .collect();
    match after.as_slice() {
        [only] if only.start <= deadline && only.end.is_none() => Ok(only),
        [] => Err(Violation {
            invariant: 'c',
            what: format!("no leader at {:.3}s or after", deadline.as_secs_f64()),
        }),
        many => Err(Violation {
            invariant: 'c',
            what: format!(
                "no single stable leader from {:.3}s: {}",
                deadline.as_secs_f64(),
                many.iter()
                    .map(|i| format!(
                        "{} epoch {} {:.3}s..{}",
                        i.process,
                        i.epoch,
                        i.start.as_secs_f64(),
                        i.end
                            .map_or("end".to_owned(), |e| format!("{:.3}s", e.as_secs_f64()))
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// (d): request rate per process after its first minute.
pub fn request_rate(processes: &BTreeMap<String, Requests>) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, r) in processes {
        if let Some((second, n)) = r.per_second.iter().find(|(_, n)| **n > BUSY) {
            out.push(Violation {
                invariant: 'd',
                what: format!(
                    "{name} is in a busy loop: {n} requests in second {second}..{}",
                    second + 1
                ),
            });
            continue;
        }
        let from = (r.born + WARM_UP).as_secs();
        if let Some((second, n)) = r
            .per_second
            .range(from..)
            .find(|(_, n)| **n > MAX_REQUESTS_PER_SECOND)
        {
            out.push(Violation {
                invariant: 'd',
                what: format!(
                    "{name} sent {n} requests in second {second}..{} (at most {MAX_REQUESTS_PER_SECOND} allowed)",
                    second + 1
                ),
            });
        }
    }
    out
}
