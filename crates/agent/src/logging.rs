//! Log set-up: `LEASEHOLD_LOG_FORMAT=text|json`, level from `RUST_LOG` (default `info`, with kube-client's
//! per-request error lines turned down: the elector reports failures itself, once per transition).

use leasehold_policy::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// The default filter: our crates at info, kube's HTTP layers at warn. kube-client's trace layer logs every failed
/// request at ERROR with no context ("failed with error client error (Connect)"); the elector and the Lease watch
/// report those failures themselves, once per outage, so that layer is off. kube-runtime's watcher warns only about
/// 403s, with a debug dump of the status, on every refused list; the Lease watch and spread mode's watch say what
/// a 403 means and what the agent does about it, so those lines are turned down too.
const DEFAULT_FILTER: &str = "info,kube_client=warn,kube_client::client::builder=off,kube_runtime=warn,kube_runtime::watcher=error,hyper=warn,tower=warn";

/// Installs the global subscriber, writing to stderr. Text is coloured only on a terminal, so log files and
/// `kubectl logs` carry no escape codes.
pub fn init(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
