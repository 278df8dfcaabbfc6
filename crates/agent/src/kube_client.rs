//! The Kubernetes client the agent runs on: inferred as kube does (kubeconfig first, then in-cluster), with kube's
//! retry layer off (the elector does its own retries within its deadlines), and every request counted into
//! `leasehold_api_requests_total{verb,code}`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use kube::client::ClientBuilder;
use kube::{Client, Config};
use tower::{Layer, Service};

use crate::metrics::{ApiLabels, Metrics};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neither a kubeconfig nor an in-cluster configuration was found.
    #[error("no Kubernetes configuration: set KUBECONFIG, or run in a pod with a service account")]
    Infer(#[source] kube::config::InferConfigError),
    /// The HTTP stack could not be built.
    #[error("cannot build the Kubernetes client")]
    Build(#[source] kube::Error),
}

/// Finds the cluster's configuration (kubeconfig, then in-cluster), so that a missing or unreadable kubeconfig is
/// reported as a configuration error before anything starts.
pub async fn infer() -> Result<Config, ClientError> {
    Config::infer().await.map_err(ClientError::Infer)
}

/// Builds the client from `config`, counting requests into `metrics`.
pub fn build(mut config: Config, metrics: Arc<Metrics>) -> Result<Client, ClientError> {
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config).map_err(ClientError::Build)?;
    Ok(builder.with_layer(&CountLayer { metrics }).build())
}

/// A tower layer that counts requests by Kubernetes verb and answer code.
#[derive(Clone)]
struct CountLayer {
    metrics: Arc<Metrics>,
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Count {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
struct Count<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The Kubernetes verb of a request, from its method and path.
fn verb<B>(req: &http::Request<B>) -> &'static str {
    let query = req.uri().query().unwrap_or("");
    let watching = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    match *req.method() {
        http::Method::GET if watching => "watch",
        http::Method::GET => {
            let last = req
                .uri()
                .path()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("");
            if matches!(last, "leases" | "events" | "namespaces") {
                "list"
            } else {
                "get"
            }
        }
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

impl<S, B, R> Service<http::Request<B>> for Count<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let verb = verb(&req);
        // Updates of Leases are the elector's acquires and renews: their latency is the renew histogram.
        let lease_write = verb == "update" && req.uri().path().contains("/leases/");
        let metrics = self.metrics.clone();
        let started = std::time::Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            if lease_write {
                metrics
                    .renew_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            let code = match &result {
                Ok(resp) => resp.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            metrics
                .api_requests
                .get_or_create(&ApiLabels {
                    verb: verb.to_string(),
                    code,
                })
                .inc();
            result
        })
    }
}
