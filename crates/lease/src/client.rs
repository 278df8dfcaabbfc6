//! Building the `kube::Client` an elector must run on: kube's retry layer off.
//!
//! kube 5 retries 429, 503 and 504 by itself, up to 15 times, honouring `Retry-After` for up to 1000 s. Inside
//! an election that is wrong twice over: a renew retried behind our back can outlive the renew deadline, and
//! a herd of followers retrying in lock-step is what the takeover spread exists to prevent. The elector does
//! its own retries, with its own deadlines, so the client must not.

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use thiserror::Error;

/// Why a client could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Loading or parsing a kubeconfig failed.
    #[error("could not load the kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// Inferring the configuration (kubeconfig, then in-cluster) failed.
    #[error(
        "could not infer a Kubernetes client configuration (no kubeconfig and not in a cluster)"
    )]
    Infer(#[source] kube::config::InferConfigError),
    /// Building the HTTP client failed.
    #[error("could not build the Kubernetes client")]
    Build(#[source] kube::Error),
}

/// Builds a client from `config` with kube's retry layer turned off (`default_retry = false`).
///
/// # Errors
/// When the HTTP stack cannot be built (for example, bad TLS material).
pub fn client_from_config(mut config: Config) -> Result<Client, ClientError> {
    config.default_retry = false;
    Client::try_from(config).map_err(ClientError::Build)
}

/// Builds a client from kubeconfig YAML text (its current context), with the retry layer off.
///
/// # Errors
/// When the YAML is not a usable kubeconfig, or the client cannot be built.
pub async fn client_from_kubeconfig_yaml(yaml: &str) -> Result<Client, ClientError> {
    let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(ClientError::Kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(ClientError::Kubeconfig)?;
    client_from_config(config)
}

/// Infers the configuration as kube does (kubeconfig from `KUBECONFIG` or `~/.kube/config`, else in-cluster)
/// and builds a client with the retry layer off.
///
/// # Errors
/// When no configuration can be found, or the client cannot be built.
pub async fn infer_client() -> Result<Client, ClientError> {
    let config = Config::infer().await.map_err(ClientError::Infer)?;
    client_from_config(config)
}
