//! Election behaviour against the bundled leasehold-apiserver, with short durations (LD 2 s, RD 1.5 s,
//! RP 0.5 s unless a test says otherwise).
//!
//! These are timing tests: they assert ordering, absence of overlap and request counts, never speed. They
//! must run one at a time, so this is one test binary and it is run with one thread:
//!
//! ```text
//! cargo test -p leasehold-lease --test election -- --test-threads=1
//! ```
//!
//! (with nextest, put the `election` binary in a test group with `max-threads = 1`). As a safety net, every
//! test holds a process-wide lock while its cluster lives, so a plain `cargo test` also runs them one at a
//! time; nextest runs each test in its own process, where only the test group helps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may fail loudly

mod crowd;
mod harness;
mod late_watch;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use harness::*;
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use leasehold_apiserver::{ErrorInjection, PartitionMode};
use leasehold_lease::{
    ELECTION_NAMESPACE_ANNOTATION, ElectionState, ElectorError, OwnerCheck, RELEASED_BY_ANNOTATION,
};
use serde_json::json;

/// Creates `lease` on the stand-in, as a third party would.
async fn create_foreign(cluster: &Cluster, lease: Lease) -> anyhow::Result<Lease> {
    Ok(cluster
        .leases()
        .create(&PostParams::default(), &lease)
        .await?)
}

fn foreign_lease(holder: &str, duration: Option<i32>, renew_offset_secs: i64) -> Lease {
    let renew = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(renew_offset_secs))
        .unwrap();
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.into()),
            namespace: Some(NS.into()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "leasehold".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: duration,
            lease_transitions: Some(3),
            acquire_time: Some(MicroTime(renew)),
            renew_time: Some(MicroTime(renew)),
            ..LeaseSpec::default()
        }),
    }
}

/// 1. A Lease whose renewTime lies 1 h in the past or the future changes neither who may acquire nor when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_renew_time_in_past_or_future_changes_nothing() -> anyhow::Result<()> {
    for offset in [-3600, 3600] {
        let cluster = Cluster::start().await?;
        create_foreign(&cluster, foreign_lease("ghost_1", Some(2), offset)).await?;
        let t0 = Instant::now();
        let a = cluster.candidate("node-a", "1").await?;
        let guard = a.wait_leading(settle()).await?;
        // Taken only after a full LD of local observation: the expired (or future) renewTime is ignored.
        assert!(
            guard.started_at() >= t0 + LD,
            "offset {offset}s: acquired after {:?}",
            guard.started_at() - t0
        );
        assert_eq!(guard.epoch(), 4);
        cluster.timeline.assert_no_overlap();
    }
    Ok(())
}

/// 2. Every write carries uid and resourceVersion; a 409 is followed by an observation; a cached object
/// written after the Lease was deleted gets refused, never silently re-creates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_writes_observe_after_conflict_and_never_recreate() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let a = cluster.candidate("node-a", "1").await?;
    let first = a.wait_leading(settle()).await?;
    // Freeze the leader's watch so its cache goes stale, then change the Lease behind its back.
    cluster
        .server
        .faults()
        .partition(&a.user, PartitionMode::FreezeWatches);
    let gets_before = cluster.counters().requests(&a.user, "get");
    cluster
        .leases()
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/touched": "yes"}}})),
        )
        .await?;
    until("a renew refused with 409", settle(), || {
        cluster
            .counters()
            .requests_where(Some(&a.user), Some("update"), None, Some(409))
            >= 1
    })
    .await?;
    until("a GET after the 409", settle(), || {
        cluster.counters().requests(&a.user, "get") > gets_before
    })
    .await?;
    // The GET refreshed the cache: the next renew succeeds and leadership never lapsed.
    let updates_ok =
        cluster
            .counters()
            .requests_where(Some(&a.user), Some("update"), None, Some(200));
    until("a successful renew after the GET", settle(), || {
        cluster
            .counters()
            .requests_where(Some(&a.user), Some("update"), None, Some(200))
            > updates_ok
    })
    .await?;
    assert!(
        first.is_current(),
        "a conflict answered by observing must not cost leadership"
    );
    assert_eq!(
        cluster
            .counters()
            .requests_where(Some(&a.user), Some("update"), None, Some(409)),
        1,
        "no blind retry after a 409"
    );

    // Delete the Lease while the leader's cache is stale: its renew must be refused, not re-create it.
    cluster
        .leases()
        .delete(LEASE, &DeleteParams::default())
        .await?;
    let deleted_at = Instant::now();
    let refused = |c: &leasehold_apiserver::Counters| {
        c.requests_where(Some(&a.user), Some("update"), None, Some(409))
            + c.requests_where(Some(&a.user), Some("update"), None, Some(404))
    };
    until(
        "the renew of the deleted Lease is refused",
        settle(),
        || refused(&cluster.counters()) >= 2,
    )
    .await?;
    first.lost().await;
    cluster.server.faults().heal(&a.user);
    // It comes back only through a create, with a later epoch, after the old term.
    let second = a.wait_leading(settle() + LD).await?;
    assert!(
        second.epoch() > first.epoch(),
        "epoch repeated across deletion"
    );
    assert!(second.started_at() >= deleted_at);
    assert_eq!(
        cluster
            .counters()
            .requests_where(Some(&a.user), Some("create"), None, Some(201)),
        2
    );
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 3. The leader makes at most 1 request per RP in steady state: a PUT, no GET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_costs_one_put_per_retry_period() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let cands = [
        cluster.candidate("node-a", "1").await?,
        cluster.candidate("node-b", "1").await?,
    ];
    let a = &cands[wait_one_leader(&cands, settle()).await?];
    let guard = a.wait_leading(settle()).await?;
    let before = cluster.counters();
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let after = cluster.counters();
    let d = |verb: &str| after.requests(&a.user, verb) - before.requests(&a.user, verb);
    let max = (window.as_secs_f64() / RP.as_secs_f64()).ceil() as u64 + 1;
    assert!(
        d("update") <= max,
        "{} renews in {window:?}, at most {max} allowed",
        d("update")
    );
    assert!(
        d("update") >= max / 2,
        "the leader must keep renewing: {} renews",
        d("update")
    );
    assert_eq!(
        d("get"),
        0,
        "the leader renews from its cache, without a GET"
    );
    assert_eq!(d("create") + d("patch") + d("delete") + d("list"), 0);
    assert!(guard.is_current());
    Ok(())
}

