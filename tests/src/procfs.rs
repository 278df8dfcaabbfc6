//! What `/proc` says about a process: its memory (`VmRSS`, `VmHWM`, `RssAnon` from `/proc/<pid>/status`), its CPU
//! time (`utime + stime` from `/proc/<pid>/stat`) and its children. Linux only; for the footprint bench.

use std::time::Duration;

use anyhow::{Context, bail};

/// One `kB` field of `/proc/<pid>/status` (e.g. `VmRSS`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

/// One `kB` field of `/proc/<pid>/smaps_rollup` (e.g. `Pss`, the proportional set size: shared pages divided
/// among the processes that map them), in KiB.
pub fn smaps_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

/// The fields of `/proc/<pid>/stat` after the command name (which may contain spaces and parentheses), so that
/// index 0 is the state (field 3 of proc(5)).
fn stat_fields(pid: u32) -> anyhow::Result<Vec<String>> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let Some(close) = text.rfind(')') else {
        bail!("{path}: no command name");
    };
    Ok(text[close + 1..]
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// The CPU time the process has used, user and system (`utime + stime`; its waited-for children not included).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let f = stat_fields(pid)?;
    // proc(5): utime is field 14 and stime field 15, that is indexes 11 and 12 after the command name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        f.get(i)
            .context("short stat line")?
            .parse()
            .context("parsing CPU ticks")
    };
    let total = ticks(11)? + ticks(12)?;
    let hz = rustix::param::clock_ticks_per_second();
    Ok(Duration::from_secs_f64(total as f64 / hz as f64))
}

/// The parent pid (field 4 of proc(5)).
pub fn parent(pid: u32) -> anyhow::Result<u32> {
    stat_fields(pid)?
        .get(1)
        .context("short stat line")?
        .parse()
        .context("parsing the parent pid")
}

/// The command name (`/proc/<pid>/comm`).
pub fn comm(pid: u32) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(format!("/proc/{pid}/comm"))?
        .trim()
        .to_string())
}

/// Every live descendant of `root` (children, grandchildren, ...), found by walking each process's parent.
pub fn descendants(root: u32) -> anyhow::Result<Vec<u32>> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Ok(name) = entry.map(|e| e.file_name()) else {
            continue;
        };
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between the listing and the read: skip it.
        if let Ok(ppid) = parent(pid) {
            parents.push((pid, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, _) in parents.iter().filter(|(_, pp)| *pp == p) {
            if !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() -> anyhow::Result<()> {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS")? > 0);
        assert!(smaps_kib(me, "Pss")? > 0);
        assert!(status_kib(me, "VmHWM")? >= status_kib(me, "VmRSS")? / 2);
        let before = cpu_time(me)?;
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_time(me)? >= before);
        assert_ne!(parent(me)?, 0);
        Ok(())
    }

    #[test]
    fn finds_a_child() -> anyhow::Result<()> {
        let mut child = std::process::Command::new("sleep").arg("5").spawn()?;
        let found = descendants(std::process::id())?;
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        Ok(())
    }
}
