//! The monitoring kit (`manifests/monitoring/`): the prometheus-operator rule carries exactly the groups of the
//! plain rules file, the PodMonitor scrapes the DaemonSet's probe port with the agents' own labels kept, and every
//! metric the rules use is one the agent exports. `make test` also runs the rules' unit tests with
//! `promtool test rules`.

mod deploy;

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use deploy::{container, documents, object, rendered, workspace_root};
use serde_json::Value;

const MONITORING: &str = "manifests/monitoring";

fn read(name: &str) -> anyhow::Result<String> {
    let path = workspace_root().join(MONITORING).join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn one_document(name: &str) -> anyhow::Result<Value> {
    let mut docs = documents(&read(name)?)?;
    if docs.len() != 1 {
        bail!("{name} should hold one document, not {}", docs.len());
    }
    Ok(docs.remove(0))
}

/// The metric names an expression uses (ours all start with `leasehold_` or `leader_election_`).
fn metrics_in(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("leasehold_") || w.starts_with("leader_election_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_operator_rule_carries_the_same_groups_as_the_plain_rules_file() -> anyhow::Result<()> {
    let plain = one_document("rules.yaml")?;
    let operator = one_document("prometheusrule.yaml")?;
    assert_eq!(operator["kind"], "PrometheusRule");
    assert_eq!(operator["apiVersion"], "monitoring.coreos.com/v1");
    assert!(
        plain["groups"].as_array().is_some_and(|g| !g.is_empty()),
        "rules.yaml has rule groups"
    );
    assert_eq!(
        operator["spec"]["groups"], plain["groups"],
        "prometheusrule.yaml's spec.groups must be rules.yaml's groups"
    );
    Ok(())
}

#[test]
fn every_alert_has_a_severity_a_runbook_and_a_metric_the_agent_exports() -> anyhow::Result<()> {
    let plain = one_document("rules.yaml")?;
    // What the agent registers (crates/agent/src/metrics.rs); counters are exposed with `_total`, histograms with
    // `_bucket`, `_sum` and `_count`.
    let source = std::fs::read_to_string(workspace_root().join("crates/agent/src/metrics.rs"))?;
    let exported: BTreeSet<String> = source
        .split('"')
        .filter(|s| {
            (s.starts_with("leasehold_") || s.starts_with("leader_election_"))
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_string)
        .collect();
    let mut alerts = 0;
    for rule in plain["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
    {
        let name = rule["alert"]
            .as_str()
            .context("a rule without an alert name")?;
        alerts += 1;
        assert!(
            ["critical", "warning", "info"]
                .contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{name}: severity"
        );
        let runbook = rule["annotations"]["runbook"].as_str().unwrap_or("");
        assert!(
            runbook.starts_with("README.md#troubleshooting"),
            "{name}: the runbook points at the README's troubleshooting section: {runbook:?}"
        );
        let expr = rule["expr"].as_str().context("a rule without expr")?;
        let used = metrics_in(expr);
        assert!(!used.is_empty(), "{name}: uses none of our metrics: {expr}");
        for metric in used {
            let base = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| metric.strip_suffix(s))
                .unwrap_or(&metric);
            assert!(
                exported.contains(base),
                "{name} uses {metric}, which the agent does not export (it exports {exported:?})"
            );
        }
    }
    assert_eq!(alerts, 9, "the nine alerts of the kit");
    Ok(())
}

#[test]
fn the_pod_monitor_scrapes_the_daemonsets_probe_port_and_keeps_the_agents_labels()
-> anyhow::Result<()> {
    let monitor = one_document("podmonitor.yaml")?;
    assert_eq!(monitor["kind"], "PodMonitor");
    let docs = rendered("manifests")?;
    let ds = object(&docs, "DaemonSet", Some("leasehold"))?;
    let pod_labels = &ds["spec"]["template"]["metadata"]["labels"];
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .context("a PodMonitor without matchLabels")?
    {
        assert_eq!(
            &pod_labels[k], v,
            "the PodMonitor selects the agents' pods by {k}"
        );
    }
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(
        endpoint["honorLabels"], true,
        "the agents' own namespace label (the election namespace) must not become exported_namespace"
    );
    let port = endpoint["port"]
        .as_str()
        .context("an endpoint without a port name")?;
    let c = container(&docs)?;
    assert!(
        c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == port && p["containerPort"] == 9531),
        "port {port:?} is the container's probe port 9531"
    );
    Ok(())
}

#[test]
fn metric_names_are_read_out_of_expressions() {
    let names = metrics_in(
        "histogram_quantile(0.99, sum by (le) (rate(leasehold_lease_renew_seconds_bucket[5m]))) > 3 \
         unless on (namespace) leader_election_master_status",
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "leader_election_master_status".to_string(),
            "leasehold_lease_renew_seconds_bucket".to_string()
        ])
    );
    assert!(metrics_in("count by (namespace) (up)").is_empty());
}
