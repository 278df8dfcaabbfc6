//! `leasehold`: the agent binary. `leasehold agent`, `leasehold run -- CMD`, `leasehold status`; the watchdog shim
//! mode is internal (the agent re-executes itself to supervise each task).

use std::process::ExitCode;

use leasehold_agent::cli::{Cli, Command, OutputFormat};
use leasehold_agent::{
    agent, cluster_status, kube_client, logging, settings, shim, shutdown, status_cmd, wrapper,
};

/// Bad configuration: nothing was started.
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(shim::SUBCOMMAND) {
        return shim::main(&args[2..]);
    }
    let cli = leasehold_agent::cli::parse(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("leasehold: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Status {
            cluster: true,
            namespace,
            context,
            output,
            ..
        } => {
            let options = cluster_status::Options {
                namespace,
                context,
                output: match output {
                    None => cluster_status::Output::Text(cluster_status::Detail::Normal),
                    Some(OutputFormat::Wide) => {
                        cluster_status::Output::Text(cluster_status::Detail::Wide)
                    }
                    Some(OutputFormat::Json) => cluster_status::Output::Json,
                },
            };
            match cluster_status::run(&options).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("leasehold status: {}", one_line(&anyhow::Error::from(e)));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Status { addr, json, .. } => {
            let addr = addr.unwrap_or_else(|| match settings::load() {
                Ok(s) => s.config.api.listen,
                Err(_) => std::net::SocketAddr::from(([127, 0, 0, 1], 9530)),
            });
            match status_cmd::run(addr, json).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("leasehold status: {}", one_line(&e));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Agent => serve(settings::load()).await,
        Command::Run {
            namespace,
            grace,
            command,
        } => {
            serve(settings::load().and_then(|s| wrapper::apply(s, namespace, grace, command))).await
        }
    }
}

async fn serve(loaded: Result<settings::Settings, settings::SettingsError>) -> ExitCode {
    let settings = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("leasehold: configuration error: {e}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let kube = if agent::needs_kubernetes(&settings) {
        match kube_client::infer().await {
            Ok(config) => Some(config),
            Err(e) => {
                eprintln!(
                    "leasehold: configuration error: {}",
                    one_line(&anyhow::Error::from(e))
                );
                return ExitCode::from(CONFIG_ERROR);
            }
        }
    } else {
        None
    };
    let _log = logging::init(settings.config.api.log_format);
    let shutdown = match shutdown::install() {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("leasehold: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    match agent::run(settings, kube, shutdown).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            tracing::error!("{}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: kube's errors repeat their sources in their own text, so
/// a cause already said is not said again.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
