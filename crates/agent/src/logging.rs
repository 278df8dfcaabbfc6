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

/// How many formatted lines may wait for stderr before new ones are dropped (and counted). Enough for a burst of
/// task output; small enough to bound memory at a few MiB.
const BUFFERED_LINES: usize = 16_384;

/// Counts the lines dropped because stderr did not keep up, for `leasehold_log_lines_dropped_total`.
static DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// Keeps the log writer's thread alive; dropping it (at the end of `main`) flushes what is buffered.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Installs the global subscriber, writing to stderr through a lossy, non-blocking writer: a log pipe that
/// stalls (a full `kubectl logs` buffer, a stuck log shipper) must never stop the election, whose renewals run on
/// the same two runtime workers that log. Formatted lines go to a bounded queue drained by one thread; when it is
/// full, lines are dropped and counted ([`dropped_lines`]). Text is coloured only on a terminal, so log files and
/// `kubectl logs` carry no escape codes.
pub fn init(format: LogFormat) -> LogGuard {
    use std::io::IsTerminal as _;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("leasehold-log")
        .finish(std::io::stderr());
    let _ = DROPPED.set(writer.error_counter());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard(guard)
}

/// How many log lines were dropped because stderr did not keep up (0 before [`init`]).
pub fn dropped_lines() -> u64 {
    DROPPED
        .get()
        .map_or(0, |c| u64::try_from(c.dropped_lines()).unwrap_or(u64::MAX))
}