/// 4. Followers make no requests in steady state apart from watch re-opens (at most 1 per minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_make_no_requests_in_steady_state() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let a = cluster.candidate("node-a", "1").await?;
    a.wait_leading(settle()).await?;
    let followers = [
        cluster.candidate("node-b", "1").await?,
        cluster.candidate("node-c", "1").await?,
        cluster.candidate("node-d", "1").await?,
    ];
    // Let them list and settle.
    until("followers see the leader", settle(), || {
        followers
            .iter()
            .all(|f| f.state().holder() == Some(a.user.as_str()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = cluster.counters();
    let window = Duration::from_secs(8);
    tokio::time::sleep(window).await;
    let after = cluster.counters();
    for f in &followers {
        let d = |verb: &str| after.requests(&f.user, verb) - before.requests(&f.user, verb);
        assert_eq!(
            election_requests(&after, &f.user),
            election_requests(&before, &f.user),
            "{}",
            f.user
        );
        assert_eq!(d("list"), 0, "{}: no relist in steady state", f.user);
        assert!(
            d("watch") <= 1,
            "{}: {} watch re-opens in {window:?}",
            f.user,
            d("watch")
        );
        assert!(
            after.watch_events(&f.user) > before.watch_events(&f.user),
            "{} sees renewals",
            f.user
        );
    }
    Ok(())
}

/// 5a. With the leader partitioned, its lost() fires before any follower acquires, and there is no overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_stops_before_a_follower_starts() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let cands = [
        cluster.candidate("node-a", "1").await?,
        cluster.candidate("node-b", "1").await?,
        cluster.candidate("node-c", "1").await?,
    ];
    let i = wait_one_leader(&cands, settle()).await?;
    let old = cands[i].wait_leading(Duration::from_secs(1)).await?;
    cluster
        .server
        .faults()
        .partition(&cands[i].user, PartitionMode::Full);
    let partitioned_at = Instant::now();
    old.lost().await;
    let lost_at = old.ended_at().unwrap();
    assert!(
        lost_at - partitioned_at <= RD + Duration::from_millis(200),
        "lost after {:?}",
        lost_at - partitioned_at
    );
    let j = wait_one_leader(&cands, settle()).await?;
    assert_ne!(i, j);
    let new = cands[j].wait_leading(Duration::from_secs(1)).await?;
    assert!(
        new.started_at() >= lost_at,
        "the follower started before the partitioned leader stopped"
    );
    assert!(new.epoch() > old.epoch());
    cluster.server.faults().heal(&cands[i].user);
    until(
        "the healed old leader follows the new one",
        settle(),
        || cands[i].state().holder() == Some(cands[j].user.as_str()),
    )
    .await?;
    cluster.timeline.assert_no_overlap();
    assert_eq!(cluster.timeline.intervals().len(), 2);
    Ok(())
}

/// 5b. With the leader's watch frozen while its writes still work, it stays safe (and keeps leading).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_with_frozen_watch_stays_safe() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let cands = [
        cluster.candidate("node-a", "1").await?,
        cluster.candidate("node-b", "1").await?,
    ];
    let i = wait_one_leader(&cands, settle()).await?;
    let guard = cands[i].wait_leading(Duration::from_secs(1)).await?;
    cluster
        .server
        .faults()
        .partition(&cands[i].user, PartitionMode::FreezeWatches);
    tokio::time::sleep(LD * 3).await;
    assert!(
        guard.is_current(),
        "renewing through writes keeps leadership"
    );
    assert_eq!(
        cluster.timeline.intervals().len(),
        1,
        "no follower took over"
    );
    cluster.server.faults().heal(&cands[i].user);
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 5c. A renew success that arrives after the deadline doesn't restore leadership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_success_after_the_deadline_does_not_restore_leadership() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let a = cluster.candidate("node-a", "1").await?;
    let old = a.wait_leading(settle()).await?;
    // Every request now takes longer than RD: the next renew is committed by the server after our deadline.
    cluster
        .server
        .faults()
        .latency(Some(RD + Duration::from_millis(500)));
    old.lost().await;
    let lost_at = old.ended_at().unwrap();
    let versions = cluster.record_versions();
    until("a renew committed after the deadline", settle(), || {
        versions.all().iter().any(|(at, l)| {
            *at > lost_at
                && l.as_ref()
                    .is_some_and(|l| holder_of(l) == Some(a.user.as_str()))
        })
    })
    .await?;
    assert!(
        !old.is_current(),
        "the late success must not revive the old guard"
    );
    cluster.server.faults().latency(None);
    // Coming back takes a new acquire with a new epoch.
    let back = a.wait_leading(settle()).await?;
    assert!(
        back.epoch() > old.epoch(),
        "{} then {}",
        old.epoch(),
        back.epoch()
    );
    assert!(!old.is_current());
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 6. A graceful release carries released-by, and a follower acquires right after the release event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_hands_over_at_once() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let versions = cluster.record_versions();
    let cands = [
        cluster.candidate("node-a", "1").await?,
        cluster.candidate("node-b", "1").await?,
        cluster.candidate("node-c", "1").await?,
    ];
    let mut handovers = Vec::new();
    for _ in 0..6 {
        let i = wait_one_leader(&cands, settle()).await?;
        let old = cands[i].wait_leading(Duration::from_secs(1)).await?;
        // Let followers observe a renew or two.
        tokio::time::sleep(RP * 2).await;
        cands[i].handle.step_down().await?;
        let ended = old.ended_at().expect("step_down ends leadership first");
        let j = wait_one_leader(&cands, settle()).await?;
        assert_ne!(i, j, "the stepped-down candidate sits out its cool-down");
        let new = cands[j].wait_leading(Duration::from_secs(1)).await?;
        let handover = new.started_at() - ended;
        assert!(
            handover < LD,
            "handover took {handover:?}: the release did not free the Lease early"
        );
        handovers.push(handover);
        // The release version was written by the holder itself.
        let released = versions.all().into_iter().any(|(_, l)| {
            l.is_some_and(|l| {
                holder_of(&l).is_none()
                    && l.spec.as_ref().and_then(|s| s.lease_duration_seconds) == Some(1)
                    && l.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(RELEASED_BY_ANNOTATION))
                        == Some(&cands[i].user)
            })
        });
        assert!(released, "no release version by {}", cands[i].user);
    }
    handovers.sort();
    eprintln!(
        "release handover (old leader's end -> new leader's start), J = RP = {RP:?}: min {:?}, median {:?}, max {:?}, all {handovers:?}",
        handovers[0],
        handovers[handovers.len() / 2],
        handovers[handovers.len() - 1]
    );
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 7. A Lease deleted mid-term, blanked by someone other than the holder, or edited to a shorter duration:
/// no follower acquires before the old holder's full term has passed; a re-created Lease continues the epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_parties_cannot_shorten_a_term() -> anyhow::Result<()> {
    for edit in ["delete", "blank", "shorten"] {
        let cluster = Cluster::start().await?;
        let versions = cluster.record_versions();
        let cands = [
            cluster.candidate("node-a", "1").await?,
            cluster.candidate("node-b", "1").await?,
            cluster.candidate("node-c", "1").await?,
        ];
        let i = wait_one_leader(&cands, settle()).await?;
        let old = cands[i].wait_leading(Duration::from_secs(1)).await?;
        tokio::time::sleep(RP * 2).await;
        // The holder goes silent (it may still be acting until its term ends) ...
        cluster
            .server
            .faults()
            .partition(&cands[i].user, PartitionMode::Full);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // ... and a third party tries to end its term early.
        match edit {
            "delete" => {
                cluster
                    .leases()
                    .delete(LEASE, &DeleteParams::default())
                    .await?;
            }
            "blank" => {
                cluster
                    .leases()
                    .patch(
                        LEASE,
                        &PatchParams::default(),
                        &Patch::Merge(
                            json!({"spec": {"holderIdentity": "", "leaseDurationSeconds": 1}}),
                        ),
                    )
                    .await?;
            }
            _ => {
                cluster
                    .leases()
                    .patch(
                        LEASE,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"leaseDurationSeconds": 1}})),
                    )
                    .await?;
            }
        }
        let j = takeover_from(&cands, i, settle())
            .await
            .with_context(|| edit.to_string())?;
        assert_ne!(i, j);
        let new = cands[j].wait_leading(Duration::from_secs(1)).await?;
        // The old holder's last renew as the admin's watch saw it; the followers saw it no earlier.
        let last_renew = versions
            .all()
            .iter()
            .filter(|(_, l)| {
                l.as_ref()
                    .is_some_and(|l| holder_of(l) == Some(cands[i].user.as_str()))
            })
            .map(|(at, _)| *at)
            .max()
            .unwrap();
        let margin = Duration::from_millis(100);
        assert!(
            new.started_at() + margin >= last_renew + LD,
            "{edit}: acquired {:?} after the holder's last renew, before its term of {LD:?} ended",
            new.started_at() - last_renew
        );
        assert!(
            new.epoch() > old.epoch(),
            "{edit}: epoch {} then {}",
            old.epoch(),
            new.epoch()
        );
        cluster.server.faults().heal(&cands[i].user);
        cluster.timeline.assert_no_overlap();
    }
    Ok(())
}

