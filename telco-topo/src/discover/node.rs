//! NUMA nodes, their memory, hugepage pools and distances from `sys/devices/system/node`.

use serde::{Deserialize, Serialize};
use telco_core::{CpuSet, FileError, NodeMask, ParseError};

use super::numbered;
use super::sysfs::{Dir, Sysfs, file_path};
use crate::error::DiscoverError;

const NODE_DIR: &str = "/sys/devices/system/node";

/// One hugepage pool of a NUMA node (`nodeN/hugepages/hugepages-<size>kB`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HugepagePool {
    /// Page size in KiB.
    pub size_kib: u64,
    /// Pages in the pool (`nr_hugepages`).
    pub total: u64,
    /// Pages not in use (`free_hugepages`).
    pub free: u64,
    /// Pages beyond `nr_hugepages` allocated on demand (`surplus_hugepages`).
    pub surplus: u64,
}

/// One NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NumaNode {
    /// Node id (`nodeN`); ids may be sparse.
    pub id: usize,
    /// CPUs the kernel lists for the node (`cpulist`), online or not; empty for a memory-only
    /// node.
    pub cpus: CpuSet,
    /// Memory of the node in KiB (`MemTotal` of `nodeN/meminfo`); `None` when not reported.
    pub memory_kib: Option<u64>,
    /// Hugepage pools, by page size.
    pub hugepages: Vec<HugepagePool>,
}

impl NumaNode {
    /// The pool of `size_kib` pages, if the node has one.
    pub fn hugepage_pool(&self, size_kib: u64) -> Option<&HugepagePool> {
        self.hugepages.iter().find(|pool| pool.size_kib == size_kib)
    }
}

pub(super) struct NodeScan {
    pub nodes: Vec<NumaNode>,
    pub distances: Vec<Vec<u32>>,
}

pub(super) fn read_nodes(
    sysfs: &mut Sysfs<'_>,
    online_cpus: &CpuSet,
) -> Result<NodeScan, DiscoverError> {
    let node_dir = sysfs.dir(NODE_DIR)?;
    let mut ids: NodeMask = sysfs
        .list(&node_dir)?
        .iter()
        .filter_map(|name| numbered(name, "node"))
        .filter(|&id| id <= NodeMask::MAX_ID)
        .collect();
    if ids.is_empty() {
        return single_node(sysfs, online_cpus);
    }
    if let Some(online) = sysfs.value::<NodeMask>(&node_dir, "online")? {
        ids = ids.intersection(&online);
    }
    let mut nodes = Vec::with_capacity(ids.len());
    for id in ids.iter() {
        nodes.push(read_node(sysfs, &node_dir, id)?);
    }
    if let Some(kept) = collapse_overlapping(&mut nodes, online_cpus) {
        tracing::warn!(
            kept,
            "NUMA nodes list overlapping CPUs; keeping one node, as hwloc does"
        );
        return Ok(NodeScan {
            nodes,
            distances: Vec::new(),
        });
    }
    let distances = read_distances(sysfs, &node_dir, &ids)?;
    Ok(NodeScan { nodes, distances })
}

/// Keeps only the lowest node, with every online CPU, where two nodes claim the same CPU
/// (wrong firmware NUMA tables), and returns its id.
fn collapse_overlapping(nodes: &mut Vec<NumaNode>, online_cpus: &CpuSet) -> Option<usize> {
    let mut seen = CpuSet::new();
    let overlap = nodes.iter().any(|node| {
        let overlaps = !seen.intersection(&node.cpus).is_empty();
        seen = seen.union(&node.cpus);
        overlaps
    });
    if !overlap {
        return None;
    }
    nodes.truncate(1);
    let first = nodes.first_mut()?;
    first.cpus = online_cpus.clone();
    Some(first.id)
}

/// Builds the fallback for kernels without NUMA support: one node with every CPU.
fn single_node(sysfs: &mut Sysfs<'_>, online_cpus: &CpuSet) -> Result<NodeScan, DiscoverError> {
    let proc_dir = sysfs.dir("/proc")?;
    let memory_kib = read_meminfo_total(sysfs, &proc_dir, "meminfo", "MemTotal:")?;
    let (pool_dir, entries) = sysfs.open_and_list_path("/sys/kernel/mm/hugepages")?;
    let hugepages = read_pools(sysfs, &pool_dir, &entries)?;
    Ok(NodeScan {
        nodes: vec![NumaNode {
            id: 0,
            cpus: online_cpus.clone(),
            memory_kib,
            hugepages,
        }],
        distances: Vec::new(),
    })
}

