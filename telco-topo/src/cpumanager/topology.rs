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

/// One level of the CPU hierarchy, the kind of id that [`CpuPlace`] gives per CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Core = 0,
    Socket = 1,
    Node = 2,
    Uncore = 3,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Core, Kind::Socket, Kind::Node, Kind::Uncore];

    fn id_of(self, place: &CpuPlace) -> usize {
        match self {
            Kind::Core => place.core,
            Kind::Socket => place.socket,
            Kind::Node => place.numa_node,
            Kind::Uncore => place.uncore,
        }
    }
}

/// The groups of one [`Kind`]: their ids in ascending order and the CPUs of each, at the same
/// position. The allocator works with positions, which sort like the ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Level {
    pub(crate) ids: Vec<usize>,
    pub(crate) cpus: Vec<CpuSet>,
}

impl Level {
    fn cpus_of(&self, id: usize) -> Option<&CpuSet> {
        let position = self.ids.binary_search(&id).ok()?;
        Some(&self.cpus[position])
    }
}

/// The CPUs of a machine with their core, socket, NUMA node and uncore cache, and the lookups
/// the allocator needs (the kubelet's `CPUTopology` and `CPUDetails`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTopology {
    places: BTreeMap<usize, CpuPlace>,
    all: CpuSet,
    /// Cores, sockets, nodes and uncore caches, in the order of [`Kind`].
    levels: [Level; 4],
    /// Position of each CPU's group in each level, indexed by CPU id, so that the allocator
    /// finds a CPU's groups without a map lookup.
    positions: Vec<Option<[usize; 4]>>,
}

impl CpuTopology {
    /// Builds the topology from `(cpu, place)` pairs.
    pub fn from_places(places: impl IntoIterator<Item = (usize, CpuPlace)>) -> CpuTopology {
        let places: BTreeMap<usize, CpuPlace> = places.into_iter().collect();
        let levels = Kind::ALL.map(|kind| {
            let mut groups: BTreeMap<usize, CpuSet> = BTreeMap::new();
            for (&cpu, place) in &places {
                groups.entry(kind.id_of(place)).or_default().insert(cpu);
            }
            let (ids, cpus) = groups.into_iter().unzip();
            Level { ids, cpus }
        });
        let size = places.keys().next_back().map_or(0, |last| last + 1);
        let mut positions = vec![None; size];
        for (&cpu, place) in &places {
            positions[cpu] = Some(Kind::ALL.map(|kind| {
                let ids = &levels[kind as usize].ids;
                ids.binary_search(&kind.id_of(place)).unwrap_or(0)
            }));
        }
        CpuTopology {
            all: places.keys().copied().collect(),
            places,
            levels,
            positions,
        }
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
        self.level(Kind::Core).ids.len()
    }

    /// Number of sockets.
    pub fn num_sockets(&self) -> usize {
        self.level(Kind::Socket).ids.len()
    }

    /// Number of NUMA nodes.
    pub fn num_nodes(&self) -> usize {
        self.level(Kind::Node).ids.len()
    }

    /// CPUs per core, as the kubelet computes it (CPUs divided by cores).
    pub fn cpus_per_core(&self) -> usize {
        self.num_cpus() / self.num_cores().max(1)
    }

    /// CPUs per uncore cache (CPUs divided by uncore caches).
    pub fn cpus_per_uncore(&self) -> usize {
        self.num_cpus() / self.level(Kind::Uncore).ids.len().max(1)
    }

    /// NUMA node ids.
    pub fn node_ids(&self) -> NodeMask {
        self.level(Kind::Node).ids.iter().copied().collect()
    }

    /// CPUs of `core`.
    pub fn cpus_in_core(&self, core: usize) -> CpuSet {
        self.cpus_of(Kind::Core, core)
    }

    /// CPUs of `socket`.
    pub fn cpus_in_socket(&self, socket: usize) -> CpuSet {
        self.cpus_of(Kind::Socket, socket)
    }

    /// CPUs of `node`.
    pub fn cpus_in_node(&self, node: usize) -> CpuSet {
        self.cpus_of(Kind::Node, node)
    }

    /// CPUs of the nodes of `nodes`.
    pub fn cpus_in_nodes(&self, nodes: &NodeMask) -> CpuSet {
        nodes.iter().fold(CpuSet::new(), |all, node| {
            all.union(&self.cpus_in_node(node))
        })
    }

    /// CPUs of `uncore`.
    pub fn cpus_in_uncore(&self, uncore: usize) -> CpuSet {
        self.cpus_of(Kind::Uncore, uncore)
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

    /// Returns the ids of one kind that contain a CPU of `cpus`, ascending.
    pub(crate) fn ids_in(&self, cpus: &CpuSet, kind: Kind) -> Vec<usize> {
        let level = self.level(kind);
        let mut positions: Vec<usize> = cpus
            .iter()
            .filter_map(|cpu| self.position(cpu, kind))
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions.into_iter().map(|at| level.ids[at]).collect()
    }

    /// Returns the groups of one kind.
    pub(crate) fn level(&self, kind: Kind) -> &Level {
        &self.levels[kind as usize]
    }

    /// Returns the position in [`CpuTopology::level`] of the group of `kind` that contains `cpu`.
    pub(crate) fn position(&self, cpu: usize, kind: Kind) -> Option<usize> {
        let positions = self.positions.get(cpu).copied().flatten()?;
        Some(positions[kind as usize])
    }

    fn cpus_of(&self, kind: Kind, id: usize) -> CpuSet {
        self.level(kind).cpus_of(id).cloned().unwrap_or_default()
    }
}

/// Number of CPUs in both sets, counted without building the intersection.
pub(crate) fn count_common(a: &CpuSet, b: &CpuSet) -> usize {
    a.as_words()
        .iter()
        .zip(b.as_words())
        .map(|(x, y)| (x & y).count_ones() as usize)
        .sum()
}