/// 8a. Two candidates with the same node but different instances (a rollout) never lead together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_node_other_instance_never_leads_together() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let cands = [
        cluster.candidate("node-a", "old-pod").await?,
        cluster.candidate("node-a", "new-pod").await?,
    ];
    for round in 0..4 {
        let i = wait_one_leader(&cands, settle()).await?;
        if round % 2 == 0 {
            cands[i].handle.step_down().await?;
        } else {
            cluster
                .server
                .faults()
                .partition(&cands[i].user, PartitionMode::Full);
            until("the other instance takes over", settle(), || {
                cands[1 - i].is_leading()
            })
            .await?;
            cluster.server.faults().heal(&cands[i].user);
        }
        until("the other instance leads", settle(), || {
            cands[1 - i].is_leading()
        })
        .await?;
    }
    cluster.timeline.assert_no_overlap();
    assert!(cluster.timeline.intervals().len() >= 5);
    Ok(())
}

/// 8b. A restarted candidate treats a Lease naming its node but another instance as foreign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_candidate_treats_its_old_instance_as_foreign() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    create_foreign(&cluster, foreign_lease("node-a_old-pod", Some(2), 0)).await?;
    let t0 = Instant::now();
    let a = cluster.candidate("node-a", "new-pod").await?;
    let guard = a.wait_leading(settle()).await?;
    assert!(
        guard.started_at() >= t0 + LD,
        "took its old instance's Lease without waiting the term out"
    );
    Ok(())
}

