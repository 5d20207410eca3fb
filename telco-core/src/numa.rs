//! NUMA node sets and the topology hints that resources offer a topology manager.
//!
//! The model is the kubelet topology manager's: each resource (CPUs, hugepages, a device pool)
//! lists the node sets it could be allocated from as [`TopologyHint`]s, marking the narrowest
//! ones as preferred; the manager merges the lists of every provider under a policy.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::bitset::{self, BitSet};
use crate::error::ParseError;

/// A set of NUMA node ids, in the kernel's node list format (`0-1,3`, as in
/// `/sys/devices/system/node/online`).
///
/// ```
/// use telco_core::NodeMask;
///
/// let nodes: NodeMask = "0,2".parse().unwrap();
/// assert_eq!(nodes.len(), 2);
/// assert!(NodeMask::from_node(0).is_narrower_than(&nodes));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct NodeMask {
    bits: BitSet,
}

impl NodeMask {
    /// Largest node id accepted, the kernel's largest `MAX_NUMNODES` minus one.
    pub const MAX_ID: usize = 1023;

    /// The empty mask.
    pub const fn new() -> Self {
        NodeMask {
            bits: BitSet::new(),
        }
    }

    /// A mask with one node.
    ///
    /// # Panics
    ///
    /// Panics when `node` exceeds [`NodeMask::MAX_ID`].
    #[inline]
    pub fn from_node(node: usize) -> Self {
        let mut mask = NodeMask::new();
        mask.insert(node);
        mask
    }

    /// Parses the sysfs hex mask format (`Mems_allowed`).
    pub fn parse_mask(text: &str) -> Result<Self, ParseError> {
        BitSet::parse_mask(text, Self::MAX_ID, "NUMA node mask").map(|bits| NodeMask { bits })
    }

    /// Formats as a sysfs hex mask.
    pub fn to_mask(&self) -> String {
        self.bits.to_mask()
    }

    /// Returns true when `node` is in the mask.
    #[inline]
    pub fn contains(&self, node: usize) -> bool {
        self.bits.contains(node)
    }

    /// Adds `node`; returns false when it was already present.
    ///
    /// # Panics
    ///
    /// Panics when `node` exceeds [`NodeMask::MAX_ID`].
    #[inline]
    pub fn insert(&mut self, node: usize) -> bool {
        assert!(
            node <= Self::MAX_ID,
            "NUMA node id {node} exceeds {}",
            Self::MAX_ID
        );
        self.bits.insert(node)
    }

    /// Removes `node`; returns false when it was absent.
    pub fn remove(&mut self, node: usize) -> bool {
        self.bits.remove(node)
    }

    /// Number of nodes in the mask.
    #[inline]
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// Returns true when the mask has no node.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// Lowest node id.
    #[inline]
    pub fn first(&self) -> Option<usize> {
        self.bits.first()
    }

    /// Highest node id.
    #[inline]
    pub fn last(&self) -> Option<usize> {
        self.bits.last()
    }

    /// Nodes in either mask.
    pub fn union(&self, other: &NodeMask) -> NodeMask {
        NodeMask {
            bits: self.bits.union(&other.bits),
        }
    }

    /// Nodes in both masks.
    pub fn intersection(&self, other: &NodeMask) -> NodeMask {
        NodeMask {
            bits: self.bits.intersection(&other.bits),
        }
    }

    /// Nodes in `self` but not in `other`.
    pub fn difference(&self, other: &NodeMask) -> NodeMask {
        NodeMask {
            bits: self.bits.difference(&other.bits),
        }
    }

    /// Returns true when every node of `self` is in `other`.
    pub fn is_subset(&self, other: &NodeMask) -> bool {
        self.bits.is_subset(&other.bits)
    }

    /// Node ids in ascending order.
    #[inline]
    pub fn iter(&self) -> NodeIter<'_> {
        NodeIter {
            inner: self.bits.iter(),
        }
    }

    /// Returns true when `self` is narrower than `other` in the kubelet's order: fewer nodes, or
    /// as many nodes with a lower numeric value (so `{0}` is narrower than `{1}`).
    pub fn is_narrower_than(&self, other: &NodeMask) -> bool {
        match self.len().cmp(&other.len()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => self.value_cmp(other) == std::cmp::Ordering::Less,
        }
    }

    /// Compares the masks as unsigned numbers, node 0 being the least significant bit.
    pub fn value_cmp(&self, other: &NodeMask) -> std::cmp::Ordering {
        let ours = self.bits.words();
        let theirs = other.bits.words();
        ours.len()
            .cmp(&theirs.len())
            .then_with(|| ours.iter().rev().cmp(theirs.iter().rev()))
    }

    /// Calls `visit` with every non-empty subset of `nodes`, smallest subsets first and, within
    /// one size, in lexicographic order of node ids, as the kubelet's `IterateBitMasks` does.
    pub fn for_each_combination(nodes: &[usize], mut visit: impl FnMut(&NodeMask)) {
        for size in 1..=nodes.len() {
            let mut chosen: Vec<usize> = (0..size).collect();
            loop {
                let mask: NodeMask = chosen.iter().map(|&i| nodes[i]).collect();
                visit(&mask);
                if !advance_combination(&mut chosen, nodes.len()) {
                    break;
                }
            }
        }
    }
}

/// Moves `chosen` (indices in ascending order) to the next combination; false after the last.
fn advance_combination(chosen: &mut [usize], total: usize) -> bool {
    let size = chosen.len();
    for position in (0..size).rev() {
        if chosen[position] < total - size + position {
            chosen[position] += 1;
            for next in position + 1..size {
                chosen[next] = chosen[next - 1] + 1;
            }
            return true;
        }
    }
    false
}

