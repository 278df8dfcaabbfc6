//! Several election namespaces in one agent: one Lease each, leaders chosen independently, and each namespace's
//! tasks gated by that namespace's leadership only.

use leasehold_tests::harness::{AgentSpec, Cluster};

#[tokio::test]
async fn two_namespaces_in_one_agent_have_two_leases_with_independent_leaders() -> anyhow::Result<()>
{
    let cluster = Cluster::start()?;
    let bound = cluster.timing.takeover_bound();
    let spec = |node: &str| -> anyhow::Result<AgentSpec> {
        Ok(AgentSpec::new(node)
            .namespaces(&["alpha", "beta"])
            .task(cluster.stamp_task("collect-alpha", "alpha")?)
            .task(cluster.stamp_task("collect-beta", "beta")?))
    };

    // The first agent leads both namespaces and runs both tasks.
    let a = cluster.agent(spec("node-a")?).await?;
    for ns in ["alpha", "beta"] {
        a.wait_status(ns, bound, |s| s.status == "success").await?;
        cluster.wait_for_start(ns, &a.holder, 0, bound).await?;
    }
    let b = cluster.agent(spec("node-b")?).await?;
    for ns in ["alpha", "beta"] {
        let holder = a.holder.clone();
        b.wait_status(ns, bound, move |s| {
            s.status == "defeat" && s.holder.as_deref() == Some(&holder)
        })
        .await?;
    }

    // Stepping down in alpha moves alpha alone: node-b leads alpha, node-a keeps beta.
    let (code, body) = a.impeach("alpha").await?;
    assert_eq!(code, 200, "{body}");
    let alpha_start = cluster.wait_for_start("alpha", &b.holder, 0, bound).await?;
    b.wait_status("alpha", bound, |s| s.status == "success")
        .await?;
    let beta = a.namespace("beta").await?;
    assert_eq!(beta.status, "success", "{beta:?}");
    assert_eq!(beta.task_state("collect-beta"), Some("running"), "{beta:?}");
    a.wait_status("alpha", bound, |s| {
        s.task_state("collect-alpha") == Some("stopped")
    })
    .await?;
    let b_beta = b.namespace("beta").await?;
    assert_eq!(b_beta.status, "defeat", "{b_beta:?}");
    assert_eq!(
        b_beta.task_state("collect-beta"),
        Some("stopped"),
        "{b_beta:?}"
    );

    // Two Leases, each naming its own leader.
    let alpha_lease = cluster
        .lease("default", "leasehold-alpha")
        .await?
        .expect("Lease alpha");
    let beta_lease = cluster
        .lease("default", "leasehold-beta")
        .await?
        .expect("Lease beta");
    assert_eq!(alpha_lease["spec"]["holderIdentity"], b.holder.as_str());
    assert_eq!(beta_lease["spec"]["holderIdentity"], a.holder.as_str());
    assert_eq!(
        alpha_lease["spec"]["leaseTransitions"].as_u64(),
        Some(alpha_start.epoch)
    );

    // Each task ran only for its own namespace, and never twice at once.
    let stamps = cluster.stamps()?;
    for s in &stamps.lines {
        assert_eq!(format!("collect-{}", s.namespace), s.task, "{s:?}");
    }
    assert!(
        stamps
            .intervals_in("beta")
            .iter()
            .all(|iv| iv.holder == a.holder)
    );
    stamps.check_exclusive()
}
