//! Shared helpers for the apiserver's integration tests: a plain HTTP client, watch readers, and kubectl.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// An answer: status code, headers and body (parsed as JSON when it is JSON).
pub struct Answer {
    pub code: u16,
    pub headers: http::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// Sends one request to the server.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Option<Vec<u8>>,
) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("user-agent", "Python-urllib/3.11");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req = req.header("accept", accept.unwrap_or("application/json"));
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
        .await
        .expect("body timed out")
        .expect("body failed")
        .to_bytes();
    Answer {
        code,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// JSON GET with a token.
pub async fn get(base: &str, path: &str, token: &str) -> Answer {
    request(base, "GET", path, Some(token), None, None, None).await
}

/// JSON write with a token.
pub async fn send(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &Value,
) -> Answer {
    request(
        base,
        method,
        path,
        Some(token),
        Some(content_type),
        None,
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// An open watch stream that yields one parsed event at a time.
pub struct WatchReader {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
    pub code: u16,
}

impl WatchReader {
    pub async fn open(base: &str, path: &str, token: &str) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = http::Request::builder()
            .uri(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.expect("watch request failed");
        let code = resp.status().as_u16();
        Self {
            body: resp.into_body(),
            buf: Vec::new(),
            code,
        }
    }

    /// The next event, or `None` when the stream ended or nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("watch line is JSON"));
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// Whether the server ends the stream within `wait` (true) rather than leaving it open (false); events read
    /// meanwhile are dropped.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Reads events until `pred` matches one, failing after `wait`.
    pub async fn until(&mut self, wait: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = self
                .next(left)
                .await
                .expect("watch ended before the expected event");
            if pred(&ev) {
                return ev;
            }
        }
    }
}

/// A lease body.
pub fn lease(name: &str, holder: &str) -> Value {
    serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": name, "labels": { "app.kubernetes.io/managed-by": "leasehold" } },
        "spec": { "holderIdentity": holder, "leaseDurationSeconds": 15 },
    })
}

/// Creates a namespace through the API.
pub async fn create_namespace(base: &str, token: &str, name: &str) {
    let ans = send(
        base,
        "POST",
        "/api/v1/namespaces",
        token,
        "application/json",
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await;
    assert_eq!(ans.code, 201, "{}", ans.text);
}
