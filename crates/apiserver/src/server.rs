//! The accept loop: plain HTTP or TLS, HTTP/1.1 and HTTP/2, each connection dropped at once on a restart.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::counters::ConnectionId;
use crate::state::Shared;

/// Numbers the accepted connections, for the counters' per-connection view.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(0);

/// Accepts connections until the listener fails or the task is aborted.
pub async fn accept_loop(
    listener: TcpListener,
    state: Shared,
    tls: Option<TlsAcceptor>,
    address: SocketAddr,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, state.clone(), tls.clone(), address));
    }
}

async fn connection(
    stream: TcpStream,
    state: Shared,
    tls: Option<TlsAcceptor>,
    address: SocketAddr,
) {
    let mut restarts = state.connections.subscribe();
    restarts.mark_unchanged();
    let server_address = address.to_string();
    let service_state = state.clone();
    let id = ConnectionId(NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed));
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(id);
        let state = service_state.clone();
        let addr = server_address.clone();
        async move { Ok::<_, std::convert::Infallible>(crate::http::handle(state, addr, req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    match tls {
        Some(acceptor) => {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = restarts.changed() => {}
            }
        }
        None => {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = restarts.changed() => {}
            }
        }
    }
}
