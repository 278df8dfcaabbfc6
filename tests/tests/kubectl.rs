//! What an operator sees with the real `kubectl`: the election Leases, with the leader as HOLDER. kubectl sends
//! its token only over TLS, so this test runs the API server with `--tls` and the agents use its kubeconfig (kube-rs
//! trusts the embedded CA).

use leasehold_tests::harness::Cluster;

const NS: &str = "default";

#[tokio::test]
async fn kubectl_get_lease_shows_the_leader_as_holder() -> anyhow::Result<()> {
    let cluster = Cluster::start_tls()?;
    assert!(cluster.url().starts_with("https://"), "{}", cluster.url());
    let agents = cluster.stamp_agents(&["node-a", "node-b"], NS).await?;
    let all: Vec<_> = agents.iter().collect();
    let leader = &agents[cluster
        .wait_for_leader(&all, NS, cluster.timing.takeover_bound())
        .await?];

    let table = cluster.kubectl(&[
        "get",
        "lease",
        "-l",
        "app.kubernetes.io/managed-by=leasehold",
    ])?;
    println!("{table}");
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "HOLDER", "AGE"], "{table}");
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row.get(..2),
        Some(&["leasehold-default", leader.holder.as_str()][..]),
        "{table}"
    );
    assert!(lines.next().is_none(), "one Lease: {table}");

    let holder = cluster.kubectl(&[
        "get",
        "lease",
        "leasehold-default",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    assert_eq!(holder, leader.holder);
    let labels = cluster.kubectl(&[
        "get",
        "lease",
        "leasehold-default",
        "-o",
        "jsonpath={.metadata.labels}",
    ])?;
    assert!(
        labels.contains("\"leasehold.dev/kind\":\"election\""),
        "{labels}"
    );
    Ok(())
}
