//! Writes control lines to one shim, off everybody's path: [`TaskHandle::set_deadline`](super::TaskHandle) and
//! stop only update channels, and this task turns them into lines. A shim that reads slowly (or is itself stopped)
//! delays nothing but this task; deadlines that pile up meanwhile collapse into the latest.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::clock::Deadline;
use crate::shim::Control;

/// The writer task for one shim's stdin. Dropping it (or [`ControlWriter::close`]) closes the pipe, which makes the
/// shim SIGKILL the task's group: that is how an abandoned task dies.
#[derive(Debug)]
pub(super) struct ControlWriter {
    task: JoinHandle<()>,
    stop: Arc<Notify>,
}

impl ControlWriter {
    /// Starts writing to `stdin`. `sent` is the deadline the shim already has (from its command line); any other
    /// value on `deadlines`, now or later, is written.
    pub(super) fn start(
        stdin: ChildStdin,
        deadlines: watch::Receiver<Deadline>,
        sent: Deadline,
    ) -> Self {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(write_loop(stdin, deadlines, sent, Arc::clone(&stop)));
        Self { task, stop }
    }

    /// Asks the shim to stop the task gracefully. The pipe stays open: closing it would mean "kill now".
    pub(super) fn request_stop(&self) {
        self.stop.notify_one();
    }

    /// Closes the pipe now.
    pub(super) fn close(self) {
        drop(self);
    }
}

impl Drop for ControlWriter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn write_loop(
    mut stdin: ChildStdin,
    mut deadlines: watch::Receiver<Deadline>,
    mut sent: Deadline,
    stop: Arc<Notify>,
) {
    let mut deadlines_open = true;
    let mut stop_sent = false;
    loop {
        let current = *deadlines.borrow_and_update();
        if current != sent {
            if write(&mut stdin, Control::Deadline(current)).await.is_err() {
                return; // the shim is gone; its runner sees the exit
            }
            sent = current;
        }
        tokio::select! {
            changed = deadlines.changed(), if deadlines_open => deadlines_open = changed.is_ok(),
            () = stop.notified(), if !stop_sent => {
                stop_sent = true;
                if write(&mut stdin, Control::Stop).await.is_err() {
                    return;
                }
            }
            // Nothing more to say, but the pipe must stay open until the runner has seen the shim exit.
            else => std::future::pending::<()>().await,
        }
    }
}

async fn write(stdin: &mut ChildStdin, control: Control) -> std::io::Result<()> {
    stdin.write_all(control.to_line().as_bytes()).await
}
