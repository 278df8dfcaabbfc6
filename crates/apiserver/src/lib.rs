//! leasehold-apiserver: a small Kubernetes-compatible API server for Leases, for tests, benchmarks and the local
//! demo. It is never for production.
//!
//! It speaks the real wire protocol, so the real kube-rs client and the real `kubectl` work against it unchanged:
//! `coordination.k8s.io/v1` Leases (get, list, create, update, patch in all four flavours, delete, watch),
//! Events through `events.k8s.io/v1` and core v1 over one store, Namespaces, discovery, OpenAPI and Table output.
//! Its answers were checked against a real kube-apiserver's, recorded in `tests/data/lease-api-corpus.jsonl`.
//!
//! On top of that it lets tests observe and break things: per-user request counters, partitions, latency,
//! injected 500/429 answers, closed watches, restarts with state kept or wiped, and restores from a snapshot
//! (an etcd restore). Those hooks are on [`Handle`], shared by both ways to run the server: [`start`] listens on
//! TCP, and [`in_process`] serves requests as a `tower::Service` with no sockets at all, for deterministic
//! simulations on tokio's paused clock (`kube::Client::new(in_process.service(&token), "default")`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = leasehold_apiserver::start(leasehold_apiserver::Options::default()).await?;
//! let token = server.add_user("candidate-1", &[]);
//! let kubeconfig = server.kubeconfig(&token); // hand this to kube::Config or kubectl
//! # let _ = kubeconfig;
//! server.faults().close_watches();
//! println!("{} writes so far", server.counters().writes());
//! # Ok(()) }
//! ```

mod admin;
pub mod counters;
mod decode;
mod discovery;
mod event_view;
pub mod faults;
pub mod fields;
mod go_text;
mod handle;
mod http;
mod in_process;
mod kubeconfig;
mod meta;
mod objects;
mod openapi;
pub mod patch;
pub mod rbac;
mod request;
mod resource;
mod route;
pub mod selector;
mod server;
mod service;
mod state;
mod status;
mod store;
mod table;
mod tls;
mod validate;
mod watch;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::http::Body;
pub use counters::Counters;
pub use faults::{ErrorInjection, Faults, PartitionMode};
pub use handle::Handle;
pub use in_process::{InProcess, in_process};
pub use rbac::UserInfo;
pub use route::ADMIN_PREFIX;
pub use service::{ApiService, ServiceError};
pub use store::{BASE_RV, Snapshot};

/// How the server starts.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen. Default `127.0.0.1:0`: a random loopback port. An [`InProcess`] server listens nowhere and
    /// only names this address in discovery documents (port 6443 when it is 0).
    pub listen: SocketAddr,
    /// Serve HTTPS with a self-signed certificate (embedded in kubeconfigs). Default off; an [`InProcess`] server
    /// has no connections to encrypt and ignores it.
    pub tls: bool,
    /// How often watches that allow bookmarks get one. Default 60 s, like the real server's watch cache.
    pub bookmark_interval: Duration,
    /// How many changes the history keeps for watches to resume from; older resourceVersions get 410.
    /// Default 10,000.
    pub history_window: usize,
    /// Users by bearer token (kube-apiserver's token file); the admin token is added on top.
    pub tokens: Vec<(String, UserInfo)>,
    /// RBAC manifests as (label, YAML text). Empty: every authenticated user may do everything.
    pub rbac: Vec<(String, String)>,
    /// A fixed admin token; default: a random one.
    pub admin_token: Option<String>,
    /// kube-apiserver's `--anonymous-auth`, on by default as there: a request with no credentials is served as
    /// `system:anonymous` (group `system:unauthenticated`), whom RBAC then refuses with 403, and without RBAC
    /// manifests nothing is allowed either. Off, such a request gets 401. A request with a token nobody holds gets
    /// 401 either way.
    pub anonymous_auth: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            bookmark_interval: Duration::from_secs(60),
            history_window: 10_000,
            tokens: Vec::new(),
            rbac: Vec::new(),
            admin_token: None,
            anonymous_auth: true,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// TLS set-up failed.
    #[error("TLS set-up failed")]
    Tls(#[source] tls::TlsError),
    /// An RBAC manifest could not be loaded.
    #[error("loading RBAC manifests failed")]
    Rbac(#[source] rbac::RbacError),
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
///
/// The test hooks (users, counters, faults, restarts, snapshots) are on [`Handle`], which it dereferences to, so
/// the same calls drive a [`Server`] and an [`InProcess`] server.
pub struct Server {
    handle: Handle,
    addr: SocketAddr,
    ca_pem: Option<String>,
    accept: JoinHandle<()>,
}

/// A new random bearer token.
pub(crate) fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Starts a server with `opts`, returning once it listens.
pub async fn start(opts: Options) -> Result<Server, Error> {
    let handle = Handle::build(&opts)?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: opts.listen,
        source,
    })?;
    let tls = if opts.tls {
        Some(tls::self_signed(&addr.ip().to_string()).map_err(Error::Tls)?)
    } else {
        None
    };
    let ca_pem = tls.as_ref().map(|t| t.cert_pem.clone());
    let accept = tokio::spawn(server::accept_loop(
        listener,
        handle.state().clone(),
        tls.map(|t| t.acceptor),
        addr,
    ));
    Ok(Server {
        handle,
        addr,
        ca_pem,
        accept,
    })
}

impl std::ops::Deref for Server {
    type Target = Handle;

    /// The test hooks, shared with [`InProcess`], so tests call them on the server directly.
    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Server {
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (YAML) that authenticates with `token`.
    pub fn kubeconfig(&self, token: &str) -> String {
        let user = self
            .handle
            .state()
            .user_for(token)
            .map(|u| u.name)
            .unwrap_or_else(|| "user".into());
        kubeconfig::render(&self.url(), &user, token, self.ca_pem.as_deref())
    }

    /// The self-signed certificate (PEM) when TLS is on.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Stops accepting and drops every connection.
    pub async fn shutdown(self) {
        self.accept.abort();
        let _ = self.accept.await;
        self.handle.state().connections.send_modify(|g| *g += 1);
    }
}
