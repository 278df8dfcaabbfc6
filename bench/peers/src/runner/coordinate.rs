//! kube-coordinate 2.0.0-rc.0 (kube 2): `LeaderElector::spawn` with LD/RD/RP, leadership from its state channel.
//! It has no release: `LeaderElectorHandle::shutdown` stops the task and leaves the Lease held until it expires.
//! Its leader renews every RD (not RP), by its design.

use kube_coordinate::{Config, LeaderElector};
use tokio::sync::mpsc;

use super::{CandidateSpec, Ctl, Outcome, Reporter};
use crate::clock::mono_ns;
use crate::protocol::StopReason;
use crate::timings::{LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD};

enum Wake {
    Ctl(Option<Ctl>),
    Changed(bool),
}

/// A kube 2 client as a user of the crate builds it (kube's defaults).
async fn client(spec: &CandidateSpec) -> anyhow::Result<kube2::Client> {
    let kubeconfig = kube2::config::Kubeconfig::from_yaml(&spec.kubeconfig())?;
    let config = kube2::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(kube2::Client::try_from(config)?)
}

pub(super) async fn run(
    spec: &CandidateSpec,
    rep: &mut Reporter,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
) -> anyhow::Result<Outcome> {
    let config = Config::default()
        .name(&spec.lease)
        .namespace(&spec.namespace)
        .identity(&spec.holder())
        // The server-side-apply field manager is shared by the whole group, as its docs ask.
        .manager("leasehold-bench")
        .lease_duration(LEASE_DURATION)
        .renew_deadline(RENEW_DEADLINE)
        .retry_period(RETRY_PERIOD);
    let handle = LeaderElector::spawn(config, client(spec).await?)?;
    rep.up();
    let mut state = handle.state();
    loop {
        if state.borrow_and_update().is_leader() {
            rep.start(mono_ns());
        } else {
            rep.stop(mono_ns(), StopReason::Lost);
        }
        let wake = tokio::select! {
            c = ctl.recv() => Wake::Ctl(c),
            r = state.changed() => Wake::Changed(r.is_ok()),
        };
        match wake {
            Wake::Ctl(Some(Ctl::Release)) => {
                rep.stop(mono_ns(), StopReason::Release);
                handle.shutdown().await?;
                return Ok(Outcome::Released);
            }
            Wake::Ctl(_) => return Ok(rep.crash()),
            Wake::Changed(true) => {}
            Wake::Changed(false) => anyhow::bail!("the leader elector's state channel closed"),
        }
    }
}
