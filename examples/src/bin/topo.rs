//! `topo`: prints the machine's topology, as a tree or as JSON.
//!
//! ```text
//! topo [--root DIR] [--json]
//! ```
//!
//! DIR contains `sys/` and `proc/` (an extracted hwloc fixture, for instance); the default is the
//! live host.

use std::process::ExitCode;

use clap::Parser;
use serde_json::{Value, json};
use telco_core::HostRoot;
use telco_topo::discover::CacheKind;
use telco_topo::{DiscoverOptions, Topology};

/// Prints the CPU, NUMA, cache and PCI topology of a Linux machine.
#[derive(Debug, Parser)]
#[command(name = "topo", version)]
struct Args {
    /// Directory holding `sys/` and `proc/` instead of the live host's (`/`).
    #[arg(long, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a tree.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let host = args.root.map_or_else(HostRoot::system, HostRoot::at);
    let topology = match Topology::discover_with(&host, &DiscoverOptions::default().with_cgroup()) {
        Ok(topology) => topology,
        Err(error) => {
            eprintln!("topo: {}", error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", to_json(&topology));
    } else {
        print!("{}", to_tree(&topology));
    }
    ExitCode::SUCCESS
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn cache_type(kind: CacheKind) -> &'static str {
    match kind {
        CacheKind::Data => "data",
        CacheKind::Instruction => "instruction",
        CacheKind::Unified => "unified",
    }
}

/// Kernel core ids where `(package, core_id)` names each core once, else machine-wide core
/// indexes (some multi-die parts repeat core ids across dies).
fn core_ids(topology: &Topology) -> Vec<Option<usize>> {
    let mut seen = std::collections::BTreeSet::new();
    let unique = topology
        .cores
        .iter()
        .all(|core| seen.insert((core.package, core.id)));
    topology
        .cpus
        .iter()
        .map(|cpu| if unique { cpu.core } else { cpu.core_index })
        .collect()
}

fn to_json(topology: &Topology) -> Value {
    let cores = core_ids(topology);
    json!({
        "packages": topology.packages.len(),
        "cores": topology.cores.len(),
        "pus": topology.online.len(),
        "numa_nodes": topology.numa_nodes.iter().map(|node| json!({
            "id": node.id,
            "cpus": node.cpus.to_string(),
            "memory_kib": node.memory_kib,
            "hugepages": node.hugepages.iter().map(|pool| json!({
                "size_kib": pool.size_kib,
                "total": pool.total,
                "free": pool.free,
                "surplus": pool.surplus,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "distances": topology.distances,
        "caches": topology.caches.iter().map(|cache| json!({
            "level": cache.level,
            "type": cache_type(cache.kind),
            "size_kib": cache.size_kib,
            "cpus": cache.cpus.to_string(),
        })).collect::<Vec<_>>(),
        "cpus": topology.cpus.iter().zip(&cores).map(|(cpu, core)| json!({
            "id": cpu.id,
            "package": cpu.package,
            "die": cpu.die,
            "core": core,
            "numa_node": cpu.numa_node,
            "online": cpu.online,
            "l3": cpu.llc,
        })).collect::<Vec<_>>(),
        "pci_devices": topology.pci_devices.iter().map(|device| json!({
            "address": device.address.to_string(),
            "numa_node": device.numa_node,
            "class": format!("0x{:06x}", device.class),
            "vendor": format!("0x{:04x}", device.vendor),
            "device": format!("0x{:04x}", device.device),
            "driver": device.driver,
            "net": device.net,
            "sriov_totalvfs": device.sriov_totalvfs,
            "sriov_numvfs": device.sriov_numvfs,
        })).collect::<Vec<_>>(),
        "isolated": topology.isolated.to_string(),
        "nohz_full": topology.nohz_full.to_string(),
        "cgroup": topology.cgroup.as_ref().map(|cgroup| json!({
            "path": cgroup.path,
            "cpus": cgroup.cpus.to_string(),
            "mems": cgroup.mems.to_string(),
        })),
    })
}

/// Formats `count` with the singular or plural noun (`1 package`, `2 packages`).
fn counted(count: usize, singular: &str, plural: &str) -> String {
    if count == 1 {
        format!("{count} {singular}")
    } else {
        format!("{count} {plural}")
    }
}

fn to_tree(topology: &Topology) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}, {}, {} online of {} possible, {}",
        counted(topology.packages.len(), "package", "packages"),
        counted(topology.cores.len(), "core", "cores"),
        counted(topology.online.len(), "CPU", "CPUs"),
        topology.possible.len(),
        counted(topology.numa_nodes.len(), "NUMA node", "NUMA nodes"),
    );
    for package in &topology.packages {
        let _ = writeln!(out, "  Package P#{} (CPUs {})", package.id, package.cpus);
        for node in topology
            .numa_nodes
            .iter()
            .filter(|node| !node.cpus.intersection(&package.cpus).is_empty())
        {
            let memory = node.memory_kib.map_or("memory unknown".to_owned(), |kib| {
                format!("{} MiB", kib / 1024)
            });
            let pools: Vec<String> = node
                .hugepages
                .iter()
                .map(|pool| format!("{}kB {}/{} free", pool.size_kib, pool.free, pool.total))
                .collect();
            let pools = if pools.is_empty() {
                String::new()
            } else {
                format!("; hugepages {}", pools.join(", "))
            };
            let _ = writeln!(
                out,
                "    NUMANode P#{} (CPUs {}, {memory}{pools})",
                node.id, node.cpus,
            );
        }
        for cache in topology
            .caches
            .iter()
            .filter(|cache| cache.cpus.is_subset(&package.cpus))
        {
            let kind = match cache.kind {
                CacheKind::Data => "d",
                CacheKind::Instruction => "i",
                CacheKind::Unified => "",
            };
            let size = cache.size_kib.map_or("?".to_owned(), |kib| kib.to_string());
            let _ = writeln!(
                out,
                "    L{}{kind} {size} KiB (CPUs {})",
                cache.level, cache.cpus
            );
        }
        for core in topology
            .cores
            .iter()
            .filter(|core| core.cpus.is_subset(&package.cpus))
        {
            let _ = writeln!(out, "    Core P#{}: CPUs {}", core.id, core.cpus);
        }
    }
    let offline = topology.possible.difference(&topology.online);
    if !offline.is_empty() {
        let _ = writeln!(out, "  Offline CPUs: {offline}");
    }
    for node in topology
        .numa_nodes
        .iter()
        .filter(|node| node.cpus.is_empty())
    {
        let _ = writeln!(
            out,
            "  NUMANode P#{} (no CPU, {} MiB)",
            node.id,
            node.memory_kib.unwrap_or(0) / 1024
        );
    }
    for device in &topology.pci_devices {
        let node = device
            .numa_node
            .map_or("-".to_owned(), |node| node.to_string());
        let _ = writeln!(
            out,
            "  PCI {} class 0x{:06x} {:04x}:{:04x} node {node}{}",
            device.address,
            device.class,
            device.vendor,
            device.device,
            if device.net.is_empty() {
                String::new()
            } else {
                format!(" net {}", device.net.join(","))
            }
        );
    }
    if !topology.isolated.is_empty() {
        let _ = writeln!(out, "  Isolated CPUs: {}", topology.isolated);
    }
    if !topology.nohz_full.is_empty() {
        let _ = writeln!(out, "  nohz_full CPUs: {}", topology.nohz_full);
    }
    out
}
