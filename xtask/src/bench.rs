//! `cargo xtask bench`: runs every comparison side by side and writes BENCHMARKS.md.
//!
//! Each comparison is a program `bench-<area>` of the examples crate that measures our side and
//! the peer in the same run and prints one JSON object per line:
//! `{"row", "unit", "ours", "peer_name", "peer", "better": "lower"|"higher", "goal"}`.
//! Programs that need what the build kernel lacks run inside the VM-tier guest.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::{cargo, tiers, vm};

/// Comparisons run on the build machine.
const HOST_BENCHES: &[&str] = &[
    "bench-topo",
    "bench-attach",
    "bench-multinet",
    "bench-ring",
    "bench-memif",
    "bench-vmm",
];
/// Comparisons run in the VM-tier guest. `bench-vmm` runs in both places: its boot rows need the
/// guest's nested KVM, its vhost-user row needs the build machine's DPDK.
const VM_BENCHES: &[&str] = &["bench-sctp", "bench-sriov", "bench-vmm"];

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchOptions {
    /// Output file of the table.
    #[arg(long, default_value = "BENCHMARKS.md")]
    output: PathBuf,
    /// Skip the comparisons that run in the VM.
    #[arg(long)]
    skip_vm: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct Row {
    row: String,
    unit: String,
    ours: f64,
    peer_name: String,
    peer: Option<f64>,
    better: String,
    goal: String,
}

#[derive(Debug)]
struct Section {
    program: &'static str,
    place: &'static str,
    rows: Vec<Row>,
    problem: Option<String>,
}

/// Runs the benchmarks and writes the table.
pub fn run(options: &BenchOptions) -> Result<ExitCode> {
    let workspace = cargo::workspace_root()?;
    let target = cargo::target_dir(&workspace)?;
    cargo::build_release_binaries(&workspace)?;
    let release = target.join("release");

    let mut sections = Vec::new();
    for program in HOST_BENCHES {
        sections.push(run_on_host(program, &release));
    }
    if options.skip_vm {
        for program in VM_BENCHES {
            sections.push(Section {
                program,
                place: "vm",
                rows: Vec::new(),
                problem: Some("skipped (--skip-vm)".to_owned()),
            });
        }
    } else {
        sections.extend(run_in_vm(&workspace, &target, &release)?);
    }

    let table = render(&sections)?;
    let output = workspace.join(&options.output);
    std::fs::write(&output, &table)
        .with_context(|| format!("failed to write {}", output.display()))?;
    println!("{table}");
    println!("wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}

fn run_on_host(program: &'static str, release: &Path) -> Section {
    let path = release.join(program);
    if !path.exists() {
        return Section {
            program,
            place: "host",
            rows: Vec::new(),
            problem: Some("program not built: it does not exist yet".to_owned()),
        };
    }
    println!("== {program}");
    let mut command = Command::new(&path);
    match tiers::run_streaming(&mut command, Duration::from_secs(600)) {
        Ok((Some(status), output)) => {
            section_from_output(program, "host", &output, status.success())
        }
        Ok((None, output)) => {
            let mut section = section_from_output(program, "host", &output, false);
            section.problem = Some("killed after 600 s".to_owned());
            section
        }
        Err(error) => Section {
            program,
            place: "host",
            rows: Vec::new(),
            problem: Some(format!("failed to run: {error:#}")),
        },
    }
}

fn run_in_vm(workspace: &Path, target: &Path, release: &Path) -> Result<Vec<Section>> {
    let mut script = String::new();
    let mut present = Vec::new();
    let mut sections = Vec::new();
    for program in VM_BENCHES {
        let path = release.join(program);
        if path.exists() {
            let index = present.len();
            script.push_str(&format!(
                "echo 'TELCO-BINARY-BEGIN {index}'\n{} 2>&1\necho \"TELCO-BINARY-END {index} $?\"\n",
                vm::shell_quote(&path.to_string_lossy())
            ));
            present.push((*program, path));
        } else {
            sections.push(Section {
                program,
                place: "vm",
                rows: Vec::new(),
                problem: Some("program not built: it does not exist yet".to_owned()),
            });
        }
    }
    if present.is_empty() {
        return Ok(sections);
    }
    println!(
        "== VM benchmarks: {}",
        present.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
    );
    let guest = vm::GuestConfig {
        workspace: workspace.to_path_buf(),
        target_dir: target.to_path_buf(),
        extra_path: vec![release.to_path_buf()],
        copies: Vec::new(),
        memory_mib: 4096,
        timeout: Duration::from_secs(1800),
        echo: true,
    };
    let libraries: Vec<PathBuf> = present.iter().map(|p| p.1.clone()).collect();
    let outcome = vm::boot_and_run_with_libraries(&guest, &script, &libraries)?;
    for (index, (program, _)) in present.iter().enumerate() {
        let section = match vm::section(&outcome.output, index) {
            Some(text) => section_from_output(program, "vm", text, true),
            None => Section {
                program,
                place: "vm",
                rows: Vec::new(),
                problem: Some("no output came back from the guest".to_owned()),
            },
        };
        sections.push(section);
    }
    Ok(sections)
}

fn section_from_output(
    program: &'static str,
    place: &'static str,
    output: &str,
    success: bool,
) -> Section {
    let rows: Vec<Row> = output
        .lines()
        .filter(|line| line.trim_start().starts_with('{'))
        .filter_map(|line| serde_json::from_str(line.trim()).ok())
        .collect();
    let problem = if !success {
        Some("exited with an error; rows printed before it are kept".to_owned())
    } else if rows.is_empty() {
        Some("printed no rows".to_owned())
    } else {
        None
    };
    Section {
        program,
        place,
        rows,
        problem,
    }
}

fn render(sections: &[Section]) -> Result<String> {
    let mut text = String::new();
    writeln!(text, "# Benchmarks")?;
    writeln!(text)?;
    writeln!(
        text,
        "Written by `cargo xtask bench` from one run; do not edit by hand. Each row measures telco \
         and its peer side by side in the same run. The ratio is the peer's value over ours when \
         lower is better, and ours over the peer's when higher is better: above 1 means telco \
         did better."
    )?;
    writeln!(text)?;
    writeln!(text, "Machine: {}", machine_description())?;
    writeln!(text)?;
    writeln!(
        text,
        "| program | where | row | ours | peer | peer value | unit | ratio | goal |"
    )?;
    writeln!(text, "|---|---|---|---|---|---|---|---|---|")?;
    for section in sections {
        for row in &section.rows {
            let ratio = match row.peer {
                Some(peer) if peer > 0.0 && row.ours > 0.0 => {
                    let value = if row.better == "lower" {
                        peer / row.ours
                    } else {
                        row.ours / peer
                    };
                    format!("{value:.2}")
                }
                _ => "-".to_owned(),
            };
            let peer = row.peer.map_or("-".to_owned(), format_number);
            writeln!(
                text,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                section.program,
                section.place,
                row.row,
                format_number(row.ours),
                row.peer_name,
                peer,
                row.unit,
                ratio,
                row.goal
            )?;
        }
    }
    let problems: Vec<_> = sections.iter().filter(|s| s.problem.is_some()).collect();
    if !problems.is_empty() {
        writeln!(text)?;
        writeln!(text, "Programs without complete rows in this run:")?;
        writeln!(text)?;
        for section in problems {
            writeln!(
                text,
                "- `{}` ({}): {}",
                section.program,
                section.place,
                section.problem.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(text)
}

fn format_number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or("unknown".to_owned(), |kib| {
            format!("{} GiB", kib / 1024 / 1024)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cpu}, {cpus} CPUs, {memory} memory, Linux {kernel}; VM rows in QEMU TCG (-M q35 -cpu max -smp 2) on it"
    )
}
