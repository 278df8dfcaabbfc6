//! Spawning elections and talking to them: [`Elector`] (one per process and client) and
//! [`ElectionHandle`] (one per Lease).

mod machine;
mod state;
mod version;

use std::{
    collections::{HashMap, HashSet},
    panic::AssertUnwindSafe,
    sync::{Arc, Weak},
};

use futures::FutureExt;
use kube::Client;
use parking_lot::Mutex;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::error;

use self::machine::{Command, Machine};
pub use self::state::{ElectionState, Observation};
use crate::{
    api::{ApiError, LeaseApi},
    clock::Clock,
    config::{ElectionConfig, ElectionConfigError},
    random::Random,
    watch::Hub,
};

/// Why an elector stopped by itself. It is published as [`ElectionState::Stopped`] and returned by
/// [`ElectionHandle::shutdown`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ElectorError {
    /// The API server refused our Lease as invalid (400/422); retrying the same write cannot help.
    #[error("the API server rejected our Lease")]
    Rejected(#[source] ApiError),
    /// The Lease carries a different election namespace than ours: two election namespaces were sanitised
    /// to the same Lease name.
    #[error(
        "Lease {namespace}/{lease} belongs to election namespace {theirs:?}, not {ours:?}: the two names collide after sanitising; rename one of them or set a different lease prefix"
    )]
    NameCollision {
        /// Kubernetes namespace.
        namespace: String,
        /// Lease name.
        lease: String,
        /// Our raw election namespace.
        ours: String,
        /// The raw election namespace found on the Lease.
        theirs: String,
    },
    /// The Lease belongs to something else, by the election's [`crate::OwnerCheck`]: two names map to one Lease
    /// name. Retrying cannot help; one of them must be renamed.
    #[error("Lease {namespace}/{lease} is not this election's: {reason}")]
    NotOurs {
        /// Kubernetes namespace.
        namespace: String,
        /// Lease name.
        lease: String,
        /// What the owner check said.
        reason: String,
    },
    /// The shared watch ended (its task died); the elector can no longer observe the Lease.
    #[error("the shared Lease watch ended")]
    WatchEnded,
    /// The elector task panicked.
    #[error("the elector panicked: {0}")]
    Panicked(String),
}

/// Why an election could not be spawned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The configuration is invalid.
    #[error("invalid election configuration")]
    Config(#[from] ElectionConfigError),
    /// This elector already runs an election for that Lease.
    #[error("an election for Lease {namespace}/{lease} is already running in this Elector")]
    Duplicate {
        /// Kubernetes namespace.
        namespace: String,
        /// Lease name.
        lease: String,
    },
}

/// The elector has stopped; the request could not be carried out.
#[derive(Debug, Clone, Error)]
#[error("the elector has stopped{}", .error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
pub struct Stopped {
    /// Why it stopped, if not on request.
    pub error: Option<Arc<ElectorError>>,
}

type HubKey = (String, String);

/// Runs elections over one `kube::Client`, sharing one watch per (Kubernetes namespace, label selector).
///
/// Create one per process (or, in tests, one per simulated process) and spawn every election on it: an
/// agent in 50 election namespaces then uses one client and one watch connection. The client must be built
/// with kube's retry layer off; use [`crate::client_from_config`] or its siblings.
#[derive(Clone)]
pub struct Elector {
    client: Client,
    shared: Arc<Mutex<Shared>>,
    clock: Clock,
    random: Random,
}

#[derive(Default)]
struct Shared {
    hubs: HashMap<HubKey, Weak<Hub>>,
    running: HashSet<HubKey>,
}

