//! The command line: `leasehold agent`, `leasehold run -- CMD`, `leasehold status`.
//!
//! Everything else is configured through the environment (DataKit's variable names work unchanged) or the TOML
//! file named by `LEASEHOLD_CONFIG`; the CLI only picks the mode.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// leasehold: leader election for agents that run on every node of a Kubernetes cluster.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The modes of the binary.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the agent: one elector per election namespace, and the configured `[[task]]` children gated by
    /// leadership. Configured by env vars and `LEASEHOLD_CONFIG`.
    Agent,
    /// Puts one existing collector under election: CMD runs only while this agent leads the namespace.
    Run {
        /// Election namespace (default: the first configured one).
        #[arg(long)]
        namespace: Option<String>,
        /// Time between SIGTERM and SIGKILL when leadership ends (`3s`, `500ms`).
        #[arg(long, value_parser = humantime::parse_duration)]
        grace: Option<Duration>,
        /// The collector command and its arguments.
        #[arg(required = true, last = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Prints the DataKit-style status line of each election namespace, read from the local API.
    Status {
        /// The agent's control API address (default: `LEASEHOLD_LISTEN` or 127.0.0.1:9530).
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// Prints the JSON of `GET /v1/election` instead.
        #[arg(long)]
        json: bool,
    },
}
