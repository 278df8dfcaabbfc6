//! Forwards a task's stdout and stderr to the agent's log, one tracing event per line, inside the task's span (so
//! every line carries the task's name).
//!
//! Each stream is read on a thread of its own, with blocking reads, never on the runtime's workers: a collector
//! that floods its output then costs the agent those threads' CPU and the log's lossy queue, not the elector's
//! renewals.
//!
//! Lines are capped at [`MAX_LINE`] bytes: a collector that writes megabytes without a newline costs the agent a
//! bounded buffer, and the excess arrives as further events. Bytes that are not UTF-8 are replaced, not dropped.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;

/// The longest line logged as one event (a line may overshoot by one read buffer before it is cut).
pub(super) const MAX_LINE: usize = 16 * 1024;

/// Which of the task's streams a line came from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stream {
    /// The task's stdout.
    Stdout,
    /// The task's stderr (also where the shim writes its own diagnostics).
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// The stack of each output thread: it holds one read buffer and one line, both on the heap.
const THREAD_STACK: usize = 128 * 1024;

/// Starts a thread that logs every line of the pipe `fd` until end of file. The pipe ends when the last process
/// holding it exits, which can outlive the shim (a descendant that left the group), so nothing waits for the thread.
///
/// # Errors
/// When the thread cannot be started; the pipe is then closed, and the task's output lost.
pub(super) fn forward(fd: OwnedFd, stream: Stream, span: tracing::Span) -> std::io::Result<()> {
    // The thread logs to the subscriber of the caller (the global one in the agent, a scoped one in tests).
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    std::thread::Builder::new()
        .name(format!("task-{}", stream.name()))
        .stack_size(THREAD_STACK)
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let _entered = span.enter();
                pump(std::fs::File::from(fd), stream);
            });
        })
        .map(drop)
}

fn pump<R: Read>(reader: R, stream: Stream) {
    let mut reader = BufReader::with_capacity(8 * 1024, reader);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                tracing::debug!(stream = stream.name(), %error, "task output unreadable");
                break;
            }
        };
        if chunk.is_empty() {
            break;
        }
        let (take, complete) = match chunk.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (chunk.len(), false),
        };
        line.extend_from_slice(&chunk[..take]);
        reader.consume(take);
        if complete || line.len() >= MAX_LINE {
            emit(stream, &line);
            line.clear();
        }
    }
    if !line.is_empty() {
        emit(stream, &line);
    }
}

fn emit(stream: Stream, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    tracing::info!(target: "leasehold::task", stream = stream.name(), "{}", String::from_utf8_lossy(line));
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A writer that sends every write down a channel, so a test can wait for a log line.
    #[derive(Clone)]
    struct Sender(std::sync::mpsc::Sender<Vec<u8>>);

    impl std::io::Write for Sender {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The output is read and logged off the runtime: a runtime whose only thread is blocked (here, waiting for the
    /// line itself) still gets the task's line logged. When the pump was a tokio task, this waited forever.
    #[test]
    fn output_is_logged_while_the_runtime_is_blocked() {
        use std::io::Write as _;
        let (tx, rx) = std::sync::mpsc::channel();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sender(tx.clone()))
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (read, write) = rustix::pipe::pipe().unwrap();
            forward(
                read,
                Stream::Stderr,
                tracing::info_span!("task", name = "flood"),
            )
            .unwrap();
            std::fs::File::from(write).write_all(b"hello\n").unwrap();
            // No await from here on: the runtime's one thread blocks until the line is logged.
            let line = rx.recv_timeout(std::time::Duration::from_secs(30));
            let line = String::from_utf8(line.expect("the line was never logged")).unwrap();
            assert!(line.contains("task{name=\"flood\"}"), "{line}");
            assert!(line.contains("hello stream=\"stderr\""), "{line}");
        });
    }

    #[test]
    fn splits_lines_caps_long_ones_and_keeps_the_tail() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut input = b"one\r\ntwo\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
        input.extend_from_slice(b"\ntail \xff");
        pump(&input[..], Stream::Stdout);
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("one stream=\"stdout\""), "{}", lines[0]);
        assert!(lines[1].ends_with("two stream=\"stdout\""), "{}", lines[1]);
        assert!(lines[lines.len() - 1].contains("tail \u{fffd}"));
        let long = &lines[2..lines.len() - 1];
        assert!(long.len() >= 3, "a long line is split into capped events");
        let xs: Vec<usize> = long.iter().map(|l| l.matches('x').count()).collect();
        assert_eq!(xs.iter().sum::<usize>(), 3 * MAX_LINE);
        assert!(xs.iter().all(|&n| n < MAX_LINE + 8 * 1024), "{xs:?}");
    }
}
