//! [`ApiService`]: one client's way into an [`InProcess`](crate::InProcess) server, as a `tower::Service`.
//!
//! It authenticates every request with the client's token, serves it exactly as the TCP path does
//! ([`crate::http::handle`]), and emulates the one thing a connection adds: when the server restarts (or is
//! restored from a snapshot), requests still in flight fail with [`ServiceError::ConnectionDropped`] and
//! response bodies still streaming (watches) end, so clients reconnect as they would after a dropped connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use tokio_stream::Stream;
use tokio_stream::wrappers::WatchStream;

use crate::http::Body;
use crate::state::Shared;

/// Why an in-process request failed without an HTTP answer: what a transport error is over TCP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The server restarted (or was restored) while the request was in flight, as when a real API server
    /// drops its connections; the client should retry, as it would after a connection reset.
    #[error("connection dropped: the API server restarted")]
    ConnectionDropped,
}

/// A cheap, cloneable `tower::Service` that serves HTTP requests in process as one user.
///
/// Built by [`InProcess::service`](crate::InProcess::service). It accepts any byte body (kube-rs's
/// `kube::client::Body` included), so `kube::Client::new(service, "default")` works, and answers with
/// [`Body`]. It is always ready; every request is served on the calling task, so it runs on tokio's paused
/// clock in a current-thread runtime.
#[derive(Clone)]
pub struct ApiService {
    state: Shared,
    authorization: Option<HeaderValue>,
    server_address: Arc<str>,
}

impl ApiService {
    /// A service sending `token` as a bearer token; discovery documents name `server_address`.
    pub(crate) fn new(state: Shared, token: &str, server_address: Arc<str>) -> Self {
        let authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        Self {
            state,
            authorization,
            server_address,
        }
    }
}

impl<B> tower::Service<Request<B>> for ApiService
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = ServiceError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, ServiceError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match &self.authorization {
            Some(v) => {
                req.headers_mut().insert(header::AUTHORIZATION, v.clone());
            }
            None => {
                req.headers_mut().remove(header::AUTHORIZATION);
            }
        }
        let state = self.state.clone();
        let address = self.server_address.to_string();
        // Subscribed now, not when the future is first polled: a restart in between must fail this request too.
        let mut restarts = state.connections.subscribe();
        Box::pin(async move {
            // Biased, handler first: the outcome must not depend on tokio's random branch order. A request whose
            // handler completes in the same poll as a restart (an admin restart, say) gets its answer.
            let resp = tokio::select! {
                biased;
                resp = crate::http::handle(state.clone(), address, req) => resp,
                _ = restarts.changed() => return Err(ServiceError::ConnectionDropped),
            };
            let restarts = WatchStream::from_changes(state.connections.subscribe());
            Ok(resp.map(|body| {
                Severed {
                    inner: Some(body),
                    restarts,
                }
                .boxed()
            }))
        })
    }
}

/// A response body that ends at the next restart, as the body of a dropped connection stops.
struct Severed {
    /// `None` once ended: dropped at once, so a watch feeding it sees its client gone and stops, as it would
    /// when the connection closes, rather than filling its buffer (and the counters) for nobody.
    inner: Option<Body>,
    restarts: WatchStream<u64>,
}

impl hyper::body::Body for Severed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        // Any change (or the server gone) ends the body; checked first so a restart wins over buffered frames.
        if Pin::new(&mut this.restarts).poll_next(cx).is_ready() {
            this.inner = None;
            return Poll::Ready(None);
        }
        Pin::new(inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // Not the inner hint: a body cut short by a restart would break an exact one.
        SizeHint::default()
    }
}
