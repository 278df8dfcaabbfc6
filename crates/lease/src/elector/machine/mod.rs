//! The election state machine for one Lease: observe, wait out the term, take over in rank order, renew,
//! release.
//!
//! One task per Lease runs [`Machine::run`]. It reacts to four things: commands from the handle, the end of
//! its own leadership (the guard's deadline), a new version of the Lease from the shared watch, and its own
//! timer (renew, takeover, retry, cool-down). Requests are awaited inline, each with a timeout no longer than
//! the deadline it serves, so nothing can hold the loop past a deadline.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{api::coordination::v1::Lease, apimachinery::pkg::apis::meta::v1::MicroTime};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};
use tracing::{debug, info, warn};

use crate::{
    ELECTION_NAMESPACE_ANNOTATION,
    api::{ApiError, LeaseApi},
    backoff::Backoff,
    clock::Clock,
    config::ElectionConfig,
    crowd::Crowd,
    elector::{
        ElectionState, ElectorError, Observation,
        version::{Floor, Source},
    },
    leadership::Leadership,
    random::Random,
    rank, record,
    term::{Term, imposed_cap},
    watch::{Health, Hub, Seen, Via},
};

mod requests;

/// What the handle asks of the machine.
#[derive(Debug)]
pub(crate) enum Command {
    /// End leadership, release, cool down. Replies when the release is done.
    StepDown(oneshot::Sender<()>),
    /// End leadership, release, stop. Replies when the release is done.
    Shutdown(oneshot::Sender<()>),
    /// Test hook: stall the machine (no renews, no events) for this long, like a SIGSTOPped process.
    #[cfg(feature = "test-hooks")]
    Pause(Duration),
    /// Test hook: panic inside the machine.
    #[cfg(feature = "test-hooks")]
    Panic,
}

/// Where the machine is. Each variant says when it is entered and what leaves it.
#[derive(Debug)]
enum Phase {
    /// Entered at start. Nothing is known yet: waiting for the shared watch's first list (or a GET, if the
    /// list says the Lease is absent). Left for `Following` on the first observation.
    Starting,
    /// Someone else holds the Lease, or its term has not ended yet. Entered after the first observation,
    /// after leadership ends, after a failed or cancelled takeover, and after the cool-down. Left for
    /// `Contending` when the term ends (timer) or when the holder's own release is observed. A Lease that
    /// names our identity while we do not lead is foreign like any other: another process may share our
    /// identity, an acquire's answer may have been lost, or a restored backup may have brought back a term of
    /// ours that someone else has since replaced. Its term runs out first.
    Following,
    /// The Lease is free and we wait our turn (`rank::takeover_delay`, at most J) before writing. Left for
    /// `Leading` when the acquire succeeds; for `Following` when a new version shows the Lease is no longer free (someone else
    /// acquired), or when the acquire fails (409: observe first; other errors: back off).
    Contending {
        /// When to write.
        write_at: Instant,
        /// Read the Lease first, and write only if it is still free (`rank::reads_first`).
        read_first: bool,
    },
    /// We hold the Lease and renew it every RP; we lead from `Lead::starts` on. Left for `Following` when the
    /// guard's deadline passes, when a new version names another holder or another epoch than ours, or when the
    /// Lease is confirmed deleted; for `CoolingDown` on step-down; and the machine ends on shutdown.
    Leading(Lead),
    /// We stepped down and do not campaign until `until`. Left for `Following` then.
    CoolingDown {
        /// End of the cool-down.
        until: Instant,
    },
}

#[derive(Debug)]
struct Lead {
    guard: Leadership,
    epoch: u64,
    /// When the leadership takes effect; until then we renew, but publish that we follow. What we wrote over may
    /// be a view that hid a live leader: the Lease's latest renewals erased by a restore, or the Lease itself by
    /// a wipe or a deletion, while our watch was silent or before we started. That leader's last renew reached the
    /// server before the erasure, so before our acquire, and it stops within RD of sending it. So we lead RD after
    /// the acquire's answer, or sooner when the shared watch shows our term through a request unbroken since some
    /// instant: an erasure drops every connection, so it came before that instant, and we lead RD after it.
    starts: Instant,
    /// The `acquireTime` our acquire wrote: with the holder and the epoch, it tells our term from another
    /// process's term under the same identity and, after a wipe, the same epoch.
    acquired: Option<MicroTime>,
    next_renew: Instant,
    backoff: Backoff,
    /// The last renew was retried at once after a refused one; the next refusal waits RP.
    retried_at_once: bool,
}