/// 9. With 50 followers on separate connections, a release leads to at most 5 acquire attempts and an
/// expiry to at most 10, counted by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herd_of_fifty_makes_few_attempts() -> anyhow::Result<()> {
    let within = herd_within();
    let cluster = Cluster::start().await?;
    // cands[0] leads first; the 50 others follow, each with its own user, client and watch connection.
    let cands = herd(&cluster, "node-leader", 50).await?;
    let all_see = |holder: &str| cands.iter().all(|c| c.state().holder() == Some(holder));
    until("all followers see the leader", within, || {
        all_see(&cands[0].user)
    })
    .await?;
    tokio::time::sleep(HERD_TIMINGS.2 * 2).await;

    // Release.
    let before = writes_of(&cluster, &cands);
    cands[0].handle.step_down().await?;
    let i = takeover_from(&cands, 0, within).await?;
    tokio::time::sleep(HERD_TIMINGS.0).await;
    let release_attempts = takeover_attempts(&before, &writes_of(&cluster, &cands), 0, i);

    // Expiry: the new leader goes silent.
    until("all see the new leader", within, || all_see(&cands[i].user)).await?;
    tokio::time::sleep(HERD_TIMINGS.2 * 2).await;
    let before = writes_of(&cluster, &cands);
    cluster
        .server
        .faults()
        .partition(&cands[i].user, PartitionMode::Full);
    let j = takeover_from(&cands, i, within).await?;
    tokio::time::sleep(HERD_TIMINGS.0).await;
    let expiry_attempts = takeover_attempts(&before, &writes_of(&cluster, &cands), i, j);
    println!(
        "herd of 50: release -> {release_attempts} acquire attempts, expiry -> {expiry_attempts} acquire attempts"
    );
    assert!(
        release_attempts <= 5,
        "release: {release_attempts} attempts"
    );
    assert!(expiry_attempts <= 10, "expiry: {expiry_attempts} attempts");
    cluster.server.faults().heal(&cands[i].user);
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 10a. A garbage holder and an absent or 1-second duration: no panic, no overlap, a leader after our LD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_records_are_waited_out() -> anyhow::Result<()> {
    for (holder, duration) in [
        ("%% not an identity %%", None),
        ("node-x_1", Some(1)),
        ("", None),
    ] {
        let cluster = Cluster::start().await?;
        create_foreign(&cluster, foreign_lease(holder, duration, 0)).await?;
        let t0 = Instant::now();
        let cands = [
            cluster.candidate("node-a", "1").await?,
            cluster.candidate("node-b", "1").await?,
        ];
        let i = wait_one_leader(&cands, settle()).await?;
        let g = cands[i].wait_leading(Duration::from_secs(1)).await?;
        assert!(
            g.started_at() >= t0 + LD,
            "{holder:?}/{duration:?}: taken before our LD"
        );
        assert!(cands.iter().all(|c| !c.state().is_stopped()));
        cluster.timeline.assert_no_overlap();
    }
    Ok(())
}

