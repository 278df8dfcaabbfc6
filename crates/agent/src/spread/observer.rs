//! What this agent sees of the spread-mode Leases: the member Leases (who is alive) and the task Leases (who
//! holds what), timed on our own monotonic clock as the election itself does, never by the records' timestamps.
//!
//! One kube-runtime watcher on `leasehold.dev/kind in (task,member)` feeds it; only agents with spread tasks run
//! it, so the member Leases' renewals reach nobody else.
//!
//! As in the election (design §3), only a new *election record* (holder, renewTime, acquireTime, duration,
//! transitions) is a sighting: a third party that rewrites labels or annotations must not keep a dead agent's
//! member or task Lease alive. Each sighting of a record naming a holder also tells [`Liveness`] that the holder
//! renewed something, which is what placement needs to stop counting on an agent whose task Leases lapsed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;

use super::liveness::Liveness;

/// One observed Lease.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The holder identity ("" when released or never held).
    pub holder: String,
    /// When we last saw a new version of it.
    pub observed_at: Instant,
    /// Its leaseDurationSeconds (as written by the holder).
    pub duration: Duration,
    /// uid and resourceVersion, for guarded deletes.
    pub uid: String,
    /// resourceVersion of the version last seen.
    pub resource_version: String,
    /// When the current holder was first seen holding it (for members: since when this member is live).
    pub holder_since: Instant,
    /// The latest version, to tell a task election spawned later what this agent already saw of it.
    pub lease: Arc<Lease>,
}

impl Seen {
    /// Whether the holder's term is still running at `now` by our clock: the last new version seen plus the longer
    /// of the record's duration and `floor` (our own configured duration).
    pub fn live(&self, now: Instant, floor: Duration) -> bool {
        !self.holder.is_empty() && now < self.observed_at + self.duration.max(floor)
    }

    /// When the holder's term ends by our clock (see [`Seen::live`]).
    pub fn term_end(&self, floor: Duration) -> Instant {
        self.observed_at + self.duration.max(floor)
    }

    /// Since when nobody has held it, if nobody does at `now`.
    pub fn unheld_since(&self, now: Instant, floor: Duration) -> Option<Instant> {
        if self.holder.is_empty() {
            Some(self.observed_at)
        } else if self.live(now, floor) {
            None
        } else {
            Some(self.term_end(floor))
        }
    }
}

/// The observed member and task Leases, by Lease name.
#[derive(Default, Debug)]
pub struct Observed {
    /// Member Leases.
    pub members: BTreeMap<String, Seen>,
    /// Task Leases.
    pub tasks: BTreeMap<String, Seen>,
    /// When each task Lease was seen deleted or never seen, so a task can be orphaned without a Lease at all.
    pub absent_since: BTreeMap<String, Instant>,
    /// Task moves seen: a task Lease taken by a holder other than its previous one (released or not in between).
    pub moves: u64,
    /// The last non-empty holder of each task Lease, to count moves across a release.
    last_holder: BTreeMap<String, String>,
    /// The highest `leaseTransitions` seen on each task Lease, kept across deletion and relists, so a task
    /// election spawned later never reuses an epoch (after a wiped API server, say).
    pub max_epoch: BTreeMap<String, u64>,
    /// During a relist: the Leases seen so far (the others are dropped when it completes).
    relist: Option<std::collections::BTreeSet<String>>,
    /// Which holders renew, and which stopped: fed by every sighting and every task term seen to end.
    liveness: Liveness,
}

/// Which bucket a Lease belongs in, by its `leasehold.dev/kind` label.
fn kind(lease: &Lease) -> Option<&str> {
    lease
        .metadata
        .labels
        .as_ref()?
        .get(leasehold_policy::lease_name::KIND_LABEL)
        .map(String::as_str)
}

impl Observed {
    /// Records a new or changed Lease.
    pub fn apply(&mut self, lease: &Lease, now: Instant) {
        let Some(name) = lease.metadata.name.clone() else {
            return;
        };
        if let Some(seen) = self.relist.as_mut() {
            seen.insert(name.clone());
        }
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        let is_task = match kind(lease) {
            Some("member") => false,
            Some("task") => true,
            _ => return,
        };
        let previous = if is_task {
            self.tasks.get(&name)
        } else {
            self.members.get(&name)
        };
        if previous.is_some_and(|p| p.resource_version == rv) {
            return;
        }
        // Only a new election record is a sighting; labels and annotations alone keep the old one's instant.
        let (sighting, observed_at) = match previous {
            Some(p) if leasehold_lease::same_record(&p.lease, lease) => (false, p.observed_at),
            _ => (true, now),
        };
        let holder_since = match previous {
            Some(p) if p.holder == holder => p.holder_since,
            _ => now,
        };
        if sighting && !holder.is_empty() {
            self.liveness.renewed(&holder, now);
        }
        if is_task {
            let epoch = u64::try_from(spec.lease_transitions.unwrap_or(0)).unwrap_or(0);
            let max = self.max_epoch.entry(name.clone()).or_default();
            *max = (*max).max(epoch);
        }
        if is_task && !holder.is_empty() {
            match self.last_holder.insert(name.clone(), holder.clone()) {
                Some(last) if last != holder => self.moves += 1,
                _ => {}
            }
        }
        let bucket = if is_task {
            &mut self.tasks
        } else {
            &mut self.members
        };
        bucket.insert(
            name.clone(),
            Seen {
                holder,
                observed_at,
                duration,
                uid: lease.metadata.uid.clone().unwrap_or_default(),
                resource_version: rv,
                holder_since,
                lease: Arc::new(lease.clone()),
            },
        );
        if is_task {
            self.absent_since.remove(&name);
        }
    }

