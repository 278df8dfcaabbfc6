//! The Grafana dashboard of the monitoring kit (`manifests/monitoring/dashboard.json`) as the tests read it: its
//! panels and their PromQL queries. Both the static checks (`tests/tests/monitoring.rs`) and the run against a
//! real Prometheus (`tests/tests/prometheus.rs`) walk the same panels, so they cannot disagree about which queries
//! the dashboard has.

use serde_json::Value;

/// One PromQL query of a panel.
#[derive(Clone, Debug)]
pub struct PanelQuery {
    /// The panel's title, to name it in failures.
    pub panel: String,
    /// The target's `refId` (A, B, …).
    pub ref_id: String,
    /// The expression, with Grafana's variables (`$namespace`, `$__rate_interval`) as written.
    pub expr: String,
}

/// Every panel that shows data, in dashboard order: the top-level panels and those nested in collapsed rows,
/// without the rows themselves (a row has no queries of its own).
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        if panel["type"] == "row" {
            out.extend(panel["panels"].as_array().into_iter().flatten());
        } else {
            out.push(panel);
        }
    }
    out
}

/// Every query of every panel ([`panels`]); a target without an `expr` is skipped, so a test that wants every
/// panel to have a query checks [`panels`] too.
pub fn queries(dashboard: &Value) -> Vec<PanelQuery> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| {
                    Some(PanelQuery {
                        panel: title.clone(),
                        ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                        expr: t["expr"].as_str()?.to_string(),
                    })
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn panels_of_collapsed_rows_count_and_rows_do_not() {
        let dashboard = json!({ "panels": [
            { "type": "row", "title": "open", "panels": [] },
            { "type": "stat", "title": "a", "targets": [{ "refId": "A", "expr": "up" }] },
            { "type": "row", "title": "collapsed", "panels": [
                { "type": "timeseries", "title": "b", "targets": [
                    { "refId": "A", "expr": "x" }, { "refId": "B", "expr": "y" }
                ] }
            ] },
            { "type": "text", "title": "c" }
        ] });
        let titles: Vec<_> = panels(&dashboard)
            .iter()
            .map(|p| p["title"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(titles, ["a", "b", "c"]);
        let found: Vec<_> = queries(&dashboard)
            .into_iter()
            .map(|q| format!("{}/{}: {}", q.panel, q.ref_id, q.expr))
            .collect();
        assert_eq!(found, ["a/A: up", "b/A: x", "b/B: y"]);
    }
}
