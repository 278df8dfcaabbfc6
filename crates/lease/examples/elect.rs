//! Three candidates elect a leader on the bundled leasehold-apiserver, hand leadership over twice, and shut
//! down cleanly.
//!
//! ```text
//! cargo run -p leasehold-lease --example elect
//! ```
//!
//! With `KUBECONFIG` pointing at a kubeconfig file (for example one written by `leasehold-apiserver`), it
//! instead runs one candidate against that server until Ctrl-C:
//!
//! ```text
//! KUBECONFIG=/tmp/leasehold.kubeconfig cargo run -p leasehold-lease --example elect
//! ```

use std::time::Duration;

use anyhow::Context;
use leasehold_lease::{ElectionConfig, ElectionHandle, ElectionState, Elector, Identity};

const NAMESPACE: &str = "default";
const LEASE: &str = "leasehold-example";

fn config(node: &str) -> anyhow::Result<ElectionConfig> {
    Ok(
        ElectionConfig::new(NAMESPACE, LEASE, Identity::with_random_instance(node)?).timings(
            Duration::from_secs(2),
            Duration::from_millis(1500),
            Duration::from_millis(500),
        ),
    )
}

/// Prints every state change of one candidate, and stands in for guarded work while it leads.
async fn report(handle: ElectionHandle) {
    let mut state = handle.state();
    loop {
        let current = state.borrow_and_update().clone();
        match current {
            ElectionState::Leading(leadership) => {
                println!(
                    "{}: leading, epoch {}",
                    handle.identity(),
                    leadership.epoch()
                );
                leadership.lost().await;
                println!("{}: leadership ended", handle.identity());
            }
            ElectionState::Following { holder } => {
                println!("{}: following {holder:?}", handle.identity())
            }
            ElectionState::CoolingDown { .. } => {
                println!("{}: stepped down, cooling down", handle.identity())
            }
            ElectionState::Stopped { error } => {
                println!("{}: stopped ({error:?})", handle.identity());
                return;
            }
            // The enum is non-exhaustive: a state added later is not leading.
            other => println!("{}: {other:?}", handle.identity()),
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

async fn external(path: &str) -> anyhow::Result<()> {
    let yaml = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let client = leasehold_lease::client_from_kubeconfig_yaml(&yaml).await?;
    let node = std::env::var("NODE_NAME").unwrap_or_else(|_| "example-node".to_owned());
    let handle = Elector::new(client).spawn(config(&node)?)?;
    let reporter = tokio::spawn(report(handle.clone()));
    tokio::signal::ctrl_c().await?;
    handle
        .shutdown()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    reporter.await?;
    Ok(())
}

async fn bundled() -> anyhow::Result<()> {
    let server = leasehold_apiserver::start(leasehold_apiserver::Options::default()).await?;
    println!("leasehold-apiserver at {}", server.url());
    let mut handles = Vec::new();
    for node in ["node-a", "node-b", "node-c"] {
        // Each candidate is its own user with its own client, as separate agents would be.
        let token = server.add_user(node, &[]);
        let client =
            leasehold_lease::client_from_kubeconfig_yaml(&server.kubeconfig(&token)).await?;
        let handle = Elector::new(client).spawn(config(node)?)?;
        tokio::spawn(report(handle.clone()));
        handles.push(handle);
    }
    for _ in 0..2 {
        let leader = wait_for_leader(&handles).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("-- {} steps down", leader.identity());
        leader.step_down().await?;
    }
    wait_for_leader(&handles).await?;
    println!("-- shutting down");
    for handle in handles {
        handle
            .shutdown()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    server.shutdown().await;
    Ok(())
}

async fn wait_for_leader(handles: &[ElectionHandle]) -> anyhow::Result<ElectionHandle> {
    for _ in 0..200 {
        if let Some(h) = handles.iter().find(|h| h.current().is_leading()) {
            return Ok(h.clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("no leader within 10 s")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("leasehold_lease=info")),
        )
        .init();
    match std::env::var("KUBECONFIG") {
        Ok(path) if !path.is_empty() => external(&path).await,
        _ => bundled().await,
    }
}
