//! The kubelet's CPU picking: `takeByTopologyNUMAPacked` and `takeByTopologyNUMADistributed`.
//!
//! Written from the algorithm of the kubelet's `cpu_assignment.go`. The tie-breaks (fewest free
//! CPUs first, then lowest id) are the kubelet's, so the same request on the same free CPUs gives
//! the same CPUs.

use std::collections::BTreeMap;

use telco_core::CpuSet;

use super::topology::{CpuPlace, CpuTopology};
use crate::error::CpuManagerError;

/// Order of free CPUs for single-CPU picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sorting {
    /// Fill cores: all threads of a core before the next core.
    Packed,
    /// One thread per core first (`distribute-cpus-across-cores`).
    Spread,
}

struct Accumulator<'a> {
    topology: &'a CpuTopology,
    free: CpuSet,
    needed: isize,
    result: CpuSet,
    sorting: Sorting,
    numa_first: bool,
}

fn core_of(place: &CpuPlace) -> usize {
    place.core
}
fn socket_of(place: &CpuPlace) -> usize {
    place.socket
}
fn node_of(place: &CpuPlace) -> usize {
    place.numa_node
}
fn uncore_of(place: &CpuPlace) -> usize {
    place.uncore
}

impl<'a> Accumulator<'a> {
    fn new(topology: &'a CpuTopology, free: &CpuSet, needed: usize, sorting: Sorting) -> Self {
        Accumulator {
            topology,
            free: free.intersection(topology.cpus()),
            needed: isize::try_from(needed).unwrap_or(isize::MAX),
            result: CpuSet::new(),
            sorting,
            numa_first: topology.num_sockets() >= topology.num_nodes(),
        }
    }

    fn take(&mut self, cpus: &CpuSet) {
        self.result = self.result.union(cpus);
        self.free = self.free.difference(cpus);
        self.needed -= isize::try_from(cpus.len()).unwrap_or(isize::MAX);
    }

    fn satisfied(&self) -> bool {
        self.needed < 1
    }

    fn failed(&self) -> bool {
        self.needed > isize::try_from(self.free.len()).unwrap_or(isize::MAX)
    }

    fn needs_at_least(&self, count: usize) -> bool {
        self.needed >= isize::try_from(count).unwrap_or(isize::MAX)
    }

