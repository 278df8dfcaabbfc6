//! The monitoring kit (`manifests/monitoring/`): the prometheus-operator rule carries exactly the groups of the
//! plain rules file, the PodMonitor scrapes the DaemonSet's probe port with the agents' own labels kept, every
//! metric the rules and the Grafana dashboard use is one the agent exports, and the kustomization ships the
//! dashboard as a ConfigMap for Grafana's sidecar. `make test` also runs the rules' unit tests with
//! `promtool test rules`; `tests/tests/prometheus.rs` runs the rules and the dashboard's queries in a real
//! Prometheus.

mod deploy;

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use deploy::{container, documents, object, rendered, workspace_root};
use leasehold_tests::grafana;
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

/// The metric families the agent registers, read from its source (crates/agent/src/metrics.rs): every quoted
/// `leasehold_…` or `leader_election_…` name there. Reading the source rather than a scrape sees the families that
/// only some agents export (spread tasks, the leader's epoch).
fn exported_metrics() -> anyhow::Result<BTreeSet<String>> {
    let source = std::fs::read_to_string(workspace_root().join("crates/agent/src/metrics.rs"))?;
    Ok(source
        .split('"')
        .filter(|s| {
            (s.starts_with("leasehold_") || s.starts_with("leader_election_"))
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_string)
        .collect())
}

/// The metrics `expr` uses that are not in `exported`: counters are exposed with `_total`, histograms with
/// `_bucket`, `_sum` and `_count` after the family's name.
fn unexported(expr: &str, exported: &BTreeSet<String>) -> Vec<String> {
    metrics_in(expr)
        .into_iter()
        .filter(|metric| {
            let base = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| metric.strip_suffix(s))
                .unwrap_or(metric);
            !exported.contains(base)
        })
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
    let exported = exported_metrics()?;
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
        assert!(
            !metrics_in(expr).is_empty(),
            "{name}: uses none of our metrics: {expr}"
        );
        assert_eq!(
            unexported(expr, &exported),
            Vec::<String>::new(),
            "{name} uses metrics the agent does not export (it exports {exported:?})"
        );
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

fn dashboard() -> anyhow::Result<Value> {
    serde_json::from_str(&read("dashboard.json")?).context("dashboard.json is not JSON")
}

#[test]
fn every_dashboard_panel_queries_metrics_the_agent_exports() -> anyhow::Result<()> {
    let dashboard = dashboard()?;
    let exported = exported_metrics()?;
    let panels = grafana::panels(&dashboard);
    assert!(
        panels.len() >= 8,
        "the dashboard's panels: {}",
        panels.len()
    );
    let wanted_datasource = serde_json::json!({ "type": "prometheus", "uid": "${datasource}" });
    for panel in &panels {
        let title = panel["title"].as_str().context("a panel without a title")?;
        assert_eq!(
            panel["datasource"], wanted_datasource,
            "{title}: the panel reads the dashboard's datasource variable"
        );
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(!targets.is_empty(), "{title}: a panel without a query");
        for target in targets {
            assert_eq!(target["datasource"], wanted_datasource, "{title}: {target}");
            let expr = target["expr"]
                .as_str()
                .with_context(|| format!("{title}: a target without expr: {target}"))?;
            assert!(
                !metrics_in(expr).is_empty(),
                "{title}: uses none of our metrics: {expr}"
            );
            assert_eq!(
                unexported(expr, &exported),
                Vec::<String>::new(),
                "{title} uses metrics the agent does not export (it exports {exported:?}): {expr}"
            );
        }
    }
    // The panels the dashboard is for, by the metric they show.
    let used: BTreeSet<String> = grafana::queries(&dashboard)
        .iter()
        .flat_map(|q| metrics_in(&q.expr))
        .collect();
    for metric in [
        "leasehold_election_status",
        "leasehold_election_epoch",
        "leasehold_election_seconds",
        "leasehold_election_transitions_total",
        "leasehold_lease_renew_seconds_bucket",
        "leasehold_task_running",
        "leasehold_task_restarts_total",
        "leasehold_task_held",
        "leasehold_api_requests_total",
    ] {
        assert!(used.contains(metric), "no panel shows {metric}: {used:?}");
    }
    Ok(())
}

#[test]
fn the_dashboard_picks_a_prometheus_datasource_and_repeats_its_election_panels_per_namespace()
-> anyhow::Result<()> {
    let dashboard = dashboard()?;
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "a Grafana 9 schema: {}",
        dashboard["schemaVersion"]
    );
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let variables = dashboard["templating"]["list"]
        .as_array()
        .context("no template variables")?;
    let variable = |name: &str| variables.iter().find(|v| v["name"] == name);
    let datasource = variable("datasource").context("no datasource variable")?;
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    let namespace = variable("namespace").context("no namespace variable")?;
    assert_eq!(namespace["type"], "query");
    assert_eq!(
        namespace["query"],
        "label_values(leasehold_election_status, namespace)"
    );
    assert_eq!(namespace["datasource"]["uid"], "${datasource}");

    // The row repeated per election namespace, and the panels under it up to the next row.
    let top = dashboard["panels"].as_array().context("no panels")?;
    let start = top
        .iter()
        .position(|p| p["type"] == "row" && p["repeat"] == "namespace")
        .context("no row repeated per namespace")?;
    let per_namespace: Vec<&Value> = top[start + 1..]
        .iter()
        .take_while(|p| p["type"] != "row")
        .collect();
    assert!(per_namespace.len() >= 4, "{} panels", per_namespace.len());
    for panel in per_namespace {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(
                expr.contains("namespace=~\"$namespace\""),
                "{}: an election panel filters on the namespace variable: {expr}",
                panel["title"]
            );
        }
    }
    Ok(())
}

#[test]
fn the_kustomization_ships_the_dashboard_for_grafanas_sidecar_with_the_operator_objects()
-> anyhow::Result<()> {
    let docs = rendered(MONITORING)?;
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "PodMonitor", "PrometheusRule"]),
        "what `kubectl apply -k manifests/monitoring` applies"
    );
    assert_eq!(docs.len(), 3, "one object of each kind");
    let config_map = object(&docs, "ConfigMap", Some("leasehold-dashboard"))?;
    assert_eq!(
        config_map["metadata"]["labels"]["grafana_dashboard"], "1",
        "the label Grafana's dashboard sidecar looks for"
    );
    let shipped: Value = serde_json::from_str(
        config_map["data"]["leasehold.json"]
            .as_str()
            .context("no leasehold.json in the ConfigMap")?,
    )?;
    assert_eq!(
        shipped,
        dashboard()?,
        "the ConfigMap carries dashboard.json"
    );
    // The operator's objects are the files as they are, in the agents' namespace (the PodMonitor selects pods of
    // its own namespace).
    for (kind, file) in [
        ("PodMonitor", "podmonitor.yaml"),
        ("PrometheusRule", "prometheusrule.yaml"),
    ] {
        assert_eq!(
            object(&docs, kind, Some("leasehold"))?,
            &one_document(file)?,
            "{kind}"
        );
    }
    for doc in &docs {
        assert_eq!(doc["metadata"]["namespace"], "leasehold", "{}", doc["kind"]);
    }
    Ok(())
}
