//! The kubelet's CPU picking: `takeByTopologyNUMAPacked` and `takeByTopologyNUMADistributed`.
//!
//! Written from the algorithm of the kubelet's `cpu_assignment.go`. The tie-breaks (fewest free
//! CPUs first, then lowest id) are the kubelet's, so the same request on the same free CPUs gives
//! the same CPUs.

use std::collections::BTreeMap;

use telco_core::CpuSet;

use super::topology::{CpuTopology, Kind, count_common};
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

/// CPUs in both sets, ascending, without building the intersection.
fn common_cpus<'s>(a: &'s CpuSet, b: &'s CpuSet) -> impl Iterator<Item = usize> + 's {
    a.as_words()
        .iter()
        .zip(b.as_words())
        .enumerate()
        .flat_map(|(index, (x, y))| {
            let mut word = x & y;
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(index * 64 + bit)
            })
        })
}

// The sorted lists below contain positions in the topology's levels rather than ids. Positions
// sort like ids and index the levels' CPU sets directly, so no step clones a group's CPUs.
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

    fn take_cpu(&mut self, cpu: usize) {
        self.result.insert(cpu);
        self.free.remove(cpu);
        self.needed -= 1;
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

    /// Returns the CPUs of the group at `position` in the `kind` level.
    fn cpus(&self, kind: Kind, position: usize) -> &'a CpuSet {
        &self.topology.level(kind).cpus[position]
    }

    /// Returns the positions of the `kind` groups that contain a free CPU of `within`, ascending.
    fn groups_with_free(&self, kind: Kind, within: &CpuSet) -> Vec<usize> {
        let mut seen = vec![false; self.topology.level(kind).ids.len()];
        let mut positions = Vec::new();
        for cpu in common_cpus(within, &self.free) {
            if let Some(at) = self.topology.position(cpu, kind)
                && !std::mem::replace(&mut seen[at], true)
            {
                positions.push(at);
            }
        }
        positions.sort_unstable();
        positions
    }

    /// Sorts group positions by free CPUs (fewest first), then id.
    fn sort(&self, kind: Kind, positions: Vec<usize>) -> Vec<usize> {
        let mut keyed: Vec<(usize, usize)> = positions
            .into_iter()
            .map(|at| (count_common(self.cpus(kind, at), &self.free), at))
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, at)| at).collect()
    }

    /// For each group of `outer` in order, lists the `inner` groups that contain its free CPUs,
    /// sorted, and skips those already listed.
    fn sorted_within(&self, outer: &[usize], outer_kind: Kind, inner_kind: Kind) -> Vec<usize> {
        let mut listed = vec![false; self.topology.level(inner_kind).ids.len()];
        let mut result = Vec::new();
        for &at in outer {
            let inner = self.groups_with_free(inner_kind, self.cpus(outer_kind, at));
            for inner_at in self.sort(inner_kind, inner) {
                if !std::mem::replace(&mut listed[inner_at], true) {
                    result.push(inner_at);
                }
            }
        }
        result
    }

    fn sorted_nodes(&self) -> Vec<usize> {
        if self.numa_first {
            self.sort(Kind::Node, self.groups_with_free(Kind::Node, &self.free))
        } else {
            self.sorted_within(&self.sorted_sockets(), Kind::Socket, Kind::Node)
        }
    }

    fn sorted_sockets(&self) -> Vec<usize> {
        if self.numa_first {
            self.sorted_within(&self.sorted_nodes(), Kind::Node, Kind::Socket)
        } else {
            self.sort(
                Kind::Socket,
                self.groups_with_free(Kind::Socket, &self.free),
            )
        }
    }

    fn sorted_cores(&self) -> Vec<usize> {
        if self.numa_first {
            self.sorted_within(&self.sorted_sockets(), Kind::Socket, Kind::Core)
        } else {
            self.sorted_within(&self.sorted_nodes(), Kind::Node, Kind::Core)
        }
    }

    /// Uncore caches of the sorted nodes, each node's in id order (not sorted by free CPUs,
    /// as in the kubelet).
    fn sorted_uncores(&self) -> Vec<usize> {
        let mut listed = vec![false; self.topology.level(Kind::Uncore).ids.len()];
        let mut result = Vec::new();
        for node in self.sorted_nodes() {
            for uncore in self.groups_with_free(Kind::Uncore, self.cpus(Kind::Node, node)) {
                if !std::mem::replace(&mut listed[uncore], true) {
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
        let (kind, groups) = match self.sorting {
            Sorting::Packed => (Kind::Core, self.sorted_cores()),
            Sorting::Spread => (Kind::Socket, self.sorted_sockets()),
        };
        let mut result = Vec::new();
        for at in groups {
            result.extend(common_cpus(self.cpus(kind, at), &self.free));
        }
        result
    }

    /// Takes each whole free group of `kind`, in the order of `sorted` (computed once, as the
    /// kubelet does), while at least a whole group is still needed.
    fn take_whole(&mut self, kind: Kind, sorted: Vec<usize>) {
        let free: Vec<&'a CpuSet> = sorted
            .into_iter()
            .map(|at| self.cpus(kind, at))
            .filter(|cpus| self.is_free(cpus))
            .collect();
        for cpus in free {
            if self.needs_at_least(cpus.len()) {
                self.take(cpus);
            }
        }
    }

    fn take_first_level(&mut self) {
        if self.numa_first {
            self.take_whole(Kind::Node, self.sorted_nodes());
        } else {
            self.take_whole(Kind::Socket, self.sorted_sockets());
        }
    }

    fn take_second_level(&mut self) {
        if self.numa_first {
            self.take_whole(Kind::Socket, self.sorted_sockets());
        } else {
            self.take_whole(Kind::Node, self.sorted_nodes());
        }
    }

    fn take_full_cores(&mut self) {
        self.take_whole(Kind::Core, self.sorted_cores());
    }

    fn take_uncore_caches(&mut self) {
        let per_uncore = self.topology.cpus_per_uncore();
        for uncore in self.sorted_uncores() {
            if self.needs_at_least(per_uncore) {
                self.take_whole(Kind::Uncore, self.sorted_uncores());
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

    /// Fits the rest of the request inside the uncore cache at position `uncore`, on its
    /// lowest free cores, or takes nothing.
    fn take_partial_uncore(&mut self, uncore: usize) {
        let per_core = self.topology.cpus_per_core().max(1);
        let needed = usize::try_from(self.needed).unwrap_or(0);
        let cores_needed = needed.div_ceil(per_core);
        let cores = self.groups_with_free(Kind::Core, self.cpus(Kind::Uncore, uncore));
        if cores.len() < cores_needed {
            return;
        }
        let cpus: CpuSet = cores[..cores_needed]
            .iter()
            .flat_map(|&core| common_cpus(self.cpus(Kind::Core, core), &self.free))
            .take(needed)
            .collect();
        if cpus.len() == needed {
            self.take(&cpus);
        }
    }

    fn take_remaining(&mut self) {
        for cpu in self.free_cpus() {
            self.take_cpu(cpu);
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
    let node_ids = &topology.level(Kind::Node).ids;
    let nodes: Vec<usize> = acc.sorted_nodes().iter().map(|&at| node_ids[at]).collect();
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
    let available_nodes = topology.ids_in(&acc.free, Kind::Node).len();
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
