//! The shim's command line, written by the supervisor and parsed by the shim: one type for both sides so they
//! can't drift apart.
//!
//! `leasehold __shim --task NAME --grace-ms N --deadline NS|none -- CMD ARGS...`

use std::time::Duration;

use super::protocol::{format_deadline, parse_deadline};
use crate::supervisor::Deadline;

/// What the shim runs, and how it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    /// The task's name, for the shim's own messages in the agent's log.
    pub task: String,
    /// Time between SIGTERM and SIGKILL on `stop`.
    pub grace: Duration,
    /// The kill deadline in force from the first instant. It travels on the command line rather than as a first
    /// control line so that an agent stalled right after the spawn still leaves a bounded task.
    pub deadline: Deadline,
    /// The task's argv; the first element is looked up in `PATH`.
    pub command: Vec<String>,
}

/// A shim command line that doesn't parse. Only a supervisor bug produces one: the shim is internal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// A flag came last, without its value.
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    /// A flag's value doesn't parse.
    #[error("invalid {flag} value {value:?}: expected {expected}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// An argument before `--` that is not a known flag.
    #[error(
        "unknown argument {0:?}; usage: --task NAME --grace-ms N --deadline NS|none -- CMD ARGS..."
    )]
    Unknown(String),
    /// `--task` is missing.
    #[error("--task is required")]
    MissingTask,
    /// Nothing follows `--`, or `--` is missing.
    #[error("no command: give it after `--`")]
    MissingCommand,
}

impl ShimArgs {
    /// The arguments that follow the shim subcommand, in the form [`ShimArgs::parse`] reads.
    #[must_use]
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--task".to_owned(),
            self.task.clone(),
            "--grace-ms".to_owned(),
            self.grace.as_millis().to_string(),
            "--deadline".to_owned(),
            format_deadline(self.deadline),
            "--".to_owned(),
        ];
        args.extend(self.command.iter().cloned());
        args
    }

    /// Parses the arguments that follow the shim subcommand. `--grace-ms` defaults to 0 and `--deadline` to `none`.
    ///
    /// # Errors
    /// [`ArgsError`] naming the argument at fault.
    pub fn parse(args: &[String]) -> Result<Self, ArgsError> {
        let mut task = None;
        let mut grace = Duration::ZERO;
        let mut deadline = Deadline::None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--task" => {
                    task = Some(
                        rest.next()
                            .ok_or(ArgsError::MissingValue("--task"))?
                            .clone(),
                    )
                }
                "--grace-ms" => {
                    let value = rest.next().ok_or(ArgsError::MissingValue("--grace-ms"))?;
                    let millis = value.parse::<u64>().map_err(|_| ArgsError::Invalid {
                        flag: "--grace-ms",
                        value: value.clone(),
                        expected: "whole milliseconds",
                    })?;
                    grace = Duration::from_millis(millis);
                }
                "--deadline" => {
                    let value = rest.next().ok_or(ArgsError::MissingValue("--deadline"))?;
                    deadline = parse_deadline(value).map_err(|_| ArgsError::Invalid {
                        flag: "--deadline",
                        value: value.clone(),
                        expected: "nanoseconds on CLOCK_BOOTTIME or `none`",
                    })?;
                }
                "--" => {
                    let command: Vec<String> = rest.cloned().collect();
                    if command.is_empty() {
                        return Err(ArgsError::MissingCommand);
                    }
                    let task = task.ok_or(ArgsError::MissingTask)?;
                    return Ok(Self {
                        task,
                        grace,
                        deadline,
                        command,
                    });
                }
                other => return Err(ArgsError::Unknown(other.to_owned())),
            }
        }
        Err(ArgsError::MissingCommand)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::BootInstant;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn round_trips() {
        let args = ShimArgs {
            task: "mysql".into(),
            grace: Duration::from_millis(1500),
            deadline: Deadline::At(BootInstant::from_nanos(99)),
            command: strings(&["sh", "-c", "echo --task"]),
        };
        assert_eq!(ShimArgs::parse(&args.to_args()), Ok(args));
    }

    #[test]
    fn rejects_what_it_cannot_run() {
        assert_eq!(
            ShimArgs::parse(&strings(&["--task", "t", "--"])),
            Err(ArgsError::MissingCommand)
        );
        assert_eq!(
            ShimArgs::parse(&strings(&["--task", "t"])),
            Err(ArgsError::MissingCommand)
        );
        assert_eq!(
            ShimArgs::parse(&strings(&["--", "true"])),
            Err(ArgsError::MissingTask)
        );
        assert_eq!(
            ShimArgs::parse(&strings(&["--grace-ms"])),
            Err(ArgsError::MissingValue("--grace-ms"))
        );
        assert!(matches!(
            ShimArgs::parse(&strings(&["--grace-ms", "5s", "--", "true"])),
            Err(ArgsError::Invalid {
                flag: "--grace-ms",
                ..
            })
        ));
        assert_eq!(
            ShimArgs::parse(&strings(&["-x", "--", "true"])),
            Err(ArgsError::Unknown("-x".into()))
        );
    }
}
