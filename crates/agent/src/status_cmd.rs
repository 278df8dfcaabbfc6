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
    print!("{}", render(&doc));
    Ok(())
}

/// The text form: per namespace the monitor line, a note when the Lease is polled instead of watched (the
/// operator's cue to check the Role, since polling costs a GET per follower every RP), and the tasks; then a note
/// when spread mode cannot place tasks because its watch cannot list.
fn render(doc: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for ns in doc["namespaces"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "{}", ns["line"].as_str().unwrap_or(""));
        if ns["observation"] == "polling" {
            let _ = writeln!(
                out,
                "  polling the Lease with GET every retry period: its watch cannot list (403) or keeps failing; see the log"
            );
        }
        for task in ns["tasks"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
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
    match doc["spread"]["watch"].as_str() {
        Some("forbidden") => {
            let _ = writeln!(
                out,
                "spread: listing Leases is forbidden (403): no spread task runs until the Role grants list and watch on leases"
            );
        }
        Some("listing") => {
            let _ = writeln!(
                out,
                "spread: waiting for the first list of the spread Leases"
            );
        }
        _ => {}
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_and_a_forbidden_spread_watch_are_shown_and_watching_is_not() {
        let doc = serde_json::json!({
            "namespaces": [
                { "line": "Elected a::defeat|node-b", "observation": "polling", "tasks": [] },
                { "line": "Elected b::success|node-a(elected: 1s)", "observation": "watching",
                  "tasks": [{ "name": "t", "mode": "leader", "state": "running", "restarts": 2 }] },
            ],
            "spread": { "watch": "forbidden" },
        });
        let text = render(&doc);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Elected a::defeat|node-b");
        assert!(lines[1].starts_with("  polling the Lease"), "{text}");
        assert_eq!(lines[2], "Elected b::success|node-a(elected: 1s)");
        assert_eq!(lines[3], "  task t (leader): running, 2 restarts");
        assert!(
            lines[4].starts_with("spread: listing Leases is forbidden"),
            "{text}"
        );
        assert_eq!(lines.len(), 5, "{text}");
    }
}
