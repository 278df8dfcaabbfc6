//! Measures leasehold-apiserver as the tests and benches use it: write throughput with watchers attached, how many
//! idle watches it holds, and how many watch events it delivers per second. Prints a Markdown report.
//!
//! `bench-apiserver --bin target/release/leasehold-apiserver [--quick]`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use leasehold_tests::apiserver_process::ApiServerProcess;
use leasehold_tests::http_client::{ApiClient, count_events};
use serde_json::{Value, json};

/// Bench options.
#[derive(Parser, Debug)]
struct Args {
    /// The leasehold-apiserver binary to measure (build it with --release).
    #[arg(long)]
    bin: PathBuf,
    /// Small numbers, for `make test`: the bench must not rot, but its figures mean little.
    #[arg(long)]
    quick: bool,
}

const NS_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

fn lease(name: &str, holder: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": name },
        "spec": { "holderIdentity": holder, "leaseDurationSeconds": 15 },
    })
}

/// Opens `n` watches, each on its own connection, counting their events into one counter.
async fn open_watches(
    client: &ApiClient,
    n: usize,
    rv: &str,
    seen: &Arc<AtomicU64>,
) -> anyhow::Result<usize> {
    let mut opened = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let mut tasks = Vec::new();
        for _ in chunk {
            let c = client.clone();
            let path = format!("{NS_PATH}?watch=1&resourceVersion={rv}&timeoutSeconds=3600");
            tasks.push(tokio::spawn(async move { c.watch(&path).await }));
        }
        for t in tasks {
            if let Ok(Ok(body)) = t.await {
                opened += 1;
                tokio::spawn(count_events(body, seen.clone()));
            }
        }
    }
    Ok(opened)
}

/// Runs `writers` loops that each update their own lease (GET-free: PUT with the last resourceVersion) until
/// `dur` passes; returns the number of successful writes.
async fn write_for(client: &ApiClient, writers: usize, dur: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("bench-{w}");
            let (code, mut obj) = c.send("POST", NS_PATH, Some(&lease(&name, "h0"))).await?;
            if code != 201 && code != 409 {
                bail!("create answered {code}");
            }
            if code == 409 {
                obj = c.send("GET", &format!("{NS_PATH}/{name}"), None).await?.1;
            }
            let mut n = 0u64;
            while Instant::now() < deadline {
                obj["spec"]["holderIdentity"] = json!(format!("h{n}"));
                let (code, next) = c
                    .send("PUT", &format!("{NS_PATH}/{name}"), Some(&obj))
                    .await?;
                if code != 200 {
                    bail!("update answered {code}");
                }
                obj = next;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total)
}

async fn wait_for(seen: &AtomicU64, target: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while seen.load(Ordering::Relaxed) < target {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let nofile = leasehold_tests::limits::raise_nofile().context("raising RLIMIT_NOFILE")?;
    let dir = std::env::temp_dir().join(format!("bench-apiserver-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let server = ApiServerProcess::start(&args.bin, &dir, &[])?;
    let client = ApiClient::new(&server.url, &server.admin_token);
    let (write_secs, idle_target, fanout_watchers) = if args.quick {
        (1, 200, 100)
    } else {
        (10, 5_000, 1_000)
    };

    // 1. Writes/s with 10 watchers attached.
    let rv = server_rv(&client).await?;
    let seen10 = Arc::new(AtomicU64::new(0));
    let opened = open_watches(&client, 10, &rv, &seen10).await?;
    let writes = write_for(&client, 4, Duration::from_secs(write_secs)).await?;
    let writes_per_s = writes as f64 / write_secs as f64;

    // 2. Idle watches held, and the server's RSS with them.
    let rss_before = server.rss_kib().unwrap_or(0);
    let rv = server_rv(&client).await?;
    let idle_seen = Arc::new(AtomicU64::new(0));
    let held = open_watches(&client, idle_target, &rv, &idle_seen).await?;
    let rss_held = server.rss_kib().unwrap_or(0);
    // One write must reach every idle watch.
    let before = idle_seen.load(Ordering::Relaxed);
    let t0 = Instant::now();
    client
        .send("POST", NS_PATH, Some(&lease("fanout-probe", "x")))
        .await?;
    let all_got_it = wait_for(&idle_seen, before + held as u64, Duration::from_secs(60)).await;
    let fanout = t0.elapsed();

    // 3. Watch events delivered/s with many watchers.
    let rv = server_rv(&client).await?;
    let deliver_seen = Arc::new(AtomicU64::new(0));
    let fan = open_watches(&client, fanout_watchers, &rv, &deliver_seen).await?;
    let t0 = Instant::now();
    let w = write_for(&client, 2, Duration::from_secs(write_secs)).await?;
    let expected = w * fan as u64;
    wait_for(&deliver_seen, expected, Duration::from_secs(120)).await;
    let delivered = deliver_seen.load(Ordering::Relaxed);
    let events_per_s = delivered as f64 / t0.elapsed().as_secs_f64();

    println!("| metric | value |");
    println!("|---|---|");
    println!(
        "| writes/s (4 writers, {opened} watchers attached, {write_secs} s) | {writes_per_s:.0} |"
    );
    println!("| idle watches held (asked {idle_target}, RLIMIT_NOFILE {nofile}) | {held} |");
    println!(
        "| server RSS before / with the idle watches | {} MiB / {} MiB |",
        rss_before / 1024,
        rss_held / 1024
    );
    println!(
        "| one write delivered to all {held} idle watches | {} in {:.0} ms |",
        if all_got_it { "yes" } else { "NO" },
        fanout.as_secs_f64() * 1e3
    );
    println!(
        "| watch events delivered/s ({fan} watchers, 2 writers) | {events_per_s:.0} ({delivered} of {expected}) |"
    );
    let _ = std::fs::remove_dir_all(&dir);
    if held < idle_target || !all_got_it {
        bail!("held {held} of {idle_target} idle watches; fan-out complete: {all_got_it}");
    }
    Ok(())
}

async fn server_rv(client: &ApiClient) -> anyhow::Result<String> {
    let (code, list) = client.send("GET", NS_PATH, None).await?;
    if code != 200 {
        bail!("list answered {code}");
    }
    Ok(list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string())
}
