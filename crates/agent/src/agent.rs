//! The running agent: wires the configuration to electors, the task supervisor, the local API, metrics and
//! Events, and shuts it all down in order (children first, then Lease releases).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use leasehold_lease::{ElectionConfig, Elector, Identity};
use leasehold_policy::config::{Config, TaskConfig, TaskMode};
use leasehold_policy::eligibility::Eligibility;
use leasehold_policy::lease_name::LeaseName;
use leasehold_policy::status::Status;
use leasehold_policy::tags::Tags;
use parking_lot::RwLock;
use tokio::sync::{mpsc, watch};

use crate::api::{Controls, ImpeachRequest, Listeners};
use crate::events::{LeaderEvents, LeaseEvents};
use crate::metrics::Metrics;
use crate::namespace_sink::NamespaceSink;
use crate::runner::{GatedRunner, ImpeachReply, RunnerEnd};
use crate::settings::Settings;
use crate::spread;
use crate::supervisor::{Deadline, Supervisor};
use crate::tasks::{self, TaskContext};
use crate::view::View;

/// Whether these settings make the agent talk to Kubernetes: only when it takes part in elections (election on,
/// and this node not banned). Disabled agents run every task and banned ones write nothing.
pub fn needs_kubernetes(settings: &Settings) -> bool {
    settings.config.eligibility(settings.identity.node()) == Eligibility::Eligible
}

/// The exit code when an elector died (the agent must not keep running silently without an election).
pub const ELECTOR_DIED: i32 = 1;

