//! The kubelet's CPU manager with the static policy, as a library.
//!
//! A [`CpuManager`] keeps the shared pool and the exclusive CPUs of each workload. It picks
//! CPUs the way the kubelet does (`takeByTopologyNUMAPacked`, or the NUMA-distributed variant),
//! honours the static policy options of [`StaticPolicyOptions`], and gives topology hints for
//! CPU requests through [`TopologyHintProvider`].
//!
//! # Limitations
//!
//! No checkpoint file, no init-container CPU reuse. With more than 16 NUMA nodes, hints are
//! generated for node sets up to the narrowest size that fits the request (the kubelet would
//! refuse to start), plus the set of all nodes.

pub mod fixtures;
mod options;
mod take;
mod topology;

use std::collections::BTreeMap;

use telco_core::{
    CpuSet, NodeMask, ResourceHints, ResourceRequest, TopologyHint, TopologyHintProvider,
};

pub use options::StaticPolicyOptions;
pub use topology::{CpuEntry, CpuPlace, CpuTopology};

use crate::error::CpuManagerError;
use take::Sorting;
use topology::{Kind, count_common};

/// Choice of the reserved CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// A count, picked the kubelet's way: the allocator's choice over all CPUs, so the
    /// lowest-numbered cores.
    Count(usize),
    /// An explicit list (the kubelet's `--reserved-cpus`).
    List(CpuSet),
}

/// The static CPU manager policy: a shared pool and exclusive CPUs per workload.
#[derive(Debug, Clone)]
pub struct CpuManager {
    topology: CpuTopology,
    options: StaticPolicyOptions,
    reserved: CpuSet,
    reserved_physical: CpuSet,
    shared: CpuSet,
    assignments: BTreeMap<String, CpuSet>,
}

impl CpuManager {
    /// Creates the manager over `topology`, with `reserved` CPUs kept from exclusive use.
    ///
    /// With `strict-cpu-reservation` the reserved CPUs also leave the shared pool.
    pub fn new(
        topology: CpuTopology,
        reserved: Reserved,
        options: StaticPolicyOptions,
    ) -> Result<CpuManager, CpuManagerError> {
        options.validate_for(&topology)?;
        let all = topology.cpus().clone();
        let sorting = options.sorting();
        let reserved = match reserved {
            Reserved::List(list) => {
                if !list.is_subset(&all) {
                    return Err(CpuManagerError::ReservedNotOnline {
                        reserved: list,
                        online: all,
                    });
                }
                list
            }
            Reserved::Count(count) => take::take_packed(&topology, &all, count, sorting, false)?,
        };
        if reserved.is_empty() {
            return Err(CpuManagerError::NoReservedCpus);
        }
        let reserved_physical = topology.cores_of(&reserved);
        let shared = if options.strict_cpu_reservation {
            all.difference(&reserved)
        } else {
            all
        };
        Ok(CpuManager {
            topology,
            options,
            reserved,
            reserved_physical,
            shared,
            assignments: BTreeMap::new(),
        })
    }

    /// Creates a manager with no reserved CPU. The kubelet refuses this (it needs at least one
    /// reserved CPU for system daemons); tools that only compute placements use it.
    pub fn without_reservation(
        topology: CpuTopology,
        options: StaticPolicyOptions,
    ) -> Result<CpuManager, CpuManagerError> {
        options.validate_for(&topology)?;
        let shared = topology.cpus().clone();
        Ok(CpuManager {
            topology,
            options,
            reserved: CpuSet::new(),
            reserved_physical: CpuSet::new(),
            shared,
            assignments: BTreeMap::new(),
        })
    }

    /// The topology the manager allocates from.
    pub fn topology(&self) -> &CpuTopology {
        &self.topology
    }

    /// The reserved CPUs.
    pub fn reserved(&self) -> &CpuSet {
        &self.reserved
    }

    /// The shared pool: CPUs of workloads without exclusive CPUs (the kubelet's default set).
    pub fn shared_pool(&self) -> &CpuSet {
        &self.shared
    }

    /// Replaces the shared pool, as when restoring state or in tests of a given situation.
    pub fn set_shared_pool(&mut self, cpus: CpuSet) {
        self.shared = cpus;
    }

    /// CPUs that exclusive allocations can use: the shared pool without the reserved CPUs.
    pub fn available(&self) -> CpuSet {
        self.shared.difference(&self.reserved)
    }

    /// Exclusive CPUs of `workload`.
    pub fn assigned(&self, workload: &str) -> Option<&CpuSet> {
        self.assignments.get(workload)
    }

