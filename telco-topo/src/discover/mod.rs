//! Topology discovery from sysfs and procfs, through [`HostRoot`].
//!
//! [`Topology::discover`] reads what hwloc's Linux backend reads (see the table in the crate
//! docs): `sys/devices/system/cpu` for CPUs, cores, dies, clusters, packages and caches,
//! `sys/devices/system/node` for NUMA nodes, their memory, hugepage pools and distances,
//! `sys/bus/pci/devices` for PCI devices, and on request the calling process's cpuset cgroup.
//! Objects are grouped the way hwloc groups them: a core is a distinct set of sibling threads
//! (`thread_siblings_list` or `core_cpus_list`) among online CPUs, a package a distinct
//! `core_siblings_list` or `package_cpus_list`, a cache instance a distinct
//! `shared_cpu_list`.
//!
//! # Fallbacks
//!
//! Missing files are common (old kernels, offline CPUs, architectures without caches in sysfs),
//! and each has a documented fallback rather than an error:
//!
//! - no `cpu/online`: each `cpuN/online` file decides, and a CPU without one is online;
//! - no sibling lists: CPUs are grouped by `(physical_package_id, die_id, core_id)`; without
//!   `core_id` each CPU is its own core; without `physical_package_id` (or with `-1`) every CPU
//!   belongs to package 0;
//! - no `sys/devices/system/node`: one node 0 with every CPU and the memory of `/proc/meminfo`;
//! - NUMA nodes whose CPU lists overlap (buggy firmware tables): only the lowest node is kept,
//!   with every online CPU, as hwloc does;
//! - an empty `cpuN/online` file: the CPU is online;
//! - `0x` prefixes in masks are accepted;
//! - a `distance` row whose length does not match the online nodes: the matrix is left empty;
//! - no `isolated` or `nohz_full`: the empty set;
//! - a cache without `shared_cpu_list` or `shared_cpu_map`: private to its CPU.
//!
//! A file that exists but holds text that is not what the kernel documents is an error that
//! names the file ([`DiscoverError::File`]).
//!
//! # Limitations
//!
//! Memory-side caches, DAX and CXL memory devices, HMAT initiators and CPU kinds (hybrid
//! cores' capacities) are not read. Only the cgroup cpuset (not the memory limit) is read.

mod cache;
mod cgroup;
mod cpu;
mod node;
mod pci;
mod sysfs;

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use telco_core::{CpuSet, FileError, HostRoot, NodeMask, ParseError};

use crate::error::DiscoverError;

pub use cache::{Cache, CacheKind};
pub use cgroup::{CgroupCpuset, CgroupVersion};
pub use node::{HugepagePool, NumaNode};
pub use pci::PciDevice;

/// One logical CPU (a hardware thread, hwloc's PU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cpu {
    /// Kernel CPU id (`cpuN`).
    pub id: usize,
    /// True when the CPU is online.
    pub online: bool,
    /// Kernel package id (`physical_package_id`); `None` for offline CPUs.
    pub package: Option<usize>,
    /// Kernel die id within the package (`die_id`), where reported.
    pub die: Option<usize>,
    /// Kernel cluster id (`cluster_id`, ARM), where reported.
    pub cluster: Option<usize>,
    /// Kernel core id (`core_id`), unique within its package and die.
    pub core: Option<usize>,
    /// Index of the core in [`Topology::cores`], unique on the machine.
    pub core_index: Option<usize>,
    /// NUMA node whose `cpulist` contains the CPU.
    pub numa_node: Option<usize>,
    /// Index in [`Topology::caches`] of the last-level cache instance the CPU uses.
    pub llc: Option<usize>,
}

/// A group of CPUs sharing a kernel id: a package, a die or a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CpuGroup {
    /// Kernel id (`physical_package_id`, `die_id` or `cluster_id`).
    pub id: usize,
    /// Package the group belongs to (equal to `id` for packages).
    pub package: usize,
    /// Online CPUs of the group.
    pub cpus: CpuSet,
}

/// A physical core: the online hardware threads that share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Core {
    /// Kernel core id (`core_id`).
    pub id: usize,
    /// Kernel package id.
    pub package: usize,
    /// Online hardware threads of the core.
    pub cpus: CpuSet,
}

/// Choice of what to read besides the hardware.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoverOptions {
    /// Read the cpuset cgroup of the calling process (`/proc/self/cgroup`) into
    /// [`Topology::cgroup`].
    pub cgroup: bool,
    /// Skip `sys/bus/pci/devices`.
    pub skip_pci: bool,
}

impl DiscoverOptions {
    /// Also reads the calling process's cpuset cgroup.
    pub fn with_cgroup(mut self) -> Self {
        self.cgroup = true;
        self
    }

    /// Leaves PCI devices out, which saves time on machines with many devices.
    pub fn without_pci(mut self) -> Self {
        self.skip_pci = true;
        self
    }
}

