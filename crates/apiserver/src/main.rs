//! `leasehold-apiserver`: runs the stand-in API server until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use leasehold_apiserver::{Options, rbac};

/// A Kubernetes-compatible Lease API server for tests, benchmarks and the local demo. Never for production.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write a kubeconfig for the admin user here (kubectl and kube-rs use it as-is).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// kube-apiserver's static token file: `token,user,uid,"group1,group2"`. Without it, only the generated admin
    /// token is accepted.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// RBAC manifest (Role, ClusterRole, RoleBinding, ClusterRoleBinding; other kinds are skipped). Repeatable.
    /// Without any, every authenticated user may do everything.
    #[arg(long)]
    rbac: Vec<PathBuf>,
    /// Serve HTTPS with a self-signed certificate, embedded in the kubeconfig.
    #[arg(long)]
    tls: bool,
    /// Use this admin token instead of a random one.
    #[arg(long, env = "LEASEHOLD_APISERVER_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// How often watches with bookmarks get one (`60s`, `500ms`).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    bookmark_interval: Duration,
    /// How many changes watches can resume from before 410 Expired.
    #[arg(long, default_value_t = 10_000)]
    history_window: usize,
    /// kube-apiserver's `--anonymous-auth`: a request with no credentials is `system:anonymous`, refused with 403
    /// by RBAC (and by the allow-all mode, which allows authenticated users only). `false`: 401 instead.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    raise_nofile();
    let tokens = match &args.token_file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading --token-file {}", p.display()))?;
            rbac::parse_token_file(&text)
                .with_context(|| format!("parsing --token-file {}", p.display()))?
        }
        None => Vec::new(),
    };
    let mut manifests = Vec::new();
    for p in &args.rbac {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading --rbac {}", p.display()))?;
        manifests.push((p.display().to_string(), text));
    }
    let server = leasehold_apiserver::start(Options {
        listen: args.listen,
        tls: args.tls,
        bookmark_interval: args.bookmark_interval,
        history_window: args.history_window,
        tokens,
        rbac: manifests,
        admin_token: args.admin_token,
        anonymous_auth: args.anonymous_auth,
    })
    .await?;
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, server.kubeconfig(&server.admin_token()))
            .with_context(|| format!("writing --kubeconfig-out {}", path.display()))?;
        if !args.tls {
            tracing::warn!(
                kubeconfig = %path.display(),
                "this kubeconfig points at plain http://, where kubectl sends no bearer token, so kubectl is refused \
                 (403 for system:anonymous); add --tls for kubectl (kube-rs clients work either way)"
            );
        }
    }
    tracing::info!(url = %server.url(), "leasehold-apiserver listening");
    println!("{}", server.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}

/// Raises the soft open-files limit to the hard one: every watch is a connection, and tests and benches hold
/// thousands of them.
fn raise_nofile() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        tracing::warn!(error = %e, "could not raise RLIMIT_NOFILE; fewer concurrent watches will fit");
    }
}