    /// Allocates `count` exclusive CPUs to `workload`, from the nodes of `affinity` first when
    /// given (the topology manager's merged hint), and removes them from the shared pool.
    pub fn allocate(
        &mut self,
        workload: &str,
        count: usize,
        affinity: Option<&NodeMask>,
    ) -> Result<CpuSet, CpuManagerError> {
        if let Some(cpus) = self.assignments.get(workload) {
            return Err(CpuManagerError::AlreadyAllocated {
                workload: workload.to_owned(),
                cpus: cpus.clone(),
            });
        }
        let cpus = self.pick(count, affinity)?;
        self.shared = self.shared.difference(&cpus);
        self.assignments.insert(workload.to_owned(), cpus.clone());
        tracing::debug!(workload, cpus = %cpus, "allocated exclusive CPUs");
        Ok(cpus)
    }

    /// Returns the CPUs of `workload` to the shared pool; `None` when it held none.
    pub fn release(&mut self, workload: &str) -> Option<CpuSet> {
        let cpus = self.assignments.remove(workload)?;
        self.shared = self.shared.union(&cpus);
        Some(cpus)
    }

    /// Picks `count` CPUs without recording them (the kubelet's `allocateCPUs`, after the
    /// `full-pcpus-only` checks of `Allocate`).
    pub fn pick(
        &self,
        count: usize,
        affinity: Option<&NodeMask>,
    ) -> Result<CpuSet, CpuManagerError> {
        if self.options.full_pcpus_only {
            let per_core = self.topology.cpus_per_core();
            if !count.is_multiple_of(per_core.max(1)) {
                return Err(CpuManagerError::SmtAlignment {
                    requested: count,
                    cpus_per_core: per_core,
                    available_physical_cpus: None,
                    caused_by_physical_cpus: false,
                });
            }
            let physical = self.shared.difference(&self.reserved_physical).len();
            if count > physical {
                return Err(CpuManagerError::SmtAlignment {
                    requested: count,
                    cpus_per_core: per_core,
                    available_physical_cpus: Some(physical),
                    caused_by_physical_cpus: true,
                });
            }
        }
        let allocatable = self.available();
        if count > allocatable.len() {
            return Err(CpuManagerError::NotEnoughCpus {
                requested: count,
                available: allocatable.len(),
            });
        }
        let mut result = CpuSet::new();
        if let Some(nodes) = affinity.filter(|nodes| !nodes.is_empty()) {
            let aligned = self.aligned_cpus(nodes, &allocatable);
            let first = count.min(aligned.len());
            result = self.take(&aligned, first)?;
        }
        let rest = self.take(&allocatable.difference(&result), count - result.len())?;
        Ok(result.union(&rest))
    }

    fn aligned_cpus(&self, nodes: &NodeMask, allocatable: &CpuSet) -> CpuSet {
        if self.options.align_by_socket {
            self.topology
                .sockets_of_nodes(nodes)
                .into_iter()
                .fold(CpuSet::new(), |all, socket| {
                    all.union(
                        &self
                            .topology
                            .cpus_in_socket(socket)
                            .intersection(allocatable),
                    )
                })
        } else {
            self.topology.cpus_in_nodes(nodes).intersection(allocatable)
        }
    }

    fn take(&self, free: &CpuSet, count: usize) -> Result<CpuSet, CpuManagerError> {
        take_by_topology(&self.topology, free, count, &self.options)
    }

