//! Noticing a silent watch: a client wrapper that notes the time of every body frame received.
//!
//! kube-runtime's watcher consumes bookmarks internally, so its event stream alone cannot tell a quiet
//! namespace from a dead connection. Every event and every bookmark is a frame of a watch response body,
//! though, so a client that stamps each frame lets the shared watch relist after two minutes of real silence.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::{BodyExt, combinators::UnsyncBoxBody};
use kube::{Client, client::Body};
use tokio::time::Instant;

/// The time the last response-body frame arrived.
#[derive(Clone, Debug)]
pub(crate) struct Activity(Arc<Mutex<Instant>>);

impl Activity {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    /// Notes activity now.
    pub(crate) fn touch(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// When the last activity was.
    pub(crate) fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A client that sends through `inner` and touches `activity` on every response-body frame.
pub(crate) fn tapped(inner: Client, activity: Activity) -> Client {
    let ns = inner.default_namespace().to_owned();
    Client::new(Tap { inner, activity }, ns)
}

#[derive(Clone)]
struct Tap {
    inner: Client,
    activity: Activity,
}

type TapResponse = http::Response<UnsyncBoxBody<Bytes, kube::Error>>;

impl tower::Service<http::Request<Body>> for Tap {
    type Response = TapResponse;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TapResponse, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let activity = self.activity.clone();
        Box::pin(async move {
            let res = inner.send(req).await?;
            Ok(res.map(|body| {
                body.map_frame(move |frame| {
                    if frame.is_data() {
                        activity.touch();
                    }
                    frame
                })
                .boxed_unsync()
            }))
        })
    }
}
