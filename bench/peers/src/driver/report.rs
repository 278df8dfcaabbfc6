//! Results of the election bench, and their Markdown tables: one table per metric, leasehold and each peer side
//! by side, with each peer's ratio to leasehold.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::Impl;

/// Latencies (ms) and write attempts of one kind of takeover.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Takeovers {
    /// Takeovers started (release or crash sent).
    pub tried: usize,
    /// Takeovers where no new leader came within the timeout.
    pub timeouts: usize,
    /// From the release/crash to the new leader's start, ms, one per completed takeover.
    pub latencies_ms: Vec<f64>,
    /// Lease write attempts (create/update/patch, any answer) between the release/crash and the new leader.
    pub attempts: Vec<u64>,
    /// Requests of any verb (reads included) in the same window, counted the same way. Results written before this
    /// was counted have none.
    #[serde(default)]
    pub requests: Vec<u64>,
}

/// Steady-state cost over one window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Steady {
    /// Window length, s.
    pub window_s: f64,
    /// Requests/s of the leader.
    pub leader_rps: f64,
    /// Requests/s of all followers together.
    pub followers_rps: f64,
    /// Mean requests per minute of one follower.
    pub follower_mean_rpm: f64,
    /// Requests per minute of the busiest follower.
    pub follower_max_rpm: f64,
    /// Committed server writes/s.
    pub writes_ps: f64,
    /// Watch events delivered/s.
    pub watch_events_ps: f64,
    /// Requests/s of all candidates by verb.
    pub by_verb_ps: std::collections::BTreeMap<String, f64>,
    /// Candidate CPU seconds per candidate-hour over the window.
    pub cpu_s_per_candidate_hour: f64,
    /// Whether leadership changed during the window (the figures then include takeover traffic).
    pub leader_changed: bool,
}

/// Everything measured for one implementation at one N.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// Implementation.
    pub implementation: Impl,
    /// Candidates.
    pub n: usize,
    /// Runner processes the candidates were spread over.
    pub processes: usize,
    /// From spawning the processes to the first leader, ms (`None`: no leader).
    pub first_leader_ms: Option<f64>,
    /// Steady state.
    pub steady: Option<Steady>,
    /// Graceful handovers.
    pub graceful: Takeovers,
    /// Crash failovers.
    pub crash: Takeovers,
    /// Most simultaneous leaders during the cold start (spawn to the end of the settle time).
    pub max_leaders_cold: usize,
    /// Most simultaneous leaders over the whole run.
    pub max_leaders: usize,
    /// Candidate errors (first few).
    pub errors: Vec<String>,
    /// Wall time of the run, s.
    pub duration_s: f64,
}