    /// Topology hints for `count` CPUs (the kubelet's `generateCPUTopologyHints`): every node
    /// set whose free CPUs can hold the request, preferred when it is as narrow as the
    /// narrowest set whose CPUs (free or not) could.
    pub fn hints(&self, count: usize) -> Vec<TopologyHint> {
        let available = self.available();
        let level = self.topology.level(Kind::Node);
        let nodes = &level.ids;
        let free_per_node: Vec<usize> = level
            .cpus
            .iter()
            .map(|cpus| count_common(cpus, &available))
            .collect();
        let total_per_node: Vec<usize> = level.cpus.iter().map(CpuSet::len).collect();
        let mut min_size = nodes.len();
        // Records whether all CPUs of `mask` could fit the request and returns whether its
        // free CPUs fit it now, so that only fitting masks are kept (and cloned).
        let mut fits = |mask: &NodeMask| {
            let (mut total, mut free) = (0, 0);
            for node in mask.iter() {
                if let Ok(index) = nodes.binary_search(&node) {
                    total += total_per_node[index];
                    free += free_per_node[index];
                }
            }
            if total >= count && mask.len() < min_size {
                min_size = mask.len();
            }
            free >= count
        };
        let mut candidates = Vec::new();
        if nodes.len() <= 16 {
            NodeMask::for_each_combination(nodes, |mask| {
                if fits(mask) {
                    candidates.push(mask.clone());
                }
            });
        } else {
            // Beyond 16 nodes, the kubelet's full enumeration is too large: visit the sets up
            // to the narrowest size that fits, then the set of all nodes.
            let mut sorted_totals = total_per_node.clone();
            sorted_totals.sort_unstable_by(|a, b| b.cmp(a));
            let mut sum = 0;
            let narrowest = sorted_totals
                .iter()
                .position(|&total| {
                    sum += total;
                    sum >= count
                })
                .map_or(nodes.len(), |index| index + 1);
            let mut keep_fitting = |mask: NodeMask| {
                if fits(&mask) {
                    candidates.push(mask);
                }
            };
            for size in 1..=narrowest.min(2) {
                visit_combinations(nodes, size, &mut keep_fitting);
            }
            keep_fitting(nodes.iter().copied().collect());
        }
        candidates
            .into_iter()
            .map(|mask| {
                let preferred = if self.options.align_by_socket {
                    mask.len() == min_size || self.is_socket_aligned(&mask, min_size)
                } else {
                    mask.len() == min_size
                };
                TopologyHint::new(mask, preferred)
            })
            .collect()
    }

    fn is_socket_aligned(&self, mask: &NodeMask, min_size: usize) -> bool {
        let sockets = self.topology.sockets_of_nodes(mask);
        if min_size == 1 {
            return sockets.len() == 1;
        }
        sockets.len() == 1 && mask.len() <= min_size
    }
}

/// Picks `count` CPUs of `free` the way the static policy with `options` does (the kubelet's
/// `takeByTopology`): the packed algorithm, or the NUMA-distributed one with
/// `distribute-cpus-across-numa`.
///
/// ```
/// use telco_topo::cpumanager::{fixtures, take_by_topology};
/// use telco_topo::StaticPolicyOptions;
///
/// let topology = fixtures::single_socket_ht();
/// let cpus = take_by_topology(&topology, topology.cpus(), 2, &StaticPolicyOptions::default())?;
/// assert_eq!(cpus.to_string(), "0,4"); // one whole core
/// # Ok::<(), telco_topo::CpuManagerError>(())
/// ```
pub fn take_by_topology(
    topology: &CpuTopology,
    free: &CpuSet,
    count: usize,
    options: &StaticPolicyOptions,
) -> Result<CpuSet, CpuManagerError> {
    let sorting = options.sorting();
    if options.distribute_cpus_across_numa {
        let group = if options.full_pcpus_only {
            topology.cpus_per_core()
        } else {
            1
        };
        return take::take_distributed(topology, free, count, group, sorting);
    }
    take::take_packed(
        topology,
        free,
        count,
        sorting,
        options.prefer_align_cpus_by_uncorecache,
    )
}

fn visit_combinations(nodes: &[usize], size: usize, visit: &mut impl FnMut(NodeMask)) {
    let mut positions: Vec<usize> = (0..size).collect();
    if size == 0 || size > nodes.len() {
        return;
    }
    loop {
        visit(positions.iter().map(|&p| nodes[p]).collect());
        let mut index = size;
        loop {
            if index == 0 {
                return;
            }
            index -= 1;
            if positions[index] < nodes.len() - size + index {
                break;
            }
        }
        positions[index] += 1;
        for next in index + 1..size {
            positions[next] = positions[next - 1] + 1;
        }
    }
}

impl StaticPolicyOptions {
    fn sorting(&self) -> Sorting {
        if self.distribute_cpus_across_cores {
            Sorting::Spread
        } else {
            Sorting::Packed
        }
    }
}

/// Gives hints for the `cpu` resource of a request (an amount of whole CPUs).
impl TopologyHintProvider for CpuManager {
    fn provider_name(&self) -> &str {
        "cpu"
    }

    fn topology_hints(&self, request: &ResourceRequest) -> BTreeMap<String, ResourceHints> {
        let mut hints = BTreeMap::new();
        if let Some(&amount) = request.amounts.get("cpu") {
            let count = usize::try_from(amount).unwrap_or(usize::MAX);
            let list = match self.assignments.get(&request.workload) {
                Some(cpus) => {
                    let nodes: NodeMask =
                        self.topology.ids_in(cpus, Kind::Node).into_iter().collect();
                    vec![TopologyHint::new(nodes, true)]
                }
                None => self.hints(count),
            };
            hints.insert("cpu".to_owned(), ResourceHints::Hints(list));
        }
        hints
    }
}
