//! Who campaigns for a spread task, decided on every tick from this agent's view (a pure function, so the rules
//! can be tested without a cluster):
//!
//! - The member the placement chooses campaigns at once. Nobody else does, so an orphaned task (its holder crashed,
//!   or it was released) brings one election, not one per agent on the same tick.
//! - Failing it, the others take their turn: the live members other than the owner, in descending rendezvous
//!   score for the task, and then this agent if it is not one of them; the k-th of them campaigns once the task has
//!   been unheld for k fallback steps (LD + J + 1 s each: long enough for the one before to have taken it, even
//!   after waiting out a whole LD at its election's start). So no task stays orphaned when views of the membership
//!   differ, or when its owner cannot take it.
//! - An owner that has not taken an unheld task placed on it within one fallback step is reported as a no-show:
//!   placement stops counting on it until it renews something (see `liveness.rs`).
//! - A task held here that is placed elsewhere is handed over only once the new owner has been live for the
//!   settle time; one not held here (still campaigning) is given up at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use leasehold_policy::placement::score;

/// What this agent sees on one tick, for every task.
pub struct View<'a> {
    /// Our holder identity.
    pub me: &'a str,
    /// Now.
    pub now: Instant,
    /// The members placement counts on, with since when each has been live.
    pub members: &'a BTreeMap<String, Instant>,
    /// Task → the member it is placed on.
    pub placement: &'a BTreeMap<String, String>,
    /// Task → since when nobody has held it, for the tasks nobody holds.
    pub unheld: &'a BTreeMap<String, Instant>,
    /// How long a new owner must have been live before a held task is handed to it.
    pub settle: Duration,
    /// How long each fallback rank waits after the one before it.
    pub fallback_step: Duration,
}

/// What to do about one task on this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Campaign for it (start an election if none runs here).
    pub campaign: bool,
    /// A held task may be handed over now: its owner is someone else, live for the settle time.
    pub hand_over: bool,
    /// The owner failed to take the task placed on it: placement should stop counting on it.
    pub no_show: Option<String>,
}

/// Since when each unheld task has waited for its current owner: the no-show clock restarts when the owner
/// changes, so an agent is never blamed for a task placed on it only a moment ago.
#[derive(Default, Debug)]
pub struct Waiting {
    owners: BTreeMap<String, (Option<String>, Instant)>,
}

impl Waiting {
    /// Since when `task` has been placed on `owner`, as far as this tracker has seen; starts now on a change.
    fn placed_since(&mut self, task: &str, owner: Option<&String>, now: Instant) -> Instant {
        match self.owners.get(task) {
            Some((o, since)) if o.as_ref() == owner => *since,
            _ => {
                self.owners.insert(task.to_owned(), (owner.cloned(), now));
                now
            }
        }
    }

    /// Forgets tasks that are held again.
    fn forget(&mut self, task: &str) {
        self.owners.remove(task);
    }
}

/// This agent's place in the fallback order of `task`: 0 for the owner, k ≥ 1 for the k-th to try after it.
pub fn rank(
    task: &str,
    owner: Option<&str>,
    members: &BTreeMap<String, Instant>,
    me: &str,
) -> usize {
    if owner == Some(me) {
        return 0;
    }
    let mut others: Vec<&str> = members
        .keys()
        .map(String::as_str)
        .filter(|m| Some(*m) != owner)
        .collect();
    others.sort_by_cached_key(|m| (std::cmp::Reverse(score(task, m)), *m));
    match others.iter().position(|m| *m == me) {
        Some(i) => i + 1,
        None => others.len() + 1,
    }
}

/// Decides what this agent does about `task` on this tick.
pub fn decide(task: &str, view: &View<'_>, waiting: &mut Waiting) -> Decision {
    let owner = view.placement.get(task);
    let mine = owner.is_some_and(|o| o == view.me);
    let owner_settled = owner
        .filter(|o| *o != view.me)
        .and_then(|o| view.members.get(o))
        .is_some_and(|since| view.now.saturating_duration_since(*since) >= view.settle);
    let Some(unheld_since) = view.unheld.get(task).copied() else {
        waiting.forget(task);
        return Decision {
            campaign: mine,
            hand_over: owner_settled,
            no_show: None,
        };
    };
    let unheld_for = view.now.saturating_duration_since(unheld_since);
    let k = rank(task, owner.map(String::as_str), view.members, view.me);
    let fallback = k > 0 && unheld_for > view.fallback_step * u32::try_from(k).unwrap_or(u32::MAX);
    let waited = view.now.saturating_duration_since(
        waiting
            .placed_since(task, owner, view.now)
            .max(unheld_since),
    );
    let no_show = owner
        .filter(|o| *o != view.me && waited > view.fallback_step)
        .cloned();
    Decision {
        campaign: mine || fallback,
        hand_over: owner_settled,
        no_show,
    }
}