/// Nearest-rank percentile of sorted values.
#[must_use]
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// Formats a number with a precision that suits its size.
fn num(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

fn ratio(x: f64, base: f64) -> String {
    if base == 0.0 {
        if x == 0.0 {
            "(×1)".to_owned()
        } else {
            "(leasehold 0)".to_owned()
        }
    } else {
        format!("(×{})", num(x / base))
    }
}

/// One metric: a title, a note on what it is, and how to get (value for ratios, cell text) from a result.
struct Metric {
    title: &'static str,
    note: &'static str,
    cell: fn(&RunResult) -> Option<(f64, String)>,
}

fn steady(r: &RunResult) -> Option<&Steady> {
    r.steady.as_ref()
}

fn lat_cell(t: &Takeovers, unit_s: bool) -> Option<(f64, String)> {
    let s = sorted(&t.latencies_ms);
    let scale = if unit_s { 1000.0 } else { 1.0 };
    let (p50, p99, max) = (percentile(&s, 50.0)?, percentile(&s, 99.0)?, *s.last()?);
    let unit = if unit_s { "s" } else { "ms" };
    let timeouts = if t.timeouts > 0 {
        format!(", {} timed out", t.timeouts)
    } else {
        String::new()
    };
    Some((
        p99,
        format!(
            "{} / {} / {} {unit} (n={}{timeouts})",
            num(p50 / scale),
            num(p99 / scale),
            num(max / scale),
            s.len()
        ),
    ))
}

/// The mean and the max of per-takeover counts, as "mean (max m)".
fn mean_max_cell(counts: &[u64]) -> Option<(f64, String)> {
    if counts.is_empty() {
        return None;
    }
    let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
    let max = counts.iter().max().copied().unwrap_or(0);
    Some((mean, format!("{} (max {max})", num(mean))))
}

const METRICS: &[Metric] = &[
    Metric {
        title: "Steady-state requests/s, all candidates",
        note: "leader + followers, every request the candidates sent (any verb, any answer)",
        cell: |r| {
            steady(r).map(|s| {
                (
                    s.leader_rps + s.followers_rps,
                    num(s.leader_rps + s.followers_rps),
                )
            })
        },
    },
    Metric {
        title: "Steady-state requests/s, leader",
        note: "the candidate that wrote most in the window",
        cell: |r| steady(r).map(|s| (s.leader_rps, num(s.leader_rps))),
    },
    Metric {
        title: "Steady-state requests per minute, one follower (mean / busiest)",
        note: "ratio on the mean",
        cell: |r| {
            steady(r).map(|s| {
                (
                    s.follower_mean_rpm,
                    format!("{} / {}", num(s.follower_mean_rpm), num(s.follower_max_rpm)),
                )
            })
        },
    },
    Metric {
        title: "Server writes/s (committed)",
        note: "steady state",
        cell: |r| steady(r).map(|s| (s.writes_ps, num(s.writes_ps))),
    },
    Metric {
        title: "Watch events delivered/s",
        note: "steady state, to all candidates",
        cell: |r| steady(r).map(|s| (s.watch_events_ps, num(s.watch_events_ps))),
    },
    Metric {
        title: "Write attempts per graceful takeover (mean, max)",
        note: "Lease creates/updates/patches of every candidate but the old leader, from the release to the new leader's start (stragglers up to 1 s later included); ratio on the mean",
        cell: |r| mean_max_cell(&r.graceful.attempts),
    },
    Metric {
        title: "Write attempts per crash takeover (mean, max)",
        note: "as above, from the crash",
        cell: |r| mean_max_cell(&r.crash.attempts),
    },
    Metric {
        title: "Requests per graceful takeover, reads included (mean, max)",
        note: "every request (any verb) counted as the write attempts are: the GETs that stand in for writes bound to fail show here",
        cell: |r| mean_max_cell(&r.graceful.requests),
    },
    Metric {
        title: "Requests per crash takeover, reads included (mean, max)",
        note: "as above, from the crash",
        cell: |r| mean_max_cell(&r.crash.requests),
    },
    Metric {
        title: "Graceful handover: p50 / p99 / max",
        note: "release command received by the leader's process → new leader's start; ratio on p99",
        cell: |r| lat_cell(&r.graceful, false),
    },
    Metric {
        title: "Crash failover: p50 / p99 / max",
        note: "crash of the leader → new leader's start; ratio on p99",
        cell: |r| lat_cell(&r.crash, true),
    },
    Metric {
        title: "CPU seconds per candidate-hour",
        note: "user + system time of the candidate processes over the steady window, per candidate",
        cell: |r| steady(r).map(|s| (s.cpu_s_per_candidate_hour, num(s.cpu_s_per_candidate_hour))),
    },
    Metric {
        title: "Most simultaneous leaders: cold start / whole run",
        note: "from the leadership intervals the candidates reported (CLOCK_MONOTONIC); ratio on the whole run",
        cell: |r| {
            Some((
                r.max_leaders as f64,
                format!("{} / {}", r.max_leaders_cold, r.max_leaders),
            ))
        },
    },
];

/// Renders one Markdown table per metric.
#[must_use]
pub fn tables(results: &[RunResult]) -> String {
    let impls: BTreeSet<Impl> = results.iter().map(|r| r.implementation).collect();
    let ns: BTreeSet<usize> = results.iter().map(|r| r.n).collect();
    let find = |i: Impl, n: usize| {
        results
            .iter()
            .rev()
            .find(|r| r.implementation == i && r.n == n)
    };
    let mut out = String::new();
    for m in METRICS {
        let _ = writeln!(out, "### {}\n\n{}.\n", m.title, m.note);
        let _ = write!(out, "| N |");
        for i in &impls {
            let _ = write!(out, " {i} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &impls {
            let _ = write!(out, "---|");
        }
        out.push('\n');
        for &n in &ns {
            let base = find(Impl::Leasehold, n)
                .and_then(|r| (m.cell)(r))
                .map(|c| c.0);
            let _ = write!(out, "| {n} |");
            for &i in &impls {
                let cell = match find(i, n).map(|r| (r, (m.cell)(r))) {
                    None => "not run".to_owned(),
                    Some((_, None)) => "—".to_owned(),
                    Some((_, Some((v, text)))) => match base {
                        Some(b) if i != Impl::Leasehold => format!("{text} {}", ratio(v, b)),
                        _ => text,
                    },
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "### Runs\n\n| implementation | N | processes | first leader after | wall time | errors |\n|---|---|---|---|---|---|"
    );
    for r in results {
        let first = r
            .first_leader_ms
            .map_or_else(|| "none".to_owned(), |ms| format!("{} ms", num(ms)));
        let errors = if r.errors.is_empty() {
            "0".to_owned()
        } else {
            format!("{}: {}", r.errors.len(), r.errors[0])
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {first} | {} s | {errors} |",
            r.implementation,
            r.n,
            r.processes,
            num(r.duration_s)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v[..3], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn tables_put_peers_beside_leasehold_with_ratios() {
        let result = |implementation, rps: f64| RunResult {
            implementation,
            n: 10,
            processes: 2,
            first_leader_ms: Some(1.0),
            steady: Some(Steady {
                window_s: 60.0,
                leader_rps: rps,
                ..Steady::default()
            }),
            graceful: Takeovers::default(),
            crash: Takeovers::default(),
            max_leaders_cold: 1,
            max_leaders: 1,
            errors: Vec::new(),
            duration_s: 1.0,
        };
        let md = tables(&[
            result(Impl::Leasehold, 0.5),
            result(Impl::KubeCoordinate, 1.0),
        ]);
        assert!(md.contains("| N | leasehold | kube-coordinate |"), "{md}");
        assert!(md.contains("| 10 | 0.500 | 1.00 (×2.00) |"), "{md}");
    }
}
