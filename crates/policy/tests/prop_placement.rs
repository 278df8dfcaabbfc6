//! Property tests for spread-mode placement: deterministic, independent of input order,
//! total, within one of even whatever the current holders, sticky except where the bounds force
//! a move, and within the stated movement bounds (a join moves at most ceil(T/(M+1)) tasks).
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
/// may point at gone members and unknown tasks. Most tasks are held, by members chosen at
/// random, so loads drift far from even (some members hold many, some none), as sticky holders
/// did under the old cap-only rule.
fn scenario() -> impl Strategy<Value = (Vec<String>, Vec<String>, BTreeMap<String, String>)> {
    (0usize..40, 1usize..12).prop_flat_map(|(t, m)| {
        let tasks = names("task-", t);
        let members = names("member-", m);
        // Each task: held by one of the members or two gone ones, or unheld.
        let held = proptest::collection::vec(proptest::option::weighted(0.85, 0..(m + 2)), t);
        // A few entries for tasks that do not exist.
        let unknown = proptest::collection::btree_map(
            proptest::sample::select(names("gone-task-", 3)),
            proptest::sample::select(names("member-", m + 2)),
            0..3,
        );
        (Just(tasks), Just(members), held, unknown).prop_map(|(tasks, members, held, unknown)| {
            let mut current: BTreeMap<String, String> = tasks
                .iter()
                .zip(held)
                .filter_map(|(task, h)| h.map(|i| (task.clone(), format!("member-{i}"))))
                .collect();
            current.extend(unknown);
            (tasks, members, current)
        })
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
    fn total_and_within_one_of_even_whatever_the_holders((tasks, members, current) in scenario()) {
        let p = place(&tasks, &members, &current);
        prop_assert_eq!(p.len(), tasks.len());
        let (t, m) = (tasks.len(), members.len());
        for (member, _) in loads(&p) {
            prop_assert!(members.contains(&member));
        }
        // Every member, holding tasks or not, ends between floor(T/M) and ceil(T/M).
        for member in &members {
            let l = load_of(&p, member);
            prop_assert!(l >= t / m && l <= t.div_ceil(m), "{} holds {}, not within [{}, {}]", member, l, t / m, t.div_ceil(m));
        }
    }

    #[test]
    fn sticky_moves_only_what_the_bounds_force((tasks, members, current) in scenario()) {
        let p = place(&tasks, &members, &current);
        let (t, m) = (tasks.len(), members.len());
        let (floor, cap) = (t / m, t.div_ceil(m));
        let held = |member: &String| tasks.iter().filter(|t| current.get(*t) == Some(member)).count();
        // What must move: each holder's excess over the cap, plus the shortfall below the floor that the free tasks
        // (unheld, or held by a non-member) and the shed ones cannot cover.
        let kept: Vec<usize> = members.iter().map(|x| held(x).min(cap)).collect();
        let shed: usize = members.iter().map(|x| held(x).saturating_sub(cap)).sum();
        let free = t - kept.iter().sum::<usize>();
        let short: usize = kept.iter().map(|k| floor.saturating_sub(*k)).sum();
        let forced = shed + short.saturating_sub(free);
        let moved_held = tasks
            .iter()
            .filter(|task| current.get(*task).is_some_and(|h| members.contains(h) && p[*task] != *h))
            .count();
        prop_assert_eq!(moved_held, forced);
        // No holder is taken below the floor, and one at or below it keeps everything.
        for member in &members {
            let kept_here = tasks.iter().filter(|t| current.get(*t) == Some(member) && p[*t] == *member).count();
            prop_assert!(kept_here >= held(member).min(floor), "{member} kept {kept_here} of {}", held(member));
        }
        // A placement is its own fixed point: once even, nothing moves.
        prop_assert_eq!(&place(&tasks, &members, &p), &p);
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
    fn one_join_moves_at_most_the_new_cap((tasks, members, current) in scenario()) {
        let t = tasks.len();
        let m = members.len();
        let mut more = members.clone();
        more.push("joiner".into());
        let (l2, u2) = (t / (m + 1), t.div_ceil(m + 1));
        // From any placement (each is even) and from a fresh one.
        for before in [place(&tasks, &members, &current), place(&tasks, &members, &BTreeMap::new())] {
            let after = place(&tasks, &more, &before);
            let mv = moved(&before, &after);
            prop_assert!(mv <= u2, "moved {} > ceil(T/(M+1)) = {}", mv, u2);
            // The joiner reaches its floor at once, and every task that moved went to it unless it was shed
            // above the new cap.
            let joiner = load_of(&after, "joiner");
            prop_assert!(joiner >= l2 && joiner <= u2, "joiner holds {joiner}");
            let shed: usize = loads(&before).values().map(|l| l.saturating_sub(u2)).sum();
            prop_assert_eq!(mv, shed.max(l2));
        }
    }

    #[test]
    fn views_taken_during_the_hand_overs_ask_for_the_same_remaining_ones(
        (tasks, members, current) in scenario(),
        join in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        progress in proptest::collection::vec(0u8..3, 40),
    ) {
        // Every agent computes the placement from its own view, and the hand-overs a placement asks for are carried
        // out one task at a time: a view taken in between sees some of them released (free), some taken by their
        // new owner, and the rest still with their old holder. It must ask for the same remaining hand-overs and no
        // others, or two holders would each give up a task for one shortfall.
        let before = place(&tasks, &members, &current);
        let mut now_members = members.clone();
        if join {
            now_members.push("joiner".into());
        } else if members.len() >= 2 {
            let x = pick.get(&members).clone();
            now_members.retain(|m| *m != x);
        }
        let plan = place(&tasks, &now_members, &before);
        let hand_overs: Vec<&String> = tasks
            .iter()
            .filter(|t| now_members.contains(&before[*t]) && plan[*t] != before[*t])
            .collect();
        let mut mid = before.clone();
        for (i, t) in hand_overs.iter().enumerate() {
            match progress[i % progress.len()] {
                0 => {}
                1 => {
                    mid.remove(*t);
                }
                _ => {
                    mid.insert((*t).clone(), plan[*t].clone());
                }
            }
        }
        let view = place(&tasks, &now_members, &mid);
        for t in &tasks {
            let Some(h) = mid.get(t).filter(|h| now_members.contains(*h)) else {
                continue;
            };
            if hand_overs.contains(&t) && *h == before[t] {
                prop_assert_ne!(&view[t], h, "{} is still to be handed over by {}", t, h);
            } else {
                prop_assert_eq!(&view[t], h, "{} held by {} is not to move", t, h);
            }
        }
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
