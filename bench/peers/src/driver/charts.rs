//! The election bench's results drawn as SVG charts, so a reader of BENCHMARKS.md sees the comparison at a glance:
//! graceful handover and crash failover latencies as distributions (one panel per N, one line per implementation),
//! and the steady-state requests/s and watch events/s against N. Drawn with plotters' SVG backend, which writes
//! text as `<text>` and needs no font files.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::{RunResult, Takeovers};
use crate::Impl;

/// One panel's size, in pixels.
const PANEL: (u32, u32) = (420, 340);

/// Draws every chart into `dir` (created if missing) and returns the files written.
///
/// # Errors
/// When the directory or a file cannot be written.
pub fn write(results: &[RunResult], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let ns: Vec<usize> = results
        .iter()
        .map(|r| r.n)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let handover = dir.join("handover.svg");
    distributions(
        results,
        &ns,
        &handover,
        "graceful handover, ms (release to the new leader)",
        |r| &r.graceful,
        1.0,
    )?;
    let failover = dir.join("failover.svg");
    distributions(
        results,
        &ns,
        &failover,
        "crash failover, s (crash to the new leader)",
        |r| &r.crash,
        1000.0,
    )?;
    let steady = dir.join("steady.svg");
    steady_costs(results, &steady)?;
    Ok(vec![handover, failover, steady])
}

/// The implementations that have results, in the reports' order.
fn impls(results: &[RunResult]) -> Vec<Impl> {
    Impl::ALL
        .into_iter()
        .filter(|i| results.iter().any(|r| r.implementation == *i))
        .collect()
}

/// The colour of an implementation, the same in every chart.
fn colour(i: Impl) -> RGBColor {
    match i {
        Impl::Leasehold => RGBColor(0x1f, 0x77, 0xb4),
        Impl::KubeLeaseManager => RGBColor(0xff, 0x7f, 0x0e),
        Impl::KubeLeaderElection => RGBColor(0x2c, 0xa0, 0x2c),
        Impl::KubeCoordinate => RGBColor(0xd6, 0x27, 0x28),
    }
}

/// A range on a log axis that holds every value in `values`, with some room; `fallback` when there are none.
fn log_range(values: impl Iterator<Item = f64>, fallback: Range<f64>) -> Range<f64> {
    let positive: Vec<f64> = values.filter(|v| *v > 0.0 && v.is_finite()).collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0, f64::max);
    if positive.is_empty() {
        fallback
    } else {
        lo / 1.5..hi * 1.5
    }
}

/// One panel per N: the empirical distribution (fraction of takeovers done by x) of one kind of takeover, one
/// line per implementation, x on a log axis in ms / `unit`.
fn distributions(
    results: &[RunResult],
    ns: &[usize],
    path: &Path,
    title: &str,
    kind: fn(&RunResult) -> &Takeovers,
    unit: f64,
) -> anyhow::Result<()> {
    let width = PANEL.0 * u32::try_from(ns.len().max(1))?;
    let root = SVGBackend::new(path, (width, PANEL.1 + 30)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let (strip, body) = root.split_vertically(28);
    legend_strip(&strip, &impls(results))?;
    let panels = body.split_evenly((1, ns.len().max(1)));
    let range = log_range(
        results
            .iter()
            .flat_map(|r| kind(r).latencies_ms.iter().map(|v| v / unit)),
        1.0..10.0,
    );
    for (area, &n) in panels.iter().zip(ns) {
        let mut chart = ChartBuilder::on(area)
            .caption(format!("N = {n}"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(range.clone().log_scale(), 0.0..1.0)?;
        chart
            .configure_mesh()
            .y_desc("fraction done")
            .x_label_formatter(&|v| tick(*v))
            .draw()?;
        for i in impls(results) {
            let Some(r) = results.iter().find(|r| r.n == n && r.implementation == i) else {
                continue;
            };
            let mut values: Vec<f64> = kind(r).latencies_ms.iter().map(|v| v / unit).collect();
            values.sort_by(f64::total_cmp);
            if values.is_empty() {
                continue;
            }
            let count = values.len() as f64;
            // A step line: at each sample the fraction rises by one sample's share.
            let mut points = Vec::with_capacity(values.len() * 2);
            for (k, v) in values.iter().enumerate() {
                points.push((*v, k as f64 / count));
                points.push((*v, (k + 1) as f64 / count));
            }
            chart.draw_series(LineSeries::new(points, colour(i).stroke_width(2)))?;
        }
    }
    root.present()?;
    Ok(())
}

/// One steady-state figure of a run, if it has a steady state.
type Metric = fn(&RunResult) -> Option<f64>;

/// Two panels against N, both on log axes: requests/s of all candidates together, and watch events delivered/s.
fn steady_costs(results: &[RunResult], path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (PANEL.0 * 2, PANEL.1 + 30)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled("steady state against N (log scales)", ("sans-serif", 20))?;
    let (strip, body) = root.split_vertically(28);
    legend_strip(&strip, &impls(results))?;
    let panels = body.split_evenly((1, 2));
    let metrics: [(&str, Metric); 2] = [
        ("requests/s, all candidates", |r| {
            r.steady.as_ref().map(|s| s.leader_rps + s.followers_rps)
        }),
        ("watch events delivered/s", |r| {
            r.steady.as_ref().map(|s| s.watch_events_ps)
        }),
    ];
    let n_range = log_range(results.iter().map(|r| r.n as f64), 1.0..10.0);
    for (area, (name, metric)) in panels.iter().zip(metrics) {
        let y_range = log_range(results.iter().filter_map(metric), 0.1..10.0);
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(n_range.clone().log_scale(), y_range.log_scale())?;
        chart
            .configure_mesh()
            .x_desc("N")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| tick(*v))
            .draw()?;
        for i in impls(results) {
            let mut points: Vec<(f64, f64)> = results
                .iter()
                .filter(|r| r.implementation == i)
                .filter_map(|r| metric(r).map(|v| (r.n as f64, v)))
                .filter(|(_, v)| *v > 0.0)
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart.draw_series(LineSeries::new(points.clone(), colour(i).stroke_width(2)))?;
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, colour(i).filled())),
            )?;
        }
    }
    root.present()?;
    Ok(())
}

