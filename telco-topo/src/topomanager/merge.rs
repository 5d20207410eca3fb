//! Merging the hints of several providers (the kubelet's `HintMerger`).

use std::collections::BTreeMap;

use telco_core::{NodeMask, ResourceHints};

/// A set of NUMA nodes as the merge needs it. [`NodeMask`] works for any node ids; `u64`
/// is the fast form for machines whose node ids are all below 64.
pub(crate) trait Mask: Clone + PartialEq {
    fn and(&self, other: &Self) -> Self;
    fn count(&self) -> usize;
    fn is_narrower(&self, other: &Self) -> bool;
    fn to_nodes(&self) -> NodeMask;
}

impl Mask for NodeMask {
    fn and(&self, other: &Self) -> Self {
        self.intersection(other)
    }

    fn count(&self) -> usize {
        self.len()
    }

    fn is_narrower(&self, other: &Self) -> bool {
        self.is_narrower_than(other)
    }

    fn to_nodes(&self) -> NodeMask {
        self.clone()
    }
}

impl Mask for u64 {
    fn and(&self, other: &Self) -> Self {
        self & other
    }

    fn count(&self) -> usize {
        self.count_ones() as usize
    }

    fn is_narrower(&self, other: &Self) -> bool {
        (self.count_ones(), *self) < (other.count_ones(), *other)
    }

    fn to_nodes(&self) -> NodeMask {
        (0..64).filter(|bit| self & (1 << bit) != 0).collect()
    }
}

/// Converts a node set to the `u64` form, `None` when a node id is 64 or more.
pub(crate) fn to_bits(nodes: &NodeMask) -> Option<u64> {
    if nodes.last().is_some_and(|last| last >= 64) {
        return None;
    }
    Some(nodes.iter().fold(0, |bits, node| bits | 1 << node))
}

/// One resource's hints after filtering: `None` affinity is "any node".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hint<M = NodeMask> {
    pub affinity: Option<M>,
    pub preferred: bool,
}

/// The NUMA distance matrix, for `prefer-closest-numa-nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumaDistances {
    rows: BTreeMap<usize, BTreeMap<usize, u32>>,
}

impl NumaDistances {
    /// Builds the matrix from node ids and rows in the same order (as
    /// [`Topology::distances`](crate::Topology::distances) gives them).
    pub fn new(nodes: &[usize], rows: &[Vec<u32>]) -> NumaDistances {
        let mut matrix = BTreeMap::new();
        for (&from, row) in nodes.iter().zip(rows) {
            let entry: BTreeMap<usize, u32> =
                nodes.iter().copied().zip(row.iter().copied()).collect();
            matrix.insert(from, entry);
        }
        NumaDistances { rows: matrix }
    }

    /// Average distance between every ordered pair of nodes of `nodes` (pairs of a node with
    /// itself included, as the kubelet counts).
    #[allow(clippy::cast_precision_loss)]
    pub fn average(&self, nodes: &NodeMask) -> f64 {
        let mut sum = 0.0;
        let mut count = 0.0;
        for from in nodes.iter() {
            for to in nodes.iter() {
                let distance = self
                    .rows
                    .get(&from)
                    .and_then(|row| row.get(&to))
                    .copied()
                    .unwrap_or(if from == to { 10 } else { 20 });
                sum += f64::from(distance);
                count += 1.0;
            }
        }
        if count == 0.0 { 0.0 } else { sum / count }
    }
}

/// Turns each provider's map into one hint list per resource: a provider with no resources,
/// or a resource with no preference, gives "any node, preferred"; an empty list gives "any
/// node, not preferred". With `single_node` (the `single-numa-node` policy), only preferred
/// hints of one node or of any node are kept.
///
/// Each kept mask goes through `convert`, so the `u64` form is built without cloning the
/// providers' masks first. Returns `None` when `convert` rejects a kept mask.
pub(crate) fn filter_provider_hints<M>(
    providers: &[BTreeMap<String, ResourceHints>],
    single_node: bool,
    convert: impl Fn(&NodeMask) -> Option<M>,
) -> Option<Vec<Vec<Hint<M>>>> {
    let any = |preferred| {
        vec![Hint {
            affinity: None,
            preferred,
        }]
    };
    let mut all = Vec::new();
    for hints in providers {
        if hints.is_empty() {
            all.push(any(true));
            continue;
        }
        for resource in hints.values() {
            let list = match resource {
                ResourceHints::NoPreference => any(true),
                // `single-numa-node` drops this hint like every hint that is not preferred.
                ResourceHints::Hints(list) if list.is_empty() && single_node => Vec::new(),
                ResourceHints::Hints(list) if list.is_empty() => any(false),
                ResourceHints::Hints(list) => list
                    .iter()
                    .filter(|hint| !single_node || (hint.preferred && hint.affinity.len() == 1))
                    .map(|hint| {
                        Some(Hint {
                            affinity: Some(convert(&hint.affinity)?),
                            preferred: hint.preferred,
                        })
                    })
                    .collect::<Option<_>>()?,
            };
            all.push(list);
        }
    }
    Some(all)
}

/// The merge of a permutation's first hints, with the AND of their masks and the default
/// affinity, whether all were preferred with equal masks, and the first mask seen.
struct Partial<'h, M> {
    merged: M,
    preferred: bool,
    first: Option<&'h M>,
}