/// 10b. The label removed (a DELETED on the watch that a GET shows to be false): no takeover, and the
/// leader's next write puts the label back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_removal_is_not_a_deletion() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let cands = [
        cluster.candidate("node-a", "1").await?,
        cluster.candidate("node-b", "1").await?,
    ];
    let i = wait_one_leader(&cands, settle()).await?;
    let guard = cands[i].wait_leading(Duration::from_secs(1)).await?;
    let follower = &cands[1 - i];
    let gets = cluster.counters().requests(&follower.user, "get");
    cluster
        .leases()
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": null}}})),
        )
        .await?;
    until("the follower confirms with a GET", settle(), || {
        cluster.counters().requests(&follower.user, "get") > gets
    })
    .await?;
    let restored_by = Instant::now() + settle();
    loop {
        let labels = cluster
            .leases()
            .get(LEASE)
            .await?
            .metadata
            .labels
            .unwrap_or_default();
        if labels.contains_key("app.kubernetes.io/managed-by") {
            break;
        }
        assert!(
            Instant::now() < restored_by,
            "the leader's renew did not restore the label"
        );
        tokio::time::sleep(RP / 5).await;
    }
    tokio::time::sleep(LD * 2).await;
    assert!(guard.is_current());
    assert_eq!(
        cluster.timeline.intervals().len(),
        1,
        "a label removal must not cause a takeover"
    );
    assert_eq!(follower.state().holder(), Some(cands[i].user.as_str()));
    Ok(())
}

/// 10c. The server restarted with its state wiped (resourceVersion going back): no panic, no overlap, and a
/// leader again afterwards, with a later epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_wiped_and_restarted() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let cands = [
        cluster.candidate("node-a", "1").await?,
        cluster.candidate("node-b", "1").await?,
        cluster.candidate("node-c", "1").await?,
    ];
    let i = wait_one_leader(&cands, settle()).await?;
    let old = cands[i].wait_leading(Duration::from_secs(1)).await?;
    // Push the resourceVersion well up first, so the wipe really sends it back.
    tokio::time::sleep(RP * 4).await;
    cluster.server.restart(false).await;
    let restarted = Instant::now();
    until("a leader again", settle() + Duration::from_secs(10), || {
        cluster
            .timeline
            .open()
            .iter()
            .any(|iv| iv.epoch > old.epoch() && iv.start > restarted)
    })
    .await?;
    let epochs: Vec<u64> = cluster
        .timeline
        .intervals()
        .iter()
        .map(|iv| iv.epoch)
        .collect();
    assert!(epochs.windows(2).all(|w| w[1] > w[0]), "epochs {epochs:?}");
    assert!(cands.iter().all(|c| !c.state().is_stopped()));
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 11a. A panic inside the elector shows as stopped, with the error, on the state channel and the handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_inside_the_elector_is_never_silent() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let a = cluster.candidate("node-a", "1").await?;
    let guard = a.wait_leading(settle()).await?;
    let mut rx = a.handle.state();
    a.handle.panic_for_test().await?;
    let state = tokio::time::timeout(settle(), rx.wait_for(ElectionState::is_stopped))
        .await??
        .clone();
    let ElectionState::Stopped { error: Some(e) } = state else {
        panic!("expected Stopped with an error, got {state:?}")
    };
    assert!(matches!(*e, ElectorError::Panicked(_)), "{e}");
    assert!(a.handle.error().is_some());
    assert!(
        !guard.is_current(),
        "a dead elector's guard must not look current"
    );
    assert!(a.handle.clone().shutdown().await.is_err());
    Ok(())
}

/// 11b. A fatal error (two election namespaces sanitised to one Lease name) stops the elector with that error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_error_is_never_silent() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let mut lease = foreign_lease("", None, 0);
    lease.metadata.annotations = Some(
        [(
            ELECTION_NAMESPACE_ANNOTATION.to_owned(),
            "team/a".to_owned(),
        )]
        .into(),
    );
    cluster
        .leases()
        .create(&PostParams::default(), &lease)
        .await?;
    let a = cluster
        .candidate_with("node-a", "1", |c| {
            c.annotation(ELECTION_NAMESPACE_ANNOTATION, "team-a")
        })
        .await?;
    let err = tokio::time::timeout(settle(), a.handle.stopped())
        .await?
        .expect("stopped with an error");
    assert!(matches!(*err, ElectorError::NameCollision { .. }), "{err}");
    assert!(err.to_string().contains("team/a"), "{err}");
    assert!(matches!(
        a.state(),
        ElectionState::Stopped { error: Some(_) }
    ));
    Ok(())
}

