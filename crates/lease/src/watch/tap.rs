//! Noticing a silent watch: a client wrapper that notes the time of every body frame received.
//!
//! kube-runtime's watcher consumes bookmarks internally, so its event stream alone cannot tell a quiet
//! namespace from a dead connection. Every event and every bookmark is a frame of a watch response body,
//! though, so a client that stamps each frame lets the shared watch relist after two minutes of real silence.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::{BodyExt, combinators::UnsyncBoxBody};
use kube::{Client, client::Body};
use parking_lot::Mutex;
use tokio::time::Instant;

/// The time the last response-body frame arrived, and the time the latest watch request was answered.
#[derive(Clone, Debug)]
pub(crate) struct Activity(Arc<Mutex<Times>>);

#[derive(Clone, Copy, Debug)]
struct Times {
    last: Instant,
    watch_opened: Instant,
}

impl Activity {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Self(Arc::new(Mutex::new(Times {
            last: now,
            watch_opened: now,
        })))
    }

    /// Notes activity now.
    pub(crate) fn touch(&self) {
        self.0.lock().last = Instant::now();
    }

    /// When the last activity was.
    pub(crate) fn last(&self) -> Instant {
        self.0.lock().last
    }

    /// When the latest watch request (a first watch, or a re-open after the server ended one) was answered. An
    /// event that reaches the watcher now came through that request, which has stayed open since: a server that
    /// restarts or is restored from a backup drops every connection, so nothing erased the Lease's history after
    /// this instant without ending the watch.
    pub(crate) fn watch_opened(&self) -> Instant {
        self.0.lock().watch_opened
    }
}

/// Whether a request opens a watch (kube-rs writes `watch=true`; `watch=1` is the other spelling the API accepts).
fn is_watch(req: &http::Request<Body>) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
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
        let watch = is_watch(&req);
        Box::pin(async move {
            let res = inner.send(req).await?;
            if watch {
                activity.0.lock().watch_opened = Instant::now();
            }
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