    /// Sorts ids by free CPUs (fewest first), then id.
    fn sort(
        &self,
        ids: impl IntoIterator<Item = usize>,
        cpus_of: impl Fn(usize) -> CpuSet,
    ) -> Vec<usize> {
        let mut keyed: Vec<(usize, usize)> = ids
            .into_iter()
            .map(|id| (cpus_of(id).intersection(&self.free).len(), id))
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, id)| id).collect()
    }

    fn sorted_nodes(&self) -> Vec<usize> {
        if self.numa_first {
            let nodes = self.topology.ids_in(&self.free, node_of);
            self.sort(nodes, |node| self.topology.cpus_in_node(node))
        } else {
            let mut result = Vec::new();
            for socket in self.sorted_sockets() {
                let in_socket = self
                    .topology
                    .cpus_in_socket(socket)
                    .intersection(&self.free);
                let nodes = self.topology.ids_in(&in_socket, node_of);
                for node in self.sort(nodes, |node| self.topology.cpus_in_node(node)) {
                    if !result.contains(&node) {
                        result.push(node);
                    }
                }
            }
            result
        }
    }

    fn sorted_sockets(&self) -> Vec<usize> {
        if self.numa_first {
            let mut result = Vec::new();
            for node in self.sorted_nodes() {
                let in_node = self.topology.cpus_in_node(node).intersection(&self.free);
                let sockets = self.topology.ids_in(&in_node, socket_of);
                for socket in self.sort(sockets, |socket| self.topology.cpus_in_socket(socket)) {
                    if !result.contains(&socket) {
                        result.push(socket);
                    }
                }
            }
            result
        } else {
            let sockets = self.topology.ids_in(&self.free, socket_of);
            self.sort(sockets, |socket| self.topology.cpus_in_socket(socket))
        }
    }

    fn sorted_cores(&self) -> Vec<usize> {
        let groups: Vec<CpuSet> = if self.numa_first {
            self.sorted_sockets()
                .into_iter()
                .map(|socket| self.topology.cpus_in_socket(socket))
                .collect()
        } else {
            self.sorted_nodes()
                .into_iter()
                .map(|node| self.topology.cpus_in_node(node))
                .collect()
        };
        let mut result = Vec::new();
        for group in groups {
            let cores = self
                .topology
                .ids_in(&group.intersection(&self.free), core_of);
            for core in self.sort(cores, |core| self.topology.cpus_in_core(core)) {
                if !result.contains(&core) {
                    result.push(core);
                }
            }
        }
        result
    }

    fn sorted_uncores(&self) -> Vec<usize> {
        let mut result = Vec::new();
        for node in self.sorted_nodes() {
            let in_node = self.topology.cpus_in_node(node).intersection(&self.free);
            for uncore in self.topology.ids_in(&in_node, uncore_of) {
                if !result.contains(&uncore) {
                    result.push(uncore);
                }
            }
        }
        result
    }

    fn is_free(&self, cpus: &CpuSet) -> bool {
        cpus.is_subset(&self.free)
    }

    fn free_cpus(&self) -> Vec<usize> {
        let mut result = Vec::new();
        match self.sorting {
            Sorting::Packed => {
                for core in self.sorted_cores() {
                    result.extend(
                        self.topology
                            .cpus_in_core(core)
                            .intersection(&self.free)
                            .iter(),
                    );
                }
            }
            Sorting::Spread => {
                for socket in self.sorted_sockets() {
                    result.extend(
                        self.topology
                            .cpus_in_socket(socket)
                            .intersection(&self.free)
                            .iter(),
                    );
                }
            }
        }
        result
    }

    fn take_full_nodes(&mut self) {
        let free: Vec<CpuSet> = self
            .sorted_nodes()
            .into_iter()
            .map(|node| self.topology.cpus_in_node(node))
            .filter(|cpus| self.is_free(cpus))
            .collect();
        self.take_whole(free);
    }

    fn take_full_sockets(&mut self) {
        let free: Vec<CpuSet> = self
            .sorted_sockets()
            .into_iter()
            .map(|socket| self.topology.cpus_in_socket(socket))
            .filter(|cpus| self.is_free(cpus))
            .collect();
        self.take_whole(free);
    }

    fn take_full_cores(&mut self) {
        let free: Vec<CpuSet> = self
            .sorted_cores()
            .into_iter()
            .map(|core| self.topology.cpus_in_core(core))
            .filter(|cpus| self.is_free(cpus))
            .collect();
        self.take_whole(free);
    }

    /// Takes each unit of `units` (computed once, as the kubelet does) while at least a whole
    /// unit is still needed.
    fn take_whole(&mut self, units: Vec<CpuSet>) {
        for cpus in units {
            if self.needs_at_least(cpus.len()) {
                self.take(&cpus);
            }
        }
    }

    fn take_first_level(&mut self) {
        if self.numa_first {
            self.take_full_nodes();
        } else {
            self.take_full_sockets();
        }
    }

    fn take_second_level(&mut self) {
        if self.numa_first {
            self.take_full_sockets();
        } else {
            self.take_full_nodes();
        }
    }

    fn take_uncore_caches(&mut self) {
        let per_uncore = self.topology.cpus_per_uncore();
        for uncore in self.sorted_uncores() {
            if self.needs_at_least(per_uncore) {
                let free: Vec<CpuSet> = self
                    .sorted_uncores()
                    .into_iter()
                    .map(|uncore| self.topology.cpus_in_uncore(uncore))
                    .filter(|cpus| self.is_free(cpus))
                    .collect();
                self.take_whole(free);
            }
            if self.satisfied() {
                return;
            }
            self.take_partial_uncore(uncore);
            if self.satisfied() {
                return;
            }
        }
    }

    /// Fits the rest of the request inside one uncore cache, on its lowest free cores, or
    /// takes nothing.
    fn take_partial_uncore(&mut self, uncore: usize) {
        let per_core = self.topology.cpus_per_core().max(1);
        let needed = usize::try_from(self.needed).unwrap_or(0);
        let cores_needed = needed.div_ceil(per_core);
        let in_uncore = self
            .topology
            .cpus_in_uncore(uncore)
            .intersection(&self.free);
        let cores: Vec<usize> = self
            .topology
            .ids_in(&in_uncore, core_of)
            .into_iter()
            .collect();
        if cores.len() < cores_needed {
            return;
        }
        let cpus: CpuSet = cores[..cores_needed]
            .iter()
            .flat_map(|&core| {
                self.topology
                    .cpus_in_core(core)
                    .intersection(&self.free)
                    .iter()
                    .collect::<Vec<_>>()
            })
            .take(needed)
            .collect();
        if cpus.len() == needed {
            self.take(&cpus);
        }
    }

    fn take_remaining(&mut self) {
        for cpu in self.free_cpus() {
            self.take(&std::iter::once(cpu).collect());
            if self.satisfied() {
                return;
            }
        }
    }

    fn not_enough(&self, requested: usize, available: usize) -> CpuManagerError {
        CpuManagerError::NotEnoughCpus {
            requested,
            available,
        }
    }
}

