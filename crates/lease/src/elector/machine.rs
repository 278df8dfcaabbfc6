//! The election state machine for one Lease: observe, wait out the term, take over in rank order, renew,
//! release.
//!
//! One task per Lease runs [`Machine::run`]. It reacts to four things: commands from the handle, the end of
//! its own leadership (the guard's deadline), a new version of the Lease from the shared watch, and its own
//! timer (renew, takeover, retry, cool-down). Requests are awaited inline, each with a timeout no longer than
//! the deadline it serves, so nothing can hold the loop past a deadline.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::coordination::v1::Lease;
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};
use tracing::{debug, info, warn};

use crate::{
    api::{ApiError, LeaseApi},
    backoff::Backoff,
    clock::Clock,
    config::{ELECTION_NAMESPACE_ANNOTATION, ElectionConfig},
    elector::{ElectionState, ElectorError},
    leadership::Leadership,
    rank, record,
    term::Term,
    watch::{Hub, Seen},
};

/// What the handle asks of the machine.
#[derive(Debug)]
pub(crate) enum Command {
    /// End leadership, release, cool down. Replies when the release is done.
    StepDown(oneshot::Sender<()>),
    /// End leadership, release, stop. Replies when the release is done.
    Shutdown(oneshot::Sender<()>),
    /// Test hook: stall the machine (no renews, no events) for this long, like a SIGSTOPped process.
    Pause(Duration),
    /// Test hook: panic inside the machine.
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
    /// `Contending` when the term ends (timer), when the holder's own release is observed, or at once when
    /// the Lease names us while we do not lead (a stale self-held Lease, e.g. after a late renew success).
    Following,
    /// The Lease is free and we wait our turn (`rank × J`) before writing. Left for `Leading` when the
    /// acquire succeeds; for `Following` when a new version shows the Lease is no longer free (someone else
    /// acquired), or when the acquire fails (409: observe first; other errors: back off).
    Contending {
        /// When to write.
        write_at: Instant,
    },
    /// We hold the Lease and renew it every RP. Left for `Following` when the guard's deadline passes, when a
    /// new version names another holder, or when the Lease is confirmed deleted; for `CoolingDown` on
    /// step-down; and the machine ends on shutdown.
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
    next_renew: Instant,
    backoff: Backoff,
}