/// The machine's topology, as read from sysfs and procfs.
///
/// All lists are sorted by kernel id (CPUs, nodes, PCI addresses) or by first CPU (cores,
/// packages, caches). Serialises with serde.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Topology {
    /// CPUs the kernel could ever bring up (`cpu/possible`).
    pub possible: CpuSet,
    /// CPUs present (`cpu/present`).
    pub present: CpuSet,
    /// CPUs online.
    pub online: CpuSet,
    /// Every CPU with a `cpuN` directory or in `present`, online or not.
    pub cpus: Vec<Cpu>,
    /// Packages (sockets) with at least one online CPU.
    pub packages: Vec<CpuGroup>,
    /// Dies, where the kernel reports `die_id`.
    pub dies: Vec<CpuGroup>,
    /// Clusters, where the kernel reports `cluster_id`.
    pub clusters: Vec<CpuGroup>,
    /// Cores with at least one online CPU.
    pub cores: Vec<Core>,
    /// Online NUMA nodes, by id.
    pub numa_nodes: Vec<NumaNode>,
    /// NUMA distances (SLIT values) in the order of `numa_nodes`; empty when not reported.
    pub distances: Vec<Vec<u32>>,
    /// Cache instances, one per distinct set of sharing CPUs.
    pub caches: Vec<Cache>,
    /// PCI devices, by address.
    pub pci_devices: Vec<PciDevice>,
    /// CPUs isolated from the scheduler (`cpu/isolated`, from `isolcpus=`).
    pub isolated: CpuSet,
    /// CPUs in adaptive-tick mode (`cpu/nohz_full`).
    pub nohz_full: CpuSet,
    /// Hugepage sizes the kernel supports, in KiB (`sys/kernel/mm/hugepages`).
    pub hugepage_sizes_kib: Vec<u64>,
    /// The calling process's cpuset cgroup, when asked for and found.
    pub cgroup: Option<CgroupCpuset>,
}

impl Topology {
    /// Discovers the topology of `host` with default options (no cgroup, with PCI).
    ///
    /// ```no_run
    /// use telco_core::HostRoot;
    /// use telco_topo::Topology;
    ///
    /// let topology = Topology::discover(&HostRoot::system())?;
    /// println!("{} packages, {} cores, {} CPUs online",
    ///     topology.packages.len(), topology.cores.len(), topology.online.len());
    /// # Ok::<(), telco_topo::DiscoverError>(())
    /// ```
    pub fn discover(host: &HostRoot) -> Result<Topology, DiscoverError> {
        Topology::discover_with(host, &DiscoverOptions::default())
    }

    /// Discovers the topology of `host`, with the extra reads that `options` requests.
    pub fn discover_with(
        host: &HostRoot,
        options: &DiscoverOptions,
    ) -> Result<Topology, DiscoverError> {
        let mut sysfs = sysfs::Sysfs::open(host)?;
        if !sysfs.root_exists() {
            if host.root().exists() {
                let not_directory = std::io::Error::from_raw_os_error(libc::ENOTDIR);
                return Err(FileError::read(host.root(), not_directory).into());
            }
            return Err(DiscoverError::RootNotFound {
                path: host.root().to_owned(),
            });
        }
        if !sysfs.dir("/sys")?.exists() {
            return Err(DiscoverError::NoSysfs {
                path: host.root().to_owned(),
            });
        }
        let cpu_dir = sysfs.dir(cpu::CPU_DIR)?;
        let cpus = cpu::read_cpus(&mut sysfs, &cpu_dir)?;
        let caches = cache::read_caches(&mut sysfs, &cpu_dir, &cpus)?;
        let nodes = node::read_nodes(&mut sysfs, &cpus.online)?;
        let pci_devices = if options.skip_pci {
            Vec::new()
        } else {
            pci::read_pci_devices(&mut sysfs)?
        };
        let cgroup = if options.cgroup {
            cgroup::read_cgroup_cpuset(host)?
        } else {
            None
        };
        let isolated = read_cpu_list_or_empty(&mut sysfs, &cpu_dir, "isolated")?;
        let nohz_full = read_cpu_list_or_empty(&mut sysfs, &cpu_dir, "nohz_full")?;
        let (_, hugepage_entries) = sysfs.open_and_list_path("/sys/kernel/mm/hugepages")?;
        let hugepage_sizes_kib = node::page_sizes(&hugepage_entries);
        let mut topology = Topology {
            possible: cpus.possible,
            present: cpus.present,
            online: cpus.online,
            cpus: cpus.list,
            packages: cpus.packages,
            dies: cpus.dies,
            clusters: cpus.clusters,
            cores: cpus.cores,
            numa_nodes: nodes.nodes,
            distances: nodes.distances,
            caches,
            pci_devices,
            isolated,
            nohz_full,
            hugepage_sizes_kib,
            cgroup,
        };
        topology.link_cpus();
        tracing::debug!(
            root = %host.root().display(),
            packages = topology.packages.len(),
            cores = topology.cores.len(),
            cpus = topology.online.len(),
            nodes = topology.numa_nodes.len(),
            "discovered topology"
        );
        Ok(topology)
    }

