//! `cpu-alloc`: picks exclusive CPUs the way the kubelet's static CPU manager policy does.
//!
//! ```text
//! cpu-alloc (--topology FILE | --root DIR) --request N [--available LIST] [--reserved LIST]
//!           [--options NAME[=true|false],...] [--numa-affinity NODES]
//! ```
//!
//! FILE is JSON `{"cpus": [{"id", "core", "package", "numa_node", "l3"?}]}`, the shape of
//! `topo --json`'s `cpus`. Prints the chosen CPUs in list format and exits 0, or prints the
//! error to stderr and exits 1. CPUs in `--available` and nodes in `--numa-affinity` that the
//! topology does not have are errors. A request of 0 prints an empty line and exits 0: the
//! kubelet gives a container that requests 0 CPUs no exclusive CPUs, and it runs in the shared
//! pool.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;
use telco_core::{CpuSet, HostRoot, NodeMask};
use telco_topo::cpumanager::CpuEntry;
use telco_topo::{
    CpuManager, CpuTopology, DiscoverOptions, Reserved, StaticPolicyOptions, Topology,
};

/// Picks exclusive CPUs with the kubelet's static policy.
#[derive(Debug, Parser)]
#[command(name = "cpu-alloc", version)]
struct Args {
    /// JSON topology file (`{"cpus": [...]}`).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "root",
        required_unless_present = "root"
    )]
    topology: Option<PathBuf>,
    /// Directory holding `sys/` and `proc/` to discover the topology from (`/` for this host).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Number of CPUs to allocate; 0 allocates none, as the kubelet does for a container
    /// without an integer CPU request.
    #[arg(long, value_name = "N")]
    request: usize,
    /// Free CPUs, all of them CPUs of the topology (default: every CPU of the topology).
    #[arg(long, value_name = "LIST")]
    available: Option<CpuSet>,
    /// Reserved CPUs, never handed out.
    #[arg(long, value_name = "LIST")]
    reserved: Option<CpuSet>,
    /// Static policy options, `NAME[=true|false],...`.
    #[arg(long, value_name = "OPTIONS", default_value = "")]
    options: String,
    /// NUMA nodes to allocate from first (the topology manager's merged hint), all of them
    /// nodes of the topology.
    #[arg(long, value_name = "NODES")]
    numa_affinity: Option<NodeMask>,
}

#[derive(Debug, Deserialize)]
struct TopologyFile {
    cpus: Vec<CpuEntry>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(cpus) => {
            println!("{cpus}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cpu-alloc: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<CpuSet> {
    let topology = load_topology(args)?;
    check_against_topology(args, &topology)?;
    if args.request == 0 {
        return Ok(CpuSet::new());
    }
    let options = StaticPolicyOptions::parse(&args.options)?;
    let mut manager = match &args.reserved {
        Some(reserved) if !reserved.is_empty() => {
            CpuManager::new(topology, Reserved::List(reserved.clone()), options)?
        }
        _ => CpuManager::without_reservation(topology, options)?,
    };
    if let Some(available) = &args.available {
        manager.set_shared_pool(available.clone());
    }
    Ok(manager.allocate("cpu-alloc", args.request, args.numa_affinity.as_ref())?)
}

/// Rejects `--available` CPUs and `--numa-affinity` nodes that the topology does not have.
fn check_against_topology(args: &Args, topology: &CpuTopology) -> anyhow::Result<()> {
    if let Some(available) = &args.available {
        let unknown = available.difference(topology.cpus());
        if !unknown.is_empty() {
            anyhow::bail!(
                "invalid --available {available}: CPU(s) {unknown} not in the topology, which has CPUs {}",
                topology.cpus()
            );
        }
    }
    if let Some(affinity) = &args.numa_affinity {
        let nodes = topology.node_ids();
        let unknown = affinity.difference(&nodes);
        if !unknown.is_empty() {
            anyhow::bail!(
                "invalid --numa-affinity {affinity}: NUMA node(s) {unknown} not in the topology, which has nodes {nodes}"
            );
        }
    }
    Ok(())
}

fn load_topology(args: &Args) -> anyhow::Result<CpuTopology> {
    if let Some(path) = &args.topology {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        let file: TopologyFile = serde_json::from_str(&text)
            .with_context(|| format!("failed to parse {}", path.display()))?;
        return Ok(CpuTopology::from_entries(&file.cpus));
    }
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let topology = Topology::discover_with(
        &HostRoot::at(root),
        &DiscoverOptions::default().without_pci(),
    )?;
    Ok(CpuTopology::from_topology(&topology))
}