/// 11c. An owner check that refuses the Lease found (another kind of Lease whose name lines up with ours) stops
/// the elector with `NotOurs` before it writes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_check_refusing_the_lease_stops_the_elector_without_a_write() -> anyhow::Result<()>
{
    let cluster = Cluster::start().await?;
    let mut lease = foreign_lease("", None, 0);
    lease.metadata.labels = Some([("leasehold.dev/kind".to_owned(), "task".to_owned())].into());
    let created = cluster
        .leases()
        .create(&PostParams::default(), &lease)
        .await?;
    let a = cluster
        .candidate_with("node-a", "1", |c| {
            c.owner_check(OwnerCheck::new(|labels, _| {
                match labels.get("leasehold.dev/kind").map(String::as_str) {
                    Some("election") | None => Ok(()),
                    Some(other) => Err(format!("it is a {other} Lease")),
                }
            }))
        })
        .await?;
    let err = tokio::time::timeout(settle(), a.handle.stopped())
        .await?
        .expect("stopped with an error");
    assert!(matches!(*err, ElectorError::NotOurs { .. }), "{err}");
    assert!(err.to_string().contains("it is a task Lease"), "{err}");
    let after = cluster.leases().get(LEASE).await?;
    assert_eq!(
        after.metadata.resource_version, created.metadata.resource_version,
        "nothing was written over the other Lease"
    );
    Ok(())
}

/// 12a. A 500 storm keeps every candidate at or below 1 request per RP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_storm_keeps_the_request_rate_down() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let cands = [
        cluster.candidate("node-a", "1").await?,
        cluster.candidate("node-b", "1").await?,
        cluster.candidate("node-c", "1").await?,
    ];
    wait_one_leader(&cands, settle()).await?;
    let before = cluster.counters();
    cluster.server.faults().inject(ErrorInjection {
        code: 500,
        ..ErrorInjection::default()
    });
    let storm = Duration::from_secs(6);
    tokio::time::sleep(storm).await;
    cluster.server.faults().clear_errors();
    let after = cluster.counters();
    let allowed = (storm.as_secs_f64() / RP.as_secs_f64()).ceil() as u64 + 1;
    for c in &cands {
        let n = election_requests(&after, &c.user) - election_requests(&before, &c.user);
        assert!(
            n <= allowed,
            "{}: {n} election requests in a {storm:?} storm, at most {allowed}",
            c.user
        );
    }
    // Afterwards the election recovers.
    wait_one_leader(&cands, settle()).await?;
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 12b. A 429 waits for its Retry-After: a follower's next try comes no sooner than the server asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_for_retry_after() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let a = cluster.candidate("node-a", "1").await?;
    a.wait_leading(settle()).await?;
    let b = cluster.candidate("node-b", "1").await?;
    // b's first request of the takeover, once a is cut off and its term has run out, is throttled.
    let retry_after = 2;
    cluster.server.faults().inject(ErrorInjection {
        code: 429,
        retry_after_seconds: Some(retry_after),
        count: Some(1),
        user: Some(b.user.clone()),
        ..ErrorInjection::default()
    });
    cluster
        .server
        .faults()
        .partition(&a.user, PartitionMode::Full);
    let throttled =
        |c: &leasehold_apiserver::Counters| c.requests_where(Some(&b.user), None, None, Some(429));
    until("the 429", LD + settle(), || {
        throttled(&cluster.counters()) == 1
    })
    .await?;
    let at = Instant::now();
    let n = election_requests(&cluster.counters(), &b.user);
    until("the next request", settle(), || {
        election_requests(&cluster.counters(), &b.user) > n
    })
    .await?;
    let waited = at.elapsed();
    assert!(
        waited >= Duration::from_secs(u64::from(retry_after)) - Duration::from_millis(100),
        "retried after {waited:?}"
    );
    b.wait_leading(settle()).await?;
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 12b'. A leader's deadline comes before a Retry-After: a 429 whose Retry-After leaves no try before RD is retried
/// within RD, and the leader keeps leading. Renewing every RD − 2.5 RP leaves a failed renew 2.5 RP, so a
/// Retry-After of 4 RP never fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_retries_a_429_before_its_deadline() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let a = cluster
        .candidate_with("node-a", "1", |c| {
            c.timings(
                Duration::from_secs(6),
                Duration::from_secs(4),
                Duration::from_millis(500),
            )
        })
        .await?;
    let guard = a.wait_leading(settle()).await?;
    cluster.server.faults().inject(ErrorInjection {
        code: 429,
        retry_after_seconds: Some(2),
        count: Some(1),
        user: Some(a.user.clone()),
        ..ErrorInjection::default()
    });
    let throttled =
        |c: &leasehold_apiserver::Counters| c.requests_where(Some(&a.user), None, None, Some(429));
    until("the 429", settle(), || throttled(&cluster.counters()) == 1).await?;
    let renewed = |c: &leasehold_apiserver::Counters| {
        c.requests_where(Some(&a.user), Some("update"), None, Some(200))
    };
    let n = renewed(&cluster.counters());
    until("a renew after the 429", settle(), || {
        renewed(&cluster.counters()) > n
    })
    .await?;
    assert!(
        guard.is_current(),
        "the leader lost its leadership to a 429"
    );
    assert_eq!(
        cluster.timeline.intervals().len(),
        1,
        "one leadership throughout"
    );
    Ok(())
}

