//! The agent's two HTTP listeners.
//!
//! - The control API on `LEASEHOLD_LISTEN` (default `127.0.0.1:9530`): status, the server-sent-events stream,
//!   impeach, and runtime election tags. Off loopback, its mutating endpoints need
//!   `Authorization: Bearer $LEASEHOLD_API_TOKEN`.
//! - The read-only probe listener on `LEASEHOLD_PROBE_LISTEN` (default `0.0.0.0:9531`): `/healthz`, `/readyz`
//!   and `/metrics` only, so kubelet and Prometheus can reach the pod IP while the control API stays on loopback.

mod control;
mod probes;

use std::net::SocketAddr;
use std::sync::Arc;

pub use control::{Controls, ImpeachRequest};

use crate::metrics::Metrics;
use crate::view::View;

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The address could not be bound.
    #[error("cannot listen on {addr} ({var}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The variable that set it, for the error line.
        var: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Bound listeners, ready to serve.
pub struct Listeners {
    control: tokio::net::TcpListener,
    probes: tokio::net::TcpListener,
}

impl Listeners {
    /// Binds both addresses, so a port clash is reported before anything else starts.
    pub async fn bind(control: SocketAddr, probes: SocketAddr) -> Result<Self, ApiError> {
        let bind = |addr: SocketAddr, var: &'static str| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ApiError::Bind { addr, var, source })
        };
        Ok(Self {
            control: bind(control, "LEASEHOLD_LISTEN").await?,
            probes: bind(probes, "LEASEHOLD_PROBE_LISTEN").await?,
        })
    }

    /// Serves both listeners until the process ends.
    pub fn spawn(
        self,
        view: Arc<View>,
        controls: Controls,
        metrics: Arc<Metrics>,
        token: Option<String>,
    ) {
        let control_addr = self.control.local_addr().ok();
        let needs_token = control_addr.is_some_and(|a| !a.ip().is_loopback());
        let app = control::router(
            view.clone(),
            controls,
            if needs_token { token } else { None },
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(self.control, app).await {
                tracing::error!(error = %e, "control API stopped");
            }
        });
        let probes = probes::router(view, metrics);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(self.probes, probes).await {
                tracing::error!(error = %e, "probe listener stopped");
            }
        });
    }
}
