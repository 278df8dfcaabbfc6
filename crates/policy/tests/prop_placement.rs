//! Property tests for spread-mode placement: deterministic, independent of input order,
//! bounded, sticky, balanced from scratch, and within the stated movement bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use leasehold_policy::placement::{bounds, loads, moved, place, place_weighted};
use proptest::prelude::*;

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn load_of(p: &BTreeMap<String, String>, m: &str) -> usize {
    p.values().filter(|v| *v == m).count()
}

/// A scenario: tasks, members (by index into a name pool) and a random "current" map that
/// may point at gone members and unknown tasks.
fn scenario() -> impl Strategy<Value = (Vec<String>, Vec<String>, BTreeMap<String, String>)> {
    (0usize..40, 1usize..12).prop_flat_map(|(t, m)| {
        let tasks = names("task-", t);
        let members = names("member-", m);
        let holders = proptest::collection::btree_map(
            proptest::sample::select(names("task-", t.max(1) + 2)),
            proptest::sample::select(names("member-", m + 2)),
            0..(t + 3),
        );
        (Just(tasks), Just(members), holders)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deterministic_and_permutation_invariant(
        (tasks, members, current) in scenario(),
        seed in any::<u64>(),
    ) {
        let a = place(&tasks, &members, &current);
        prop_assert_eq!(&a, &place(&tasks, &members, &current));
        let mut t2 = tasks.clone();
        let mut m2 = members.clone();
        // A cheap deterministic shuffle driven by the seed, plus duplicates.
        let k = (seed as usize) % (t2.len().max(1));
        let tk = k.min(t2.len());
        t2.rotate_left(tk);
        t2.reverse();
        let mk = (seed as usize >> 8) % m2.len();
        m2.rotate_left(mk);
        m2.push(m2[0].clone());
        prop_assert_eq!(a, place(&t2, &m2, &current));
    }

    #[test]
    fn bounded_total_and_sticky((tasks, members, current) in scenario()) {
        let p = place(&tasks, &members, &current);
        prop_assert_eq!(p.len(), tasks.len());
        let cap = tasks.len().div_ceil(members.len());
        for (m, l) in loads(&p) {
            prop_assert!(members.contains(&m));
            prop_assert!(l <= cap, "{} holds {} > cap {}", m, l, cap);
        }
        // Sticky: a live holder not over its cap keeps all its tasks.
        for m in &members {
            let held: Vec<&String> = tasks.iter().filter(|t| current.get(*t) == Some(m)).collect();
            if held.len() <= cap {
                for t in held {
                    prop_assert_eq!(&p[t], m);
                }
            } else {
                prop_assert_eq!(load_of(&p, m) >= cap, true);
            }
        }
    }

    #[test]
    fn fresh_start_is_balanced(t in 0usize..120, m in 1usize..40) {
        let p = place(names("t", t), names("m", m), &BTreeMap::new());
        for member in names("m", m) {
            let l = load_of(&p, &member);
            prop_assert!(l >= t / m && l <= t.div_ceil(m), "{member}: {l}");
        }
    }

    #[test]
    fn one_leave_moves_only_the_leavers_tasks(
        (tasks, members, current) in scenario(),
        pick in any::<prop::sample::Index>(),
    ) {
        prop_assume!(members.len() >= 2);
        let before = place(&tasks, &members, &current);
        let x = pick.get(&members).clone();
        let rest: Vec<&String> = members.iter().filter(|m| **m != x).collect();
        let after = place(&tasks, &rest, &before);
        prop_assert_eq!(moved(&before, &after), load_of(&before, &x));
        prop_assert!(load_of(&before, &x) <= tasks.len().div_ceil(members.len()));
    }

    #[test]
    fn one_join_moves_within_the_bound((tasks, members, current) in scenario()) {
        let t = tasks.len();
        let m = members.len();
        let before = place(&tasks, &members, &current);
        let mut more = members.clone();
        more.push("joiner".into());
        let after = place(&tasks, &more, &before);
        let (u, u2) = (t.div_ceil(m), t.div_ceil(m + 1));
        let bound = (t * (u - u2)).checked_div(u).unwrap_or(0);
        prop_assert!(moved(&before, &after) <= bound, "moved {} > {}", moved(&before, &after), bound);
        if u2 == u {
            prop_assert_eq!(moved(&before, &after), 0);
        }
        // From a balanced placement the tighter bound holds, and the joiner gets them first.
        let fresh = place(&tasks, &members, &BTreeMap::new());
        let after = place(&tasks, &more, &fresh);
        let mv = moved(&fresh, &after);
        prop_assert!(mv <= u2, "moved {mv} > {u2}");
        prop_assert!(load_of(&after, "joiner") >= mv.min(t / (m + 1)));
    }

    #[test]
    fn weighted_respects_bounds(
        t in 0usize..60,
        weights in proptest::collection::vec(0u32..5, 1..8),
    ) {
        let w: BTreeMap<String, u32> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("m{i}"), *w))
            .collect();
        let p = place_weighted(names("t", t), &w, &BTreeMap::new());
        let b = bounds(t, &w);
        if w.values().all(|w| *w == 0) {
            prop_assert!(p.is_empty());
        } else {
            prop_assert_eq!(p.len(), t);
            for (m, bm) in &b {
                let l = load_of(&p, m);
                prop_assert!(l >= bm.lower && l <= bm.upper, "{m}: {l} not in {bm:?}");
            }
        }
    }
}
