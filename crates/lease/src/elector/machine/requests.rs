//! The machine's requests to the API server: the GET that refreshes what it knows, the acquire, the renew and
//! the release. Each awaits its answer inline with a timeout no longer than the deadline it serves; what the
//! answers mean for the election is decided in the parent module (`observe`, `lose`, `back_off`).

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Lead, Machine, Phase};
use crate::{
    api::ApiError, backoff::Backoff, crowd::Crowd, elector::ElectorError, elector::version::Source,
    leadership::Leadership, rank, record,
};

impl Machine {
    /// GETs the Lease and observes the answer. A leader's GET gets no more than the time left to its
    /// deadline. A GET that follows a refused write and shows nothing new backs off instead of resetting,
    /// so that a server that keeps refusing the version it shows cannot drive a loop.
    pub(super) async fn refresh(&mut self) -> Result<(), ElectorError> {
        let timeout = match &self.phase {
            Phase::Leading(lead) => match lead.guard.time_left() {
                Some(left) => left.min(self.request_timeout()),
                None => {
                    self.lose("renew deadline passed");
                    self.request_timeout()
                }
            },
            _ => self.request_timeout(),
        };
        let after_conflict = std::mem::take(&mut self.after_conflict);
        if self.polls() {
            self.schedule_poll();
        }
        match self.api.get(timeout).await {
            Ok(found) => {
                self.need_get = false;
                let new = match found {
                    Some(lease) => {
                        self.check_watched();
                        self.observe(lease, Source::Get)?
                    }
                    None => {
                        self.unwatched = false;
                        let was_present = self.cached.is_some();
                        self.observe_absent();
                        was_present
                    }
                };
                if after_conflict && !new {
                    let delay = self.backoff.next_delay();
                    debug!(lease = %self.cfg.lease_name, ?delay, "a refused write, and the GET shows nothing new; backing off");
                    self.not_before = Instant::now() + delay;
                    if let Phase::Leading(lead) = &mut self.phase {
                        lead.next_renew = lead.next_renew.max(self.not_before);
                    }
                } else {
                    self.backoff.reset();
                }
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(ElectorError::Rejected(e)),
            Err(e) => {
                self.after_conflict = after_conflict;
                self.back_off(&e);
                Ok(())
            }
        }
    }

    /// Writes the acquire: a create when the Lease is absent, else a guarded PUT of the observed object.
    pub(super) async fn acquire(&mut self) -> Result<(), ElectorError> {
        let epoch = self.term.next_epoch(self.cached.as_deref());
        let mut body = record::acquire(self.cached.as_deref(), &self.cfg, epoch);
        let creates = self.cached.is_none();
        // Taking over a present Lease, every follower saw it free at about the same moment and we came first in
        // line: our rank is one more sample of the crowd's size. Who creates a Lease may have raced no one (each
        // new process waits LD from its own start), so a create carries forward what we knew, unchanged.
        let crowd = if creates {
            self.crowd
        } else {
            Some(Crowd::after_win(self.crowd, rank::rank(&self.me, epoch)))
        };
        if let Some(crowd) = crowd {
            crowd.stamp(&mut body);
        }
        let timeout = self.request_timeout();
        let sent = self.clock.now();
        let sent_at = Instant::now();
        let result = if creates {
            self.api.create(&body, timeout).await
        } else {
            self.api.replace(&body, timeout).await
        };
        match result {
            Ok(lease) => {
                let starts = Instant::now() + self.cfg.renew_deadline;
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
                    info!(lease = %self.cfg.lease_name, epoch, created = creates, "acquired");
                    self.need_get = false;
                    self.phase = Phase::Leading(Lead {
                        guard,
                        epoch,
                        starts,
                        acquired: record::acquire_time(&lease).cloned(),
                        next_renew: sent_at + self.cfg.renew_interval(),
                        // A leader retries every RP (with jitter), never slower: it has until RD.
                        backoff: Backoff::new(
                            self.cfg.retry_period,
                            self.cfg.retry_period,
                            self.random.clone(),
                        ),
                        retried_at_once: false,
                    });
                } else {
                    warn!(lease = %self.cfg.lease_name, epoch, "acquire succeeded after its deadline; not leading");
                    self.phase = Phase::Following;
                }
                self.observe(lease, Source::Write)?;
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
                self.after_conflict = true;
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
    /// arrived after the deadline. Each try gets at most a third of RD, so one hung request cannot cost the
    /// leadership.
    pub(super) async fn renew(&mut self) -> Result<(), ElectorError> {
        let Phase::Leading(lead) = &self.phase else {
            return Ok(());
        };
        let (guard, epoch, acquired) = (lead.guard.clone(), lead.epoch, lead.acquired.clone());
        let Some(left) = guard.time_left() else {
            self.lose("renew deadline passed");
            return Ok(());
        };
        let Some(cached) = self.cached.clone() else {
            self.lose("Lease absent");
            return Ok(());
        };
        let body = record::renew(&cached, &self.cfg, epoch, acquired.as_ref());
        let sent = self.clock.now();
        let sent_at = Instant::now();
        let result = self
            .api
            .replace(&body, left.min(self.request_timeout()))
            .await;
        // After a success the next renew comes a renew interval later; after a refusal, an RP later (a retry).
        let next_retry = sent_at + self.cfg.retry_period;
        match result {
            Ok(lease) => {
                let extended = guard.extend(sent, self.cfg.renew_deadline);
                self.need_get = false;
                if let Phase::Leading(lead) = &mut self.phase {
                    lead.backoff.reset();
                    lead.next_renew = sent_at + self.cfg.renew_interval();
                    lead.retried_at_once = false;
                }
                if !extended {
                    warn!(lease = %self.cfg.lease_name, epoch, "renew succeeded after the deadline; leadership stays lost");
                    self.lose("renew succeeded after the deadline");
                }
                self.observe(lease, Source::Write)?;
            }
            Err(e @ (ApiError::Conflict { .. } | ApiError::NotFound { .. })) => {
                debug!(lease = %self.cfg.lease_name, error = %e, "renew refused; observing first");
                let at_once = if let Phase::Leading(lead) = &mut self.phase {
                    lead.next_renew = next_retry.max(Instant::now());
                    !std::mem::take(&mut lead.retried_at_once)
                } else {
                    false
                };
                let before = self.cached.clone();
                self.after_conflict = true;
                self.refresh().await?;
                // A third party's write (a label, an annotation) refused our renew; the GET gave us its version,
                // so renew again at once rather than an RP later, once in a row.
                if let Phase::Leading(lead) = &mut self.phase
                    && at_once
                    && self.cached != before
                {
                    lead.next_renew = Instant::now();
                    lead.retried_at_once = true;
                }
            }
            Err(e) if e.is_permanent() => return Err(ElectorError::Rejected(e)),
            Err(e) => {
                self.lose_touch();
                let timeout = self.request_timeout();
                if let Phase::Leading(lead) = &mut self.phase {
                    // Every RP, but soon enough that one more try fits before the deadline (a hung request
                    // costs RD / 3), never sooner than RP / 2; a 429's Retry-After only when a try still fits
                    // after it.
                    let left = guard.time_left().unwrap_or_default();
                    let regular = lead
                        .backoff
                        .next_delay()
                        .min(left.saturating_sub(timeout))
                        .max(self.cfg.retry_period / 2);
                    let asked = e.retry_after().unwrap_or_default();
                    let delay = if asked + timeout < left {
                        regular.max(asked)
                    } else {
                        regular
                    };
                    lead.next_renew = Instant::now() + delay;
                    warn!(lease = %self.cfg.lease_name, error = %e, ?delay, "renew failed; retrying");
                }
            }
        }
        Ok(())
    }

    /// Ends leadership, then writes the early-free release if we were leading and the Lease still carries our
    /// term. Retries a 409 while that is so, for at most RD. A Lease that names us while we do not lead is not
    /// released: it may be a term that someone else has since replaced (brought back by a restored backup), and
    /// freeing it early could let a third candidate start beside the real leader.
    pub(super) async fn release(&mut self) {
        let Phase::Leading(lead) = &self.phase else {
            self.publish();
            return;
        };
        if !lead.started(Instant::now()) {
            // A leader of an erased Lease may still be at work: freeing the Lease early would let a third candidate
            // lead beside it. Let our term run out instead.
            lead.guard.end();
            info!(lease = %self.cfg.lease_name, epoch = lead.epoch, "leaving a Lease we acquired before our leadership took effect; it will expire");
            self.phase = Phase::Following;
            self.publish();
            return;
        }
        let epoch = lead.epoch;
        lead.guard.end();
        info!(lease = %self.cfg.lease_name, epoch, "leadership ended for release");
        self.phase = Phase::Following;
        self.publish();
        let give_up = Instant::now() + self.cfg.renew_deadline;
        let mut backoff = Backoff::new(
            self.cfg.retry_period,
            self.cfg.renew_deadline,
            self.random.clone(),
        );
        loop {
            let Some(cached) = self.cached.clone() else {
                return;
            };
            if record::holder(&cached) != Some(self.me.as_str())
                || record::transitions(&cached) != epoch
            {
                return;
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn!(lease = %self.cfg.lease_name, "release not written within the renew deadline; the Lease will expire instead");
                return;
            }
            let timeout = left.min(self.request_timeout());
            let body = record::release(&cached, &self.cfg);
            match self.api.replace(&body, timeout).await {
                Ok(lease) => {
                    info!(lease = %self.cfg.lease_name, "released");
                    let _ = self.observe(lease, Source::Write);
                    return;
                }
                Err(ApiError::Conflict { .. }) => {
                    let left = give_up.saturating_duration_since(Instant::now());
                    let timeout = left
                        .min(self.request_timeout())
                        .max(Duration::from_millis(1));
                    match self.api.get(timeout).await {
                        Ok(Some(lease)) => {
                            if !matches!(self.observe(lease, Source::Get), Ok(true)) {
                                tokio::time::sleep(backoff.next_delay().min(left)).await;
                            }
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
