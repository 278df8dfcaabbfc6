//! The `Leadership` guard: proof of leadership that expires by itself.
//!
//! The guard is handed to the guarded work. It carries the fencing epoch, and it knows its own deadline
//! (send time of the last successful renew + RD, on CLOCK_BOOTTIME), so [`Leadership::is_current`] and
//! [`Leadership::lost`] are right even when the elector task is stuck, starved or gone: nothing has to tell
//! the guard that time ran out.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::clock::{Clock, Tick};

/// How often [`Leadership::lost`] re-reads the deadline clock while waiting. The monotonic timer it sleeps on
/// stops during suspend; re-reading CLOCK_BOOTTIME this often bounds how late a suspend is noticed.
const RECHECK: Duration = Duration::from_millis(200);

/// Leadership of one Lease, held by this process until the deadline passes or the elector ends it.
///
/// Clones share one state. Holding a guard does not keep leadership alive; it only lets the work ask
/// whether it still leads and wait for the moment it stops leading.
#[derive(Clone)]
pub struct Leadership {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    lease_name: String,
    holder: String,
    epoch: u64,
    acquired_at: jiff::Timestamp,
    started: Instant,
    clock: Clock,
    state: Mutex<GuardState>,
    ended: watch::Sender<bool>,
}

struct GuardState {
    deadline: Tick,
    ended_at: Option<Instant>,
}

impl Leadership {
    /// A new guard for an acquisition whose write was sent at `sent` and succeeded.
    pub(crate) fn new(
        namespace: &str,
        lease_name: &str,
        holder: &str,
        epoch: u64,
        clock: Clock,
        sent: Tick,
        renew_deadline: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                namespace: namespace.to_owned(),
                lease_name: lease_name.to_owned(),
                holder: holder.to_owned(),
                epoch,
                acquired_at: jiff::Timestamp::now(),
                started: Instant::now(),
                clock,
                state: Mutex::new(GuardState {
                    deadline: sent + renew_deadline,
                    ended_at: None,
                }),
                ended: watch::Sender::new(false),
            }),
        }
    }

    /// The fencing epoch: the Lease's `leaseTransitions` after our acquisition. Every acquisition gets a higher
    /// epoch than any this process has seen on the Lease, also across its deletion, so downstream systems can
    /// reject writes from an older leader. A deletion or a wipe erases the count on the server: a process that never
    /// saw the last epoch before it (one started since, say) cannot know it, so fence with the holder too.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// Wall-clock time of the acquisition, for display (status lines, metrics). Never used for decisions.
    #[must_use]
    pub fn acquired_at(&self) -> jiff::Timestamp {
        self.inner.acquired_at
    }

    /// When the acquisition succeeded, on this process's monotonic clock.
    #[must_use]
    pub fn started_at(&self) -> Instant {
        self.inner.started
    }

    /// When leadership ended, on this process's monotonic clock; `None` while it is current.
    ///
    /// For a deadline that passed unnoticed (the process was paused), this is the deadline itself, not the
    /// moment it was noticed, so that intervals of successive leaders can be compared.
    #[must_use]
    pub fn ended_at(&self) -> Option<Instant> {
        self.check();
        self.inner.state.lock().ended_at
    }

    /// Our holder identity, as written in the Lease.
    #[must_use]
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// The Lease's namespace.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The Lease's name.
    #[must_use]
    pub fn lease_name(&self) -> &str {
        &self.inner.lease_name
    }

    /// Whether we still lead: the elector has not ended leadership and the deadline (send time of the last
    /// successful renew + RD, on CLOCK_BOOTTIME) has not passed.
    ///
    /// Check this right before an action that must not be done twice; the answer can turn false at any
    /// moment after.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.time_left().is_some()
    }

    /// How long leadership stays valid if no further renew succeeds; `None` once it has ended.
    #[must_use]
    pub fn time_left(&self) -> Option<Duration> {
        self.check()
    }

    /// The deadline itself, as one absolute point on the leadership clock: time since boot on CLOCK_BOOTTIME,
    /// which means the same in every process on the machine, so a watchdog in another process can hold it (in a
    /// simulated elector, time since the simulation's origin). `None` once leadership has ended.
    ///
    /// Derive other deadlines from this, not from now + [`Leadership::time_left`]: two clock reads with a stall
    /// between them would move the result later than the real deadline.
    #[must_use]
    pub fn deadline_since_boot(&self) -> Option<Duration> {
        self.check()?;
        Some(self.inner.state.lock().deadline)
    }

    /// Resolves when leadership ends: at the latest RD after the send time of the last successful renew, or
    /// earlier when the elector ends it (step-down, shutdown, another holder observed).
    ///
    /// Stop the guarded work when this resolves. It resolves immediately for a guard that has already ended,
    /// and it does not depend on the elector task making progress.
    pub async fn lost(&self) {
        let mut ended = self.inner.ended.subscribe();
        loop {
            let Some(left) = self.check() else { return };
            tokio::select! {
                () = tokio::time::sleep(left.min(RECHECK)) => {}
                _ = ended.wait_for(|e| *e) => return,
            }
        }
    }

    /// Extends the deadline after a renew sent at `sent` succeeded. Returns `false`, changing nothing, when
    /// leadership has already ended: a late success does not bring leadership back.
    pub(crate) fn extend(&self, sent: Tick, renew_deadline: Duration) -> bool {
        if self.check().is_none() {
            return false;
        }
        let mut st = self.inner.state.lock();
        if st.ended_at.is_some() {
            return false;
        }
        st.deadline = st.deadline.max(sent + renew_deadline);
        true
    }

    /// Ends leadership now (step-down, shutdown, loss observed).
    pub(crate) fn end(&self) {
        let mut st = self.inner.state.lock();
        if st.ended_at.is_none() {
            st.ended_at = Some(Instant::now());
            drop(st);
            self.inner.ended.send_replace(true);
        }
    }

    /// The deadline on the deadline clock.
    #[cfg(test)]
    pub(crate) fn deadline(&self) -> Tick {
        self.inner.state.lock().deadline
    }

    /// Time left, ending the guard if the deadline has passed.
    fn check(&self) -> Option<Duration> {
        let mut st = self.inner.state.lock();
        if st.ended_at.is_some() {
            return None;
        }
        let now = self.inner.clock.now();
        if now < st.deadline {
            return Some(st.deadline - now);
        }
        let late = now - st.deadline;
        let noticed = Instant::now();
        st.ended_at = Some(noticed.checked_sub(late).unwrap_or(noticed));
        drop(st);
        self.inner.ended.send_replace(true);
        None
    }
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field(
                "lease",
                &format_args!("{}/{}", self.inner.namespace, self.inner.lease_name),
            )
            .field("holder", &self.inner.holder)
            .field("epoch", &self.inner.epoch)
            .field("acquired_at", &self.inner.acquired_at)
            .field("current", &self.is_current())
            .finish()
    }
}