/// Reads `nodeN` through paths relative to the node directory, which saves opening `nodeN`.
fn read_node(sysfs: &mut Sysfs<'_>, node_dir: &Dir, id: usize) -> Result<NumaNode, DiscoverError> {
    let file = |name: &str| format!("node{id}/{name}");
    let cpus = sysfs
        .cpu_set(node_dir, &[&file("cpumap")], &[&file("cpulist")])?
        .unwrap_or_default();
    let memory_kib = read_meminfo_total(sysfs, node_dir, &file("meminfo"), "MemTotal:")?;
    let (pool_dir, entries) = sysfs.open_and_list(node_dir, &file("hugepages"))?;
    let hugepages = read_pools(sysfs, &pool_dir, &entries)?;
    Ok(NumaNode {
        id,
        cpus,
        memory_kib,
        hugepages,
    })
}

/// Reads the `kB` value of the line whose key (after an optional `Node N` prefix) is `key`.
fn read_meminfo_total(
    sysfs: &mut Sysfs<'_>,
    dir: &Dir,
    name: &str,
    key: &str,
) -> Result<Option<u64>, DiscoverError> {
    let host = sysfs.host();
    let Some(text) = sysfs.text(dir, name)? else {
        return Ok(None);
    };
    for line in text.lines() {
        let mut words = line.split_whitespace().peekable();
        if words.peek() == Some(&"Node") {
            words.next();
            words.next();
        }
        if words.next() != Some(key) {
            continue;
        }
        let value = words.next().unwrap_or("");
        return value.parse().map(Some).map_err(|_| {
            FileError::parse(
                file_path(host, dir, name),
                ParseError::new("meminfo line", line, "expected a size in kB"),
            )
            .into()
        });
    }
    Ok(None)
}

/// Page sizes in KiB, ascending, from the entries of a `hugepages` directory.
pub(super) fn page_sizes(entries: &[String]) -> Vec<u64> {
    let mut sizes: Vec<u64> = entries
        .iter()
        .filter_map(|name| pool_size_kib(name))
        .collect();
    sizes.sort_unstable();
    sizes
}

fn pool_size_kib(name: &str) -> Option<u64> {
    name.strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()
}

/// Reads the pools of the `hugepages` directory `dir`, whose entries are `entries`.
fn read_pools(
    sysfs: &mut Sysfs<'_>,
    dir: &Dir,
    entries: &[String],
) -> Result<Vec<HugepagePool>, DiscoverError> {
    let mut pools = Vec::new();
    for size_kib in page_sizes(entries) {
        let mut count = |name: &str| -> Result<u64, DiscoverError> {
            let file = format!("hugepages-{size_kib}kB/{name}");
            Ok(sysfs
                .int(dir, &file)?
                .and_then(|count| u64::try_from(count).ok())
                .unwrap_or(0))
        };
        pools.push(HugepagePool {
            size_kib,
            total: count("nr_hugepages")?,
            free: count("free_hugepages")?,
            surplus: count("surplus_hugepages")?,
        });
    }
    Ok(pools)
}

/// Reads the `distance` row of each node of `ids`. The kernel prints one value per online node
/// in id order. A row of another length (nodes filtered out, a broken firmware table) leaves
/// the whole matrix empty, with a warning.
fn read_distances(
    sysfs: &mut Sysfs<'_>,
    node_dir: &Dir,
    ids: &NodeMask,
) -> Result<Vec<Vec<u32>>, DiscoverError> {
    let host = sysfs.host();
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids.iter() {
        let name = format!("node{id}/distance");
        let Some(text) = sysfs.text(node_dir, &name)? else {
            return Ok(Vec::new());
        };
        let row: Vec<u32> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| {
                FileError::parse(
                    file_path(host, node_dir, &name),
                    ParseError::new("distance row", text, "expected decimal distances"),
                )
            })?;
        if row.len() != ids.len() {
            tracing::warn!(
                path = %file_path(host, node_dir, &name).display(),
                values = row.len(),
                nodes = ids.len(),
                "NUMA distance row does not match the online nodes; distances left out"
            );
            return Ok(Vec::new());
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_give_sizes() {
        assert_eq!(pool_size_kib("hugepages-2048kB"), Some(2048));
        assert_eq!(pool_size_kib("hugepages-1048576kB"), Some(1_048_576));
        assert_eq!(pool_size_kib("something"), None);
    }
}