/// The state of one election.
pub(crate) struct Machine {
    cfg: Arc<ElectionConfig>,
    me: String,
    api: LeaseApi,
    seen: watch::Receiver<Seen>,
    _hub: Arc<Hub>,
    cmds: mpsc::Receiver<Command>,
    state: Arc<watch::Sender<ElectionState>>,
    clock: Clock,
    term: Term,
    /// The latest version observed; `None` when absent or not yet known.
    cached: Option<Arc<Lease>>,
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
        clock: Clock,
    ) -> Self {
        let seen = hub.subscribe(&cfg.lease_name);
        Self {
            me: cfg.identity.holder(),
            term: Term::with_epoch_floor(cfg.lease_duration, cfg.epoch_floor),
            backoff: Backoff::new(cfg.retry_period, cfg.lease_duration),
            api,
            seen,
            _hub: hub,
            cmds,
            state,
            clock,
            cached: None,
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
                        // Every handle is gone: nobody can stop the work or ask for more, so release.
                        self.release().await;
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
                    Some(Command::Pause(d)) => {
                        warn!(lease = %self.cfg.lease_name, "elector paused for {d:?} (test hook)");
                        tokio::time::sleep(d).await;
                    }
                    Some(Command::Panic) => panic!("elector for Lease {} panicked on request (test hook)", self.cfg.lease_name),
                },
                () = lost(guard) => self.lose("renew deadline passed"),
                changed = self.seen.changed() => {
                    if changed.is_err() {
                        return Err(ElectorError::WatchEnded);
                    }
                    self.take_seen()?;
                }
                () = sleep_until(wake) => self.on_timer().await?,
            }
        }
    }

    /// When the timer should fire next; `None` when only events can move us.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        if self.need_get {
            return Some(self.not_before.max(now));
        }
        match &self.phase {
            Phase::Starting => None,
            Phase::Following => Some(self.takeover_start(now).max(self.not_before)),
            Phase::Contending { write_at } => Some((*write_at).max(self.not_before)),
            Phase::Leading(lead) => Some(lead.next_renew),
            Phase::CoolingDown { until } => Some(*until),
        }
    }

    async fn on_timer(&mut self) -> Result<(), ElectorError> {
        let now = Instant::now();
        if self.need_get {
            if now >= self.not_before {
                self.refresh().await?;
            }
            return Ok(());
        }
        match &self.phase {
            Phase::Starting => {}
            Phase::Following => self.evaluate(now),
            Phase::Contending { write_at } => {
                if now >= (*write_at).max(self.not_before) {
                    self.acquire().await?;
                }
            }
            Phase::Leading(lead) => {
                if now >= lead.next_renew {
                    self.renew().await?;
                }
            }
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

    /// Takes the hub's latest news about our Lease.
    fn take_seen(&mut self) -> Result<(), ElectorError> {
        let seen = self.seen.borrow_and_update().clone();
        match seen {
            Seen::Unknown => {}
            Seen::Present(lease) => {
                self.observe(&lease)?;
            }
            Seen::Gone => self.need_get = true,
        }
        Ok(())
    }

    /// Records a version of the Lease; returns whether it was new. Reacts to what it shows.
    fn observe(&mut self, lease: &Lease) -> Result<bool, ElectorError> {
        if let Some(cached) = &self.cached
            && !is_newer(lease, cached)
        {
            return Ok(false);
        }
        self.check_collision(lease)?;
        let now = Instant::now();
        self.term.observe(lease, now);
        self.cached = Some(Arc::new(lease.clone()));
        if matches!(self.phase, Phase::Starting) {
            self.phase = Phase::Following;
        }
        let other_holder = self.term.holder().is_some_and(|h| h != self.me);
        match &self.phase {
            Phase::Leading(lead) if other_holder => {
                warn!(lease = %self.cfg.lease_name, epoch = lead.epoch, holder = ?self.term.holder(), "another candidate holds our Lease; ending leadership");
                self.lose("another holder observed");
            }
            Phase::Contending { .. } if self.takeover_start(now) > now => {
                debug!(lease = %self.cfg.lease_name, holder = ?self.term.holder(), "takeover cancelled: the Lease is no longer free");
                self.phase = Phase::Following;
            }
            _ => {}
        }
        self.evaluate(now);
        self.publish();
        Ok(true)
    }

    /// Records that the Lease is confirmed absent.
    fn observe_absent(&mut self) {
        self.term.observe_absent(Instant::now());
        self.cached = None;
        if matches!(self.phase, Phase::Starting) {
            self.phase = Phase::Following;
        }
        if matches!(self.phase, Phase::Leading(_)) {
            warn!(lease = %self.cfg.lease_name, "our Lease was deleted; ending leadership");
            self.lose("Lease deleted");
        }
        self.evaluate(Instant::now());
        self.publish();
    }

    fn check_collision(&self, lease: &Lease) -> Result<(), ElectorError> {
        let Some(ours) = self.cfg.annotations.get(ELECTION_NAMESPACE_ANNOTATION) else {
            return Ok(());
        };
        let theirs = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ELECTION_NAMESPACE_ANNOTATION));
        match theirs {
            Some(theirs) if theirs != ours => Err(ElectorError::NameCollision {
                namespace: self.cfg.namespace.clone(),
                lease: self.cfg.lease_name.clone(),
                ours: ours.clone(),
                theirs: theirs.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// When a takeover may start: now for a Lease that names us while we do not lead (only we could have
    /// written it, and we are not acting on it), else the end of the observed term.
    fn takeover_start(&self, now: Instant) -> Instant {
        if self.term.holder() == Some(self.me.as_str()) {
            now
        } else {
            self.term.free_at(now)
        }
    }

    /// In `Following`, starts contending once the Lease is free.
    fn evaluate(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Following) || self.takeover_start(now) > now {
            return;
        }
        let delay = if self.term.holder() == Some(self.me.as_str()) {
            Duration::ZERO
        } else {
            let epoch = self.term.next_epoch(self.cached.as_deref());
            rank::delay(&self.me, epoch, self.cfg.effective_spread())
        };
        debug!(lease = %self.cfg.lease_name, ?delay, "Lease is free; contending");
        self.phase = Phase::Contending {
            write_at: now + delay,
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
            Phase::Leading(lead) => ElectionState::Leading(lead.guard.clone()),
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

    /// The timeout for a follower request, and the deadline a new leadership would count from.
    fn follower_timeout(&self) -> Duration {
        self.cfg.renew_deadline
    }

    fn back_off(&mut self, err: &ApiError) {
        let delay = self.backoff.next_delay_at_least(err.retry_after());
        self.not_before = Instant::now() + delay;
        warn!(lease = %self.cfg.lease_name, error = %err, ?delay, failures = self.backoff.failures(), "request failed; backing off");
    }

    /// GETs the Lease and observes the answer. A leader's GET gets no more than the time left to its
    /// deadline.
    async fn refresh(&mut self) -> Result<(), ElectorError> {
        let timeout = match &self.phase {
            Phase::Leading(lead) => match lead.guard.time_left() {
                Some(left) => left,
                None => {
                    self.lose("renew deadline passed");
                    self.follower_timeout()
                }
            },
            _ => self.follower_timeout(),
        };
        match self.api.get(timeout).await {
            Ok(found) => {
                self.need_get = false;
                self.backoff.reset();
                match found {
                    Some(lease) => {
                        self.observe(&lease)?;
                    }
                    None => self.observe_absent(),
                }
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(ElectorError::Rejected(e)),
            Err(e) => {
                self.back_off(&e);
                Ok(())
            }
        }
    }

    /// Writes the acquire: a create when the Lease is absent, else a guarded PUT of the observed object.
    async fn acquire(&mut self) -> Result<(), ElectorError> {
        let epoch = self.term.next_epoch(self.cached.as_deref());
        let body = record::acquire(self.cached.as_deref(), &self.cfg, epoch);
        let timeout = self.follower_timeout();
        let sent = self.clock.now();
        let sent_at = Instant::now();
        let result = if self.cached.is_some() {
            self.api.replace(&body, timeout).await
        } else {
            self.api.create(&body, timeout).await
        };
        match result {
            Ok(lease) => {
                self.backoff.reset();
                self.create_refusal_logged = false;
                let guard = Leadership::new(
                    &self.cfg.namespace,
                    &self.cfg.lease_name,
                    &self.me,
                    epoch,
                    self.clock,
                    sent,
                    self.cfg.renew_deadline,
                );
                if guard.is_current() {
                    info!(lease = %self.cfg.lease_name, epoch, "acquired");
                    self.phase = Phase::Leading(Lead {
                        guard,
                        epoch,
                        next_renew: sent_at + self.cfg.retry_period,
                        backoff: Backoff::new(self.cfg.retry_period, self.cfg.lease_duration),
                    });
                } else {
                    warn!(lease = %self.cfg.lease_name, epoch, "acquire succeeded after its deadline; not leading");
                    self.phase = Phase::Following;
                }
                self.observe(&lease)?;
                self.publish();
            }
            Err(ApiError::NotFound { .. }) if self.cached.is_none() => {
                // A create answers 404 only when the Kubernetes namespace (or the Lease API) is missing: there
                // is nothing to observe, and retrying at once would spin. Say so once, then back off.
                if !self.create_refusal_logged {
                    self.create_refusal_logged = true;
                    warn!(
                        lease = %self.cfg.lease_name,
                        namespace = %self.cfg.namespace,
                        "cannot create Lease {}/{}: Kubernetes namespace {:?} does not exist (404); create it or \
                         point the election at an existing namespace. Retrying with backoff; this is logged once",
                        self.cfg.namespace,
                        self.cfg.lease_name,
                        self.cfg.namespace,
                    );
                }
                self.phase = Phase::Following;
                self.not_before = Instant::now() + self.backoff.next_delay();
            }
            Err(e @ (ApiError::Conflict { .. } | ApiError::NotFound { .. })) => {
                debug!(lease = %self.cfg.lease_name, error = %e, "acquire refused; observing first");
                self.phase = Phase::Following;
                self.need_get = true;
            }
            Err(e) if e.is_permanent() => return Err(ElectorError::Rejected(e)),
            Err(e) => {
                self.phase = Phase::Following;
                self.back_off(&e);
            }
        }
        Ok(())
    }

    /// Renews from the cached object (no GET first). Success extends the guard to send time + RD, unless it
    /// arrived after the deadline.
    async fn renew(&mut self) -> Result<(), ElectorError> {
        let Phase::Leading(lead) = &self.phase else {
            return Ok(());
        };
        let (guard, epoch) = (lead.guard.clone(), lead.epoch);
        let Some(left) = guard.time_left() else {
            self.lose("renew deadline passed");
            return Ok(());
        };
        let Some(cached) = self.cached.clone() else {
            self.lose("Lease absent");
            return Ok(());
        };
        let body = record::renew(&cached, &self.cfg, epoch);
        let sent = self.clock.now();
        let sent_at = Instant::now();
        let result = self.api.replace(&body, left).await;
        let next_regular = sent_at + self.cfg.retry_period;
        match result {
            Ok(lease) => {
                let extended = guard.extend(sent, self.cfg.renew_deadline);
                if let Phase::Leading(lead) = &mut self.phase {
                    lead.backoff.reset();
                    lead.next_renew = next_regular;
                }
                if !extended {
                    warn!(lease = %self.cfg.lease_name, epoch, "renew succeeded after the deadline; leadership stays lost");
                    self.lose("renew succeeded after the deadline");
                }
                self.observe(&lease)?;
            }
            Err(e @ (ApiError::Conflict { .. } | ApiError::NotFound { .. })) => {
                debug!(lease = %self.cfg.lease_name, error = %e, "renew refused; observing first");
                if let Phase::Leading(lead) = &mut self.phase {
                    lead.next_renew = next_regular.max(Instant::now());
                }
                self.refresh().await?;
            }
            Err(e) if e.is_permanent() => return Err(ElectorError::Rejected(e)),
            Err(e) => {
                if let Phase::Leading(lead) = &mut self.phase {
                    let delay = lead.backoff.next_delay_at_least(e.retry_after());
                    lead.next_renew = Instant::now() + delay;
                    warn!(lease = %self.cfg.lease_name, error = %e, ?delay, "renew failed; retrying");
                }
            }
        }
        Ok(())
    }

    /// Ends leadership, then writes the early-free release if the Lease names us. Retries a 409 while we
    /// are still the holder, for at most RD.
    async fn release(&mut self) {
        if let Phase::Leading(lead) = &self.phase {
            lead.guard.end();
            info!(lease = %self.cfg.lease_name, epoch = lead.epoch, "leadership ended for release");
            self.phase = Phase::Following;
        }
        self.publish();
        let give_up = Instant::now() + self.cfg.renew_deadline;
        let mut backoff = Backoff::new(self.cfg.retry_period, self.cfg.renew_deadline);
        loop {
            let Some(cached) = self.cached.clone() else {
                return;
            };
            if record::holder(&cached) != Some(self.me.as_str()) {
                return;
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn!(lease = %self.cfg.lease_name, "release not written within the renew deadline; the Lease will expire instead");
                return;
            }
            let body = record::release(&cached, &self.cfg);
            match self.api.replace(&body, left).await {
                Ok(lease) => {
                    info!(lease = %self.cfg.lease_name, "released");
                    let _ = self.observe(&lease);
                    return;
                }
                Err(ApiError::Conflict { .. }) => {
                    let left = give_up.saturating_duration_since(Instant::now());
                    match self.api.get(left.max(Duration::from_millis(1))).await {
                        Ok(Some(lease)) => {
                            let _ = self.observe(&lease);
                        }
                        Ok(None) => return,
                        Err(e) => {
                            debug!(lease = %self.cfg.lease_name, error = %e, "GET after a refused release failed");
                            tokio::time::sleep(backoff.next_delay().min(left)).await;
                        }
                    }
                }
                Err(ApiError::NotFound { .. }) => return,
                Err(e) if e.is_permanent() => {
                    warn!(lease = %self.cfg.lease_name, error = %e, "release refused");
                    return;
                }
                Err(e) => {
                    let delay = backoff.next_delay_at_least(e.retry_after()).min(left);
                    debug!(lease = %self.cfg.lease_name, error = %e, ?delay, "release failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Whether `new` is a newer version than `cached`.
///
/// The same uid and resourceVersion is the same version. For the same uid, resourceVersions that parse as
/// integers are compared, so that a watch event lagging behind a write's response does not replace it. A
/// different uid (the Lease was re-created, perhaps on a server whose state was wiped) is always new.
fn is_newer(new: &Lease, cached: &Lease) -> bool {
    let (new_uid, new_rv) = record::version(new);
    let (old_uid, old_rv) = record::version(cached);
    if new_uid != old_uid {
        return true;
    }
    if new_rv == old_rv {
        return false;
    }
    match (
        new_rv.and_then(|v| v.parse::<u64>().ok()),
        old_rv.and_then(|v| v.parse::<u64>().ok()),
    ) {
        (Some(n), Some(o)) => n > o,
        _ => true,
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn v(uid: &str, rv: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            spec: None,
        }
    }

    #[test]
    fn versions_are_ordered_within_one_object_only() {
        assert!(!is_newer(&v("a", "5"), &v("a", "5")));
        assert!(is_newer(&v("a", "6"), &v("a", "5")));
        assert!(!is_newer(&v("a", "4"), &v("a", "5")));
        // Re-created (or a wiped server): always new, even with a lower resourceVersion.
        assert!(is_newer(&v("b", "2"), &v("a", "5")));
        // Opaque versions: any change is new.
        assert!(is_newer(&v("a", "x2"), &v("a", "x1")));
    }
}
