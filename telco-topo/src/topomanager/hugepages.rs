//! Topology hints for hugepages per NUMA node (the memory manager's hint generation, for
//! hugepages only).

use std::collections::BTreeMap;

use telco_core::{NodeMask, ResourceHints, ResourceRequest, TopologyHint, TopologyHintProvider};

use crate::discover::Topology;

/// Kubernetes' resource name for hugepages of `size_kib` (`hugepages-2Mi`, `hugepages-1Gi`).
pub fn hugepage_resource_name(size_kib: u64) -> String {
    if size_kib.is_multiple_of(1024 * 1024) {
        format!("hugepages-{}Gi", size_kib / (1024 * 1024))
    } else if size_kib.is_multiple_of(1024) {
        format!("hugepages-{}Mi", size_kib / 1024)
    } else {
        format!("hugepages-{size_kib}Ki")
    }
}

/// Free and total hugepages per node and page size. It gives hints for requests named
/// `hugepages-<size>` with an amount in bytes, as Kubernetes names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HugepageProvider {
    /// (size in KiB) -> node -> (free pages, total pages).
    pools: BTreeMap<u64, BTreeMap<usize, (u64, u64)>>,
}

impl HugepageProvider {
    /// Reads the pools of every node of `topology`.
    pub fn from_topology(topology: &Topology) -> HugepageProvider {
        let mut provider = HugepageProvider::default();
        for node in &topology.numa_nodes {
            for pool in &node.hugepages {
                provider.set_pool(node.id, pool.size_kib, pool.free, pool.total);
            }
        }
        provider
    }

    /// Sets the free and total pages of one node's pool.
    pub fn set_pool(&mut self, node: usize, size_kib: u64, free: u64, total: u64) {
        self.pools
            .entry(size_kib)
            .or_default()
            .insert(node, (free, total));
    }

    /// Hints for `pages` pages of `size_kib`: each node set whose free pages hold them,
    /// preferred when as narrow as the narrowest set whose total pages could.
    pub fn hints(&self, size_kib: u64, pages: u64) -> Vec<TopologyHint> {
        let Some(nodes) = self.pools.get(&size_kib) else {
            return Vec::new();
        };
        let ids: Vec<usize> = nodes.keys().copied().collect();
        let mut min_size = ids.len();
        // Records whether all pages of `mask` could fit the request and returns whether its
        // free pages fit it now, so that only fitting masks are kept (and cloned).
        let mut fits = |mask: &NodeMask| {
            let (free, total) = mask.iter().fold((0, 0), |(free, total), node| {
                let (f, t) = nodes.get(&node).copied().unwrap_or((0, 0));
                (free + f, total + t)
            });
            if total >= pages && mask.len() < min_size {
                min_size = mask.len();
            }
            free >= pages
        };
        let mut fitting = Vec::new();
        if ids.len() <= 16 {
            NodeMask::for_each_combination(&ids, |mask| {
                if fits(mask) {
                    fitting.push(mask.clone());
                }
            });
        } else {
            let singles = ids.iter().map(|&node| NodeMask::from_node(node));
            for mask in singles.chain([ids.iter().copied().collect()]) {
                if fits(&mask) {
                    fitting.push(mask);
                }
            }
        }
        fitting
            .into_iter()
            .map(|mask| {
                let preferred = mask.len() == min_size;
                TopologyHint::new(mask, preferred)
            })
            .collect()
    }
}

impl TopologyHintProvider for HugepageProvider {
    fn provider_name(&self) -> &str {
        "hugepages"
    }

    fn topology_hints(&self, request: &ResourceRequest) -> BTreeMap<String, ResourceHints> {
        let mut hints = BTreeMap::new();
        for &size_kib in self.pools.keys() {
            let name = hugepage_resource_name(size_kib);
            if let Some(&bytes) = request.amounts.get(&name) {
                let pages = bytes.div_ceil(size_kib * 1024);
                hints.insert(name, ResourceHints::Hints(self.hints(size_kib, pages)));
            }
        }
        hints
    }
}