impl Elector {
    /// An elector on `client` (built with the retry layer off).
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self {
            client,
            shared: Arc::new(Mutex::new(Shared::default())),
            clock: Clock::Boot,
            random: Random::Os,
        }
    }

    /// An elector for deterministic simulations on tokio's paused clock: leadership deadlines are measured on
    /// tokio's clock (which the simulation controls) instead of CLOCK_BOOTTIME, and every jitter is drawn from
    /// a generator seeded with `seed`, so that a run replays exactly from its seed.
    ///
    /// Never use it in production: tokio's clock stops while the machine is suspended, so a leader would not
    /// notice a pause that its followers' clocks counted.
    #[must_use]
    pub fn simulated(client: Client, seed: u64) -> Self {
        Self {
            clock: Clock::tokio(),
            random: Random::seeded(seed),
            ..Self::new(client)
        }
    }

    /// The client the elections run on.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Validates `config` and starts its election as a task on the current tokio runtime.
    ///
    /// # Errors
    /// When the configuration is invalid, or an election for the same Lease already runs here.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn spawn(&self, config: ElectionConfig) -> Result<ElectionHandle, SpawnError> {
        config.validate()?;
        let lease_key = (config.namespace.clone(), config.lease_name.clone());
        let hub = {
            let mut shared = self.shared.lock();
            if !shared.running.insert(lease_key.clone()) {
                return Err(SpawnError::Duplicate {
                    namespace: lease_key.0,
                    lease: lease_key.1,
                });
            }
            self.hub(&mut shared, &config)
        };
        let identity = config.identity.holder();
        let api = LeaseApi::new(self.client.clone(), &config.namespace, &config.lease_name);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let state = Arc::new(watch::Sender::new(ElectionState::Following {
            holder: None,
        }));
        let state_rx = state.subscribe();
        let observation = Arc::new(watch::Sender::new(Observation::Watching));
        let observation_rx = observation.subscribe();
        let machine = Machine::new(
            Arc::new(config),
            api,
            hub,
            cmd_rx,
            Arc::clone(&state),
            observation,
            self.clock,
            self.random.clone(),
        );
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let outcome = AssertUnwindSafe(machine.run()).catch_unwind().await;
            let error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Arc::new(e)),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "non-string panic payload".to_owned());
                    Some(Arc::new(ElectorError::Panicked(msg)))
                }
            };
            if let Some(e) = &error {
                error!(lease = %lease_key.1, namespace = %lease_key.0, error = %e, "elector stopped");
            }
            // A dead elector must not leave a guard that looks current.
            if let Some(l) = state.borrow().leadership() {
                l.end();
            }
            state.send_replace(ElectionState::Stopped { error });
            shared.lock().running.remove(&lease_key);
        });
        Ok(ElectionHandle {
            identity,
            state: state_rx,
            observation: observation_rx,
            cmds: cmd_tx,
        })
    }
}

impl Elector {
    /// The shared watch for `config`'s (Kubernetes namespace, label selector), started if none runs.
    fn hub(&self, shared: &mut Shared, config: &ElectionConfig) -> Arc<Hub> {
        let hub_key = (config.namespace.clone(), config.label_selector());
        shared.hubs.retain(|_, hub| hub.strong_count() > 0);
        if let Some(hub) = shared.hubs.get(&hub_key).and_then(Weak::upgrade) {
            hub
        } else {
            let hub = Arc::new(Hub::start(
                self.client.clone(),
                &hub_key.0,
                &hub_key.1,
                self.random.clone(),
            ));
            shared.hubs.insert(hub_key, Arc::downgrade(&hub));
            hub
        }
    }

    /// Keeps the shared watch that elections like `config` (same Kubernetes namespace and labels) use open while
    /// the returned guard lives, even when none of them runs.
    ///
    /// A process that spawns elections only when it needs them (spread mode spawns a task's election when the task
    /// is placed on it) would otherwise open a new watch with each first one; and a leadership acquired through a
    /// watch opened moments ago takes effect only RD after the acquire, because only a watch that has been open for
    /// a while proves that no erased leader is still acting (design §3). A watch kept open lets such an election
    /// lead at once. It costs one watch connection, and the events of the Leases it selects.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn keep_watch(&self, config: &ElectionConfig) -> WatchGuard {
        let mut shared = self.shared.lock();
        WatchGuard {
            _hub: self.hub(&mut shared, config),
        }
    }
}

/// Keeps a shared watch open while it lives; see [`Elector::keep_watch`].
pub struct WatchGuard {
    _hub: Arc<Hub>,
}

