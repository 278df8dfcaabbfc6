//! Worst-case imbalance and movement of spread-mode placement for T = 100 tasks and
//! M = 1..=50 members, under one join, one leave and a full restart (empty holders).
//!
//! Run `cargo test -p leasehold-policy --test placement_figures -- --nocapture` to print the
//! table; the test also asserts the bounds stated on `place_weighted`: every placement within
//! one of even, a join moving at most ceil(T/(M+1)) tasks, a leave moving only the leaver's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use leasehold_policy::placement::{loads, moved, place};

const T: usize = 100;
const NAME_SETS: usize = 3;
const JOINERS: usize = 10;

/// Realistic member identities, `<node>_<pod uid-ish>`, one set per seed.
fn members(seed: usize, m: usize) -> Vec<String> {
    (0..m)
        .map(|i| {
            format!(
                "node-{i:03}_{:08x}",
                (seed * 7919 + i * 104_729) as u32 ^ 0x5bd1_e995
            )
        })
        .collect()
}

fn tasks() -> Vec<String> {
    (0..T).map(|i| format!("collector-{i}")).collect()
}

/// (max load, min load) over the given members, counting members holding nothing.
fn spread(p: &BTreeMap<String, String>, members: &[String]) -> (usize, usize) {
    let counts = loads(p);
    let load = |m: &String| counts.get(m).copied().unwrap_or(0);
    (
        members.iter().map(load).max().unwrap_or(0),
        members.iter().map(load).min().unwrap_or(0),
    )
}

#[derive(Default)]
struct Row {
    fresh_max: usize,
    fresh_min: usize,
    join_moved: usize,
    join_gap: usize,
    join_max: usize,
    leave_moved: usize,
    leave_gap: usize,
    leave_max: usize,
    hist_gap: usize,
    restart_moved: usize,
}

#[test]
fn placement_figures_t100() {
    let tasks = tasks();
    let mut rows = Vec::new();
    // history[s] is the sticky state after members 0..m joined one by one.
    let mut history: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); NAME_SETS];
    for m in 1..=50usize {
        let cap = T.div_ceil(m);
        let mut row = Row {
            fresh_min: usize::MAX,
            ..Row::default()
        };
        for (s, hist) in history.iter_mut().enumerate() {
            let ms = members(s, m);
            // Full restart: empty holders.
            let fresh = place(&tasks, &ms, &BTreeMap::new());
            let (hi, lo) = spread(&fresh, &ms);
            assert!(hi <= cap && lo >= T / m, "fresh m={m}");
            row.fresh_max = row.fresh_max.max(hi);
            row.fresh_min = row.fresh_min.min(lo);
            // The sticky history: the m-th member joins the previous state.
            *hist = place(&tasks, &ms, hist);
            let (hi, lo) = spread(hist, &ms);
            assert!(
                hi <= cap && hi - lo <= 1,
                "sticky history m={m}: {lo}..{hi}"
            );
            row.hist_gap = row.hist_gap.max(hi - lo);
            row.restart_moved = row.restart_moved.max(moved(hist, &fresh));
            for prior in [&fresh, &*hist] {
                // One join, several different joiners.
                for j in 0..JOINERS {
                    let mut more = ms.clone();
                    more.push(format!("joiner-{j}_{s:04x}"));
                    let after = place(&tasks, &more, prior);
                    let mv = moved(prior, &after);
                    let u2 = T.div_ceil(m + 1);
                    assert!(mv <= u2, "join m={m}: moved {mv} > ceil(T/(M+1)) = {u2}");
                    let (hi, lo) = spread(&after, &more);
                    assert!(hi <= u2 && hi - lo <= 1, "join m={m}: {lo}..{hi}");
                    row.join_moved = row.join_moved.max(mv);
                    row.join_gap = row.join_gap.max(hi - lo);
                    row.join_max = row.join_max.max(hi);
                }
                // One leave, every member in turn.
                if m >= 2 {
                    for x in &ms {
                        let rest: Vec<String> = ms.iter().filter(|v| *v != x).cloned().collect();
                        let after = place(&tasks, &rest, prior);
                        let mv = moved(prior, &after);
                        assert!(mv <= cap, "leave m={m}");
                        let (hi, lo) = spread(&after, &rest);
                        assert!(
                            hi <= T.div_ceil(m - 1) && hi - lo <= 1,
                            "leave m={m}: {lo}..{hi}"
                        );
                        row.leave_moved = row.leave_moved.max(mv);
                        row.leave_gap = row.leave_gap.max(hi - lo);
                        row.leave_max = row.leave_max.max(hi);
                    }
                }
            }
        }
        rows.push((m, row));
    }

    println!(
        "T = {T}; worst case over {NAME_SETS} identity sets, {JOINERS} joiners, every leaver,"
    );
    println!("priors = fresh placement and the sticky state after members joined one by one");
    println!(
        "{:>3} {:>4} | {:>9} | {:>10} {:>6} {:>7} {:>5} | {:>10} {:>7} {:>7} {:>5} | {:>8} {:>8}",
        "M",
        "cap",
        "fresh",
        "join moved",
        "bound",
        "max",
        "gap",
        "leave moved",
        "bound",
        "max",
        "gap",
        "hist gap",
        "restart"
    );
    for (m, r) in &rows {
        let cap = T.div_ceil(*m);
        let u2 = T.div_ceil(m + 1);
        println!(
            "{:>3} {:>4} | {:>4}..{:<4} | {:>10} {:>6} {:>7} {:>5} | {:>11} {:>7} {:>7} {:>5} | {:>8} {:>8}",
            m,
            cap,
            r.fresh_min,
            r.fresh_max,
            r.join_moved,
            u2,
            r.join_max,
            r.join_gap,
            if *m >= 2 {
                r.leave_moved.to_string()
            } else {
                "-".into()
            },
            cap,
            if *m >= 2 {
                r.leave_max.to_string()
            } else {
                "-".into()
            },
            if *m >= 2 {
                r.leave_gap.to_string()
            } else {
                "-".into()
            },
            r.hist_gap,
            r.restart_moved,
        );
    }
    let worst = |f: fn(&Row) -> usize| rows.iter().map(|(_, r)| f(r)).max().unwrap_or(0);
    println!(
        "summary: fresh gap <= {}, join moved <= {}, leave moved <= {}, join gap <= {}, \
         leave gap <= {}, sticky-history gap <= {}, restart reshuffle <= {}",
        worst(|r| r.fresh_max - r.fresh_min),
        worst(|r| r.join_moved),
        worst(|r| r.leave_moved),
        worst(|r| r.join_gap),
        worst(|r| r.leave_gap),
        worst(|r| r.hist_gap),
        worst(|r| r.restart_moved),
    );
}
