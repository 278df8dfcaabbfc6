//! kube-lease-manager 0.13 (kube 5), in its "fully automated" mode: `LeaseManager::watch()` publishes whether we
//! hold the lock; dropping the channel makes its task release the Lease and exit (its graceful stop).
//!
//! Settings: it has no RD/RP; it takes a lease duration and a "grace" (how long before expiry the holder renews).
//! LD 15 s and grace 13 s make the holder renew every 2 s (= RP).
//!
//! Stand-in gap: its server-side-apply patches carry no `metadata.name`. kube-apiserver takes the name from the
//! URL; leasehold-apiserver answers 400 ("the name of the object () does not match the name on the URL"), and
//! the crate could never acquire. The client therefore fills `metadata.name` in from the URL in apply-patch
//! bodies that lack it ([`name_apply_patches`]), which is what kube-apiserver does; no request is added.

use futures::FutureExt;
use kube::client::{Body, ClientBuilder};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::mpsc;

use super::{CandidateSpec, Ctl, Outcome, Reporter};
use crate::clock::mono_ns;
use crate::protocol::StopReason;
use crate::timings::{LEASE_DURATION, RETRY_PERIOD};

enum Wake {
    Ctl(Option<Ctl>),
    Changed(bool),
}

/// A kube 5 client as a user of the crate builds it (kube's defaults), plus [`name_apply_patches`].
async fn client(spec: &CandidateSpec) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&spec.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let layer = tower::util::MapRequestLayer::new(name_apply_patches);
    Ok(ClientBuilder::try_from(config)?.with_layer(&layer).build())
}

/// Adds `metadata.name` (the last URL path segment) to a server-side-apply PATCH body that has none, as
/// kube-apiserver treats such a body. Every other request passes unchanged.
fn name_apply_patches(req: http::Request<Body>) -> http::Request<Body> {
    let is_apply = req.method() == http::Method::PATCH
        && req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
    if !is_apply {
        return req;
    }
    let (parts, body) = req.into_parts();
    // kube builds request bodies in one piece, so collecting completes at once.
    let Some(Ok(bytes)) = body.collect_bytes().now_or_never() else {
        return http::Request::from_parts(parts, Body::empty());
    };
    let name = parts
        .uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut value) if value.pointer("/metadata/name").is_none() && value.is_object() => {
            let metadata = value
                .as_object_mut()
                .map(|o| o.entry("metadata").or_insert_with(|| serde_json::json!({})));
            if let Some(serde_json::Value::Object(m)) = metadata {
                m.insert("name".to_owned(), serde_json::Value::String(name));
            }
            serde_json::to_vec(&value).map_or_else(|_| Body::from(bytes.to_vec()), Body::from)
        }
        _ => Body::from(bytes.to_vec()),
    };
    http::Request::from_parts(parts, body)
}

pub(super) async fn run(
    spec: &CandidateSpec,
    rep: &mut Reporter,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
) -> anyhow::Result<Outcome> {
    let duration = LEASE_DURATION.as_secs();
    let manager = LeaseManagerBuilder::new(client(spec).await?, &spec.lease)
        .with_namespace(&spec.namespace)
        .with_identity(spec.holder())
        .with_duration(duration)
        .with_grace(duration - RETRY_PERIOD.as_secs())
        .build()
        .await?;
    let (mut channel, task) = manager.watch().await;
    rep.up();
    loop {
        let wake = tokio::select! {
            c = ctl.recv() => Wake::Ctl(c),
            r = channel.changed() => Wake::Changed(r.is_ok()),
        };
        match wake {
            Wake::Ctl(Some(Ctl::Release)) => {
                rep.stop(mono_ns(), StopReason::Release);
                drop(channel);
                task.await?.map_err(|e| anyhow::anyhow!("release: {e}"))?;
                return Ok(Outcome::Released);
            }
            Wake::Ctl(_) => return Ok(rep.crash()),
            Wake::Changed(true) => {
                if *channel.borrow_and_update() {
                    rep.start(mono_ns());
                } else {
                    rep.stop(mono_ns(), StopReason::Lost);
                }
            }
            Wake::Changed(false) => {
                let result = task.await;
                anyhow::bail!(
                    "the lease manager's task ended: {:?}",
                    result.map(|r| r.err())
                );
            }
        }
    }
}
