//! `vnf-pod`: places one VNF on this host: exclusive CPUs aligned with a network's NUMA node,
//! hugepages, a network namespace with several networks, and the command pinned inside it.
//!
//! ```text
//! vnf-pod run [--spec FILE] [-- COMMAND...]   place, run the command, tear down
//! vnf-pod up --spec FILE                      place and keep the pod (command in background)
//! vnf-pod down NAME                           tear down a pod from its state in /run/telco/pods
//! vnf-pod status [NAME]                       print the state of one pod or of every pod
//! ```
//!
//! Without `--spec`, `run` uses a built-in spec that works on any Linux host as root: a veth
//! on a bridge, a macvlan on a parent link, and a memif interface. Logs go to stderr
//! (`RUST_LOG=info` for the steps); stdout carries the placement as one JSON line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use telco_examples::pod::commands::{self, SpecSource};
use telco_examples::pod::error::error_chain;

#[derive(Debug, Parser)]
#[command(
    name = "vnf-pod",
    version,
    about = "Place one VNF: pinned CPUs, hugepages and several networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Place the pod, run the command inside it, and tear everything down when it ends.
    Run {
        /// Pod spec (JSON); the built-in spec when absent.
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        /// Name of the built-in spec's pod; `builtin-PID` by default.
        #[arg(long, conflicts_with = "spec")]
        name: Option<String>,
        /// The command to run, replacing the spec's.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Place the pod, start the spec's command in the background, and keep the pod.
    Up {
        /// Pod spec (JSON).
        #[arg(long, value_name = "FILE")]
        spec: PathBuf,
    },
    /// Tear down a pod placed by `up` (or left by a killed `run`).
    Down {
        /// Pod name.
        name: String,
    },
    /// Print the state of one pod, or of every pod, as JSON.
    Status {
        /// Pod name.
        name: Option<String>,
    },
}

fn main() -> ExitCode {
    telco_examples::init_logging("warn");
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("vnf-pod: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        Command::Run {
            spec,
            name,
            command,
        } => {
            let source = match spec {
                Some(path) => SpecSource::File(path),
                None => SpecSource::Builtin(
                    name.unwrap_or_else(|| format!("builtin-{}", std::process::id())),
                ),
            };
            let status = commands::run(&source, command)?;
            Ok(exit_code(status))
        }
        Command::Up { spec } => {
            commands::up(&SpecSource::File(spec))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Down { name } => {
            commands::down(&name)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { name } => {
            let pods = commands::status(name.as_deref())?;
            let text = match (name, pods.as_slice()) {
                (Some(_), [pod]) => serde_json::to_string_pretty(pod)?,
                _ => serde_json::to_string_pretty(&pods)?,
            };
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Returns the command's exit code, or 128 plus the signal that ended it, as shells report it.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
