//! Runs `leasehold-apiserver` as a child process, as the demo, the e2e tests and the benches use it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// A running `leasehold-apiserver` child; killed on drop.
pub struct ApiServerProcess {
    child: Child,
    /// Its base URL.
    pub url: String,
    /// The admin token (in `system:masters`).
    pub admin_token: String,
    /// The kubeconfig it wrote.
    pub kubeconfig: PathBuf,
}

impl ApiServerProcess {
    /// Starts the binary at `bin` on a random loopback port, writing its kubeconfig into `dir`.
    pub fn start(bin: &Path, dir: &Path, extra_args: &[&str]) -> anyhow::Result<Self> {
        let kubeconfig = dir.join("kubeconfig");
        let admin_token = format!("bench-{:x}", std::process::id());
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-token",
                &admin_token,
                "--kubeconfig-out",
            ])
            .arg(&kubeconfig)
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("no stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line.trim().to_string();
        if !url.starts_with("http") {
            let _ = child.kill();
            bail!("leasehold-apiserver printed {url:?} instead of its URL");
        }
        Ok(Self {
            child,
            url,
            admin_token,
            kubeconfig,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for ApiServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
