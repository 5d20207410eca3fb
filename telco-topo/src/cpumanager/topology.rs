//! [`CpuTopology`]: the kubelet's view of the CPUs (core, socket, NUMA node, uncore cache).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use telco_core::{CpuSet, NodeMask};

use crate::discover::Topology;

/// Place of one CPU for the CPU manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuPlace {
    /// Core id, unique on the machine.
    pub core: usize,
    /// Socket (package) id.
    pub socket: usize,
    /// NUMA node id.
    pub numa_node: usize,
    /// Uncore (last-level) cache id.
    pub uncore: usize,
}

/// One entry of the `cpu-alloc --topology` file, the shape of `topo --json`'s `cpus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuEntry {
    /// CPU id.
    pub id: usize,
    /// Core id, unique within its package.
    pub core: usize,
    /// Package id.
    pub package: usize,
    /// NUMA node; `None` counts as node 0.
    pub numa_node: Option<usize>,
    /// Last-level cache id; `None` means one per package.
    #[serde(default)]
    pub l3: Option<usize>,
}

/// The CPUs of a machine with their core, socket, NUMA node and uncore cache, and the lookups
/// the allocator needs (the kubelet's `CPUTopology` and `CPUDetails`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTopology {
    places: BTreeMap<usize, CpuPlace>,
    all: CpuSet,
    by_core: BTreeMap<usize, CpuSet>,
    by_socket: BTreeMap<usize, CpuSet>,
    by_node: BTreeMap<usize, CpuSet>,
    by_uncore: BTreeMap<usize, CpuSet>,
}

impl CpuTopology {
    /// Builds the topology from `(cpu, place)` pairs.
    pub fn from_places(places: impl IntoIterator<Item = (usize, CpuPlace)>) -> CpuTopology {
        let places: BTreeMap<usize, CpuPlace> = places.into_iter().collect();
        let mut topology = CpuTopology {
            all: places.keys().copied().collect(),
            places,
            by_core: BTreeMap::new(),
            by_socket: BTreeMap::new(),
            by_node: BTreeMap::new(),
            by_uncore: BTreeMap::new(),
        };
        for (&cpu, place) in &topology.places {
            topology.by_core.entry(place.core).or_default().insert(cpu);
            topology
                .by_socket
                .entry(place.socket)
                .or_default()
                .insert(cpu);
            topology
                .by_node
                .entry(place.numa_node)
                .or_default()
                .insert(cpu);
            topology
                .by_uncore
                .entry(place.uncore)
                .or_default()
                .insert(cpu);
        }
        topology
    }

    /// Builds the topology from `cpu-alloc` file entries. Core ids are made unique on the
    /// machine by numbering them per package when packages reuse them.
    pub fn from_entries(entries: &[CpuEntry]) -> CpuTopology {
        let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
        let shared_ids = entries
            .iter()
            .any(|entry| *owner.entry(entry.core).or_insert(entry.package) != entry.package);
        let stride = entries.iter().map(|entry| entry.core).max().unwrap_or(0) + 1;
        CpuTopology::from_places(entries.iter().map(|entry| {
            let core = if shared_ids {
                entry.package * stride + entry.core
            } else {
                entry.core
            };
            let place = CpuPlace {
                core,
                socket: entry.package,
                numa_node: entry.numa_node.unwrap_or(0),
                uncore: entry.l3.unwrap_or(entry.package),
            };
            (entry.id, place)
        }))
    }

    /// Builds the topology of the online CPUs of a discovered machine. A CPU without a core
    /// is its own core, without a package or node it counts as package or node 0, and
    /// without a last-level cache its package stands for one.
    pub fn from_topology(topology: &Topology) -> CpuTopology {
        let entries: Vec<CpuEntry> = topology
            .cpus
            .iter()
            .filter(|cpu| cpu.online)
            .map(|cpu| CpuEntry {
                id: cpu.id,
                core: cpu.core_index.unwrap_or(usize::MAX / 2 + cpu.id),
                package: cpu.package.unwrap_or(0),
                numa_node: cpu.numa_node,
                l3: cpu.llc,
            })
            .collect();
        // Core indexes are unique on the machine already.
        CpuTopology::from_places(entries.iter().map(|entry| {
            let place = CpuPlace {
                core: entry.core,
                socket: entry.package,
                numa_node: entry.numa_node.unwrap_or(0),
                uncore: entry.l3.unwrap_or(entry.package),
            };
            (entry.id, place)
        }))
    }

