//! The control protocol from the agent to the shim: one ASCII line per message on the shim's stdin.
//!
//! ```text
//! deadline <nanoseconds since boot on CLOCK_BOOTTIME>\n   set the absolute kill deadline (latest wins)
//! deadline none\n                                          no kill deadline (tasks with election = false)
//! stop\n                                                   SIGTERM the group, SIGKILL it after the grace, exit
//! ```
//!
//! End of file on stdin means the agent is gone (exited, crashed, SIGKILLed, or dropped the task): the shim SIGKILLs
//! the group at once. A deadline that has already passed is final: a later `deadline` line does not revive it. Lines
//! that don't parse are reported on stderr and ignored, so a newer agent can't crash an older shim.

use crate::supervisor::{BootInstant, Deadline};

/// Longest control line the shim accepts, newline included. The longest valid line is 29 bytes.
pub const MAX_LINE: usize = 64;

/// One message from the agent to its watchdog shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Replace the kill deadline.
    Deadline(Deadline),
    /// Stop the task gracefully: SIGTERM, the grace, then SIGKILL.
    Stop,
}

/// A control line that the shim could not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The line is not one of the known messages.
    #[error("unknown control line {0:?}; expected `deadline <ns>`, `deadline none` or `stop`")]
    Unknown(String),
    /// The deadline is neither `none` nor a number of nanoseconds.
    #[error("invalid deadline {0:?}; expected nanoseconds on CLOCK_BOOTTIME or `none`")]
    InvalidDeadline(String),
    /// The line is longer than [`MAX_LINE`].
    #[error("control line longer than {MAX_LINE} bytes")]
    TooLong,
}

impl Control {
    /// The line that carries this message, newline included.
    #[must_use]
    pub fn to_line(self) -> String {
        match self {
            Self::Deadline(deadline) => format!("deadline {}\n", format_deadline(deadline)),
            Self::Stop => "stop\n".to_owned(),
        }
    }

    /// Parses one line, without its newline. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`ProtocolError`] when the line is not a known message.
    pub fn parse(line: &[u8]) -> Result<Self, ProtocolError> {
        let text = std::str::from_utf8(line)
            .map_err(|_| ProtocolError::Unknown(String::from_utf8_lossy(line).into()))?;
        let text = text.trim();
        if text == "stop" {
            return Ok(Self::Stop);
        }
        match text.split_once(' ') {
            Some(("deadline", value)) => parse_deadline(value.trim()).map(Self::Deadline),
            _ => Err(ProtocolError::Unknown(text.to_owned())),
        }
    }
}

/// Writes a deadline the way the protocol and the shim's `--deadline` flag carry it.
#[must_use]
pub fn format_deadline(deadline: Deadline) -> String {
    match deadline {
        Deadline::None => "none".to_owned(),
        Deadline::At(at) => at.as_nanos().to_string(),
    }
}

/// Reads a deadline written by [`format_deadline`].
///
/// # Errors
/// [`ProtocolError::InvalidDeadline`] for anything but `none` or a decimal number.
pub fn parse_deadline(value: &str) -> Result<Deadline, ProtocolError> {
    if value == "none" {
        return Ok(Deadline::None);
    }
    value
        .parse::<u64>()
        .map(|nanos| Deadline::At(BootInstant::from_nanos(nanos)))
        .map_err(|_| ProtocolError::InvalidDeadline(value.to_owned()))
}

/// Splits the bytes read from stdin into lines, in a fixed buffer: the shim allocates nothing per message.
#[derive(Debug)]
pub struct LineBuffer {
    buf: [u8; MAX_LINE],
    len: usize,
    overflow: bool,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self {
            buf: [0; MAX_LINE],
            len: 0,
            overflow: false,
        }
    }
}

impl LineBuffer {
    /// Feeds `bytes` and calls `on_line` for every complete line, in order. A line longer than [`MAX_LINE`] is
    /// reported as [`ProtocolError::TooLong`] once its newline arrives. `on_line` returns `false` to stop early
    /// (the rest of `bytes` is dropped: the shim is about to exit anyway).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        mut on_line: impl FnMut(Result<Control, ProtocolError>) -> bool,
    ) {
        for &byte in bytes {
            if byte == b'\n' {
                let parsed = if self.overflow {
                    Err(ProtocolError::TooLong)
                } else {
                    Control::parse(&self.buf[..self.len])
                };
                self.len = 0;
                self.overflow = false;
                if !on_line(parsed) {
                    return;
                }
            } else if self.len < MAX_LINE {
                self.buf[self.len] = byte;
                self.len += 1;
            } else {
                self.overflow = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for control in [
            Control::Stop,
            Control::Deadline(Deadline::None),
            Control::Deadline(Deadline::At(BootInstant::from_nanos(u64::MAX))),
            Control::Deadline(Deadline::At(BootInstant::from_nanos(12_345))),
        ] {
            let line = control.to_line();
            assert!(line.len() <= MAX_LINE, "{line:?}");
            assert_eq!(Control::parse(line.trim_end().as_bytes()), Ok(control));
        }
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        assert!(matches!(
            Control::parse(b"deadline soon"),
            Err(ProtocolError::InvalidDeadline(_))
        ));
        assert!(matches!(
            Control::parse(b"deadline -1"),
            Err(ProtocolError::InvalidDeadline(_))
        ));
        assert!(matches!(
            Control::parse(b"restart"),
            Err(ProtocolError::Unknown(_))
        ));
        assert!(matches!(
            Control::parse(b"\xff\xfe"),
            Err(ProtocolError::Unknown(_))
        ));
    }

    #[test]
    fn buffer_splits_across_reads_and_rejects_long_lines() {
        let mut buffer = LineBuffer::default();
        let mut seen = Vec::new();
        buffer.feed(b"dead", |c| {
            seen.push(c);
            true
        });
        buffer.feed(b"line 7\nstop\n", |c| {
            seen.push(c);
            true
        });
        let long = [b'x'; MAX_LINE + 10];
        buffer.feed(&long, |c| {
            seen.push(c);
            true
        });
        buffer.feed(b"\nstop\n", |c| {
            seen.push(c);
            true
        });
        assert_eq!(
            seen,
            vec![
                Ok(Control::Deadline(Deadline::At(BootInstant::from_nanos(7)))),
                Ok(Control::Stop),
                Err(ProtocolError::TooLong),
                Ok(Control::Stop),
            ]
        );
    }
}
