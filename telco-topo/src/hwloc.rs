//! The same [`Topology`] built through libhwloc (`hwloc2` crate, Debian's `libhwloc-dev`), as a
//! cross-check of the sysfs reader. Only with the `hwloc` feature.
//!
//! libhwloc reads the live host, or the tree that the environment variable `HWLOC_FSROOT`
//! names (how hwloc's own fixture tests run).
//!
//! # Limitations
//!
//! The `hwloc2` bindings do not expose NUMA node memory, distances, hugepage pools, I/O
//! objects or the cache type of data caches, so those fields stay empty: `memory_kib` is
//! `None`, `distances` and `pci_devices` are empty, and caches of level 1 are reported as
//! data caches, higher levels as unified. NUMA node CPU sets come from each PU's node set.
//! Instruction caches are filtered out by libhwloc's defaults.

use std::collections::BTreeMap;

use hwloc2::{ObjectType, TopologyObject};
use telco_core::{CpuSet, NodeMask};

use crate::discover::{Cache, CacheKind, Core, Cpu, CpuGroup, NumaNode, Topology};
use crate::error::DiscoverError;

fn cpus_of(object: &TopologyObject) -> CpuSet {
    object
        .cpuset()
        .map(|set| set.into_iter().map(|cpu| cpu as usize).collect())
        .unwrap_or_default()
}

fn objects(topology: &hwloc2::Topology, kind: ObjectType) -> Vec<&TopologyObject> {
    topology.objects_with_type(&kind).unwrap_or_default()
}

/// Builds the topology through libhwloc.
pub fn discover_with_hwloc() -> Result<Topology, DiscoverError> {
    let topology = hwloc2::Topology::new().ok_or_else(|| DiscoverError::Hwloc {
        reason: "hwloc_topology_init or hwloc_topology_load failed".to_owned(),
    })?;
    let pus = objects(&topology, ObjectType::PU);
    let online: CpuSet = pus.iter().map(|pu| pu.os_index() as usize).collect();
    let packages: Vec<CpuGroup> = objects(&topology, ObjectType::Package)
        .into_iter()
        .map(|package| CpuGroup {
            id: package.os_index() as usize,
            package: package.os_index() as usize,
            cpus: cpus_of(package),
        })
        .collect();
    let package_of = |cpus: &CpuSet| {
        packages
            .iter()
            .find(|package| cpus.is_subset(&package.cpus))
            .map_or(0, |package| package.id)
    };
    let cores: Vec<Core> = objects(&topology, ObjectType::Core)
        .into_iter()
        .map(|core| {
            let cpus = cpus_of(core);
            Core {
                id: core.os_index() as usize,
                package: package_of(&cpus),
                cpus,
            }
        })
        .collect();
    let mut caches = Vec::new();
    for (kind, level) in [
        (ObjectType::L1Cache, 1u8),
        (ObjectType::L2Cache, 2),
        (ObjectType::L3Cache, 3),
        (ObjectType::L4Cache, 4),
        (ObjectType::L5Cache, 5),
    ] {
        for cache in objects(&topology, kind) {
            let attributes = cache.cache_attributes();
            caches.push(Cache {
                level,
                kind: if level == 1 {
                    CacheKind::Data
                } else {
                    CacheKind::Unified
                },
                size_kib: attributes.map(|a| a.size() / 1024),
                line_size: attributes.map(|a| a.linesize),
                ways: attributes.and_then(|a| u32::try_from(a.associativity).ok()),
                id: None,
                cpus: cpus_of(cache),
            });
        }
    }
    let mut node_cpus: BTreeMap<usize, CpuSet> = BTreeMap::new();
    let all_nodes: NodeMask = topology
        .object_at_root()
        .nodeset()
        .map(|set| set.into_iter().map(|node| node as usize).collect())
        .unwrap_or_default();
    for node in all_nodes.iter() {
        node_cpus.insert(node, CpuSet::new());
    }
    for pu in &pus {
        for node in pu.nodeset().into_iter().flatten() {
            node_cpus
                .entry(node as usize)
                .or_default()
                .insert(pu.os_index() as usize);
        }
    }
    let numa_nodes: Vec<NumaNode> = node_cpus
        .into_iter()
        .map(|(id, cpus)| NumaNode {
            id,
            cpus,
            memory_kib: None,
            hugepages: Vec::new(),
        })
        .collect();
    let cpus: Vec<Cpu> = online
        .iter()
        .map(|id| {
            let core_index = cores.iter().position(|core| core.cpus.contains(id));
            Cpu {
                id,
                online: true,
                package: packages.iter().find(|p| p.cpus.contains(id)).map(|p| p.id),
                die: None,
                cluster: None,
                core: core_index.map(|index| cores[index].id),
                core_index,
                numa_node: numa_nodes
                    .iter()
                    .find(|n| n.cpus.contains(id))
                    .map(|n| n.id),
                llc: None,
            }
        })
        .collect();
    Ok(Topology {
        possible: online.clone(),
        present: online.clone(),
        online,
        cpus,
        packages,
        dies: Vec::new(),
        clusters: Vec::new(),
        cores,
        numa_nodes,
        distances: Vec::new(),
        caches,
        pci_devices: Vec::new(),
        isolated: CpuSet::new(),
        nohz_full: CpuSet::new(),
        hugepage_sizes_kib: Vec::new(),
        cgroup: None,
    })
}
