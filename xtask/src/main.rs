//! Developer tasks of the telco workspace: the test tiers, the VM test harness and the benchmark
//! table. Run through the cargo alias: `cargo xtask test`, `cargo xtask vm-run -- CMD`,
//! `cargo xtask bench`.

mod bench;
mod cargo;
mod libtest;
mod tiers;
mod vm;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks of the telco workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every test tier (unit, host, vm) and print one `N passed, N failed` line.
    Test(tiers::TestOptions),
    /// Boot the VM-tier guest with the release binaries on PATH, run COMMAND as root in it, print
    /// its output and exit with its status.
    VmRun {
        /// Copy a host file into the guest before COMMAND runs (HOST_PATH:GUEST_PATH); repeatable.
        #[arg(long = "copy", value_name = "HOST_PATH:GUEST_PATH")]
        copies: Vec<String>,
        /// Guest memory in MiB.
        #[arg(long, default_value_t = 4096)]
        mem: u32,
        /// Seconds before the guest is stopped and the run fails.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
        /// Skip building the release binaries (use what target/release has).
        #[arg(long)]
        no_build: bool,
        /// Command and arguments to run in the guest.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Run every benchmark comparison side by side and write BENCHMARKS.md.
    Bench(bench::BenchOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(options) => tiers::run(&options),
        Command::VmRun {
            copies,
            mem,
            timeout,
            no_build,
            command,
        } => vm_run(&copies, mem, timeout, no_build, &command),
        Command::Bench(options) => bench::run(&options),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn vm_run(
    copies: &[String],
    mem: u32,
    timeout: u64,
    no_build: bool,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let workspace = cargo::workspace_root()?;
    let target = cargo::target_dir(&workspace)?;
    if !no_build {
        cargo::build_release_binaries(&workspace)?;
    }
    let mut copied = Vec::new();
    for spec in copies {
        let (host, guest) = spec
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--copy {spec:?}: expected HOST_PATH:GUEST_PATH"))?;
        copied.push((PathBuf::from(host), PathBuf::from(guest)));
    }
    let script = vm::shell_command(command);
    let guest = vm::GuestConfig {
        workspace,
        target_dir: target.clone(),
        extra_path: vec![target.join("release")],
        copies: copied,
        memory_mib: mem,
        timeout: std::time::Duration::from_secs(timeout),
        echo: true,
    };
    let binaries = executables_in(&target.join("release"));
    let outcome = vm::boot_and_run_with_libraries(&guest, &script, &binaries)?;
    match outcome.exit_status {
        Some(status) => Ok(ExitCode::from(
            u8::try_from(status.clamp(0, 255)).unwrap_or(1),
        )),
        None => {
            anyhow::bail!("the guest ended without reporting an exit status (see its output above)")
        }
    }
}

/// Lists the executable files directly inside `dir`, whose shared libraries the guest needs.
fn executables_in(dir: &std::path::Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;

    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            std::fs::metadata(path)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
        .collect()
}