    /// Records a deleted Lease.
    pub fn delete(&mut self, lease: &Lease, now: Instant) {
        let Some(name) = lease.metadata.name.as_deref() else {
            return;
        };
        self.members.remove(name);
        if self.tasks.remove(name).is_some() {
            self.absent_since.insert(name.to_string(), now);
        }
    }

    /// A relist begins (kube-runtime's watcher restarts from a fresh list): what it does not list again is
    /// dropped when it completes, and until then the last known state stands.
    pub fn relist_started(&mut self) {
        self.relist = Some(std::collections::BTreeSet::new());
    }

    /// A relist completed: Leases it did not list are gone.
    pub fn relist_done(&mut self, now: Instant) {
        let Some(seen) = self.relist.take() else {
            return;
        };
        self.members.retain(|n, _| seen.contains(n));
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|n| !seen.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            self.tasks.remove(&name);
            self.absent_since.insert(name, now);
        }
    }

    /// The live members at `now`: their holder identities, with since when each has been live.
    pub fn live_members(&self, now: Instant, floor: Duration) -> BTreeMap<String, Instant> {
        self.members
            .values()
            .filter(|s| s.live(now, floor))
            .map(|s| (s.holder.clone(), s.holder_since))
            .collect()
    }

    /// The members placement may count on at `now`: live by their member Lease (`member_ld`), and not lapsed, with
    /// since when each has been so (a member that came back after a lapse settles again from its return).
    ///
    /// A member lapses when one of its task Leases' terms (`ld`) ends with no new record of it seen since, or when
    /// it did not take a task placed on it ([`Observed::no_show`]); it counts again once it renews anything. So a
    /// crashed agent drops out of placement when its first task term ends, not when its slow member Lease does,
    /// and no task is placed back on it meanwhile.
    pub fn placement_members(
        &mut self,
        now: Instant,
        ld: Duration,
        member_ld: Duration,
    ) -> BTreeMap<String, Instant> {
        for seen in self.tasks.values() {
            if !seen.holder.is_empty() && !seen.live(now, ld) {
                self.liveness.term_ended(&seen.holder, seen.term_end(ld));
            }
        }
        let live = self.live_members(now, member_ld);
        // Forget what nobody refers to any more: departed agents leave nothing behind here.
        self.liveness
            .retain(|h| live.contains_key(h) || self.tasks.values().any(|s| s.holder == h));
        live.into_iter()
            .filter(|(holder, _)| !self.liveness.is_lapsed(holder))
            .map(|(holder, since)| {
                let since = self
                    .liveness
                    .back_since(&holder)
                    .map_or(since, |b| b.max(since));
                (holder, since)
            })
            .collect()
    }

    /// `holder` did not take a task placed on it within the fallback time: placement stops counting on it until
    /// it renews something.
    pub fn no_show(&mut self, holder: &str, now: Instant) {
        self.liveness.term_ended(holder, now);
    }

    /// The last non-empty holder seen on a task Lease, whose own release a late election may trust.
    pub fn last_holder(&self, name: &str) -> Option<&str> {
        self.last_holder.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use kube::api::ObjectMeta;

    fn lease(name: &str, kind: &str, holder: &str, rv: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                labels: Some([("leasehold.dev/kind".to_string(), kind.to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(10),
                // Each resourceVersion here is a renewal: a new election record.
                renew_time: Some(MicroTime(
                    jiff::Timestamp::from_second(rv.parse().unwrap_or(0)).unwrap(),
                )),
                ..LeaseSpec::default()
            }),
        }
    }

    /// `l` with only a label changed, as a GitOps reconciler would write it, at resourceVersion `rv`.
    fn relabelled(l: &Lease, rv: &str) -> Lease {
        let mut l = l.clone();
        l.metadata.resource_version = Some(rv.into());
        l.metadata
            .labels
            .get_or_insert_default()
            .insert("team".into(), "infra".into());
        l
    }

    const LD: Duration = Duration::from_secs(10);
    const MEMBER_LD: Duration = Duration::from_secs(60);

    #[test]
    fn a_label_change_is_no_sighting() {
        let t0 = Instant::now();
        let mut o = Observed::default();
        let m = lease("m1", "member", "node-a_1", "1");
        o.apply(&m, t0);
        o.apply(&relabelled(&m, "2"), t0 + Duration::from_secs(8));
        assert!(
            o.live_members(t0 + Duration::from_secs(11), Duration::from_secs(5))
                .is_empty(),
            "a dead member's Lease relabelled by a third party stays dead"
        );
        assert_eq!(
            o.members["m1"].resource_version, "2",
            "the newest version is kept for guarded deletes"
        );
    }

    #[test]
    fn an_agent_whose_task_term_ran_out_leaves_placement_until_it_renews_again() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut o = Observed::default();
        for (who, rv) in [("a", "1"), ("b", "2")] {
            o.apply(&lease(&format!("m-{who}"), "member", who, rv), t0);
        }
        o.apply(&lease("t1", "task", "a", "3"), t0);
        o.apply(&lease("t2", "task", "a", "4"), t0 + s);
        let members = |o: &mut Observed, at: Duration| {
            o.placement_members(t0 + at, LD, MEMBER_LD)
                .into_keys()
                .collect::<Vec<_>>()
        };
        assert_eq!(members(&mut o, s * 9), ["a", "b"]);
        // t1's term (10 s from its sighting) ends with no newer record from "a": "a" is out, although its member
        // Lease (60 s) and its t2 term still run.
        assert_eq!(members(&mut o, s * 10 + s / 2), ["b"]);
        // Another agent takes t1 over: the evidence is gone, the lapse is not.
        o.apply(&lease("t1", "task", "b", "5"), t0 + s * 11);
        assert_eq!(members(&mut o, s * 12), ["b"]);
        o.apply(&lease("t1", "task", "b", "6"), t0 + s * 19);
        assert_eq!(members(&mut o, s * 20), ["b"]);
        // "a" renews its member Lease (it was cut off, not dead): back, and settling from its return.
        o.apply(&lease("m-a", "member", "a", "7"), t0 + s * 21);
        let back = o.placement_members(t0 + s * 22, LD, MEMBER_LD);
        assert_eq!(back.get("a"), Some(&(t0 + s * 21)));
        assert_eq!(back.get("b"), Some(&t0));
    }

    #[test]
    fn a_no_show_leaves_placement_until_it_renews_again() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut o = Observed::default();
        o.apply(&lease("m-a", "member", "a", "1"), t0);
        o.no_show("a", t0 + s);
        assert!(o.placement_members(t0 + s * 2, LD, MEMBER_LD).is_empty());
        o.apply(&lease("t", "task", "a", "2"), t0 + s * 3);
        assert!(
            o.placement_members(t0 + s * 3, LD, MEMBER_LD)
                .contains_key("a")
        );
    }

    #[test]
    fn liveness_runs_on_our_clock_from_the_last_new_version() {
        let t0 = Instant::now();
        let mut o = Observed::default();
        o.apply(&lease("m1", "member", "node-a_1", "1"), t0);
        let floor = Duration::from_secs(5);
        assert!(
            o.live_members(t0 + Duration::from_secs(9), floor)
                .contains_key("node-a_1")
        );
        assert!(
            o.live_members(t0 + Duration::from_secs(11), floor)
                .is_empty()
        );
        // The same version again does not extend the term; a new one does.
        o.apply(
            &lease("m1", "member", "node-a_1", "1"),
            t0 + Duration::from_secs(8),
        );
        assert!(
            o.live_members(t0 + Duration::from_secs(11), floor)
                .is_empty()
        );
        o.apply(
            &lease("m1", "member", "node-a_1", "2"),
            t0 + Duration::from_secs(8),
        );
        assert!(
            o.live_members(t0 + Duration::from_secs(11), floor)
                .contains_key("node-a_1")
        );
    }

    #[test]
    fn task_moves_count_every_change_of_holder_across_releases() {
        let t0 = Instant::now();
        let mut o = Observed::default();
        o.apply(&lease("t", "task", "a", "1"), t0);
        o.apply(&lease("t", "task", "", "2"), t0);
        assert_eq!(o.moves, 0, "a release alone is no move");
        o.apply(&lease("t", "task", "b", "3"), t0);
        assert_eq!(o.moves, 1, "taken by another after a release");
        o.apply(&lease("t", "task", "c", "4"), t0);
        assert_eq!(o.moves, 2, "taken over directly");
        let seen = &o.tasks["t"];
        assert_eq!(seen.unheld_since(t0, Duration::from_secs(1)), None);
        assert!(
            seen.unheld_since(t0 + Duration::from_secs(11), Duration::from_secs(1))
                .is_some()
        );
    }

    #[test]
    fn the_highest_task_epoch_survives_deletion_and_relists() {
        let t0 = Instant::now();
        let mut o = Observed::default();
        let mut l = lease("t", "task", "a", "1");
        l.spec.as_mut().unwrap().lease_transitions = Some(5);
        o.apply(&l, t0);
        o.delete(&l, t0);
        o.relist_started();
        o.relist_done(t0);
        assert_eq!(o.max_epoch.get("t"), Some(&5));
        let mut lower = lease("t", "task", "b", "2");
        lower.spec.as_mut().unwrap().lease_transitions = Some(1);
        o.apply(&lower, t0);
        assert_eq!(
            o.max_epoch.get("t"),
            Some(&5),
            "a re-created Lease at a lower epoch does not lower it"
        );
    }
}