/// A tick label on a log axis: no decimals from 10 up, one or two below.
fn tick(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One legend for the whole figure, in a strip above the panels, so that it covers no line: a short stroke and the
/// name of each implementation, in its colour.
fn legend_strip(area: &DrawingArea<SVGBackend<'_>, Shift>, impls: &[Impl]) -> anyhow::Result<()> {
    let mut x = 60;
    for &i in impls {
        let style = colour(i).stroke_width(3);
        area.draw(&PathElement::new(vec![(x, 14), (x + 24, 14)], style))?;
        area.draw(&Text::new(
            i.to_string(),
            (x + 30, 6),
            ("sans-serif", 14).into_font().color(&colour(i)),
        ))?;
        x += 60 + 9 * i32::try_from(i.name().len())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::report::Steady;

    fn result(implementation: Impl, n: usize, handover_ms: &[f64], rps: f64) -> RunResult {
        RunResult {
            implementation,
            n,
            processes: 2,
            first_leader_ms: Some(1.0),
            steady: Some(Steady {
                window_s: 60.0,
                leader_rps: rps,
                watch_events_ps: rps * n as f64,
                ..Steady::default()
            }),
            graceful: Takeovers {
                tried: handover_ms.len(),
                latencies_ms: handover_ms.to_vec(),
                ..Takeovers::default()
            },
            crash: Takeovers::default(),
            max_leaders_cold: 1,
            max_leaders: 1,
            errors: Vec::new(),
            duration_s: 1.0,
        }
    }

    /// Every chart is an SVG with one legend entry per implementation that has results, and a panel per N.
    #[test]
    fn every_chart_names_each_implementation_and_each_n() {
        let results = [
            result(Impl::Leasehold, 10, &[12.0, 40.0, 300.0], 0.5),
            result(Impl::Leasehold, 100, &[9.0, 20.0], 0.6),
            result(Impl::KubeCoordinate, 10, &[13_000.0], 0.1),
            result(Impl::KubeCoordinate, 100, &[], 0.1),
        ];
        let dir = std::env::temp_dir().join(format!("bench-charts-{}", std::process::id()));
        let files = write(&results, &dir).unwrap();
        assert_eq!(files.len(), 3);
        for file in &files {
            let svg = std::fs::read_to_string(file).unwrap();
            assert!(svg.starts_with("<svg"), "{}", file.display());
            assert!(svg.contains("leasehold") && svg.contains("kube-coordinate"));
            assert!(
                !svg.contains("kube-lease-manager"),
                "no results, no legend entry"
            );
        }
        let handover = std::fs::read_to_string(dir.join("handover.svg")).unwrap();
        assert!(handover.contains("N = 10") && handover.contains("N = 100"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
