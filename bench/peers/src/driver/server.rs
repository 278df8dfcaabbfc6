//! Runs `leasehold-apiserver` as a child process and talks to its admin endpoint (users, counters).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

/// A running `leasehold-apiserver`; killed on drop.
pub struct ApiServer {
    child: Child,
    /// Its base URL.
    pub url: String,
    admin: kube::Client,
}

impl ApiServer {
    /// Starts the binary at `bin` on a random loopback port, with its kubeconfig written into `dir`.
    ///
    /// # Errors
    /// When it cannot be started or does not print its URL.
    pub async fn start(bin: &Path, dir: &Path) -> anyhow::Result<Self> {
        let kubeconfig = dir.join("kubeconfig");
        let token = format!("bench-{:x}", std::process::id());
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-token",
                &token,
                "--kubeconfig-out",
            ])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("no stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line.trim().to_owned();
        if !url.starts_with("http") {
            let _ = child.kill();
            bail!("leasehold-apiserver printed {url:?} instead of its URL");
        }
        let yaml =
            std::fs::read_to_string(&kubeconfig).context("reading the server's kubeconfig")?;
        let admin = leasehold_lease::client_from_kubeconfig_yaml(&yaml).await?;
        Ok(Self { child, url, admin })
    }

    async fn admin(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()?
            .unwrap_or_default();
        let req = http::Request::builder()
            .method(method)
            .uri(format!("/leasehold-admin/{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)?;
        self.admin
            .request::<Value>(req)
            .await
            .with_context(|| format!("admin request {path}"))
    }

    /// Registers a user and returns its bearer token.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn add_user(&self, name: &str) -> anyhow::Result<String> {
        let answer = self
            .admin(
                http::Method::POST,
                "users",
                Some(&serde_json::json!({ "name": name })),
            )
            .await?;
        answer["token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("POST users answered {answer}"))
    }

    /// The counters snapshot (`GET counters`).
    ///
    /// # Errors
    /// When the server does not answer.
    pub async fn counters(&self) -> anyhow::Result<Value> {
        self.admin(http::Method::GET, "counters", None).await
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises the soft open-files limit to the hard limit, for processes that hold thousands of connections.
pub fn raise_nofile() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}