impl FromStr for NodeMask {
    type Err = ParseError;

    /// Parses the node list format (`0-1,3`); the empty string is the empty mask.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        BitSet::parse_list(text, Self::MAX_ID, "NUMA node list").map(|bits| NodeMask { bits })
    }
}

impl fmt::Display for NodeMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bits.fmt_list(f)
    }
}

impl fmt::Debug for NodeMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeMask(\"{self}\")")
    }
}

impl FromIterator<usize> for NodeMask {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut mask = NodeMask::new();
        for node in iter {
            mask.insert(node);
        }
        mask
    }
}

/// Iterator over the node ids of a [`NodeMask`] in ascending order.
#[derive(Debug, Clone)]
pub struct NodeIter<'a> {
    inner: bitset::Iter<'a>,
}

impl Iterator for NodeIter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        self.inner.next()
    }
}

#[cfg(feature = "serde")]
crate::serde_as_text!(NodeMask, "a NUMA node list such as \"0-1\"");

/// One placement a resource could be allocated from: a set of NUMA nodes, and whether it is
/// among the narrowest such sets (the kubelet's `TopologyHint`).
///
/// An empty `affinity` means the resource does not care which node it lands on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TopologyHint {
    /// Nodes the resource would be allocated from; empty for "any node".
    pub affinity: NodeMask,
    /// True when no narrower set of nodes could satisfy the request.
    pub preferred: bool,
}

impl TopologyHint {
    /// Creates a hint.
    pub fn new(affinity: NodeMask, preferred: bool) -> Self {
        TopologyHint {
            affinity,
            preferred,
        }
    }
}

/// Hints of one resource for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceHints {
    /// The resource can be placed anywhere (the kubelet's nil hint list).
    NoPreference,
    /// The placements the resource could use. An empty list means the request cannot be
    /// satisfied on any node.
    Hints(Vec<TopologyHint>),
}

/// A workload's request for resources, by resource name (`cpu`, `hugepages-2Mi`,
/// `intel.com/sriov_netdevice`) and amount in the resource's own unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceRequest {
    /// Workload the request is for (a pod or container id).
    pub workload: String,
    /// Amount per resource name.
    pub amounts: BTreeMap<String, u64>,
}

impl ResourceRequest {
    /// Creates an empty request for `workload`.
    pub fn new(workload: impl Into<String>) -> Self {
        ResourceRequest {
            workload: workload.into(),
            amounts: BTreeMap::new(),
        }
    }

    /// Adds an amount of a resource.
    pub fn with(mut self, resource: impl Into<String>, amount: u64) -> Self {
        self.amounts.insert(resource.into(), amount);
        self
    }
}

/// A source of topology hints: the CPU manager, hugepages per node, an SR-IOV pool, or any
/// device pool of an integrator's.
///
/// A provider returns hints only for the resources it manages and that the request names;
/// resources it does not know are left out of the map.
pub trait TopologyHintProvider {
    /// Name of the provider, used in logs and errors.
    fn provider_name(&self) -> &str;

    /// Hints for each resource of `request` that this provider manages.
    fn topology_hints(&self, request: &ResourceRequest) -> BTreeMap<String, ResourceHints>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mask(text: &str) -> NodeMask {
        text.parse().unwrap()
    }

    #[test]
    fn narrower_prefers_fewer_nodes_then_lower_value() {
        assert!(mask("0").is_narrower_than(&mask("0-1")));
        assert!(mask("0").is_narrower_than(&mask("1")));
        assert!(!mask("1").is_narrower_than(&mask("0")));
        assert!(mask("0,2").is_narrower_than(&mask("1-2")));
        assert!(!mask("0-1").is_narrower_than(&mask("0-1")));
        assert!(mask("63").is_narrower_than(&mask("64")));
    }

    #[test]
    fn combinations_are_ordered_by_size_then_ids() {
        let mut seen = Vec::new();
        NodeMask::for_each_combination(&[0, 1, 3], |m| seen.push(m.to_string()));
        assert_eq!(seen, ["0", "1", "3", "0-1", "0,3", "1,3", "0-1,3"]);
    }

    #[test]
    fn combinations_of_nothing_visit_nothing() {
        let mut count = 0;
        NodeMask::for_each_combination(&[], |_| count += 1);
        assert_eq!(count, 0);
    }

    #[test]
    fn node_list_rejects_ids_beyond_limit() {
        let error = "1024".parse::<NodeMask>().unwrap_err();
        assert!(error.to_string().contains("1023"), "{error}");
    }

    proptest! {
        #[test]
        fn node_list_round_trips(ids in proptest::collection::btree_set(0usize..=NodeMask::MAX_ID, 0..16)) {
            let nodes: NodeMask = ids.iter().copied().collect();
            prop_assert_eq!(nodes.to_string().parse::<NodeMask>().unwrap(), nodes.clone());
            prop_assert_eq!(NodeMask::parse_mask(&nodes.to_mask()).unwrap(), nodes);
        }

        #[test]
        fn combination_count_is_two_to_n_minus_one(n in 0usize..10) {
            let nodes: Vec<usize> = (0..n).collect();
            let mut count = 0usize;
            NodeMask::for_each_combination(&nodes, |_| count += 1);
            prop_assert_eq!(count, (1usize << n) - 1);
        }
    }
}
