//! kube-leader-election 0.44 (kube 4): a lock primitive, `LeaseLock::try_acquire_or_renew`, that the application
//! calls in a loop. We call it every RP (2 s) with a TTL of LD (15 s), as its README suggests, and count
//! ourselves leader from an `Acquired` answer until a `NotAcquired` one (or RD after the last success, when
//! calls fail). Graceful stop: `LeaseLock::step_down` (holder "" and a 1 s TTL).

use std::time::Instant;

use kube_leader_election::{LeaseLock, LeaseLockParams, LeaseLockResult};
use tokio::sync::mpsc;

use super::{CandidateSpec, Ctl, Outcome, Reporter};
use crate::clock::{instant_ns, mono_ns};
use crate::protocol::StopReason;
use crate::timings::{LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD};

/// What one `try_acquire_or_renew` said.
enum Tried {
    Acquired,
    NotAcquired,
    Failed,
}

enum Wake {
    Ctl(Option<Ctl>),
    Tried(Instant, Tried),
}

/// A kube 4 client as a user of the crate builds it (kube's defaults).
async fn client(spec: &CandidateSpec) -> anyhow::Result<kube4::Client> {
    let kubeconfig = kube4::config::Kubeconfig::from_yaml(&spec.kubeconfig())?;
    let config = kube4::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(kube4::Client::try_from(config)?)
}

pub(super) async fn run(
    spec: &CandidateSpec,
    rep: &mut Reporter,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
) -> anyhow::Result<Outcome> {
    let lock = LeaseLock::new(
        client(spec).await?,
        &spec.namespace,
        LeaseLockParams {
            lease_name: spec.lease.clone(),
            holder_id: spec.holder(),
            lease_ttl: LEASE_DURATION,
        },
    );
    rep.up();
    let mut tick = tokio::time::interval(RETRY_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_success: Option<Instant> = None;
    loop {
        let wake = tokio::select! {
            c = ctl.recv() => Wake::Ctl(c),
            (sent, r) = async {
                tick.tick().await;
                let sent = Instant::now();
                let tried = match lock.try_acquire_or_renew().await {
                    Ok(LeaseLockResult::Acquired(_)) => Tried::Acquired,
                    Ok(LeaseLockResult::NotAcquired(_)) => Tried::NotAcquired,
                    Err(_) => Tried::Failed,
                };
                (sent, tried)
            } => Wake::Tried(sent, r),
        };
        match wake {
            Wake::Ctl(Some(Ctl::Release)) => {
                if rep.leading() {
                    rep.stop(mono_ns(), StopReason::Release);
                    lock.step_down().await?;
                }
                return Ok(Outcome::Released);
            }
            Wake::Ctl(_) => return Ok(rep.crash()),
            Wake::Tried(sent, Tried::Acquired) => {
                last_success = Some(sent);
                rep.start(mono_ns());
            }
            Wake::Tried(_, Tried::NotAcquired) => rep.stop(mono_ns(), StopReason::Lost),
            Wake::Tried(_, Tried::Failed) => {
                if let Some(deadline) = last_success.map(|s| s + RENEW_DEADLINE)
                    && rep.leading()
                    && Instant::now() >= deadline
                {
                    rep.stop(instant_ns(deadline), StopReason::Lost);
                }
            }
        }
    }
}
