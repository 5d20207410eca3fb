//! Benchmark: topology discovery against hwloc's `lstopo-no-graphics --of xml` on the same
//! sysfs (the live machine and hwloc's largest fixture trees), one CPU allocation on the
//! kubelet's 288-CPU four-way-SMT topology, and one topology-manager admission on 64 NUMA
//! nodes.
//!
//! Run: `cargo run --release -p telco-examples --bin bench-topo`. Prints one JSON object per
//! line, the format `cargo xtask bench` reads. Needs `tar` and Debian's `hwloc`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use telco_core::{HostRoot, ResourceRequest};
use telco_topo::cpumanager::fixtures;
use telco_topo::topomanager::TopologyManagerOptions;
use telco_topo::{
    CpuManager, DiscoverOptions, HugepageProvider, Policy, Reserved, Scope, StaticPolicyOptions,
    Topology, TopologyManager,
};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/hwloc-linux"
);
/// The fixtures with the most sysfs entries.
const LARGEST: [&str; 3] = [
    "256ppc-8n8s4t",
    "40intel64-2g2n4c+pcilocality",
    "128arm-2pa2n8cluster4co",
];
const LSTOPO: &str = "lstopo-no-graphics";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn time_runs(
    rounds: usize,
    mut run: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    run()?; // warm-up
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        run()?;
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

/// User plus system CPU time of this process (`RUSAGE_SELF`) or of its waited-for children
/// (`RUSAGE_CHILDREN`).
fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    unsafe { libc::getrusage(who, &mut usage) };
    let micros = |time: libc::timeval| {
        Duration::from_secs(u64::try_from(time.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(time.tv_usec).unwrap_or(0))
    };
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// Mean CPU time per run of `run`, counted for this process or for its children. CPU time
/// rather than wall time, because the build machine is shared and often runs more jobs than it
/// has cores.
fn cpu_time_per_run(
    rounds: u32,
    who: libc::c_int,
    mut run: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    run()?; // warm-up
    let before = cpu_time(who);
    for _ in 0..rounds {
        run()?;
    }
    Ok((cpu_time(who) - before) / rounds)
}

fn lstopo(root: Option<&Path>) -> anyhow::Result<()> {
    let mut command = Command::new(LSTOPO);
    command
        .args(["--of", "xml", "-"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(root) = root {
        command
            .env("HWLOC_FSROOT", root)
            .env("HWLOC_COMPONENTS", "linux,stop");
    }
    let status = command
        .status()
        .with_context(|| format!("failed to run {LSTOPO} (Debian package hwloc)"))?;
    if !status.success() {
        bail!("{LSTOPO} failed: {status}");
    }
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Measures what `topo --json` does after its process starts: discovery with PCI devices and
/// the process's cpuset cgroup, then serialisation of the whole topology, against what lstopo
/// does in its process (start included). Both read the same directory.
fn discovery_row(row: &str, root: Option<&Path>) -> anyhow::Result<()> {
    let host = root.map_or_else(HostRoot::system, HostRoot::at);
    let options = DiscoverOptions::default().with_cgroup();
    let mut output_bytes = 0;
    let ours = cpu_time_per_run(20, libc::RUSAGE_SELF, || {
        let topology = Topology::discover_with(&host, &options)?;
        output_bytes = serde_json::to_string(&topology)?.len();
        Ok(())
    })?;
    assert!(output_bytes > 0);
    let peer = cpu_time_per_run(5, libc::RUSAGE_CHILDREN, || lstopo(root))?;
    println!(
        "{}",
        json!({
            "row": row,
            "unit": "ms of CPU time",
            "ours": millis(ours),
            "peer_name": "lstopo --of xml",
            "peer": millis(peer),
            "better": "lower",
            "goal": "at least 5 times faster than lstopo --of xml",
        })
    );
    Ok(())
}

fn extract(name: &str, into: &Path) -> anyhow::Result<PathBuf> {
    let status = Command::new("tar")
        .arg("xjf")
        .arg(Path::new(FIXTURES).join(format!("{name}.tar.bz2")))
        .arg("-C")
        .arg(into)
        .status()
        .context("failed to run tar")?;
    if !status.success() {
        bail!("tar xjf {name}.tar.bz2 failed");
    }
    let top = std::fs::read_dir(into)?.next().context("empty tarball")??;
    Ok(top.path())
}

fn allocation_row() -> anyhow::Result<()> {
    let manager = CpuManager::new(
        fixtures::quad_socket_four_way_ht(),
        Reserved::Count(4),
        StaticPolicyOptions::default(),
    )?;
    let mut picked = 0;
    let ours = time_runs(200, || {
        picked = manager.pick(40, None)?.len();
        Ok(())
    })?;
    assert_eq!(picked, 40);
    println!(
        "{}",
        json!({
            "row": "CPU allocation of 40 CPUs, 288-CPU four-way-SMT topology",
            "unit": "us",
            "ours": micros(ours),
            "peer_name": "kubelet static policy (not run here)",
            "peer": null,
            "better": "lower",
            "goal": "under 50 us",
        })
    );
    Ok(())
}

fn admission_row() -> anyhow::Result<()> {
    let cpus = CpuManager::new(
        fixtures::numa_grid(64, 4),
        Reserved::Count(2),
        StaticPolicyOptions::default(),
    )?;
    let mut pages = HugepageProvider::default();
    for node in 0..64 {
        pages.set_pool(node, 2048, 64, 64);
    }
    let mut manager = TopologyManager::new(
        Policy::SingleNumaNode,
        Scope::Container,
        "0-63".parse()?,
        None,
        &TopologyManagerOptions::default(),
    )?;
    manager.add_provider(&cpus);
    manager.add_provider(&pages);
    let request = ResourceRequest::new("bench")
        .with("cpu", 4)
        .with("hugepages-2Mi", 32 * 2 * 1024 * 1024);
    let ours = time_runs(200, || Ok(manager.admit(&request).map(drop)?))?;
    println!(
        "{}",
        json!({
            "row": "topology-manager admission, 64 NUMA nodes (cpu + hugepages, single-numa-node)",
            "unit": "us",
            "ours": micros(ours),
            "peer_name": "kubelet (refuses more than 8 NUMA nodes)",
            "peer": null,
            "better": "lower",
            "goal": "under 50 us",
        })
    );
    Ok(())
}

/// A scratch directory on tmpfs (extracting sysfs trees there is fast), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> anyhow::Result<Scratch> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("bench-topo-{}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> anyhow::Result<()> {
    discovery_row("topology discovery, live machine", None)?;
    let scratch = Scratch::create()?;
    for name in LARGEST {
        let dir = scratch.0.join(name);
        std::fs::create_dir(&dir)?;
        let root = extract(name, &dir)?;
        discovery_row(&format!("topology discovery, fixture {name}"), Some(&root))?;
    }
    allocation_row()?;
    admission_row()?;
    Ok(())
}