/// The state of one election.
pub(crate) struct Machine {
    cfg: Arc<ElectionConfig>,
    me: String,
    api: LeaseApi,
    seen: watch::Receiver<Seen>,
    health: watch::Receiver<Health>,
    /// Keeps the shared watch alive while we subscribe to it.
    _hub: Arc<Hub>,
    observation: Arc<watch::Sender<Observation>>,
    cmds: mpsc::Receiver<Command>,
    state: Arc<watch::Sender<ElectionState>>,
    clock: Clock,
    random: Random,
    term: Term,
    /// The latest version observed; `None` when absent or not yet known.
    cached: Option<Arc<Lease>>,
    /// The latest estimate of how many candidates contend, from the Lease (`crowd.rs`); kept while the Lease is
    /// absent or a version lacks it, so a deletion does not cost the next takeover its spread.
    crowd: Option<Crowd>,
    /// What orders watch events against what we already believe (see `version.rs`).
    floor: Option<Floor>,
    /// We may have missed changes since the last answer (a request failed, or the shared watch broke): a takeover
    /// due now reads the Lease right before it writes.
    out_of_touch: bool,
    /// The shared watch was failing or relisting when we last looked at its health.
    watch_troubled: bool,
    /// The GET pending in `need_get` follows a refused write: if it shows nothing new, back off.
    after_conflict: bool,
    /// The shared watch is relisting (as far as we have taken its health in).
    in_relist: bool,
    /// Whether we poll with GET instead of relying on the watch, and when the next poll is due.
    polling: bool,
    /// How many versions of our Lease the shared watch had published when we last took its news.
    versions_taken: u64,
    /// The shared watch reported a deletion after a version we never took, while we held none: it came and went
    /// while we were busy (the watch keeps only the latest news). The GET that confirms the absence counts it as a
    /// deletion.
    missed_deletion: bool,
    /// A GET found the Lease while the shared watch shows it gone: a third party removed our label, so the
    /// label-selected watch no longer shows its changes. We poll it like `polling` until the watch shows it again
    /// (a leader's next write puts the label back), so that a change made meanwhile is seen within RP, not at the
    /// next relist minutes later.
    unwatched: bool,
    next_poll: Instant,
    /// A record's duration above the cap was logged (reset when a version within the cap is seen).
    cap_logged: bool,
    phase: Phase,
    /// Backoff for follower requests (GET, acquire).
    backoff: Backoff,
    /// No follower request before this.
    not_before: Instant,
    /// A deletion was reported (or a write was refused) and must be confirmed with a GET.
    need_get: bool,
    /// A create was refused with 404 (the Kubernetes namespace is missing) and that was logged; cleared by the
    /// next successful acquire, so the operator sees one warning per outage rather than one per retry.
    create_refusal_logged: bool,
}