impl PartialEq for Leadership {
    /// Two guards are equal when they are clones of one acquisition.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[cfg(test)]
mod tests {
    use std::{future::Future, pin::pin, task::Poll};

    use super::*;

    fn guard(clock: Clock) -> Leadership {
        Leadership::new(
            "ns",
            "lease",
            "n_1",
            7,
            clock,
            clock.now(),
            Duration::from_secs(10),
        )
    }

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        f.poll(&mut cx)
    }

    #[tokio::test(start_paused = true)]
    async fn expires_at_the_deadline_without_any_help() {
        let clock = Clock::tokio();
        let g = guard(clock);
        assert!(g.is_current());
        assert_eq!(g.epoch(), 7);
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(g.is_current());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!g.is_current());
        assert!(g.ended_at().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_absolute_deadline_does_not_move_with_the_time_it_is_read() {
        let clock = Clock::tokio();
        let g = guard(clock);
        let at_start = g.deadline_since_boot();
        assert_eq!(at_start, Some(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(
            g.deadline_since_boot(),
            at_start,
            "read later, the same point"
        );
        assert!(g.extend(Duration::from_secs(3), Duration::from_secs(10)));
        assert_eq!(g.deadline_since_boot(), Some(Duration::from_secs(13)));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(g.deadline_since_boot(), None, "ended");
    }

    #[tokio::test(start_paused = true)]
    async fn lost_resolves_at_the_deadline() {
        let clock = Clock::tokio();
        let g = guard(clock);
        let start = tokio::time::Instant::now();
        g.lost().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn renew_extends_from_its_send_time() {
        let clock = Clock::tokio();
        let g = guard(clock);
        tokio::time::advance(Duration::from_secs(4)).await;
        let sent = clock.now();
        tokio::time::advance(Duration::from_secs(1)).await; // the response takes 1 s
        assert!(g.extend(sent, Duration::from_secs(10)));
        assert_eq!(g.deadline(), Duration::from_secs(14));
        let start = tokio::time::Instant::now();
        g.lost().await;
        assert_eq!(start.elapsed(), Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn late_renew_success_does_not_restore_leadership() {
        let clock = Clock::tokio();
        let g = guard(clock);
        let sent = clock.now() + Duration::from_secs(9);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!g.extend(sent, Duration::from_secs(10)));
        assert!(!g.is_current());
    }

    #[tokio::test(start_paused = true)]
    async fn end_wakes_lost_at_once() {
        let g = guard(Clock::tokio());
        let mut lost = pin!(g.lost());
        assert!(poll_once(lost.as_mut()).is_pending());
        g.end();
        assert!(poll_once(lost.as_mut()).is_ready());
        assert!(!g.is_current());
        assert!(!g.extend(Clock::tokio().now(), Duration::from_secs(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_state() {
        let g = guard(Clock::tokio());
        let h = g.clone();
        g.end();
        assert!(!h.is_current());
        assert_eq!(g, h);
    }
}
