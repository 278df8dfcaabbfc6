//! `leasehold status --cluster` and `kubectl leasehold status` against the stand-in, with agents in leader and
//! spread mode: they name the leader every agent agrees on, the spread tasks' holders and the members, exit 0 while
//! the election renews, and exit 1 once its Lease has expired (every agent frozen).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, bail};
use leasehold_tests::harness::{AgentSpec, Cluster, binary, eventually};
use serde_json::Value;

const NS: &str = "default";
const SPREAD_TASKS: [&str; 2] = ["s0", "s1"];

/// Runs `program args` with the cluster's admin kubeconfig and `path_dir` first on PATH.
fn run(
    cluster: &Cluster,
    program: &Path,
    args: &[&str],
    path_dir: &Path,
) -> anyhow::Result<Output> {
    let path = std::env::join_paths(std::iter::once(path_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    Command::new(program)
        .args(args)
        .env("KUBECONFIG", cluster.admin_kubeconfig())
        .env("PATH", path)
        .output()
        .with_context(|| format!("running {} {}", program.display(), args.join(" ")))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `leasehold status --cluster -n NS -o json` and parses its report.
fn json_report(
    cluster: &Cluster,
    leasehold: &Path,
    path_dir: &Path,
) -> anyhow::Result<(Output, Value)> {
    let out = run(
        cluster,
        leasehold,
        &["status", "--cluster", "-n", NS, "-o", "json"],
        path_dir,
    )?;
    let report = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("not JSON: {}", stdout(&out)))?;
    Ok((out, report))
}

/// The rows of one section of the JSON report.
fn rows<'a>(report: &'a Value, section: &str) -> Vec<&'a Value> {
    report[section].as_array().into_iter().flatten().collect()
}