/// Runs the agent until shutdown; returns the process exit code. `kube` is the cluster's configuration, which an
/// agent that takes part in elections needs ([`needs_kubernetes`]); the caller finds it first, so that a missing
/// kubeconfig is a configuration error reported before anything starts.
pub async fn run(
    settings: Settings,
    kube: Option<kube::Config>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<i32> {
    let Settings {
        config,
        identity,
        node_source,
        host_tags,
        warnings,
    } = settings;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let node = identity.node().to_string();
    let holder = identity.holder();
    let eligibility = config.eligibility(&node);
    tracing::info!(identity = %holder, node_from = %node_source, eligibility = ?eligibility, namespaces = ?config.election.namespaces, "leasehold agent starting");

    let view = Arc::new(View::new(&node));
    let metrics = Arc::new(Metrics::new(view.clone(), &holder));
    let listeners = Listeners::bind(config.api.listen, config.api.probe_listen).await?;
    let (impeach_tx, impeach_rx) = mpsc::channel(16);
    let runtime_tags = Arc::new(RwLock::new(Tags::new()));
    let controls = Controls {
        impeach: impeach_tx,
        tags: runtime_tags.clone(),
    };

    let supervisor =
        Arc::new(Supervisor::for_current_exe().context("starting the task supervisor")?);
    let _reaper = supervisor.spawn_orphan_reaper_if_pid1();
    let base_tags = {
        let config = config.clone();
        Arc::new(move |task: &TaskConfig| {
            config
                .tag_rules(&host_tags)
                .for_task(task.election, &task.namespace, &task.tags)
        })
    };
    let ctx = TaskContext {
        supervisor,
        view: view.clone(),
        metrics: metrics.clone(),
        base_tags,
        runtime_tags,
    };

    // Tasks outside any election run on every agent, always; so does everything when election is disabled.
    let (always, gated): (Vec<TaskConfig>, Vec<TaskConfig>) = config
        .tasks
        .iter()
        .cloned()
        .partition(|t| !t.election || eligibility == Eligibility::Disabled);
    for ns in &config.election.namespaces {
        let lease = format!(
            "{}/{}",
            config.lease.namespace,
            LeaseName::election(&config.lease.prefix, ns).name()
        );
        let status = match eligibility {
            Eligibility::Disabled => Status::Disabled,
            Eligibility::Banned => Status::Banned { holder: None },
            Eligibility::Eligible => Status::Defeat { holder: None },
        };
        view.add_namespace(ns, status, &lease, eligibility != Eligibility::Eligible);
        tasks::publish_idle(
            &view,
            ns,
            &config
                .tasks
                .iter()
                .filter(|t| &t.namespace == ns)
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    let always_running: Vec<_> = always
        .iter()
        .map(|t| ctx.start(&t.namespace, std::slice::from_ref(t), None, Deadline::None))
        .collect();

    let mut code = 0;
    if eligibility == Eligibility::Eligible {
        let kube =
            kube.context("an agent that takes part in elections needs a Kubernetes configuration")?;
        let client = crate::kube_client::build(kube.clone(), metrics.clone())?;
        // Events get a client of their own, so their own pool of connections. On one pool a leadership change's
        // Event POST (an etcd write on a real server, tens of ms) takes the idle connection the elector's next
        // write was about to use, and a release on SIGTERM waited for that POST's answer or for a new TLS
        // connection: about 45 ms on a real kube-apiserver. The Event pool holds a connection only while Events
        // flow (hyper closes idle connections after 90 s).
        let events_client = crate::kube_client::build(kube, metrics.clone())?;
        let events = Arc::new(LeaderEvents::new(events_client, &holder));
        let elector = Elector::new(client.clone());
        let lease_identity = identity.clone();
        let mut routes = BTreeMap::new();
        let mut runners = tokio::task::JoinSet::new();
        // The runners stop on the process's shutdown, or when one of them dies: then every other one must still
        // stop its children within their grace and release, in that order, before the agent exits 1.
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn({
            let mut shutdown = shutdown.clone();
            let stop_tx = stop_tx.clone();
            async move {
                if shutdown.wait_for(|s| *s).await.is_ok() {
                    stop_tx.send_replace(true);
                }
            }
        });
        for ns in &config.election.namespaces {
            let name = LeaseName::election(&config.lease.prefix, ns);
            let election =
                elector.spawn(election_config(&config, &name, lease_identity.clone()))?;
            let (tx, rx) = mpsc::channel(4);
            routes.insert(ns.clone(), tx);
            let runner = GatedRunner {
                label: format!("election of {ns}"),
                namespace: ns.clone(),
                election,
                tasks: gated
                    .iter()
                    .filter(|t| &t.namespace == ns && t.mode == TaskMode::Leader)
                    .cloned()
                    .collect(),
                ctx: ctx.clone(),
                timing: (
                    config.lease.timing.lease_duration,
                    config.lease.timing.renew_deadline,
                ),
                impeach: Some(rx),
                sink: NamespaceSink {
                    namespace: ns.clone(),
                    view: view.clone(),
                    metrics: metrics.clone(),
                    events: Some(LeaseEvents {
                        events: events.clone(),
                        lease_namespace: config.lease.namespace.clone(),
                        lease_name: name.name().to_string(),
                        node: node.clone(),
                        namespace: ns.clone(),
                    }),
                },
            };
            runners.spawn(runner.run(stop.clone()));
        }
        if !spread::spread_tasks(&config).is_empty() {
            let manager = spread::SpreadManager {
                client: client.clone(),
                elector: elector.clone(),
                config: config.clone(),
                identity: lease_identity.clone(),
                ctx: ctx.clone(),
                view: view.clone(),
                metrics: metrics.clone(),
            };
            runners.spawn(manager.run(stop.clone()));
        }
        tokio::spawn(route_impeach(impeach_rx, routes));
        listeners.spawn(
            view.clone(),
            controls,
            metrics.clone(),
            config.api.token.clone(),
        );
        while let Some(end) = runners.join_next().await {
            let fatal = match end {
                Ok(RunnerEnd::Shutdown) => continue,
                Ok(RunnerEnd::ElectorDied(why)) => why,
                Err(e) => format!("an election runner failed: {e}"),
            };
            if code == 0 {
                tracing::error!(why = %fatal, "an elector died; stopping the other elections in order");
                view.set_fatal(fatal);
                code = ELECTOR_DIED;
                // Every other runner stops its children (SIGTERM, then SIGKILL after their grace) and only then
                // releases its Lease; the loop waits for all of them.
                stop_tx.send_replace(true);
            } else {
                tracing::error!(why = %fatal, "another election ended with an error while stopping");
            }
        }
    } else {
        tokio::spawn(route_impeach(impeach_rx, BTreeMap::new()));
        listeners.spawn(
            view.clone(),
            controls,
            metrics.clone(),
            config.api.token.clone(),
        );
        if eligibility == Eligibility::Banned {
            tracing::warn!(node = %node, "this node is not in ENV_ELECTION_NODE_WHITELIST: status banned, no Lease is written");
        }
        let _ = shutdown.wait_for(|s| *s).await;
    }
    for r in always_running {
        r.stop().await;
    }
    tracing::info!(code, "leasehold agent stopped");
    Ok(code)
}

/// The election config of one namespace, from the agent's configuration.
fn election_config(config: &Config, name: &LeaseName, identity: Identity) -> ElectionConfig {
    let t = config.lease.timing;
    let ec = ElectionConfig::new(config.lease.namespace.clone(), name.name(), identity)
        .timings(t.lease_duration, t.renew_deadline, t.retry_period)
        .takeover_spread(config.lease.takeover_spread);
    crate::lease_names::apply(ec, name)
}

/// Routes impeach requests from the API to the namespace runners.
async fn route_impeach(
    mut rx: mpsc::Receiver<ImpeachRequest>,
    routes: BTreeMap<String, mpsc::Sender<ImpeachReply>>,
) {
    while let Some(req) = rx.recv().await {
        match routes.get(&req.namespace) {
            Some(tx) => {
                if let Err(e) = tx.send(req.reply).await {
                    let _ =
                        e.0.send(Err("the election of this namespace has stopped".into()));
                }
            }
            None => {
                let known: Vec<&str> = routes.keys().map(String::as_str).collect();
                let _ = req.reply.send(Err(format!(
                    "no election namespace {:?} in this agent (known: {})",
                    req.namespace,
                    if known.is_empty() {
                        "none: election is disabled or this node is banned".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
    }
}
