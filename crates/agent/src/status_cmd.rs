//! `leasehold status`: prints each election namespace's DataKit-style monitor line (or the JSON), read from the
//! local control API, so operators can run it with `kubectl exec … -- leasehold status`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Reads `GET /v1/election` from `addr` and prints it.
pub async fn run(addr: SocketAddr, json: bool) -> anyhow::Result<()> {
    let body = fetch(addr).await.with_context(|| format!("cannot read the agent's API at {addr} (is the agent running? set --addr or LEASEHOLD_LISTEN)"))?;
    let doc: serde_json::Value =
        serde_json::from_str(&body).context("the agent answered something that is not JSON")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let namespaces = doc["namespaces"].as_array().cloned().unwrap_or_default();
    for ns in namespaces {
        println!("{}", ns["line"].as_str().unwrap_or(""));
        for task in ns["tasks"].as_array().into_iter().flatten() {
            println!(
                "  task {} ({}): {}{}",
                task["name"].as_str().unwrap_or(""),
                task["mode"].as_str().unwrap_or(""),
                task["state"].as_str().unwrap_or(""),
                match task["restarts"].as_u64() {
                    Some(n) if n > 0 => format!(", {n} restarts"),
                    _ => String::new(),
                }
            );
        }
    }
    Ok(())
}

/// GETs `/v1/election` from the agent.
async fn fetch(addr: SocketAddr) -> anyhow::Result<String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("http://{addr}/v1/election").parse()?;
    let resp = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .context("timed out")??;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!(
            "the agent answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