    /// Every CPU.
    pub fn cpus(&self) -> &CpuSet {
        &self.all
    }

    /// Place of `cpu`.
    pub fn place(&self, cpu: usize) -> Option<&CpuPlace> {
        self.places.get(&cpu)
    }

    /// Number of CPUs.
    pub fn num_cpus(&self) -> usize {
        self.places.len()
    }

    /// Number of cores.
    pub fn num_cores(&self) -> usize {
        self.by_core.len()
    }

    /// Number of sockets.
    pub fn num_sockets(&self) -> usize {
        self.by_socket.len()
    }

    /// Number of NUMA nodes.
    pub fn num_nodes(&self) -> usize {
        self.by_node.len()
    }

    /// CPUs per core, as the kubelet computes it (CPUs divided by cores).
    pub fn cpus_per_core(&self) -> usize {
        self.num_cpus() / self.num_cores().max(1)
    }

    /// CPUs per uncore cache (CPUs divided by uncore caches).
    pub fn cpus_per_uncore(&self) -> usize {
        self.num_cpus() / self.by_uncore.len().max(1)
    }

    /// NUMA node ids.
    pub fn node_ids(&self) -> NodeMask {
        self.by_node.keys().copied().collect()
    }

    /// CPUs of `core`.
    pub fn cpus_in_core(&self, core: usize) -> CpuSet {
        self.by_core.get(&core).cloned().unwrap_or_default()
    }

    /// CPUs of `socket`.
    pub fn cpus_in_socket(&self, socket: usize) -> CpuSet {
        self.by_socket.get(&socket).cloned().unwrap_or_default()
    }

    /// CPUs of `node`.
    pub fn cpus_in_node(&self, node: usize) -> CpuSet {
        self.by_node.get(&node).cloned().unwrap_or_default()
    }

    /// CPUs of the nodes of `nodes`.
    pub fn cpus_in_nodes(&self, nodes: &NodeMask) -> CpuSet {
        nodes.iter().fold(CpuSet::new(), |all, node| {
            all.union(&self.cpus_in_node(node))
        })
    }

    /// CPUs of `uncore`.
    pub fn cpus_in_uncore(&self, uncore: usize) -> CpuSet {
        self.by_uncore.get(&uncore).cloned().unwrap_or_default()
    }

    /// Sockets holding CPUs of the nodes of `nodes`.
    pub fn sockets_of_nodes(&self, nodes: &NodeMask) -> BTreeSet<usize> {
        self.cpus_in_nodes(nodes)
            .iter()
            .filter_map(|cpu| self.places.get(&cpu).map(|place| place.socket))
            .collect()
    }

    /// Returns the CPUs of every core that contains a CPU of `cpus`.
    pub fn cores_of(&self, cpus: &CpuSet) -> CpuSet {
        let cores: BTreeSet<usize> = cpus
            .iter()
            .filter_map(|cpu| self.places.get(&cpu).map(|place| place.core))
            .collect();
        cores.into_iter().fold(CpuSet::new(), |all, core| {
            all.union(&self.cpus_in_core(core))
        })
    }

    /// Ids of one kind (core, socket, node or uncore) that hold a CPU of `cpus`.
    pub(crate) fn ids_in(
        &self,
        cpus: &CpuSet,
        kind: impl Fn(&CpuPlace) -> usize,
    ) -> BTreeSet<usize> {
        cpus.iter()
            .filter_map(|cpu| self.places.get(&cpu).map(&kind))
            .collect()
    }
}
