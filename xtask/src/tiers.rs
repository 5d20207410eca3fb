//! The three test tiers and the closing `N passed, N failed` line.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cargo::{self, TestBinary};
use crate::libtest::{self, Counts};
use crate::vm;

/// Module name that puts a test in the host tier.
pub const HOST_MODULE: &str = "host_tier::";
/// Module name that puts a test in the vm tier.
pub const VM_MODULE: &str = "vm_tier::";

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct TestOptions {
    /// Skip the host tier (its tests are counted as skipped).
    #[arg(long)]
    skip_host: bool,
    /// Skip the vm tier (its tests are counted as skipped).
    #[arg(long)]
    skip_vm: bool,
    /// Seconds one test binary may run in the unit or host tier before it is killed.
    #[arg(long, default_value_t = 900)]
    binary_timeout: u64,
    /// Seconds the vm tier guest may run before it is stopped.
    #[arg(long, default_value_t = 2400)]
    vm_timeout: u64,
    /// Guest memory in MiB for the vm tier.
    #[arg(long, default_value_t = 4096)]
    vm_mem: u32,
}

/// Runs every tier and prints the totals.
pub fn run(options: &TestOptions) -> Result<ExitCode> {
    let started = Instant::now();
    let workspace = cargo::workspace_root()?;
    let binaries = cargo::build_test_binaries(&workspace)?;
    let timeout = Duration::from_secs(options.binary_timeout);

    let mut tiers: Vec<(&str, Counts)> = Vec::new();
    tiers.push(("unit", unit_tier(&workspace, &binaries, timeout)?));

    let host_tests = tier_tests(&binaries, HOST_MODULE)?;
    tiers.push(if options.skip_host {
        ("host", skipped(&host_tests))
    } else {
        ("host", host_tier(&host_tests, timeout)?)
    });

    let vm_tests = tier_tests(&binaries, VM_MODULE)?;
    tiers.push(if options.skip_vm {
        ("vm", skipped(&vm_tests))
    } else {
        ("vm", vm_tier(&workspace, &vm_tests, options)?)
    });

    let mut total = Counts::default();
    println!();
    println!("== summary ({} s)", started.elapsed().as_secs());
    for (name, counts) in &tiers {
        println!(
            "   {name:<5} {} passed, {} failed, {} skipped",
            counts.passed, counts.failed, counts.skipped
        );
        total.add(*counts);
    }
    if total.skipped > 0 {
        println!(
            "{} passed, {} failed, {} skipped",
            total.passed, total.failed, total.skipped
        );
    } else {
        println!("{} passed, {} failed", total.passed, total.failed);
    }
    Ok(if total.failed == 0 && total.passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A test binary with the names of its tests in one tier.
#[derive(Debug)]
pub struct TierBinary {
    pub binary: TestBinary,
    pub tests: Vec<String>,
}

fn tier_tests(binaries: &[TestBinary], module: &str) -> Result<Vec<TierBinary>> {
    let mut selected = Vec::new();
    for binary in binaries {
        let tests: Vec<String> = cargo::list_tests(binary, module)?
            .into_iter()
            .filter(|name| name.contains(module))
            .collect();
        if !tests.is_empty() {
            selected.push(TierBinary {
                binary: binary.clone(),
                tests,
            });
        }
    }
    Ok(selected)
}

fn skipped(binaries: &[TierBinary]) -> Counts {
    Counts {
        skipped: binaries.iter().map(|b| b.tests.len() as u64).sum(),
        ..Counts::default()
    }
}

fn unit_tier(
    workspace: &std::path::Path,
    binaries: &[TestBinary],
    timeout: Duration,
) -> Result<Counts> {
    println!(
        "== unit tier: {} test binaries and the doc tests",
        binaries.len()
    );
    let mut counts = Counts::default();
    for binary in binaries {
        counts.add(check_ignored_outside_tiers(binary)?);
        let mut command = Command::new(&binary.path);
        command.current_dir(&binary.manifest_dir);
        test_env(&mut command, binary, "unit");
        counts.add(run_test_binary(&binary.name, command, timeout)?);
    }
    let mut doc = Command::new(cargo::cargo());
    doc.current_dir(workspace)
        .args(["test", "--workspace", "--all-features", "--doc"]);
    counts.add(run_test_binary("doc tests", doc, timeout)?);
    Ok(counts)
}

/// Counts each ignored test outside the tier modules as a failure, because it would never run.
fn check_ignored_outside_tiers(binary: &TestBinary) -> Result<Counts> {
    let stray: Vec<String> = cargo::list_ignored_tests(binary)?
        .into_iter()
        .filter(|name| !name.contains(HOST_MODULE) && !name.contains(VM_MODULE))
        .collect();
    for name in &stray {
        println!(
            "FAILED {}: {name} is ignored but in no tier module, so it never runs",
            binary.name
        );
    }
    Ok(Counts {
        failed: stray.len() as u64,
        ..Counts::default()
    })
}

fn host_tier(binaries: &[TierBinary], timeout: Duration) -> Result<Counts> {
    let count: usize = binaries.iter().map(|b| b.tests.len()).sum();
    println!("== host tier: {count} tests in {} binaries", binaries.len());
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        println!("FAILED host tier: it needs root (run as root, or pass --skip-host)");
        return Ok(Counts {
            failed: count as u64,
            ..Counts::default()
        });
    }
    let mut counts = Counts::default();
    for tier_binary in binaries {
        let binary = &tier_binary.binary;
        let mut command = Command::new(&binary.path);
        command.current_dir(&binary.manifest_dir).args([
            "--ignored",
            HOST_MODULE,
            "--test-threads=1",
        ]);
        test_env(&mut command, binary, "host");
        counts.add(run_test_binary(&binary.name, command, timeout)?);
    }
    Ok(counts)
}

fn vm_tier(
    workspace: &std::path::Path,
    binaries: &[TierBinary],
    options: &TestOptions,
) -> Result<Counts> {
    let count: usize = binaries.iter().map(|b| b.tests.len()).sum();
    println!(
        "== vm tier: {count} tests in {} binaries, in one QEMU guest",
        binaries.len()
    );
    if binaries.is_empty() {
        return Ok(Counts::default());
    }
    let target = cargo::target_dir(workspace)?;
    let mut script = String::new();
    for (index, tier_binary) in binaries.iter().enumerate() {
        let binary = &tier_binary.binary;
        script.push_str(&format!(
            "echo 'TELCO-BINARY-BEGIN {index}'\n\
             (cd {dir} && CARGO_MANIFEST_DIR={dir} CARGO_PKG_NAME={pkg} TELCO_TEST_TIER=vm {bin} --ignored {module} --test-threads=1 2>&1)\n\
             echo \"TELCO-BINARY-END {index} $?\"\n",
            dir = vm::shell_quote(&binary.manifest_dir.to_string_lossy()),
            pkg = vm::shell_quote(&binary.package),
            bin = vm::shell_quote(&binary.path.to_string_lossy()),
            module = VM_MODULE,
        ));
    }
    script.push_str("true\n");
    let guest = vm::GuestConfig {
        workspace: workspace.to_path_buf(),
        target_dir: target.clone(),
        extra_path: vec![target.join("debug")],
        copies: Vec::new(),
        memory_mib: options.vm_mem,
        timeout: Duration::from_secs(options.vm_timeout),
        echo: true,
    };
    let libraries: Vec<_> = binaries.iter().map(|b| b.binary.path.clone()).collect();
    let outcome = vm::boot_and_run_with_libraries(&guest, &script, &libraries)?;

    let mut counts = Counts::default();
    for (index, tier_binary) in binaries.iter().enumerate() {
        let section = vm::section(&outcome.output, index);
        let (binary_counts, lines) = match section {
            Some(text) => libtest::parse_results(text),
            None => (Counts::default(), 0),
        };
        if lines == 0 {
            println!(
                "FAILED vm tier: {} gave no test summary (crashed, or the guest died); its {} tests count as failed",
                tier_binary.binary.name,
                tier_binary.tests.len()
            );
            counts.failed += tier_binary.tests.len() as u64;
        } else {
            counts.add(binary_counts);
        }
    }
    if outcome.exit_status.is_none() {
        println!("FAILED vm tier: the guest did not finish its script");
        counts.failed += 1;
    }
    Ok(counts)
}

fn test_env(command: &mut Command, binary: &TestBinary, tier: &str) {
    command
        .env("CARGO_MANIFEST_DIR", &binary.manifest_dir)
        .env("CARGO_PKG_NAME", &binary.package)
        .env("TELCO_TEST_TIER", tier);
}

/// Runs one test binary with its output streamed to ours, and counts its results. A run that
/// prints no summary (a crash, a timeout) counts as one failure.
fn run_test_binary(name: &str, mut command: Command, timeout: Duration) -> Result<Counts> {
    println!("-- {name}");
    let (status, output) =
        run_streaming(&mut command, timeout).with_context(|| format!("failed to run {name}"))?;
    let (mut counts, lines) = libtest::parse_results(&output);
    match status {
        None => {
            println!("FAILED {name}: killed after {} s", timeout.as_secs());
            counts.failed += 1;
        }
        Some(status) if lines == 0 => {
            println!("FAILED {name}: exited with {status} and printed no test summary");
            counts.failed += 1;
        }
        Some(status) if !status.success() && counts.failed == 0 => {
            println!("FAILED {name}: exited with {status}");
            counts.failed += 1;
        }
        Some(_) => {}
    }
    Ok(counts)
}

/// Runs `command`, copying its stdout and stderr to ours line by line, and returns its status
/// (`None` when it was killed at the timeout) and its combined output.
pub fn run_streaming(
    command: &mut Command,
    timeout: Duration,
) -> Result<(Option<std::process::ExitStatus>, String)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let collected = Arc::new(Mutex::new(String::new()));
    let readers = [
        spawn_copier(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            &collected,
        ),
        spawn_copier(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            &collected,
        ),
    ];
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for reader in readers.into_iter().flatten() {
        let _ = reader.join();
    }
    let output = collected
        .lock()
        .map(|text| text.clone())
        .unwrap_or_default();
    Ok((status, output))
}

fn spawn_copier(
    stream: Option<Box<dyn Read + Send>>,
    collected: &Arc<Mutex<String>>,
) -> Option<std::thread::JoinHandle<()>> {
    let stream = stream?;
    let collected = Arc::clone(collected);
    Some(std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let text = String::from_utf8_lossy(&line);
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            if let Ok(mut all) = collected.lock() {
                all.push_str(&text);
            }
            line.clear();
        }
    }))
}