/// Runs the packed algorithm: whole NUMA nodes and sockets, whole uncore caches (when
/// `prefer_uncore`), whole cores (not with [`Sorting::Spread`]), then single CPUs.
pub(crate) fn take_packed(
    topology: &CpuTopology,
    free: &CpuSet,
    count: usize,
    sorting: Sorting,
    prefer_uncore: bool,
) -> Result<CpuSet, CpuManagerError> {
    let mut acc = Accumulator::new(topology, free, count, sorting);
    if acc.satisfied() {
        return Ok(acc.result);
    }
    if acc.failed() {
        return Err(acc.not_enough(count, acc.free.len()));
    }
    acc.take_first_level();
    if acc.satisfied() {
        return Ok(acc.result);
    }
    acc.take_second_level();
    if acc.satisfied() {
        return Ok(acc.result);
    }
    if prefer_uncore {
        acc.take_uncore_caches();
        if acc.satisfied() {
            return Ok(acc.result);
        }
    }
    if sorting == Sorting::Packed {
        acc.take_full_cores();
        if acc.satisfied() {
            return Ok(acc.result);
        }
    }
    acc.take_remaining();
    if acc.satisfied() {
        return Ok(acc.result);
    }
    Err(acc.not_enough(count, free.len()))
}

/// Runs the NUMA-distributed algorithm (KEP-2902), which spreads the request evenly, in groups of
/// `group_size` CPUs, over the fewest NUMA nodes that can take it, choosing the nodes that
/// leave the free CPUs per node most balanced.
pub(crate) fn take_distributed(
    topology: &CpuTopology,
    free: &CpuSet,
    count: usize,
    group_size: usize,
    sorting: Sorting,
) -> Result<CpuSet, CpuManagerError> {
    let group_size = group_size.max(1);
    if !count.is_multiple_of(group_size) {
        return take_packed(topology, free, count, sorting, false);
    }
    let mut acc = Accumulator::new(topology, free, count, sorting);
    if acc.satisfied() {
        return Ok(acc.result);
    }
    if acc.failed() {
        return Err(acc.not_enough(count, acc.free.len()));
    }
    let nodes = acc.sorted_nodes();
    let free_in = |node: usize| topology.cpus_in_node(node).intersection(&acc.free).len();
    let (min_nodes, max_nodes) = nodes_needed_range(topology, &acc, count, group_size);
    for size in min_nodes..=max_nodes {
        let mut best: Option<(f64, Vec<usize>, Vec<usize>)> = None;
        for_each_combination(&nodes, size, |combo| {
            if best.as_ref().is_some_and(|(balance, _, _)| *balance == 0.0) {
                return;
            }
            let scored = score_combination(&nodes, combo, count, group_size, &free_in);
            if let Some((balance, remainder_nodes)) = scored
                && best
                    .as_ref()
                    .is_none_or(|(best_balance, _, _)| balance < *best_balance)
            {
                best = Some((balance, combo.to_vec(), remainder_nodes));
            }
        });
        if let Some((_, combo, remainder_nodes)) = best {
            let share = count / combo.len() / group_size * group_size;
            for &node in &combo {
                let node_free = topology.cpus_in_node(node).intersection(&acc.free);
                let cpus = take_packed(topology, &node_free, share, sorting, false)?;
                acc.take(&cpus);
            }
            let mut remainder = count - share * combo.len();
            while remainder > 0 {
                let before = remainder;
                for &node in &remainder_nodes {
                    if remainder == 0 {
                        break;
                    }
                    let node_free = topology.cpus_in_node(node).intersection(&acc.free);
                    if node_free.len() < group_size {
                        continue;
                    }
                    let cpus = take_packed(topology, &node_free, group_size, sorting, false)?;
                    acc.take(&cpus);
                    remainder -= group_size;
                }
                if remainder == before {
                    break;
                }
            }
            if acc.satisfied() {
                return Ok(acc.result);
            }
            return Err(acc.not_enough(count, free.len()));
        }
    }
    take_packed(topology, free, count, sorting, false)
}

