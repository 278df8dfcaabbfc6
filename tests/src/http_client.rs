//! A minimal HTTP/1.1 client for the bench programs: JSON requests and long-lived watch streams, each on its own
//! connection, as separate agents would hold them.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A client bound to one server and bearer token.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl ApiClient {
    /// A client for `base` (e.g. `http://127.0.0.1:6443`) authenticating with `token`.
    pub fn new(base: &str, token: &str) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build_http();
        Self {
            base: base.to_string(),
            token: token.to_string(),
            client,
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        Ok(http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(body))?)
    }

    /// Sends a request and returns the status code and JSON body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let resp = tokio::time::timeout(
            Duration::from_secs(30),
            self.client.request(self.request(method, path, body)?),
        )
        .await
        .context("request timed out")??;
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((code, value))
    }

    /// GETs `path` and returns the status code and the body as text (for non-JSON answers such as `/metrics`).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let resp = tokio::time::timeout(
            Duration::from_secs(30),
            self.client.request(self.request("GET", path, None)?),
        )
        .await
        .context("request timed out")??;
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((code, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Opens a watch and returns its body stream once the server answered 200.
    pub async fn watch(&self, path: &str) -> anyhow::Result<hyper::body::Incoming> {
        let resp = self
            .client
            .request(self.request("GET", path, None)?)
            .await?;
        if resp.status() != 200 {
            bail!("watch answered {}", resp.status());
        }
        Ok(resp.into_body())
    }
}

/// Counts the newline-terminated events that arrive on a watch body until it ends.
pub async fn count_events(
    mut body: hyper::body::Incoming,
    seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::Ordering;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            let n = data.iter().filter(|b| **b == b'\n').count() as u64;
            seen.fetch_add(n, Ordering::Relaxed);
        }
    }
}
