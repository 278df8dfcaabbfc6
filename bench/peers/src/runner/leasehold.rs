//! leasehold-lease: `Elector::spawn`, leadership from the state channel and the `Leadership` guard,
//! graceful stop with `ElectionHandle::shutdown` (which writes the early-free release).

use leasehold_lease::{ElectionConfig, Elector, Identity, Leadership};
use tokio::sync::mpsc;

use super::{CandidateSpec, Ctl, Outcome, Reporter};
use crate::clock::{instant_ns, mono_ns};
use crate::protocol::StopReason;
use crate::timings::{LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD};

enum Wake {
    Ctl(Option<Ctl>),
    Lost,
    Changed(bool),
}

pub(super) async fn run(
    spec: &CandidateSpec,
    rep: &mut Reporter,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
) -> anyhow::Result<Outcome> {
    // Retry layer off, as the library requires.
    let client = leasehold_lease::client_from_kubeconfig_yaml(&spec.kubeconfig()).await?;
    let identity = Identity::new(spec.node(), format!("g{}", spec.generation))?;
    let config = ElectionConfig::new(&spec.namespace, &spec.lease, identity).timings(
        LEASE_DURATION,
        RENEW_DEADLINE,
        RETRY_PERIOD,
    );
    let handle = Elector::new(client).spawn(config)?;
    rep.up();
    let mut state = handle.state();
    let mut current: Option<Leadership> = None;
    loop {
        if current.is_none() {
            let leadership = state.borrow_and_update().leadership().cloned();
            if let Some(l) = leadership.filter(Leadership::is_current) {
                rep.start(instant_ns(l.started_at()));
                current = Some(l);
            }
        }
        let guard = current.clone();
        let lost = async move {
            match guard {
                Some(l) => l.lost().await,
                None => std::future::pending().await,
            }
        };
        let wake = tokio::select! {
            c = ctl.recv() => Wake::Ctl(c),
            () = lost => Wake::Lost,
            r = state.changed() => Wake::Changed(r.is_ok()),
        };
        match wake {
            Wake::Ctl(Some(Ctl::Release)) => {
                rep.stop(mono_ns(), StopReason::Release);
                handle
                    .shutdown()
                    .await
                    .map_err(|e| anyhow::anyhow!("shutdown: {e}"))?;
                return Ok(Outcome::Released);
            }
            Wake::Ctl(_) => return Ok(rep.crash()),
            Wake::Lost => {
                let ended = current.take().and_then(|l| l.ended_at());
                rep.stop(ended.map_or_else(mono_ns, instant_ns), StopReason::Lost);
            }
            Wake::Changed(true) => {
                if let Some(e) = handle.error() {
                    anyhow::bail!("elector stopped: {e}");
                }
            }
            Wake::Changed(false) => anyhow::bail!("the elector's state channel closed"),
        }
    }
}