fn nodes_needed_range(
    topology: &CpuTopology,
    acc: &Accumulator<'_>,
    count: usize,
    group_size: usize,
) -> (usize, usize) {
    let nodes = topology.num_nodes().max(1);
    let available_nodes = topology.ids_in(&acc.free, node_of).len();
    let groups = topology.num_cpus() / group_size;
    let groups_per_node = groups.div_ceil(nodes).max(1);
    let groups_needed = count.div_ceil(group_size);
    let min = groups_needed.div_ceil(groups_per_node);
    (min.max(1), groups_needed.min(available_nodes))
}

/// Scores taking `count` CPUs from `combo`, and the nodes that take the
/// remainder; `None` when the combination cannot take the request evenly.
fn score_combination(
    nodes: &[usize],
    combo: &[usize],
    count: usize,
    group_size: usize,
    free_in: &impl Fn(usize) -> usize,
) -> Option<(f64, Vec<usize>)> {
    let total: usize = combo.iter().map(|&node| free_in(node)).sum();
    if total < count {
        return None;
    }
    let groups: usize = combo.iter().map(|&node| free_in(node) / group_size).sum();
    if groups * group_size < count {
        return None;
    }
    let share = count / combo.len() / group_size * group_size;
    if combo.iter().any(|&node| free_in(node) < share) {
        return None;
    }
    let mut after: BTreeMap<usize, usize> =
        nodes.iter().map(|&node| (node, free_in(node))).collect();
    for node in combo {
        if let Some(left) = after.get_mut(node) {
            *left -= share;
        }
    }
    let remainder = count - share * combo.len();
    let candidates: Vec<usize> = combo
        .iter()
        .copied()
        .filter(|node| after[node] >= group_size)
        .collect();
    let mut best_balance = f64::MAX;
    let mut best_subset = Vec::new();
    if remainder == 0 {
        best_balance = standard_deviation(after.values());
    }
    let mut size = candidates.len();
    while remainder > 0 && size >= 1 {
        for_each_combination(&candidates, size, |subset| {
            let mut left = after.clone();
            let available: usize = subset.iter().map(|node| left[node]).sum();
            if available < remainder {
                return;
            }
            let mut rest = remainder;
            while rest > 0 {
                let before = rest;
                for node in subset {
                    if rest == 0 {
                        break;
                    }
                    let Some(value) = left.get_mut(node) else {
                        continue;
                    };
                    if *value < group_size {
                        continue;
                    }
                    *value -= group_size;
                    rest -= group_size;
                }
                if rest == before {
                    return;
                }
            }
            let balance = standard_deviation(left.values());
            if balance < best_balance {
                best_balance = balance;
                best_subset = subset.to_vec();
            }
        });
        size -= 1;
    }
    (best_balance < f64::MAX).then_some((best_balance, best_subset))
}

#[allow(clippy::cast_precision_loss)]
fn standard_deviation<'v>(values: impl Iterator<Item = &'v usize> + Clone) -> f64 {
    let count = values.clone().count() as f64;
    if count == 0.0 {
        return 0.0;
    }
    let mean = values.clone().map(|&v| v as f64).sum::<f64>() / count;
    let variance = values.map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / count;
    variance.sqrt()
}

/// Calls `visit` with each `size`-combination of `items`, in lexicographic order of positions.
fn for_each_combination(items: &[usize], size: usize, mut visit: impl FnMut(&[usize])) {
    if size == 0 || size > items.len() {
        return;
    }
    let mut positions: Vec<usize> = (0..size).collect();
    let mut chosen = vec![0; size];
    loop {
        for (slot, &position) in chosen.iter_mut().zip(&positions) {
            *slot = items[position];
        }
        visit(&chosen);
        let mut index = size;
        loop {
            if index == 0 {
                return;
            }
            index -= 1;
            if positions[index] < items.len() - size + index {
                break;
            }
        }
        positions[index] += 1;
        for next in index + 1..size {
            positions[next] = positions[next - 1] + 1;
        }
    }
}
