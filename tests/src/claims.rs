//! Leadership as the agents themselves report it: a log of every term an agent claimed (`status: success` in its
//! `GET /v1/election`), built from repeated samples, and a check that no two terms were claimed at once.
//!
//! # Soundness
//!
//! A sample is taken between the moment its request was sent and the moment the answer arrived, and the state it
//! shows held at some instant in that window. A term (one agent, one epoch) is continuous, so when the first
//! sample that showed it arrived at `r1` and the last one was sent at `s2`, the agent certainly claimed the term
//! throughout `[r1, s2]`. Two terms whose certain intervals intersect were claimed by two agents at the same
//! moment: a split brain as the agents report it. Samples that fail (an agent that is stopped or slow) extend
//! nothing, so the check never reports an overlap that did not happen; a short overlap between two samples can
//! go unseen, which is what the stamp tasks' flock check is for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One term claimed by one agent process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The agent process that claimed it (a name unique per process, e.g. its log name).
    pub agent: String,
    /// The holder identity it reported.
    pub holder: String,
    /// The epoch it reported.
    pub epoch: u64,
    /// When the first sample showing this term arrived.
    pub first_recv: Instant,
    /// When the last sample showing this term was sent.
    pub last_sent: Instant,
    /// How many samples showed it.
    pub samples: u64,
}

impl Claim {
    /// The interval in which the term was certainly claimed, if the samples prove one.
    pub fn certain(&self) -> Option<(Instant, Instant)> {
        (self.first_recv < self.last_sent).then_some((self.first_recv, self.last_sent))
    }
}

/// Two terms claimed at the same moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    /// The term that started first.
    pub first: Claim,
    /// The other term.
    pub second: Claim,
    /// How long both were certainly claimed.
    pub both_for: Duration,
}

/// What one sample of one agent showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sample {
    /// The agent leads, in this epoch.
    Leading {
        /// The holder identity it reports.
        holder: String,
        /// The epoch it reports.
        epoch: u64,
    },
    /// Any other status (defeat, impeached, ...).
    NotLeading,
    /// No answer (stopped, slow, gone): proves nothing either way.
    Unknown,
}

/// Every claim seen so far, per agent process.
#[derive(Debug, Default)]
pub struct ClaimLog {
    open: BTreeMap<String, Claim>,
    closed: Vec<Claim>,
}

impl ClaimLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one sample of `agent`, sent at `sent` and answered at `recv`.
    pub fn record(&mut self, agent: &str, sample: Sample, sent: Instant, recv: Instant) {
        match sample {
            Sample::Unknown => {}
            Sample::NotLeading => self.close(agent),
            Sample::Leading { holder, epoch } => {
                if let Some(open) = self.open.get_mut(agent)
                    && open.holder == holder
                    && open.epoch == epoch
                {
                    open.last_sent = open.last_sent.max(sent);
                    open.samples += 1;
                    return;
                }
                self.close(agent);
                self.open.insert(
                    agent.to_string(),
                    Claim {
                        agent: agent.to_string(),
                        holder,
                        epoch,
                        first_recv: recv,
                        last_sent: sent,
                        samples: 1,
                    },
                );
            }
        }
    }

    /// Ends the open claim of `agent`, if any (it stopped leading, or the process is gone).
    pub fn close(&mut self, agent: &str) {
        if let Some(c) = self.open.remove(agent) {
            self.closed.push(c);
        }
    }

    /// Every claim, open or closed, in order of their first sample.
    pub fn claims(&self) -> Vec<Claim> {
        let mut all: Vec<Claim> = self
            .closed
            .iter()
            .chain(self.open.values())
            .cloned()
            .collect();
        all.sort_by_key(|c| c.first_recv);
        all
    }

    /// Every pair of claims, of different terms, that were certainly claimed at the same moment.
    pub fn overlaps(&self) -> Vec<Overlap> {
        let claims = self.claims();
        let mut out = Vec::new();
        for (i, a) in claims.iter().enumerate() {
            let Some((a0, a1)) = a.certain() else {
                continue;
            };
            for b in &claims[i + 1..] {
                if a.holder == b.holder && a.epoch == b.epoch {
                    continue;
                }
                let Some((b0, b1)) = b.certain() else {
                    continue;
                };
                let (start, end) = (a0.max(b0), a1.min(b1));
                if start < end {
                    out.push(Overlap {
                        first: a.clone(),
                        second: b.clone(),
                        both_for: end - start,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn leading(holder: &str, epoch: u64) -> Sample {
        Sample::Leading {
            holder: holder.into(),
            epoch,
        }
    }

    #[test]
    fn consecutive_terms_do_not_overlap() {
        let t = Instant::now();
        let mut log = ClaimLog::new();
        log.record("a", leading("a_1", 1), at(t, 0), at(t, 5));
        log.record("a", leading("a_1", 1), at(t, 100), at(t, 105));
        log.record("b", Sample::NotLeading, at(t, 100), at(t, 105));
        log.record("a", Sample::NotLeading, at(t, 200), at(t, 205));
        log.record("b", leading("b_1", 2), at(t, 300), at(t, 305));
        log.record("b", leading("b_1", 2), at(t, 400), at(t, 405));
        assert_eq!(log.claims().len(), 2);
        assert!(log.overlaps().is_empty());
    }

    #[test]
    fn two_agents_leading_across_samples_overlap() {
        let t = Instant::now();
        let mut log = ClaimLog::new();
        log.record("a", leading("a_1", 1), at(t, 0), at(t, 5));
        log.record("b", leading("b_1", 2), at(t, 50), at(t, 55));
        log.record("a", leading("a_1", 1), at(t, 100), at(t, 105));
        log.record("b", leading("b_1", 2), at(t, 150), at(t, 155));
        let o = log.overlaps();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].both_for, Duration::from_millis(45));
    }

    #[test]
    fn unknown_samples_extend_nothing_and_single_samples_prove_nothing() {
        let t = Instant::now();
        let mut log = ClaimLog::new();
        log.record("a", leading("a_1", 1), at(t, 0), at(t, 5));
        log.record("a", Sample::Unknown, at(t, 100), at(t, 2000));
        log.record("b", leading("b_1", 2), at(t, 50), at(t, 55));
        log.record("b", leading("b_1", 2), at(t, 150), at(t, 155));
        assert!(log.overlaps().is_empty());
    }

    #[test]
    fn a_new_epoch_on_the_same_agent_is_a_new_claim() {
        let t = Instant::now();
        let mut log = ClaimLog::new();
        log.record("a", leading("a_1", 1), at(t, 0), at(t, 5));
        log.record("a", leading("a_1", 3), at(t, 100), at(t, 105));
        log.close("a");
        let claims = log.claims();
        assert_eq!(
            claims.iter().map(|c| c.epoch).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }
}
