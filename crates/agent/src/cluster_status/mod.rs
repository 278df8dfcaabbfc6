//! `leasehold status --cluster` (and `kubectl leasehold status`): who leads every election namespace, and is it
//! renewing, read from the Leases through the user's kubeconfig, never through an agent. One `kubectl exec` per
//! pod is what this replaces.
//!
//! The I/O is here; what the Leases mean is [`report`], and how it reads is [`render`].

pub mod render;
pub mod report;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, KubeconfigError};
use leasehold_policy::lease_name::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};

pub use render::Detail;
pub use report::{Health, Report, Row};

/// How long one request may take: a status command must answer, not hang on a dead API server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Text, with the given detail.
    Text(Detail),
    /// The whole [`Report`] as JSON, for scripts.
    Json,
}

/// The command's options, as the CLI gives them.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Kubernetes namespace of the Leases; `None`: the kubeconfig context's namespace, as kubectl does.
    pub namespace: Option<String>,
    /// The kubeconfig context; `None`: the current one.
    pub context: Option<String>,
    /// What to print.
    pub output: Output,
}

/// Why the Leases could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClusterStatusError {
    /// The kubeconfig (with `--context`) could not be loaded.
    #[error("cannot load the kubeconfig (KUBECONFIG or ~/.kube/config) with context {context:?}")]
    Kubeconfig {
        /// The context asked for.
        context: String,
        /// What kube said.
        #[source]
        source: KubeconfigError,
    },
    /// Neither a kubeconfig nor an in-cluster configuration was found.
    #[error("no Kubernetes configuration: set KUBECONFIG, or run where ~/.kube/config exists")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built.
    #[error("cannot build the Kubernetes client")]
    Client(#[source] leasehold_lease::ClientError),
    /// Listing the Leases failed.
    #[error("cannot list the Leases in Kubernetes namespace {namespace:?}")]
    List {
        /// Where we looked.
        namespace: String,
        /// What the API server (or the connection) said.
        #[source]
        source: kube::Error,
    },
    /// The report could not be encoded as JSON.
    #[error("cannot encode the report as JSON")]
    Json(#[source] serde_json::Error),
}

/// Reads the leasehold Leases, prints the report, and returns whether every election namespace has a renewing
/// holder (the command's exit code 0).
///
/// # Errors
/// When no configuration is found, or the Leases cannot be listed.
pub async fn run(options: &Options) -> Result<bool, ClusterStatusError> {
    let mut config = match &options.context {
        Some(context) => kube::Config::from_kubeconfig(&KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        })
        .await
        .map_err(|source| ClusterStatusError::Kubeconfig {
            context: context.clone(),
            source,
        })?,
        None => kube::Config::infer()
            .await
            .map_err(ClusterStatusError::Infer)?,
    };
    config.connect_timeout = Some(REQUEST_TIMEOUT);
    config.read_timeout = Some(REQUEST_TIMEOUT);
    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = leasehold_lease::client_from_config(config).map_err(ClusterStatusError::Client)?;
    let leases: Api<Lease> = Api::namespaced(client, &namespace);
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
    let list = leases
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| ClusterStatusError::List {
            namespace: namespace.clone(),
            source,
        })?;
    let report = Report::new(&namespace, &list.items, jiff::Timestamp::now());
    match options.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(ClusterStatusError::Json)?
        ),
        Output::Text(detail) => print!("{}", render::text(&report, detail)),
    }
    Ok(report.healthy())
}