/// 12c. No request blocks past the deadline: with every answer slower than RD, leadership ends at the deadline
/// and the elector is back to following right then, not when the slow answer comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_blocks_past_the_deadline() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let a = cluster.candidate("node-a", "1").await?;
    let guard = a.wait_leading(settle()).await?;
    cluster
        .server
        .faults()
        .latency(Some(Duration::from_secs(10)));
    let mut rx = a.handle.state();
    tokio::time::timeout(
        RD + Duration::from_secs(1),
        rx.wait_for(|s| !s.is_leading()),
    )
    .await??;
    let ended = guard.ended_at().unwrap();
    let stepped_back = Instant::now();
    assert!(
        stepped_back.duration_since(ended) < Duration::from_millis(500),
        "the elector noticed the end {:?} late",
        stepped_back.duration_since(ended)
    );
    cluster.server.faults().latency(None);
    a.wait_leading(settle() + Duration::from_secs(10)).await?;
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 13. 100 forced handovers among 5 candidates (release, partition, paused task): no overlap, and every
/// handover is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_forced_handovers() -> anyhow::Result<()> {
    let (ld, rd, rp) = (
        Duration::from_secs(1),
        Duration::from_millis(600),
        Duration::from_millis(200),
    );
    let cluster = Cluster::start().await?;
    let mut cands = Vec::new();
    for n in 0..5 {
        cands.push(
            cluster
                .candidate_with(&format!("node-{n}"), "1", |c| c.timings(ld, rd, rp))
                .await?,
        );
    }
    let within = ld + rd + Duration::from_secs(5);
    let mut kinds = [0u32; 3];
    for round in 0..100 {
        let i = wait_one_leader(&cands, within).await?;
        let old = cands[i].wait_leading(Duration::from_secs(1)).await?;
        let kind = match round % 10 {
            3 => 1,
            7 => 2,
            _ => 0,
        };
        kinds[kind] += 1;
        match kind {
            0 => cands[i].handle.step_down().await?,
            1 => cluster
                .server
                .faults()
                .partition(&cands[i].user, PartitionMode::Full),
            _ => cands[i].handle.pause_for_test(ld + rd).await?,
        }
        until(
            &format!("round {round}: another candidate leads"),
            within,
            || {
                cands
                    .iter()
                    .enumerate()
                    .any(|(k, c)| k != i && c.is_leading())
            },
        )
        .await?;
        assert!(!old.is_current());
        if kind == 1 {
            cluster.server.faults().heal(&cands[i].user);
        }
    }
    let intervals = cluster.timeline.intervals();
    eprintln!(
        "100 handovers ({} releases, {} partitions, {} pauses): {} leadership intervals",
        kinds[0],
        kinds[1],
        kinds[2],
        intervals.len()
    );
    assert!(
        intervals.len() >= 101,
        "{} intervals for 100 handovers",
        intervals.len()
    );
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// Many leases, one watch: one Elector running 20 elections in one namespace uses one client and one
/// watch connection, and every election gets a leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_leases_share_one_watch() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let user = "node-a_1";
    let elector = leasehold_lease::Elector::new(cluster.client(user).await?);
    let mut handles = Vec::new();
    for n in 0..20 {
        let config = leasehold_lease::ElectionConfig::new(
            NS,
            format!("leasehold-ns-{n}"),
            leasehold_lease::Identity::new("node-a", "1")?,
        )
        .timings(LD, RD, RP);
        handles.push(elector.spawn(config)?);
    }
    until("every election leads", settle(), || {
        handles.iter().all(|h| h.current().is_leading())
    })
    .await?;
    let c = cluster.counters();
    assert_eq!(c.requests(user, "watch"), 1, "one watch for all 20 leases");
    assert_eq!(c.requests(user, "list"), 1, "one list for all 20 leases");
    assert_eq!(c.requests(user, "create"), 20);
    // A second election for the same Lease on the same Elector is refused.
    let dup = leasehold_lease::ElectionConfig::new(
        NS,
        "leasehold-ns-0",
        leasehold_lease::Identity::new("node-a", "1")?,
    );
    assert!(matches!(
        elector.spawn(dup),
        Err(leasehold_lease::SpawnError::Duplicate { .. })
    ));
    for h in handles {
        h.shutdown().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// 15. A late election told when its process first saw the Lease's current record (`ElectionConfig::last_sighting`)
/// takes over a term that ran out before it was spawned, instead of counting the record as just seen and waiting
/// out another LD; an election spawned beside it without the sighting still waits from its spawn, and never leads.
/// Told of a record the Lease no longer carries, the late election waits as always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_election_starts_from_its_process_sighting() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    create_foreign(&cluster, foreign_lease("ghost_1", Some(2), 0)).await?;
    let seen = cluster.leases().get(LEASE).await?;
    let seen_at = tokio::time::Instant::now();
    let sighting = |lease: &Lease| leasehold_lease::Sighting {
        lease: lease.clone(),
        at: seen_at,
        last_holder: Some("ghost_1".into()),
    };
    // The premise: by this process's sighting, the ghost's term has run out before the elections are spawned.
    tokio::time::sleep_until(seen_at + LD).await;
    let plain = cluster.candidate("node-b", "1").await?;
    let late = cluster
        .candidate_with("node-a", "1", |c| c.last_sighting(sighting(&seen)))
        .await?;
    let guard = late.wait_leading(settle()).await?;
    assert_eq!(guard.epoch(), 4);
    // The plain election counts the ghost's record as seen at its spawn: by then the late one had taken over.
    until(
        "the plain election to see the late one lead",
        settle(),
        || matches!(plain.state(), ElectionState::Following { holder: Some(h) } if h == late.user),
    )
    .await?;
    assert!(
        cluster
            .timeline
            .intervals()
            .iter()
            .all(|i| i.who == late.user),
        "only the late election led: {:?}",
        cluster.timeline.intervals()
    );
    // One cluster at a time: each holds the process-wide test lock while it lives.
    drop((plain, late, cluster));

    // The Lease moved on after the sighting: the sighting is of a record it no longer carries, so it is ignored.
    let cluster = Cluster::start().await?;
    create_foreign(&cluster, foreign_lease("ghost_1", Some(2), 0)).await?;
    let stale = cluster.leases().get(LEASE).await?;
    let seen_at = tokio::time::Instant::now();
    cluster
        .leases()
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"renewTime": MicroTime(jiff::Timestamp::now())}})),
        )
        .await?;
    tokio::time::sleep_until(seen_at + LD).await;
    let t0 = Instant::now();
    let late = cluster
        .candidate_with("node-a", "1", |c| {
            c.last_sighting(leasehold_lease::Sighting {
                lease: stale.clone(),
                at: seen_at,
                last_holder: Some("ghost_1".into()),
            })
        })
        .await?;
    let guard = late.wait_leading(settle()).await?;
    assert!(
        guard.started_at() >= t0 + LD,
        "a renewed record counts from the election's own first look: acquired after {:?}",
        guard.started_at() - t0
    );
    cluster.timeline.assert_no_overlap();
    Ok(())
}

