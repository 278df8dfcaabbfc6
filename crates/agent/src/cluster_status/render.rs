//! The text forms of a [`Report`]: summaries first, so that 1,000 agents fit on a screen, then the election
//! namespaces; spread tasks and members are listed one per line only with `-o wide`, or when they are unhealthy.

use std::fmt::Write as _;

use super::report::{Health, Report, Row, human};

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Summaries, every election namespace, and the tasks and members that are not renewing.
    Normal,
    /// Also every task and member, and the holder identity, time in office and Lease name.
    Wide,
}

/// Renders `report` as text.
pub fn text(report: &Report, detail: Detail) -> String {
    let wide = detail == Detail::Wide;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Leases in Kubernetes namespace {:?}; health from renewTime and this machine's clock",
        report.namespace
    );
    for (what, rows) in [
        ("election namespaces", &report.elections),
        ("spread tasks", &report.tasks),
        ("spread members", &report.members),
    ] {
        if !rows.is_empty() || what == "election namespaces" {
            let _ = writeln!(out, "{what}: {}", summary(rows));
        }
    }
    if report.elections.is_empty() {
        let _ = writeln!(
            out,
            "no election Lease found: is this the namespace the agents write to (-n)?"
        );
    }
    let mut section = |title: &str, rows: &[Row], all: bool, epoch: bool| {
        let shown: Vec<&Row> = rows
            .iter()
            .filter(|r| all || r.health != Health::Renewing)
            .collect();
        if shown.is_empty() {
            return;
        }
        out.push('\n');
        out.push_str(&table(title, &shown, wide, epoch));
    };
    section("ELECTION NAMESPACE", &report.elections, true, true);
    section("TASK", &report.tasks, wide, true);
    section("MEMBER", &report.members, wide, false);
    if !wide && (!report.tasks.is_empty() || !report.members.is_empty()) {
        let _ = writeln!(out, "\n-o wide lists every task and member");
    }
    out
}

/// `N, a renewing, b expired, c released`, leaving out the zeros.
fn summary(rows: &[Row]) -> String {
    let mut s = rows.len().to_string();
    for health in [Health::Renewing, Health::Expired, Health::Released] {
        let n = rows.iter().filter(|r| r.health == health).count();
        if n > 0 {
            let _ = write!(s, ", {n} {}", health.as_str());
        }
    }
    s
}

/// An aligned table with a header row, as kubectl prints.
fn table(first: &str, rows: &[&Row], wide: bool, epoch: bool) -> String {
    let mut header = vec![first, "HOLDER NODE"];
    if epoch {
        header.push("EPOCH");
    }
    header.extend(["LAST RENEW", "TERM LEFT", "HEALTH"]);
    if wide {
        header.extend(["IN OFFICE", "HOLDER", "LEASE"]);
    }
    let dash = || "-".to_owned();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut c = vec![r.name.clone(), r.node.clone().unwrap_or_else(dash)];
            if epoch {
                c.push(r.epoch.to_string());
            }
            c.push(
                r.since_renew_seconds
                    .map_or_else(dash, |s| format!("{} ago", human(s))),
            );
            c.push(match r.term_left_seconds {
                Some(left) if left > 0.0 && r.holder.is_some() => human(left),
                _ => dash(),
            });
            c.push(r.health.as_str().to_owned());
            if wide {
                c.push(r.in_office_seconds.map_or_else(dash, human));
                c.push(r.holder.clone().unwrap_or_else(dash));
                c.push(r.lease.clone());
            }
            c
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for line in std::iter::once(&header).chain(&cells) {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("   ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, health: Health) -> Row {
        Row {
            name: name.to_owned(),
            lease: format!("leasehold-{name}"),
            holder: (health != Health::Released).then(|| "node-a_x1".to_owned()),
            node: (health != Health::Released).then(|| "node-a".to_owned()),
            epoch: 3,
            since_renew_seconds: Some(1.25),
            term_left_seconds: Some(if health == Health::Expired {
                -2.0
            } else {
                13.75
            }),
            in_office_seconds: Some(90.0),
            released_by: None,
            health,
        }
    }

    fn report(members: usize) -> Report {
        Report {
            namespace: "kube-system".into(),
            elections: vec![row("default", Health::Renewing)],
            tasks: vec![row("t1", Health::Renewing), row("t2", Health::Released)],
            members: (0..members)
                .map(|i| {
                    row(
                        &format!("node-{i}_x"),
                        if i == 7 {
                            Health::Expired
                        } else {
                            Health::Renewing
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn summaries_come_first_and_only_unhealthy_tasks_and_members_are_listed() {
        let text = text(&report(1000), Detail::Normal);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "election namespaces: 1, 1 renewing");
        assert_eq!(lines[2], "spread tasks: 2, 1 renewing, 1 released");
        assert_eq!(lines[3], "spread members: 1000, 999 renewing, 1 expired");
        let header: Vec<&str> = lines[5].split("   ").map(str::trim).collect();
        assert_eq!(
            header,
            [
                "ELECTION NAMESPACE",
                "HOLDER NODE",
                "EPOCH",
                "LAST RENEW",
                "TERM LEFT",
                "HEALTH"
            ]
        );
        assert!(lines[6].starts_with("default "), "{text}");
        assert!(lines[6].contains("1.2s ago"), "{text}");
        assert!(lines[6].ends_with("renewing"), "{text}");
        assert!(
            text.contains("\nt2 "),
            "the released task is listed: {text}"
        );
        assert!(!text.contains("\nt1 "), "a renewing task is not: {text}");
        assert!(text.contains("\nnode-7_x "), "{text}");
        assert!(
            text.lines().count() < 20,
            "1,000 members fit on a screen: {text}"
        );
    }

    #[test]
    fn wide_lists_everything_with_identity_and_time_in_office() {
        let text = text(&report(3), Detail::Wide);
        assert!(text.contains("\nt1 "), "{text}");
        assert!(text.contains("\nnode-0_x "), "{text}");
        assert!(text.contains("IN OFFICE"), "{text}");
        assert!(text.contains("1m 30s"), "{text}");
        assert!(text.contains("leasehold-default"), "{text}");
        assert!(!text.contains("-o wide lists"), "{text}");
    }

    #[test]
    fn an_empty_namespace_says_where_to_look() {
        let empty = Report {
            namespace: "x".into(),
            elections: vec![],
            tasks: vec![],
            members: vec![],
        };
        let text = text(&empty, Detail::Normal);
        assert!(text.contains("election namespaces: 0"), "{text}");
        assert!(text.contains("no election Lease found"), "{text}");
    }
}
