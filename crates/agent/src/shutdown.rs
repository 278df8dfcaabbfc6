//! Signals: the first SIGTERM or SIGINT starts a graceful shutdown (children stopped, then Leases released,
//! then exit 0); a second one exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The exit code of a second signal: the conventional 128 + SIGINT.
pub const FORCED_EXIT: i32 = 130;

/// Returns a receiver that turns `true` on the first signal. The second signal exits the process at once.
pub fn install() -> std::io::Result<watch::Receiver<bool>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!(
            "shutting down: stopping tasks, then releasing Leases (a second signal exits at once)"
        );
        let _ = tx.send(true);
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::warn!("second signal: exiting at once");
        std::process::exit(FORCED_EXIT);
    });
    Ok(rx)
}