impl std::fmt::Debug for WatchGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchGuard(..)")
    }
}

/// The handle of one running election.
///
/// Dropping every handle ends our leadership and stops the election *without* releasing the Lease: the work it
/// guarded may still be running, so a follower waits out the term. To hand over at once, stop the work and then
/// call [`ElectionHandle::shutdown`], which releases.
#[derive(Clone)]
pub struct ElectionHandle {
    identity: String,
    state: watch::Receiver<ElectionState>,
    observation: watch::Receiver<Observation>,
    cmds: mpsc::Sender<Command>,
}

impl ElectionHandle {
    /// Our holder identity (`<node>_<instance>`).
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The state channel: following (with the holder), leading (with a [`crate::Leadership`]), cooling
    /// down, or stopped (with the error).
    #[must_use]
    pub fn state(&self) -> watch::Receiver<ElectionState> {
        self.state.clone()
    }

    /// How the election learns about its Lease now: watching, or polling with GET because the shared watch
    /// cannot list (403) or has been failing for longer than LD. Operators need to see this: polling costs a
    /// GET per follower every RP.
    #[must_use]
    pub fn observation(&self) -> Observation {
        *self.observation.borrow()
    }

    /// The channel behind [`ElectionHandle::observation`], to wait for changes.
    #[must_use]
    pub fn observations(&self) -> watch::Receiver<Observation> {
        self.observation.clone()
    }

    /// The current state.
    #[must_use]
    pub fn current(&self) -> ElectionState {
        self.state.borrow().clone()
    }

    /// The error the elector stopped with, if it stopped by itself.
    #[must_use]
    pub fn error(&self) -> Option<Arc<ElectorError>> {
        match &*self.state.borrow() {
            ElectionState::Stopped { error } => error.clone(),
            _ => None,
        }
    }

    /// Steps down: ends our leadership (its `lost()` resolves), writes the early-free release, and sits out
    /// the cool-down before campaigning again. Returns once the release is written (or given up after RD).
    ///
    /// The release lets a follower start at once, so stop the guarded work *before* calling this if two
    /// copies of it must never run at the same time. When not leading, this only starts the cool-down.
    ///
    /// # Errors
    /// When the elector has stopped.
    pub async fn step_down(&self) -> Result<(), Stopped> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::StepDown(tx)).await?;
        rx.await.map_err(|_| self.stopped_error())
    }

    /// Shuts the election down: ends our leadership, writes the early-free release if we hold the Lease,
    /// and stops. Call it *after* the guarded work has stopped. Returns the error the elector had already
    /// stopped with, if any.
    ///
    /// # Errors
    /// When the elector had stopped with an error before.
    pub async fn shutdown(self) -> Result<(), Arc<ElectorError>> {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let mut state = self.state.clone();
        let _ = state.wait_for(ElectionState::is_stopped).await;
        match self.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until the elector has stopped, and returns the error it stopped with, if any.
    pub async fn stopped(&self) -> Option<Arc<ElectorError>> {
        let mut state = self.state.clone();
        let _ = state.wait_for(ElectionState::is_stopped).await;
        self.error()
    }

    /// Test hook: stalls the elector task for `d`, as if its process were SIGSTOPped (no renews, no
    /// events), while the guard keeps its own deadline. Only with the `test-hooks` feature, which no shipped build
    /// enables.
    #[cfg(feature = "test-hooks")]
    pub async fn pause_for_test(&self, d: std::time::Duration) -> Result<(), Stopped> {
        self.send(Command::Pause(d)).await
    }

    /// Test hook: makes the elector task panic, to test that a dead elector is never silent. Not for
    /// production use; only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    pub async fn panic_for_test(&self) -> Result<(), Stopped> {
        self.send(Command::Panic).await
    }

    async fn send(&self, cmd: Command) -> Result<(), Stopped> {
        self.cmds.send(cmd).await.map_err(|_| self.stopped_error())
    }

    fn stopped_error(&self) -> Stopped {
        Stopped {
            error: self.error(),
        }
    }
}
