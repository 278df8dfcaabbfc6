//! The command line: `leasehold agent`, `leasehold run -- CMD`, `leasehold status [--cluster]`, also run as the
//! kubectl plugin `kubectl-leasehold`.
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
    /// Prints the DataKit-style status line of each election namespace, read from the local API; or, with
    /// `--cluster`, every election namespace's holder read from the Leases through your kubeconfig.
    #[command(after_help = CLUSTER_HELP)]
    Status {
        /// The agent's control API address (default: `LEASEHOLD_LISTEN` or 127.0.0.1:9530).
        #[arg(long, conflicts_with = "cluster")]
        addr: Option<SocketAddr>,
        /// Prints the JSON of `GET /v1/election` instead.
        #[arg(long, conflicts_with = "cluster")]
        json: bool,
        /// Reads the Leases through your kubeconfig instead of one agent's API: every election namespace's
        /// holder, epoch, last renew, time left and health; spread tasks and members too. Exits 0 when every
        /// election namespace has a renewing holder, 1 otherwise.
        #[arg(long)]
        cluster: bool,
        /// The Kubernetes namespace of the Leases, as in kubectl (default: the kubeconfig context's).
        #[arg(short = 'n', long, requires = "cluster")]
        namespace: Option<String>,
        /// The kubeconfig context to use (default: the current one).
        #[arg(long, requires = "cluster")]
        context: Option<String>,
        /// `wide`: every task and member, holder identities and time in office; `json`: the whole report.
        #[arg(short = 'o', long, value_enum, requires = "cluster")]
        output: Option<OutputFormat>,
    },
}

/// The `-o` formats of `status --cluster`, as kubectl names them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// More columns, and every task and member.
    Wide,
    /// The whole report as JSON.
    Json,
}

/// What `status --help` adds about the cluster view.
const CLUSTER_HELP: &str = "With --cluster, \"renewing\" is judged from each Lease's renewTime and this machine's \
clock. That is a diagnostic for people, not the election's rule: electors time terms on their own clocks from when \
they saw a change, so a skewed clock here can show a healthy Lease as expired.

As a kubectl plugin (the binary, or a symlink to it, named kubectl-leasehold on PATH), `kubectl leasehold status` \
is `leasehold status --cluster`.";

/// The name under which kubectl runs the binary as a plugin (`kubectl leasehold ...`).
pub const PLUGIN_NAME: &str = "kubectl-leasehold";

/// Parses the command line. Run as the kubectl plugin (`argv[0]` named [`PLUGIN_NAME`], as kubectl execs it),
/// help shows `kubectl leasehold`, and `status` reads the cluster: a plugin runs on a laptop, where no agent
/// listens.
pub fn parse(args: Vec<String>) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let plugin = args.first().is_some_and(|argv0| {
        std::path::Path::new(argv0)
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f == PLUGIN_NAME || f.strip_suffix(".exe") == Some(PLUGIN_NAME))
    });
    let mut args = args;
    let mut command = Cli::command();
    if plugin {
        command = command.bin_name("kubectl leasehold");
        if args.get(1).map(String::as_str) == Some("status")
            && !args.iter().any(|a| a == "--cluster")
        {
            args.insert(2, "--cluster".to_owned());
        }
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_plugin_name_makes_status_read_the_cluster() {
        let cli = parse(args(&[
            "/usr/local/bin/kubectl-leasehold",
            "status",
            "-n",
            "kube-system",
            "-o",
            "wide",
        ]));
        match cli.command {
            Command::Status {
                cluster,
                namespace,
                output,
                ..
            } => {
                assert!(cluster);
                assert_eq!(namespace.as_deref(), Some("kube-system"));
                assert_eq!(output, Some(OutputFormat::Wide));
            }
            other => panic!("not status: {other:?}"),
        }
    }

    #[test]
    fn under_its_own_name_status_reads_the_local_agent_unless_told() {
        match parse(args(&["leasehold", "status"])).command {
            Command::Status { cluster, .. } => assert!(!cluster),
            other => panic!("not status: {other:?}"),
        }
        match parse(args(&["leasehold", "status", "--cluster", "-o", "json"])).command {
            Command::Status {
                cluster, output, ..
            } => {
                assert!(cluster);
                assert_eq!(output, Some(OutputFormat::Json));
            }
            other => panic!("not status: {other:?}"),
        }
    }

    #[test]
    fn cluster_options_without_cluster_are_refused() {
        let err = Cli::try_parse_from(["leasehold", "status", "-n", "x"]).unwrap_err();
        assert!(err.to_string().contains("--cluster"), "{err}");
        let err = Cli::try_parse_from(["leasehold", "status", "--cluster", "--json"]).unwrap_err();
        assert!(err.to_string().contains("--json"), "{err}");
        let err =
            Cli::try_parse_from(["leasehold", "status", "--cluster", "-o", "yaml"]).unwrap_err();
        assert!(err.to_string().contains("yaml"), "{err}");
    }
}