    /// Fills each CPU's NUMA node and last-level cache from the node and cache lists. A CPU
    /// listed by several nodes or caches gets the first one in list order.
    fn link_cpus(&mut self) {
        let last_level = self
            .caches
            .iter()
            .filter(|cache| cache.kind != CacheKind::Instruction)
            .map(|cache| cache.level)
            .max();
        let cpu_ids: Vec<usize> = self.cpus.iter().map(|cpu| cpu.id).collect();
        let position = |id: usize| cpu_ids.binary_search(&id).ok();
        for node in &self.numa_nodes {
            for id in node.cpus.iter() {
                if let Some(index) = position(id) {
                    self.cpus[index].numa_node.get_or_insert(node.id);
                }
            }
        }
        let Some(level) = last_level else {
            return;
        };
        for (cache_index, cache) in self.caches.iter().enumerate() {
            if cache.level != level || cache.kind == CacheKind::Instruction {
                continue;
            }
            for id in cache.cpus.iter() {
                if let Some(index) = position(id) {
                    self.cpus[index].llc.get_or_insert(cache_index);
                }
            }
        }
    }

    /// The CPU with kernel id `id`.
    pub fn cpu(&self, id: usize) -> Option<&Cpu> {
        self.cpus
            .binary_search_by_key(&id, |cpu| cpu.id)
            .ok()
            .map(|index| &self.cpus[index])
    }

    /// The NUMA node with id `id`.
    pub fn numa_node(&self, id: usize) -> Option<&NumaNode> {
        self.numa_nodes.iter().find(|node| node.id == id)
    }

    /// Ids of the NUMA nodes, ascending.
    pub fn node_ids(&self) -> NodeMask {
        self.numa_nodes.iter().map(|node| node.id).collect()
    }

    /// Distance from node `from` to node `to`, where the matrix is reported.
    pub fn distance(&self, from: usize, to: usize) -> Option<u32> {
        let row = self.numa_nodes.iter().position(|node| node.id == from)?;
        let column = self.numa_nodes.iter().position(|node| node.id == to)?;
        self.distances.get(row)?.get(column).copied()
    }

    /// Online CPUs of the nodes in `nodes`.
    pub fn cpus_of_nodes(&self, nodes: &NodeMask) -> CpuSet {
        self.numa_nodes
            .iter()
            .filter(|node| nodes.contains(node.id))
            .fold(CpuSet::new(), |all, node| {
                all.union(&node.cpus.intersection(&self.online))
            })
    }

    /// Most hardware threads on one core (1 without SMT).
    pub fn threads_per_core(&self) -> usize {
        self.cores
            .iter()
            .map(|core| core.cpus.len())
            .max()
            .unwrap_or(1)
    }

    /// Cache instances of `level` (data and unified caches, or only instruction caches when
    /// `instruction` is true).
    pub fn caches_at(&self, level: u8, instruction: bool) -> impl Iterator<Item = &Cache> {
        self.caches.iter().filter(move |cache| {
            cache.level == level && (cache.kind == CacheKind::Instruction) == instruction
        })
    }
}

/// Reads an optional CPU list file in `dir`; a missing file, or the kernel's `(null)`, is the
/// empty set.
fn read_cpu_list_or_empty(
    sysfs: &mut sysfs::Sysfs<'_>,
    dir: &sysfs::Dir,
    name: &str,
) -> Result<CpuSet, DiscoverError> {
    let host = sysfs.host();
    let Some(text) = sysfs.text(dir, name)? else {
        return Ok(CpuSet::new());
    };
    match text.trim() {
        "(null)" => Ok(CpuSet::new()),
        list => list
            .parse()
            .map_err(|error| FileError::parse(sysfs::file_path(host, dir, name), error).into()),
    }
}

/// Reads a text file, `None` when it does not exist. Trailing newlines, blanks and NUL bytes
/// (which some sysfs dumps carry) are removed.
pub(crate) fn read_text(host: &HostRoot, path: &str) -> Result<Option<String>, FileError> {
    let full_path = host.path(path);
    let text = match std::fs::read_to_string(&full_path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FileError::read(full_path, source)),
    };
    Ok(Some(
        text.trim_end_matches(['\n', '\0', ' ', '\t']).to_owned(),
    ))
}

/// Parses `text`, read from the file `path`. Bad text is an error that names the file.
pub(crate) fn parse_text<T>(host: &HostRoot, path: &str, text: &str) -> Result<T, FileError>
where
    T: FromStr<Err = ParseError>,
{
    text.trim()
        .parse()
        .map_err(|error| FileError::parse(host.path(path), error))
}

/// Reads a file holding one decimal integer, `None` when it does not exist.
pub(crate) fn read_int(host: &HostRoot, path: &str) -> Result<Option<i64>, FileError> {
    match read_text(host, path)? {
        None => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|_| {
            FileError::parse(
                host.path(path),
                ParseError::new("integer", &text, "not a decimal integer"),
            )
        }),
    }
}

/// Returns the numeric suffix of `name` after `prefix` (`cpu12` gives 12).
pub(crate) fn numbered(name: &str, prefix: &str) -> Option<usize> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
