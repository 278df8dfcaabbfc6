//! Measures what spread mode's membership costs the API server: M agents each hold a member Lease (renewed every
//! `--renew`) and watch every member Lease, exactly as the agent does (its member election watches only its own
//! Lease; its spread observer watches them all). Reports member-Lease writes/s and watch events delivered/s from
//! the server's counters, for each M.
//!
//! `bench-members --bin target/release/leasehold-apiserver [--members 10,100,1000] [--renew 20s] [--window 60s]`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use leasehold_lease::{ElectionConfig, ElectionState, Elector, Identity};
use leasehold_tests::apiserver_process::ApiServerProcess;
use leasehold_tests::http_client::ApiClient;
use serde_json::{Value, json};

/// Bench options.
#[derive(Parser, Debug)]
struct Args {
    /// The leasehold-apiserver binary (build it with --release).
    #[arg(long)]
    bin: PathBuf,
    /// Member counts to measure, comma-separated.
    #[arg(long, default_value = "10,100,1000", value_delimiter = ',')]
    members: Vec<usize>,
    /// The member Lease renew period (the agent's default is 20 s).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    renew: Duration,
    /// The member Lease duration (the agent's default is 60 s).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How long to measure once every member holds its Lease.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    window: Duration,
}

const SELECTOR: &str = "app.kubernetes.io/managed-by=leasehold,leasehold.dev/kind in (task,member)";

struct Counters {
    writes: u64,
    events: u64,
}

async fn counters(admin: &ApiClient) -> anyhow::Result<Counters> {
    let (code, c) = admin.send("GET", "/leasehold-admin/counters", None).await?;
    if code != 200 {
        bail!("counters answered {code}");
    }
    let events = c["watch_events"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    Ok(Counters {
        writes: c["writes"].as_u64().unwrap_or(0),
        events,
    })
}

async fn measure(
    args: &Args,
    server: &ApiServerProcess,
    m: usize,
) -> anyhow::Result<(f64, f64, Duration)> {
    let admin = ApiClient::new(&server.url, &server.admin_token);
    let kubeconfig = std::fs::read_to_string(&server.kubeconfig)?;
    let rd = (args.duration + args.renew.mul_f64(1.2)) / 2;
    let mut elections = Vec::new();
    let mut watchers = Vec::new();
    let seen = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for i in 0..m {
        let (code, user) = admin
            .send(
                "POST",
                "/leasehold-admin/users",
                Some(&json!({ "name": format!("m{m}-{i}") })),
            )
            .await?;
        if code != 200 {
            bail!("adding a user answered {code}");
        }
        let token = user["token"].as_str().context("no token")?;
        let yaml = kubeconfig.replace(&server.admin_token, token);
        let client = leasehold_lease::client_from_kubeconfig_yaml(&yaml).await?;
        let identity = Identity::new(format!("node-{m}-{i}"), "bench")?;
        let name = format!("leasehold-member-node-{m}-{i}-bench");
        let config = ElectionConfig::new("default", name.clone(), identity)
            .timings(args.duration, rd, args.renew)
            .takeover_spread(Duration::ZERO)
            .label("leasehold.dev/kind", "member")
            .label("leasehold.dev/member-lease", name);
        let elector = Elector::new(client.clone());
        elections.push(elector.spawn(config)?);
        let api: Api<Lease> = Api::namespaced(client, "default");
        let seen = seen.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default().labels(SELECTOR).timeout(55))
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                if ev.is_ok() {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for e in &elections {
        let mut st = e.state();
        tokio::time::timeout(
            Duration::from_secs(120),
            st.wait_for(|s| matches!(s, ElectionState::Leading(_))),
        )
        .await
        .context("a member never got its Lease")??;
    }
    let ramp = started.elapsed();
    // Skip one renew period so the acquisitions are out of the window.
    tokio::time::sleep(args.renew).await;
    let before = counters(&admin).await?;
    let t0 = Instant::now();
    tokio::time::sleep(args.window).await;
    let after = counters(&admin).await?;
    let secs = t0.elapsed().as_secs_f64();
    for e in elections {
        let _ = e.shutdown().await;
    }
    for w in watchers {
        w.abort();
    }
    Ok((
        (after.writes - before.writes) as f64 / secs,
        (after.events - before.events) as f64 / secs,
        ramp,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    leasehold_tests::limits::raise_nofile().context("raising RLIMIT_NOFILE")?;
    println!(
        "| members | member-Lease writes/s (expected M/renew) | watch events delivered/s (expected M²/renew) | ramp-up |"
    );
    println!("|---|---|---|---|");
    for &m in &args.members {
        let dir = std::env::temp_dir().join(format!("bench-members-{}-{m}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let server = ApiServerProcess::start(&args.bin, &dir, &[])?;
        let (writes, events, ramp) = measure(&args, &server, m).await?;
        let renew = args.renew.as_secs_f64();
        println!(
            "| {m} | {writes:.1} ({:.1}) | {events:.0} ({:.0}) | {:.1} s |",
            m as f64 / renew,
            (m * m) as f64 / renew,
            ramp.as_secs_f64()
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
