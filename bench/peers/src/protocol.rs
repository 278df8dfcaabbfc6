//! What `bench-candidates` and `bench-elections` say to each other: events as JSON lines on the runner's stdout,
//! commands as text lines on its stdin.

use serde::{Deserialize, Serialize};

/// One slot of a runner: a candidate position with its own API user. A slot is refilled with a new candidate
/// (a new generation, with a new identity) after its candidate released or crashed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slot {
    /// The slot number, unique across all runner processes of one run.
    pub slot: usize,
    /// The API user's name (counters are kept per user).
    pub user: String,
    /// The API user's bearer token.
    pub token: String,
}

/// Why a leadership interval ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The implementation said we no longer lead.
    Lost,
    /// A `release` command: the guarded work stops now, then the implementation releases.
    Release,
    /// A `crash` command: the candidate is dropped without any further request.
    Crash,
    /// The candidate's elector ended by itself.
    Ended,
}

/// A runner's report, one JSON object per line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "kebab-case")]
pub enum Event {
    /// Every slot of the process has a candidate running (sent once, after start-up).
    Ready {
        /// Slots hosted by this process.
        slots: usize,
    },
    /// A candidate has started (client built, election spawned).
    Up {
        /// Slot.
        slot: usize,
        /// Generation of the slot.
        generation: u32,
        /// CLOCK_MONOTONIC ns.
        t: u64,
    },
    /// A candidate started leading.
    Start {
        /// Slot.
        slot: usize,
        /// Generation of the slot.
        generation: u32,
        /// CLOCK_MONOTONIC ns.
        t: u64,
    },
    /// A candidate stopped leading.
    Stop {
        /// Slot.
        slot: usize,
        /// Generation of the slot.
        generation: u32,
        /// CLOCK_MONOTONIC ns.
        t: u64,
        /// Why.
        why: StopReason,
    },
    /// A candidate finished a `release` or `crash` command; its slot is empty until `spawn`.
    Gone {
        /// Slot.
        slot: usize,
        /// Generation of the slot.
        generation: u32,
        /// CLOCK_MONOTONIC ns.
        t: u64,
        /// Whether it released gracefully (false: crash).
        graceful: bool,
    },
    /// A candidate failed; the message says why.
    Error {
        /// Slot.
        slot: usize,
        /// Generation of the slot.
        generation: u32,
        /// What went wrong.
        message: String,
    },
}

impl Event {
    /// Prints the event as one JSON line on stdout.
    pub fn emit(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            println!("{line}");
        }
    }
}

/// A driver's request, one per stdin line: `release <slot>`, `crash <slot>` or `spawn <slot>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Graceful stop of the slot's candidate: stop leading, then release as the implementation allows.
    Release(usize),
    /// Abrupt stop: the candidate's runtime is dropped, with no further request (no release).
    Crash(usize),
    /// Starts a new candidate (next generation) in an empty slot.
    Spawn(usize),
}

impl Command {
    /// Parses one stdin line.
    ///
    /// # Errors
    /// When the line is not one of the three commands with a slot number.
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let (verb, slot) = (words.next(), words.next().map(str::parse::<usize>));
        match (verb, slot) {
            (Some("release"), Some(Ok(s))) => Ok(Command::Release(s)),
            (Some("crash"), Some(Ok(s))) => Ok(Command::Crash(s)),
            (Some("spawn"), Some(Ok(s))) => Ok(Command::Spawn(s)),
            _ => Err(format!(
                "unknown command {line:?}; expected release|crash|spawn <slot>"
            )),
        }
    }

    /// The stdin line for this command.
    #[must_use]
    pub fn line(self) -> String {
        match self {
            Command::Release(s) => format!("release {s}\n"),
            Command::Crash(s) => format!("crash {s}\n"),
            Command::Spawn(s) => format!("spawn {s}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_junk_is_refused() {
        for c in [Command::Release(3), Command::Crash(0), Command::Spawn(999)] {
            assert_eq!(Command::parse(c.line().trim()), Ok(c));
        }
        assert!(Command::parse("release").is_err());
        assert!(Command::parse("kill 3").is_err());
        assert!(Command::parse("crash x").is_err());
    }

    #[test]
    fn events_are_tagged_json_lines() -> Result<(), serde_json::Error> {
        let e = Event::Stop {
            slot: 2,
            generation: 1,
            t: 42,
            why: StopReason::Crash,
        };
        let line = serde_json::to_string(&e)?;
        assert_eq!(
            line,
            r#"{"e":"stop","slot":2,"generation":1,"t":42,"why":"crash"}"#
        );
        assert!(matches!(
            serde_json::from_str::<Event>(&line)?,
            Event::Stop {
                why: StopReason::Crash,
                ..
            }
        ));
        Ok(())
    }
}