impl Machine {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: Arc<ElectionConfig>,
        api: LeaseApi,
        hub: Arc<Hub>,
        cmds: mpsc::Receiver<Command>,
        state: Arc<watch::Sender<ElectionState>>,
        observation: Arc<watch::Sender<Observation>>,
        clock: Clock,
        random: Random,
    ) -> Self {
        let seen = hub.subscribe(&cfg.lease_name);
        let health = hub.health();
        Self {
            me: cfg.identity.holder(),
            term: Term::with_epoch_floor(cfg.lease_duration, cfg.epoch_floor, Instant::now())
                .seeded(cfg.last_sighting.clone()),
            backoff: Backoff::new(cfg.retry_period, cfg.lease_duration, random.clone()),
            random,
            api,
            seen,
            health,
            _hub: hub,
            observation,
            floor: None,
            out_of_touch: false,
            watch_troubled: false,
            after_conflict: false,
            in_relist: false,
            polling: false,
            unwatched: false,
            versions_taken: 0,
            missed_deletion: false,
            next_poll: Instant::now(),
            cap_logged: false,
            cmds,
            state,
            clock,
            cached: None,
            crowd: None,
            phase: Phase::Starting,
            not_before: Instant::now(),
            need_get: false,
            create_refusal_logged: false,
            cfg,
        }
    }

    /// Runs until shutdown (`Ok`) or a fatal error.
    pub(crate) async fn run(mut self) -> Result<(), ElectorError> {
        self.take_seen()?;
        self.check_health();
        loop {
            let now = Instant::now();
            let wake = self.next_wake(now);
            let guard = match &self.phase {
                Phase::Leading(lead) => Some(lead.guard.clone()),
                _ => None,
            };
            tokio::select! {
                biased;
                cmd = self.cmds.recv() => match cmd {
                    None => {
                        // Every handle is gone. The guarded work may still be running (a task aborted mid-way
                        // drops its handle), so no release: that is an explicit step after the work has stopped.
                        // Leadership ends here, and the term runs out on its own.
                        self.lose("every election handle was dropped");
                        return Ok(());
                    }
                    Some(Command::Shutdown(reply)) => {
                        self.release().await;
                        let _ = reply.send(());
                        return Ok(());
                    }
                    Some(Command::StepDown(reply)) => {
                        self.release().await;
                        self.phase = Phase::CoolingDown { until: Instant::now() + self.cfg.effective_cool_down() };
                        self.publish();
                        let _ = reply.send(());
                    }
                    #[cfg(feature = "test-hooks")]
                    Some(Command::Pause(d)) => {
                        warn!(lease = %self.cfg.lease_name, "elector paused for {d:?} (test hook)");
                        tokio::time::sleep(d).await;
                    }
                    #[cfg(feature = "test-hooks")]
                    Some(Command::Panic) => panic!("elector for Lease {} panicked on request (test hook)", self.cfg.lease_name),
                },
                () = lost(guard) => self.lose("renew deadline passed"),
                changed = self.seen.changed() => {
                    if changed.is_err() {
                        return Err(ElectorError::WatchEnded);
                    }
                    self.take_seen()?;
                }
                changed = self.health.changed() => {
                    if changed.is_err() {
                        return Err(ElectorError::WatchEnded);
                    }
                    self.check_health();
                }
                () = sleep_until(wake) => self.on_timer().await?,
            }
        }
    }

    /// When the timer should fire next; `None` when only events can move us.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        // A leader's renewals go on whatever else is pending.
        if let Phase::Leading(lead) = &self.phase {
            return Some(if lead.started(now) {
                lead.next_renew
            } else {
                lead.next_renew.min(lead.starts)
            });
        }
        if self.need_get {
            return Some(self.not_before.max(now));
        }
        let poll = self.polls().then_some(self.next_poll.max(self.not_before));
        // While the watch fails, wake when it has failed for LD, to start polling.
        let start_polling = (!self.polling)
            .then(|| self.health.borrow().poll_from(self.cfg.lease_duration))
            .flatten();
        let phase = match &self.phase {
            Phase::Starting | Phase::Leading(_) => None,
            Phase::Following => Some(self.takeover_start().max(self.not_before)),
            // While the shared watch relists, a due takeover GETs first (see `relisting`).
            Phase::Contending { write_at, .. } => Some((*write_at).max(self.not_before)),
            Phase::CoolingDown { until } => Some(*until),
        };
        [phase, poll, start_polling].into_iter().flatten().min()
    }

    async fn on_timer(&mut self) -> Result<(), ElectorError> {
        let now = Instant::now();
        self.check_health();
        if let Phase::Leading(lead) = &self.phase {
            if now >= lead.next_renew {
                self.renew().await?;
            }
            // A leadership we acquired takes effect once `starts` has passed.
            self.publish();
            return Ok(());
        }
        if self.need_get || (self.polls() && now >= self.next_poll) {
            if now >= self.not_before {
                self.refresh().await?;
            }
            return Ok(());
        }
        match &self.phase {
            Phase::Starting | Phase::Leading(_) => {}
            Phase::Following => self.evaluate(now),
            Phase::Contending { write_at, .. } if now < (*write_at).max(self.not_before) => {}
            // Read the Lease first, and write at once if the answer still shows the term over, when our place in
            // line is behind the front (`rank::reads_first`: the winner's write may not have reached our watch
            // yet), or when out of touch (the watch relists, or our last request failed): what we would write over
            // may be a version that a restored backup brought back under a leader we could not see. The answer
            // counts as getting back in touch, so the takeover of a present Lease need not wait for a slow relist.
            Phase::Contending { read_first, .. }
                if *read_first || self.relisting() || self.out_of_touch =>
            {
                debug!(lease = %self.cfg.lease_name, out_of_touch = self.out_of_touch, "takeover due; reading the Lease first");
                self.refresh().await?;
                let free = Instant::now() >= self.takeover_start().max(self.not_before);
                if matches!(self.phase, Phase::Contending { .. }) && free && !self.out_of_touch {
                    self.acquire().await?;
                }
            }
            Phase::Contending { .. } => self.acquire().await?,
            Phase::CoolingDown { until } => {
                if now >= *until {
                    self.phase = Phase::Following;
                    self.evaluate(now);
                    self.publish();
                }
            }
        }
        Ok(())
    }

    /// Notes that we may miss changes from now on, until the next answer or believed watch event.
    fn lose_touch(&mut self) {
        self.out_of_touch = true;
    }

    /// Whether we read the Lease with GET every RP: the watch cannot list, or it cannot see this Lease.
    fn polls(&self) -> bool {
        self.polling || self.unwatched
    }

    /// Notes whether the Lease that a GET found is outside the shared watch's view (see `unwatched`).
    fn check_watched(&mut self) {
        let gone = matches!(*self.seen.borrow(), Seen::Gone { .. });
        if gone && !self.unwatched {
            info!(lease = %self.cfg.lease_name, period = ?self.cfg.retry_period, "the Lease exists but the watch does not show it (its labels no longer match the selector); polling it with GET every retry period until it is back");
            self.schedule_poll();
        }
        self.unwatched = gone;
    }

    /// Whether the shared watch is relisting while we rely on it: we are blind to new versions. What we know may
    /// then be stale in a way we cannot see (a restored backup erases a live leader's renewals, and the watch
    /// ends), so every takeover reads the Lease right before it writes, and an absence read while blind keeps the
    /// Lease busy for RD and asks the watch to relist now (`observe_absent`). Polling electors are not blind in
    /// this sense: their GETs are their view.
    fn relisting(&self) -> bool {
        !self.polling && self.in_relist
    }

    /// Switches between watching and polling as the shared watch's health says, and notes when a relist begins:
    /// from then until an answer or the list arrives, we are out of touch.
    fn check_health(&mut self) {
        let now = Instant::now();
        let health = *self.health.borrow_and_update();
        let troubled = health.relisting || health.failing_since.is_some();
        if troubled && !self.watch_troubled {
            self.lose_touch();
            // Get back in touch now rather than when a takeover is due: the LD that getting back costs then runs
            // alongside what is left of the term, not after it. Leaders need not: their renewals are their view.
            if !matches!(self.phase, Phase::Leading(_) | Phase::Starting) {
                self.spread_get();
            }
        }
        self.watch_troubled = troubled;
        self.in_relist = health.relisting;
        let poll = health.should_poll(self.cfg.lease_duration, now);
        if poll == self.polling {
            return;
        }
        self.polling = poll;
        if poll {
            let why = if health.forbidden {
                "the watch may not list Leases (403 Forbidden: the Role lacks list or watch on leases)"
            } else {
                "the watch has been failing for longer than the lease duration"
            };
            warn!(lease = %self.cfg.lease_name, period = ?self.cfg.retry_period, "{why}; polling the Lease with GET every retry period until the watch recovers");
            self.next_poll = now;
            self.observation.send_replace(Observation::Polling);
        } else {
            info!(lease = %self.cfg.lease_name, "the Lease watch works again; watching instead of polling");
            self.observation.send_replace(Observation::Watching);
        }
    }

    /// Takes the hub's latest news about our Lease.
    fn take_seen(&mut self) -> Result<(), ElectorError> {
        let seen = self.seen.borrow_and_update().clone();
        match seen {
            Seen::Unknown => {}
            Seen::Present(lease, via) => {
                self.versions_taken = via.seq;
                self.unwatched = false;
                self.confirm_start(&lease, via);
                self.observe(lease, Source::Watch(via.list))?;
                self.publish();
            }
            // A leader's next renew tells whether the Lease is really gone; followers confirm with a GET, spread
            // like a takeover so that a deletion does not make every follower GET at the same instant.
            Seen::Gone { .. } if matches!(self.phase, Phase::Leading(_)) => {}
            Seen::Gone { after } => {
                if after > self.versions_taken && self.cached.is_none() {
                    self.missed_deletion = true;
                }
                self.versions_taken = after;
                self.spread_get();
            }
        }
        Ok(())
    }

    /// Brings the start of a leadership we acquired forward when the shared watch shows our term (see
    /// `Lead::starts`).
    fn confirm_start(&mut self, lease: &Lease, via: Via) {
        let Phase::Leading(lead) = &mut self.phase else {
            return;
        };
        let ours = record::holder(lease) == Some(self.me.as_str())
            && record::transitions(lease) == lead.epoch
            && lead.acquired.is_some()
            && record::acquire_time(lease) == lead.acquired.as_ref();
        if ours {
            let proven = (via.unbroken_since + self.cfg.renew_deadline).max(Instant::now());
            lead.starts = lead.starts.min(proven);
        }
    }

    /// Asks for a GET at our rank's place in the takeover spread, so that news reaching every follower at once (a
    /// deletion, a broken watch) does not make them all GET in the same instant.
    fn spread_get(&mut self) {
        if !self.need_get {
            let epoch = self.term.next_epoch(self.cached.as_deref());
            let spread = rank::delay(&self.me, epoch, self.cfg.effective_spread());
            self.not_before = self.not_before.max(Instant::now() + spread);
        }
        self.need_get = true;
    }

    /// Records a version of the Lease from `source`; returns whether it was new. Reacts to what it shows.
    ///
    /// Answers to GETs and to our writes are always believed; watch events only when newer than what we
    /// already believe (`version.rs`). Only a changed election record is a sighting of the holder. A version from
    /// the shared watch arrives as the hub's `Arc` and is cached as it is: every follower sees every renewal, so
    /// a copy per event would be most of a follower's work.
    fn observe(
        &mut self,
        lease: impl Into<Arc<Lease>>,
        source: Source,
    ) -> Result<bool, ElectorError> {
        let lease: Arc<Lease> = lease.into();
        let lease = &lease;
        if self
            .floor
            .as_ref()
            .is_some_and(|f| f.is_stale(lease, source))
        {
            return Ok(false);
        }
        // An answer, or a believed event of a working watch, ends a spell out of touch. What it shows may be a
        // restored backup that looks exactly like our last sight while a later leader, erased, still leads: a
        // leadership we acquire takes effect only once such a leader has stopped (`Lead::starts`).
        self.out_of_touch = false;
        self.missed_deletion = false;
        let now = Instant::now();
        // The resourceVersion first: it differs for every new version, and compares far faster than the rest.
        if self.cached.as_ref().is_some_and(|c| {
            Arc::ptr_eq(c, lease)
                || (c.metadata.resource_version == lease.metadata.resource_version && c == lease)
        }) {
            return Ok(false);
        }
        // A version equal to the cached one was read when it was cached: only a new one can carry a new estimate.
        self.crowd = Crowd::read(lease).or(self.crowd);
        self.check_collision(lease)?;
        self.floor = Floor::after(lease, source);
        let sighting = self
            .cached
            .as_deref()
            .is_none_or(|c| !record::same_record(c, lease));
        if sighting {
            self.check_cap(lease);
            self.term.observe(lease, now);
        }
        self.cached = Some(Arc::clone(lease));
        if matches!(self.phase, Phase::Starting) {
            self.phase = Phase::Following;
        }
        match &self.phase {
            Phase::Leading(lead) if !self.is_our_term(lead) => {
                warn!(lease = %self.cfg.lease_name, epoch = lead.epoch, holder = ?record::holder(lease), their_epoch = record::transitions(lease), "the Lease shows another holder or another epoch; ending leadership");
                self.lose("another holder or epoch observed");
            }
            _ => self.recheck_takeover(now, "the Lease is no longer free"),
        }
        self.evaluate(now);
        self.publish();
        Ok(true)
    }

    /// Whether the cached version is still our term: it names us (or a third party blanked the holder, which
    /// our next renew undoes), carries our epoch, and our acquire instant (or none, if a third party removed
    /// it). Another process given our identity writes its own acquire instant, even where a wipe let it reuse
    /// our epoch.
    fn is_our_term(&self, lead: &Lead) -> bool {
        self.cached.as_deref().is_none_or(|l| {
            record::holder(l).is_none_or(|h| h == self.me)
                && record::transitions(l) == lead.epoch
                && record::acquire_time(l).is_none_or(|t| Some(t) == lead.acquired.as_ref())
        })
    }

    /// Logs once when a record's duration is longer than what a record may impose.
    fn check_cap(&mut self, lease: &Lease) {
        let cap = imposed_cap(self.cfg.lease_duration);
        let over = record::duration(lease).is_some_and(|d| d > cap);
        if over && !self.cap_logged {
            warn!(
                lease = %self.cfg.lease_name,
                seconds = ?record::duration(lease),
                ?cap,
                "the Lease's leaseDurationSeconds is longer than any leasehold writes; it is honoured only up to \
                 the cap (the larger of 10 × LD and 1 h). Logged once until a shorter duration is seen"
            );
        }
        self.cap_logged = over;
    }

    /// A takeover under way goes back to following when what we just learnt moved the end of the term past now.
    fn recheck_takeover(&mut self, now: Instant, why: &str) {
        if matches!(self.phase, Phase::Contending { .. }) && self.takeover_start() > now {
            debug!(lease = %self.cfg.lease_name, holder = ?self.term.holder(), why, "takeover postponed");
            self.phase = Phase::Following;
        }
    }

    /// Records that the Lease is confirmed absent, by a GET: an answer, so it ends a spell out of touch. A new
    /// absence (the Lease was present) is the deletion's sighting (`Term::observe_absent`). While we could not see,
    /// someone may have created the Lease, led, and lost it to a deletion or a wipe; such a leader stops within RD
    /// of its last renew, which is why a leadership we acquire takes effect RD after the answer unless the watch
    /// proves sooner (`Lead::starts`).
    fn observe_absent(&mut self) {
        let now = Instant::now();
        self.out_of_touch = false;
        if self.cached.is_some() {
            self.term.observe_absent(now);
        } else if std::mem::take(&mut self.missed_deletion) {
            self.term.observe_missed_deletion(now);
        }
        self.cached = None;
        self.floor = None;
        if matches!(self.phase, Phase::Starting) {
            self.phase = Phase::Following;
        }
        if matches!(self.phase, Phase::Leading(_)) {
            warn!(lease = %self.cfg.lease_name, "our Lease was deleted; ending leadership");
            self.lose("Lease deleted");
        }
        self.recheck_takeover(now, "back in touch, and the Lease is absent");
        self.evaluate(now);
        self.publish();
    }

    /// Stops on a Lease that belongs to something else. The election-namespace annotation is checked first: its
    /// error says what happened in the words an operator needs (two names sanitised to one Lease name); then the
    /// caller's [`crate::OwnerCheck`], for the collisions only it knows (another kind of Lease, say).
    fn check_collision(&self, lease: &Lease) -> Result<(), ElectorError> {
        if let Some(ours) = self.cfg.annotations.get(ELECTION_NAMESPACE_ANNOTATION) {
            let theirs = lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ELECTION_NAMESPACE_ANNOTATION));
            if let Some(theirs) = theirs.filter(|t| *t != ours) {
                return Err(ElectorError::NameCollision {
                    namespace: self.cfg.namespace.clone(),
                    lease: self.cfg.lease_name.clone(),
                    ours: ours.clone(),
                    theirs: theirs.clone(),
                });
            }
        }
        if let Some(check) = &self.cfg.owner_check {
            let empty = std::collections::BTreeMap::new();
            let meta = &lease.metadata;
            check
                .check(
                    meta.labels.as_ref().unwrap_or(&empty),
                    meta.annotations.as_ref().unwrap_or(&empty),
                )
                .map_err(|reason| ElectorError::NotOurs {
                    namespace: self.cfg.namespace.clone(),
                    lease: self.cfg.lease_name.clone(),
                    reason,
                })?;
        }
        Ok(())
    }

    /// When a takeover may start: the end of the observed term, whoever it names.
    fn takeover_start(&self) -> Instant {
        self.term.free_at()
    }

    /// In `Following`, starts contending once the Lease is free.
    fn evaluate(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Following) || self.takeover_start() > now {
            return;
        }
        let epoch = self.term.next_epoch(self.cached.as_deref());
        let spread = self.cfg.effective_spread();
        let place = rank::rank(&self.me, epoch);
        let delay = rank::takeover_delay(place, spread, self.crowd);
        let read_first = rank::reads_first(place, spread, self.crowd);
        debug!(lease = %self.cfg.lease_name, ?delay, read_first, crowd = ?self.crowd, "Lease is free; contending");
        self.phase = Phase::Contending {
            write_at: now + delay,
            read_first,
        };
    }

    /// Ends leadership locally and goes back to following.
    fn lose(&mut self, why: &str) {
        if let Phase::Leading(lead) = &self.phase {
            lead.guard.end();
            info!(lease = %self.cfg.lease_name, epoch = lead.epoch, why, "leadership ended");
            self.phase = Phase::Following;
            self.evaluate(Instant::now());
            self.publish();
        }
    }

    fn publish(&self) {
        let holder = self.term.holder().map(str::to_owned);
        let next = match &self.phase {
            Phase::Leading(lead) if lead.started(Instant::now()) => {
                ElectionState::Leading(lead.guard.clone())
            }
            Phase::CoolingDown { .. } => ElectionState::CoolingDown { holder },
            _ => ElectionState::Following { holder },
        };
        self.state.send_if_modified(|cur| {
            if cur.same_as(&next) {
                false
            } else {
                *cur = next;
                true
            }
        });
    }

    /// The timeout of one request: a third of RD, so that one hung request (a half-open connection) leaves the
    /// leader at least two more tries before its deadline.
    fn request_timeout(&self) -> Duration {
        self.cfg.renew_deadline / 3
    }

    fn back_off(&mut self, err: &ApiError) {
        self.lose_touch();
        let delay = self.backoff.next_delay_at_least(err.retry_after());
        self.not_before = Instant::now() + delay;
        warn!(lease = %self.cfg.lease_name, error = %err, ?delay, failures = self.backoff.failures(), "request failed; backing off");
    }

    /// The next poll: RP, plus up to 20 % jitter so that many pollers spread out.
    fn schedule_poll(&mut self) {
        let jitter = 1.0 + 0.2 * self.random.unit();
        self.next_poll = Instant::now() + self.cfg.retry_period.mul_f64(jitter);
    }
}

impl Lead {
    /// Whether the leadership has taken effect by `now`.
    fn started(&self, now: Instant) -> bool {
        now >= self.starts
    }
}

async fn lost(guard: Option<Leadership>) {
    match guard {
        Some(g) => g.lost().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