impl<'h, M: Mask> Partial<'h, M> {
    fn extend(&self, hint: &'h Hint<M>) -> Partial<'h, M> {
        let mut next = Partial {
            merged: self.merged.clone(),
            preferred: self.preferred && hint.preferred,
            first: self.first,
        };
        if let Some(mask) = &hint.affinity {
            match next.first {
                None => next.first = Some(mask),
                Some(seen) if seen != mask => next.preferred = false,
                Some(_) => {}
            }
            next.merged = next.merged.and(mask);
        }
        next
    }
}

pub(crate) struct Merger<'a, M> {
    pub default_affinity: M,
    pub distances: Option<&'a NumaDistances>,
    best_non_preferred_count: usize,
}

impl<'a, M: Mask> Merger<'a, M> {
    pub fn new(
        default_affinity: M,
        distances: Option<&'a NumaDistances>,
        hints: &[Vec<Hint<M>>],
    ) -> Self {
        let best_non_preferred_count = hints
            .iter()
            .filter_map(|list| {
                list.iter()
                    .filter_map(|hint| hint.affinity.as_ref())
                    .fold(None::<&M>, |narrowest, mask| match narrowest {
                        Some(current) if !mask.is_narrower(current) => Some(current),
                        _ => Some(mask),
                    })
                    .map(Mask::count)
            })
            .max()
            .unwrap_or(0);
        Merger {
            default_affinity,
            distances,
            best_non_preferred_count,
        }
    }

    /// Merges every permutation of one hint per resource and keeps the best.
    pub fn merge(&self, hints: &[Vec<Hint<M>>]) -> (M, bool) {
        let mut best: Option<(M, bool)> = None;
        let start = Partial {
            merged: self.default_affinity.clone(),
            preferred: true,
            first: None,
        };
        self.permute(hints, start, &mut best);
        best.unwrap_or_else(|| (self.default_affinity.clone(), false))
    }

    /// Extends the merge of a permutation's first hints by each hint of the next resource in
    /// turn. A prefix whose merged mask is already empty is dropped with all its permutations,
    /// because masks only narrow and [`Merger::compare`] ignores empty ones.
    fn permute<'h>(
        &self,
        hints: &'h [Vec<Hint<M>>],
        partial: Partial<'h, M>,
        best: &mut Option<(M, bool)>,
    ) {
        let Some((first, rest)) = hints.split_first() else {
            self.compare(best, (partial.merged, partial.preferred));
            return;
        };
        for hint in first {
            let next = partial.extend(hint);
            if next.merged.count() > 0 {
                self.permute(rest, next, best);
            }
        }
    }

    fn better_mask(&self, candidate: &M, current: &M) -> bool {
        if let Some(distances) = self.distances {
            let ours = distances.average(&candidate.to_nodes());
            let theirs = distances.average(&current.to_nodes());
            if ours != theirs {
                return ours < theirs;
            }
        }
        candidate.is_narrower(current)
    }

    fn compare(&self, best: &mut Option<(M, bool)>, candidate: (M, bool)) {
        if candidate.0.count() == 0 {
            return;
        }
        let Some(current) = best.as_ref() else {
            *best = Some(candidate);
            return;
        };
        let take = match (current.1, candidate.1) {
            (false, true) => true,
            (true, false) => false,
            (true, true) => self.better_mask(&candidate.0, &current.0),
            (false, false) => self.compare_non_preferred(&current.0, &candidate.0),
        };
        if take {
            *best = Some(candidate);
        }
    }

    /// Both non-preferred: aim for the node count closest to, but not above, the widest of
    /// the resources' narrowest hints.
    fn compare_non_preferred(&self, current: &M, candidate: &M) -> bool {
        let target = self.best_non_preferred_count;
        let (current_count, candidate_count) = (current.count(), candidate.count());
        if current_count > target {
            return self.better_mask(candidate, current);
        }
        if current_count == target {
            return candidate_count == target && self.better_mask(candidate, current);
        }
        if candidate_count > target {
            return false;
        }
        if candidate_count == target {
            return true;
        }
        match candidate_count.cmp(&current_count) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.better_mask(candidate, current),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Merges every permutation in full, one after the other, as the kubelet does. This is the
    /// reference for the pruned walk of [`Merger::merge`].
    fn merge_every_permutation(merger: &Merger<'_, u64>, hints: &[Vec<Hint<u64>>]) -> (u64, bool) {
        let mut permutations: Vec<Vec<&Hint<u64>>> = vec![Vec::new()];
        for list in hints {
            permutations = permutations
                .iter()
                .flat_map(|prefix| {
                    list.iter().map(move |hint| {
                        let mut next = prefix.clone();
                        next.push(hint);
                        next
                    })
                })
                .collect();
        }
        let mut best = None;
        for permutation in permutations {
            let mut merged = merger.default_affinity;
            let mut preferred = true;
            let mut first = None;
            for hint in permutation {
                if let Some(mask) = hint.affinity {
                    if first.is_some_and(|seen| seen != mask) {
                        preferred = false;
                    }
                    first.get_or_insert(mask);
                    merged &= mask;
                }
                preferred &= hint.preferred;
            }
            merger.compare(&mut best, (merged, preferred));
        }
        best.unwrap_or((merger.default_affinity, false))
    }

    fn hint_strategy() -> impl Strategy<Value = Hint<u64>> {
        (prop::option::weighted(0.8, 1u64..16), any::<bool>()).prop_map(|(affinity, preferred)| {
            Hint {
                affinity,
                preferred,
            }
        })
    }

    proptest! {
        #[test]
        fn pruned_merge_matches_every_permutation(
            hints in prop::collection::vec(prop::collection::vec(hint_strategy(), 0..5), 0..4),
            default in 1u64..16,
        ) {
            let merger = Merger::new(default, None, &hints);
            prop_assert_eq!(merger.merge(&hints), merge_every_permutation(&merger, &hints));
        }
    }
}