/// A task election this agent runs, as [`plan`] needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    /// It holds the task's Lease.
    pub leading: bool,
    /// It was asked to stop and release, and has not ended yet.
    pub stopping: bool,
}

/// One thing the spread loop does on a tick, in the order [`plan`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The owner of `task` failed to take it: stop counting on `owner` until it renews something.
    NoShow {
        /// The task it did not take.
        task: String,
        /// The member placed to run it.
        owner: String,
    },
    /// Start an election (and its runner) for the task.
    Campaign(String),
    /// Stop the task's election and release its Lease: it is placed elsewhere, and either not held here or held
    /// and its new owner has settled.
    Release(String),
}

/// What the spread loop does on this tick: for every task, in task order, whether this agent reports a no-show,
/// starts a campaign, or stops one. A pure function of the view, what runs here, and the no-show tracker, so the
/// loop itself only reads, calls this, and carries the actions out.
pub fn plan<'t>(
    tasks: impl IntoIterator<Item = &'t str>,
    view: &View<'_>,
    running: &BTreeMap<String, Running>,
    waiting: &mut Waiting,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for task in tasks {
        let decision = decide(task, view, waiting);
        if let Some(owner) = decision.no_show {
            actions.push(Action::NoShow {
                task: task.to_owned(),
                owner,
            });
        }
        match running.get(task) {
            None if decision.campaign => actions.push(Action::Campaign(task.to_owned())),
            // Stop campaigning at once when not holding; hand over a held task only to a settled owner.
            Some(r) if !r.stopping && !decision.campaign && (!r.leading || decision.hand_over) => {
                actions.push(Action::Release(task.to_owned()));
            }
            _ => {}
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Duration = Duration::from_secs(5);

    fn members(names: &[&str], since: Instant) -> BTreeMap<String, Instant> {
        names.iter().map(|n| ((*n).to_owned(), since)).collect()
    }

    /// Who campaigns for an orphaned task placed on `owner`, `after` its holder's term ended.
    fn campaigners(all: &[&str], owner: &str, after: Duration, t0: Instant) -> Vec<String> {
        let m = members(all, t0);
        let placement: BTreeMap<String, String> = [("t".to_owned(), owner.to_owned())].into();
        let unheld: BTreeMap<String, Instant> = [("t".to_owned(), t0)].into();
        all.iter()
            .filter(|me| {
                let view = View {
                    me,
                    now: t0 + after,
                    members: &m,
                    placement: &placement,
                    unheld: &unheld,
                    settle: Duration::from_secs(1),
                    fallback_step: STEP,
                };
                let mut w = Waiting::default();
                // The owner has been the owner since the task became unheld.
                w.placed_since("t", Some(&owner.to_owned()), t0);
                decide("t", &view, &mut w).campaign
            })
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn an_orphaned_task_brings_one_campaign_and_the_next_ranks_follow_one_step_apart() {
        let t0 = Instant::now();
        let all = ["a", "b", "c", "d", "e"];
        assert_eq!(
            campaigners(&all, "c", Duration::ZERO, t0),
            ["c"],
            "only the owner, at once"
        );
        assert_eq!(campaigners(&all, "c", STEP, t0), ["c"]);
        let m = members(&all, t0);
        let mut order: Vec<&str> = all.iter().copied().filter(|x| *x != "c").collect();
        order.sort_by_key(|x| rank("t", Some("c"), &m, x));
        for (k, next) in order.iter().enumerate() {
            assert_eq!(rank("t", Some("c"), &m, next), k + 1, "ranks are distinct");
            let after = STEP * u32::try_from(k + 1).unwrap() + Duration::from_millis(1);
            let c = campaigners(&all, "c", after, t0);
            assert_eq!(c.len(), k + 2, "{k}: {c:?}");
            assert!(c.contains(&(*next).to_owned()));
        }
    }

    #[test]
    fn an_agent_outside_the_membership_comes_last() {
        let t0 = Instant::now();
        let m = members(&["a", "b"], t0);
        assert_eq!(rank("t", Some("a"), &m, "x"), 2);
        assert_eq!(rank("t", None, &m, "x"), 3);
        assert_eq!(rank("t", None, &BTreeMap::new(), "x"), 1);
    }

    #[test]
    fn an_owner_that_does_not_take_its_task_is_a_no_show_after_one_step_of_its_own() {
        let t0 = Instant::now();
        let m = members(&["a", "b"], t0);
        let mut placement: BTreeMap<String, String> = [("t".to_owned(), "a".to_owned())].into();
        let unheld: BTreeMap<String, Instant> = [("t".to_owned(), t0)].into();
        let mut w = Waiting::default();
        let at = |now: Instant, placement: &BTreeMap<String, String>, w: &mut Waiting| {
            let view = View {
                me: "b",
                now,
                members: &m,
                placement,
                unheld: &unheld,
                settle: Duration::ZERO,
                fallback_step: STEP,
            };
            decide("t", &view, w)
        };
        assert_eq!(at(t0, &placement, &mut w).no_show, None);
        // Unheld for long, but placed on "a" only from `later` on (as this tracker saw): "a" is not blamed at once.
        let later = t0 + STEP * 3;
        let mut fresh = Waiting::default();
        assert_eq!(at(later, &placement, &mut fresh).no_show, None);
        assert_eq!(
            at(
                later + STEP + Duration::from_millis(1),
                &placement,
                &mut fresh
            )
            .no_show,
            Some("a".to_owned())
        );
        // Never ourselves: we know we are alive.
        placement.insert("t".into(), "b".into());
        let mut w2 = Waiting::default();
        at(t0, &placement, &mut w2);
        assert_eq!(at(t0 + STEP * 2, &placement, &mut w2).no_show, None);
    }

    #[test]
    fn a_held_task_is_handed_over_only_to_a_settled_owner() {
        let t0 = Instant::now();
        let m: BTreeMap<String, Instant> = [
            ("a".to_owned(), t0),
            ("b".to_owned(), t0 + Duration::from_secs(3)),
        ]
        .into();
        let placement: BTreeMap<String, String> = [("t".to_owned(), "b".to_owned())].into();
        let unheld = BTreeMap::new();
        let view = |now| View {
            me: "a",
            now,
            members: &m,
            placement: &placement,
            unheld: &unheld,
            settle: Duration::from_secs(2),
            fallback_step: STEP,
        };
        let mut w = Waiting::default();
        let d = decide("t", &view(t0 + Duration::from_secs(4)), &mut w);
        assert!(!d.campaign && !d.hand_over);
        let d = decide("t", &view(t0 + Duration::from_secs(5)), &mut w);
        assert!(!d.campaign && d.hand_over);
    }

    #[test]
    fn the_plan_starts_only_what_is_placed_here_and_releases_only_what_may_go() {
        let t0 = Instant::now();
        let m = members(&["a", "b"], t0);
        let placement: BTreeMap<String, String> = [
            ("mine".to_owned(), "a".to_owned()),
            ("theirs".to_owned(), "b".to_owned()),
            ("held-theirs".to_owned(), "b".to_owned()),
            ("trying-theirs".to_owned(), "b".to_owned()),
            ("already".to_owned(), "a".to_owned()),
        ]
        .into();
        let unheld: BTreeMap<String, Instant> = [("mine".to_owned(), t0)].into();
        let running: BTreeMap<String, Running> = [
            (
                "held-theirs".to_owned(),
                Running {
                    leading: true,
                    stopping: false,
                },
            ),
            (
                "trying-theirs".to_owned(),
                Running {
                    leading: false,
                    stopping: false,
                },
            ),
            (
                "already".to_owned(),
                Running {
                    leading: true,
                    stopping: false,
                },
            ),
        ]
        .into();
        let view = |now, settle| View {
            me: "a",
            now,
            members: &m,
            placement: &placement,
            unheld: &unheld,
            settle,
            fallback_step: STEP,
        };
        let tasks = ["already", "held-theirs", "mine", "theirs", "trying-theirs"];
        // "b" has been a member for 1 s, short of a 2 s settle time: the held task stays, the campaign stops.
        let now = t0 + Duration::from_secs(1);
        let actions = plan(
            tasks,
            &view(now, Duration::from_secs(2)),
            &running,
            &mut Waiting::default(),
        );
        assert_eq!(
            actions,
            [
                Action::Campaign("mine".into()),
                Action::Release("trying-theirs".into())
            ]
        );
        // Once "b" has settled, the held task goes too; a runner already stopping is left to finish.
        let mut stopping = running.clone();
        stopping.insert(
            "trying-theirs".into(),
            Running {
                leading: false,
                stopping: true,
            },
        );
        let actions = plan(
            tasks,
            &view(now, Duration::ZERO),
            &stopping,
            &mut Waiting::default(),
        );
        assert_eq!(
            actions,
            [
                Action::Release("held-theirs".into()),
                Action::Campaign("mine".into())
            ]
        );
    }
}
