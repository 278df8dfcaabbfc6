//! The server without sockets: the same state and request handling as [`start`](crate::start), reached through
//! [`ApiService`], a `tower::Service`, instead of a TCP listener.
//!
//! It exists for deterministic simulations: many kube-rs clients (`kube::Client::new(service, "default")`) on
//! one thread on tokio's paused clock, where a real socket would tie the run to the operating system's timing.
//! Nothing here spawns a task or reads the wall clock for behaviour: watches and injected latency run on tokio
//! time, and a restart or restore ends open watch bodies and fails in-flight requests as dropped connections
//! would.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use crate::handle::Handle;
use crate::service::ApiService;
use crate::{Error, Options};

/// The port discovery documents name when [`Options::listen`] leaves it to the OS (0): kube-apiserver's.
const DEFAULT_PORT: u16 = 6443;

/// A server that serves requests in process, through [`InProcess::service`], with no listener.
///
/// The test hooks (users, counters, faults, restarts, snapshots) are on [`Handle`], which it dereferences to, as
/// [`Server`](crate::Server) does, so a test can move between the two front ends unchanged. Cloning is cheap and
/// every clone drives the same server.
#[derive(Clone)]
pub struct InProcess {
    handle: Handle,
    server_address: Arc<str>,
}

/// Builds a server that serves requests in process only, from the same constructor as [`start`](crate::start).
///
/// It neither binds nor spawns anything, so it can be built outside a runtime and used on a paused clock.
/// [`Options::tls`] is ignored (there is no connection to encrypt); [`Options::listen`] only names the address
/// that discovery documents report. Fails only when an RBAC manifest does not load.
pub fn in_process(opts: Options) -> Result<InProcess, Error> {
    let handle = Handle::build(&opts)?;
    let mut address: SocketAddr = opts.listen;
    if address.port() == 0 {
        address.set_port(DEFAULT_PORT);
    }
    Ok(InProcess {
        handle,
        server_address: address.to_string().into(),
    })
}

impl Deref for InProcess {
    type Target = Handle;

    /// The test hooks, shared with [`Server`](crate::Server), so tests call them on the server directly.
    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl InProcess {
    /// A client-side service that sends every request as the user `token` belongs to (see
    /// [`Handle::add_user`]). Give each simulated client its own, so faults and counters apply to it alone.
    /// A token that is not a valid header value is sent as no token at all: the anonymous user, whom the server
    /// refuses with 403 (401 with [`crate::Options::anonymous_auth`] off).
    pub fn service(&self, token: &str) -> ApiService {
        ApiService::new(
            self.handle.state().clone(),
            token,
            self.server_address.clone(),
        )
    }

    /// The address discovery documents report (`serverAddressByClientCIDRs`), so clients that look at it see a
    /// plausible `host:port`.
    pub fn server_address(&self) -> &str {
        &self.server_address
    }
}