#[tokio::test]
async fn cluster_status_names_the_leader_and_fails_once_the_lease_expires() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    let mut agents = Vec::new();
    for node in ["node-a", "node-b"] {
        let mut spec = AgentSpec::new(node)
            .env("LEASEHOLD_MEMBER_DURATION", "3s")
            .env("LEASEHOLD_MEMBER_RENEW", "1s");
        for task in SPREAD_TASKS {
            spec = spec.task(cluster.stamp_task(task, NS)?.spread());
        }
        agents.push(cluster.agent(spec).await?);
    }
    let all: Vec<_> = agents.iter().collect();
    let leader = &agents[cluster
        .wait_for_leader(&all, NS, cluster.timing.takeover_bound())
        .await?];
    let leasehold = binary("leasehold")?;
    let bin_dir = tempfile::tempdir()?;

    // The JSON report, once spread mode has placed both tasks and both members renew.
    let settle = cluster.timing.takeover_bound() + Duration::from_secs(4);
    let report = eventually("every Lease renewing in the report", settle, || async {
        let (out, report) = json_report(&cluster, &leasehold, bin_dir.path())?;
        let renewing = |section: &str, n: usize| {
            let r = rows(&report, section);
            r.len() == n && r.iter().all(|row| row["health"] == "renewing")
        };
        // Settled: with two agents and two tasks, placement puts one task on each; until then a task can be
        // released between two holders.
        let mut holders: Vec<&str> = rows(&report, "tasks")
            .iter()
            .filter_map(|t| t["holder"].as_str())
            .collect();
        holders.sort_unstable();
        holders.dedup();
        let ready = renewing("elections", 1)
            && renewing("tasks", SPREAD_TASKS.len())
            && renewing("members", agents.len())
            && holders.len() == agents.len();
        Ok((ready && out.status.code() == Some(0)).then_some(report))
    })
    .await?;
    assert_eq!(report["namespace"], NS);
    let election = rows(&report, "elections")[0];
    assert_eq!(election["name"], NS);
    assert_eq!(election["lease"], "leasehold-default");
    assert_eq!(election["holder"], leader.holder.as_str());
    assert_eq!(election["node"], leader.node.as_str());
    assert!(
        election["epoch"].as_u64().is_some_and(|e| e >= 1),
        "{election}"
    );
    assert!(
        election["termLeftSeconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{election}"
    );
    let holders: Vec<&str> = agents.iter().map(|a| a.holder.as_str()).collect();
    for task in rows(&report, "tasks") {
        assert!(
            SPREAD_TASKS.contains(&task["name"].as_str().unwrap_or("")),
            "{task}"
        );
        assert!(
            holders.contains(&task["holder"].as_str().unwrap_or("")),
            "{task}"
        );
    }
    let mut members: Vec<&str> = rows(&report, "members")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    members.sort_unstable();
    let mut want = holders.clone();
    want.sort_unstable();
    assert_eq!(members, want);

    // The text form: summaries first, then the election namespace with the leader's node. Placement has settled,
    // but a slow machine may still see one more hand-over: wait for the steady summary rather than race it.
    let (out, text) = eventually("the text form of a steady cluster", settle, || async {
        let out = run(
            &cluster,
            &leasehold,
            &["status", "--cluster", "-n", NS],
            bin_dir.path(),
        )?;
        let text = stdout(&out);
        Ok(text
            .contains("spread tasks: 2, 2 renewing")
            .then_some((out, text)))
    })
    .await?;
    println!("leasehold status --cluster -n {NS}:\n{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.get(1),
        Some(&"election namespaces: 1, 1 renewing"),
        "{text}"
    );
    assert_eq!(lines.get(2), Some(&"spread tasks: 2, 2 renewing"), "{text}");
    assert_eq!(
        lines.get(3),
        Some(&"spread members: 2, 2 renewing"),
        "{text}"
    );
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("default "))
        .context("no row for namespace default")?
        .split_whitespace()
        .collect();
    assert_eq!(row.get(1), Some(&leader.node.as_str()), "{text}");
    assert_eq!(row.last(), Some(&"renewing"), "{text}");

    // As a kubectl plugin, through a symlink named kubectl-leasehold: `status` reads the cluster by itself, and
    // -n defaults to the kubeconfig context's namespace.
    std::os::unix::fs::symlink(&leasehold, bin_dir.path().join("kubectl-leasehold"))?;
    let out = run(
        &cluster,
        Path::new("kubectl"),
        &["leasehold", "status", "-o", "wide"],
        bin_dir.path(),
    )?;
    let wide = stdout(&out);
    println!("kubectl leasehold status -o wide:\n{wide}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{wide}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(wide.contains("IN OFFICE"), "{wide}");
    assert!(wide.contains(&leader.holder), "{wide}");
    for task in SPREAD_TASKS {
        assert!(
            wide.lines().any(|l| l.starts_with(&format!("{task} "))),
            "{wide}"
        );
    }
    let help = run(
        &cluster,
        Path::new("kubectl"),
        &["leasehold", "status", "--help"],
        bin_dir.path(),
    )?;
    assert!(
        stdout(&help).contains("kubectl leasehold status"),
        "{}",
        stdout(&help)
    );

    // A namespace without Leases is not healthy, and says where to look.
    let out = run(
        &cluster,
        &leasehold,
        &["status", "--cluster", "-n", "kube-public"],
        bin_dir.path(),
    )?;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("no election Lease found"),
        "{}",
        stdout(&out)
    );

    // Every agent frozen: nobody renews, so the Lease expires by its renewTime and the command exits 1.
    for a in &agents {
        a.freeze()?;
    }
    let expired = eventually(
        "the election Lease reported expired",
        cluster.timing.takeover_bound(),
        || async {
            let (out, report) = json_report(&cluster, &leasehold, bin_dir.path())?;
            let expired = rows(&report, "elections")
                .first()
                .is_some_and(|e| e["health"] == "expired");
            Ok(expired.then_some(out.status.code()))
        },
    )
    .await;
    let text = run(
        &cluster,
        &leasehold,
        &["status", "--cluster", "-n", NS],
        bin_dir.path(),
    );
    for a in &agents {
        a.thaw()?;
    }
    assert_eq!(expired?, Some(1), "the JSON form exits 1");
    let out = text?;
    let text = stdout(&out);
    println!("with every agent frozen:\n{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("default "))
        .context("no row for namespace default")?;
    if !row.ends_with("expired") {
        bail!("the row does not say expired: {text}");
    }
    Ok(())
}