/// 16. A shared watch kept open (`Elector::keep_watch`) proves a late election's term at once: the leadership it
/// acquires takes effect without the RD wait that a watch opened with the election costs (that watch cannot show
/// that no erased leader is still acting). Two late elections on two expired Leases are spawned together, one with
/// a kept watch and one without: the kept one leads first, and the other only RD after its watch opened. An ordering
/// and a lower bound, so a slow machine cannot fail it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_kept_open_lets_a_late_election_lead_at_once() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let names = ["leasehold-kept", "leasehold-plain"];
    let mut seen = Vec::new();
    for name in names {
        let mut ghost = foreign_lease("ghost_1", Some(2), 0);
        ghost.metadata.name = Some(name.into());
        seen.push(create_foreign(&cluster, ghost).await?);
    }
    let seen_at = tokio::time::Instant::now();
    let mut electors = Vec::new();
    let mut configs = Vec::new();
    for (name, lease) in names.iter().zip(seen) {
        let identity = leasehold_lease::Identity::new("node-a", *name)?;
        let elector = leasehold_lease::Elector::new(cluster.client(&identity.holder()).await?);
        configs.push(
            leasehold_lease::ElectionConfig::new(NS, *name, identity)
                .timings(LD, RD, RP)
                .last_sighting(leasehold_lease::Sighting {
                    lease,
                    at: seen_at,
                    last_holder: Some("ghost_1".into()),
                }),
        );
        electors.push(elector);
    }
    let guard = electors[0].keep_watch(&configs[0]);
    // The premise: the ghost's terms have run out, and the kept watch has been open for longer than RD.
    tokio::time::sleep_until(seen_at + LD.max(RD)).await;
    let spawned = Instant::now();
    let mut handles = Vec::new();
    for (elector, config) in electors.iter().zip(configs) {
        handles.push(elector.spawn(config)?);
    }
    let (mut kept, mut plain) = (handles[0].state(), handles[1].state());
    // The state says `Leading` once the leadership takes effect.
    tokio::time::timeout(settle(), kept.wait_for(ElectionState::is_leading)).await??;
    assert!(
        !plain.borrow().is_leading(),
        "the election without a kept watch must not lead before the one with it"
    );
    tokio::time::timeout(settle(), plain.wait_for(ElectionState::is_leading)).await??;
    assert!(
        spawned.elapsed() >= RD,
        "a watch opened with the election proves nothing for RD after it opened: led {:?} after the spawn",
        spawned.elapsed()
    );
    for handle in handles {
        handle
            .shutdown()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    drop((guard, electors, cluster));
    Ok(())
}
