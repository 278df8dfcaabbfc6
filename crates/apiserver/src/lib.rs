//! leasehold-apiserver: a small Kubernetes-compatible API server for Leases, for tests, benchmarks and the local
//! demo. It is never for production.
//!
//! It speaks the real wire protocol, so the real kube-rs client and the real `kubectl` work against it unchanged:
//! `coordination.k8s.io/v1` Leases (get, list, create, update, patch in all four flavours, delete, watch),
//! Events through `events.k8s.io/v1` and core v1 over one store, Namespaces, discovery, OpenAPI and Table output.
//! Its answers were checked against a real kube-apiserver's (`shared/reference/lease-api-corpus.jsonl`).
//!
//! On top of that it lets tests observe and break things: per-user request counters, partitions, latency,
//! injected 500/429 answers, closed watches and restarts with state kept or wiped.
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
mod http;
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
mod state;
mod status;
mod store;
mod table;
mod tls;
mod validate;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use counters::Counters;
pub use faults::{ErrorInjection, Faults, PartitionMode};
pub use rbac::UserInfo;
pub use route::ADMIN_PREFIX;
pub use store::BASE_RV;

/// How the server starts.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen. Default `127.0.0.1:0`: a random loopback port.
    pub listen: SocketAddr,
    /// Serve HTTPS with a self-signed certificate (embedded in kubeconfigs). Default off.
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
pub struct Server {
    state: state::Shared,
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
    let authorizer = if opts.rbac.is_empty() {
        rbac::Authorizer::allow_all()
    } else {
        let sources: Vec<(&str, &str)> = opts
            .rbac
            .iter()
            .map(|(l, t)| (l.as_str(), t.as_str()))
            .collect();
        rbac::Authorizer::from_yaml(&sources).map_err(Error::Rbac)?
    };
    let admin_token = opts.admin_token.clone().unwrap_or_else(new_token);
    let mut tokens: HashMap<String, UserInfo> = opts.tokens.iter().cloned().collect();
    tokens.insert(
        admin_token.clone(),
        UserInfo {
            name: "admin".into(),
            uid: "admin".into(),
            groups: vec!["system:masters".into()],
        },
    );
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
    let store = store::Store::new(opts.history_window);
    state::seed_namespaces(&store);
    let state = Arc::new(state::State {
        store,
        tokens: RwLock::new(tokens),
        authorizer,
        faults: faults::Faults::default(),
        counters: counters::Recorder::default(),
        bookmark_interval: opts.bookmark_interval,
        admin_token,
        connections: tokio::sync::watch::channel(0).0,
    });
    let ca_pem = tls.as_ref().map(|t| t.cert_pem.clone());
    let accept = tokio::spawn(server::accept_loop(
        listener,
        state.clone(),
        tls.map(|t| t.acceptor),
        addr,
    ));
    Ok(Server {
        state,
        addr,
        ca_pem,
        accept,
    })
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

    /// The admin token; its user `admin` is in `system:masters`.
    pub fn admin_token(&self) -> String {
        self.state.admin_token.clone()
    }

    /// Registers a user and returns a fresh bearer token for it, so each test client counts separately.
    pub fn add_user(&self, name: &str, groups: &[&str]) -> String {
        let token = new_token();
        self.state.add_token(
            token.clone(),
            UserInfo {
                name: name.to_string(),
                uid: name.to_string(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
        );
        token
    }

    /// A kubeconfig (YAML) that authenticates with `token`.
    pub fn kubeconfig(&self, token: &str) -> String {
        let user = self
            .state
            .user_for(token)
            .map(|u| u.name)
            .unwrap_or_else(|| "user".into());
        kubeconfig::render(&self.url(), &user, token, self.ca_pem.as_deref())
    }

    /// The self-signed certificate (PEM) when TLS is on.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A snapshot of the request counters.
    pub fn counters(&self) -> Counters {
        self.state.counters()
    }

    /// The fault switchboard.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state.store.current_rv()
    }

    /// Simulates a restart: every connection drops; with `keep_state` false the store is wiped and the
    /// resourceVersion restarts below what clients have seen.
    pub async fn restart(&self, keep_state: bool) {
        self.state.restart(keep_state);
        tokio::task::yield_now().await;
    }

    /// Stops accepting and drops every connection.
    pub async fn shutdown(self) {
        self.accept.abort();
        let _ = self.accept.await;
        self.state.connections.send_modify(|g| *g += 1);
    }
}
