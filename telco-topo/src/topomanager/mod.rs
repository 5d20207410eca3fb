//! The kubelet's topology manager: merges the NUMA hints of every resource of a workload
//! under a policy and admits or refuses it.
//!
//! Providers implement telco-core's [`TopologyHintProvider`]: the [`CpuManager`](crate::CpuManager),
//! [`HugepageProvider`] and any device pool. [`merge_hints`] is the merge on its own.
//!
//! Unlike the kubelet, which rejects machines with more than 8 NUMA nodes unless configured
//! otherwise, this manager handles up to [`MAX_NODES`] nodes: the merge walks the
//! permutations of the hints the providers give, and the providers of this crate keep their
//! lists short on large machines.

mod hugepages;
mod merge;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use telco_core::{NodeMask, ResourceHints, ResourceRequest, TopologyHint, TopologyHintProvider};

pub use hugepages::{HugepageProvider, hugepage_resource_name};
pub use merge::NumaDistances;

use crate::error::TopologyManagerError;
use merge::{Mask, Merger, filter_provider_hints, to_bits};

/// Maximum number of NUMA nodes a [`TopologyManager`] accepts.
pub const MAX_NODES: usize = 64;

/// The topology manager policy (`--topology-manager-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// No alignment: every workload is admitted with no affinity.
    None,
    /// Pick the best merged hint, admit even when it is not preferred.
    BestEffort,
    /// Admit only when the best merged hint is preferred.
    Restricted,
    /// Only single-node hints count; admit only when the result is preferred.
    SingleNumaNode,
}

impl Policy {
    /// Returns the kubelet's name of the policy.
    pub fn name(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::BestEffort => "best-effort",
            Policy::Restricted => "restricted",
            Policy::SingleNumaNode => "single-numa-node",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = TopologyManagerError;

    fn from_str(text: &str) -> Result<Policy, TopologyManagerError> {
        match text {
            "none" => Ok(Policy::None),
            "best-effort" => Ok(Policy::BestEffort),
            "restricted" => Ok(Policy::Restricted),
            "single-numa-node" => Ok(Policy::SingleNumaNode),
            _ => Err(TopologyManagerError::UnknownPolicy {
                name: text.to_owned(),
            }),
        }
    }
}

/// The topology manager scope (`--topology-manager-scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Each container is aligned on its own.
    #[default]
    Container,
    /// One affinity for the whole pod: its containers' requests are summed.
    Pod,
}

impl FromStr for Scope {
    type Err = TopologyManagerError;

    fn from_str(text: &str) -> Result<Scope, TopologyManagerError> {
        match text {
            "container" => Ok(Scope::Container),
            "pod" => Ok(Scope::Pod),
            _ => Err(TopologyManagerError::UnknownScope {
                name: text.to_owned(),
            }),
        }
    }
}

/// Merges the providers' hints under `policy` over the nodes `nodes`, the kubelet's way.
/// Returns the best hint and whether the policy admits it. With `distances`, equally wide
/// preferred masks are ranked by average distance (`prefer-closest-numa-nodes`).
///
/// ```
/// use std::collections::BTreeMap;
/// use telco_core::{NodeMask, ResourceHints, TopologyHint};
/// use telco_topo::topomanager::{merge_hints, Policy};
///
/// let hint = |nodes: &str, preferred| TopologyHint::new(nodes.parse().unwrap(), preferred);
/// let cpu = BTreeMap::from([("cpu".to_owned(), ResourceHints::Hints(vec![hint("0", true), hint("1", true)]))]);
/// let nic = BTreeMap::from([("nic".to_owned(), ResourceHints::Hints(vec![hint("1", true)]))]);
/// let nodes: NodeMask = "0-1".parse().unwrap();
/// let (best, admit) = merge_hints(Policy::Restricted, &nodes, &[cpu, nic], None);
/// assert_eq!((best.affinity.to_string(), best.preferred, admit), ("1".to_owned(), true, true));
/// ```
pub fn merge_hints(
    policy: Policy,
    nodes: &NodeMask,
    providers: &[BTreeMap<String, ResourceHints>],
    distances: Option<&NumaDistances>,
) -> (TopologyHint, bool) {
    if policy == Policy::None {
        return (TopologyHint::new(NodeMask::new(), true), true);
    }
    let single_node = policy == Policy::SingleNumaNode;
    let bits = to_bits(nodes).and_then(|default| {
        let hints = filter_provider_hints(providers, single_node, to_bits)?;
        Some((default, hints))
    });
    let (affinity, preferred) = match bits {
        Some((default, hints)) => {
            let (mask, preferred) = Merger::new(default, distances, &hints).merge(&hints);
            (mask.to_nodes(), preferred)
        }
        None => {
            let hints = filter_provider_hints(providers, single_node, |mask| Some(mask.clone()))
                .unwrap_or_default();
            Merger::new(nodes.clone(), distances, &hints).merge(&hints)
        }
    };
    let mut best = TopologyHint::new(affinity, preferred);
    if policy == Policy::SingleNumaNode && best.affinity == *nodes {
        best = TopologyHint::new(NodeMask::new(), best.preferred);
    }
    let admit = match policy {
        Policy::None | Policy::BestEffort => true,
        Policy::Restricted | Policy::SingleNumaNode => best.preferred,
    };
    (best, admit)
}

/// Options of the topology manager (`--topology-manager-policy-options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopologyManagerOptions {
    /// `prefer-closest-numa-nodes`: among equally narrow preferred node sets, choose the one
    /// with the smallest average distance.
    pub prefer_closest_numa_nodes: bool,
}

/// A topology manager: a policy, a scope, the machine's nodes and the hint providers.
pub struct TopologyManager<'p> {
    policy: Policy,
    scope: Scope,
    nodes: NodeMask,
    distances: Option<NumaDistances>,
    providers: Vec<&'p dyn TopologyHintProvider>,
}

impl fmt::Debug for TopologyManager<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopologyManager")
            .field("policy", &self.policy)
            .field("scope", &self.scope)
            .field("nodes", &self.nodes)
            .field(
                "providers",
                &self
                    .providers
                    .iter()
                    .map(|p| p.provider_name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'p> TopologyManager<'p> {
    /// Creates a manager over `nodes` (at most [`MAX_NODES`]). `distances` is used only with
    /// `prefer-closest-numa-nodes`.
    pub fn new(
        policy: Policy,
        scope: Scope,
        nodes: NodeMask,
        distances: Option<NumaDistances>,
        options: &TopologyManagerOptions,
    ) -> Result<TopologyManager<'p>, TopologyManagerError> {
        if nodes.len() > MAX_NODES {
            return Err(TopologyManagerError::TooManyNodes {
                nodes: nodes.len(),
                limit: MAX_NODES,
            });
        }
        Ok(TopologyManager {
            policy,
            scope,
            nodes,
            distances: distances.filter(|_| options.prefer_closest_numa_nodes),
            providers: Vec::new(),
        })
    }

    /// Adds a hint provider.
    pub fn add_provider(&mut self, provider: &'p dyn TopologyHintProvider) {
        self.providers.push(provider);
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Admits one workload (a container): returns the NUMA affinity to allocate from, or the
    /// kubelet's `TopologyAffinityError`.
    pub fn admit(&self, request: &ResourceRequest) -> Result<TopologyHint, TopologyManagerError> {
        let hints: Vec<BTreeMap<String, ResourceHints>> = self
            .providers
            .iter()
            .map(|provider| provider.topology_hints(request))
            .collect();
        let (best, admit) = merge_hints(self.policy, &self.nodes, &hints, self.distances.as_ref());
        tracing::debug!(workload = %request.workload, affinity = %best.affinity, preferred = best.preferred, admit, "topology admission");
        if admit {
            Ok(best)
        } else {
            Err(TopologyManagerError::Affinity {
                workload: request.workload.clone(),
                policy: self.policy.name(),
            })
        }
    }

    /// Admits a pod of several containers. With [`Scope::Pod`] their requests are summed and
    /// merged once, and every container gets the same affinity; with [`Scope::Container`]
    /// each is admitted on its own. Returns one hint per container, in order.
    pub fn admit_pod(
        &self,
        pod: &str,
        containers: &[ResourceRequest],
    ) -> Result<Vec<TopologyHint>, TopologyManagerError> {
        match self.scope {
            Scope::Container => containers
                .iter()
                .map(|request| self.admit(request))
                .collect(),
            Scope::Pod => {
                let mut total = ResourceRequest::new(pod);
                for request in containers {
                    for (resource, amount) in &request.amounts {
                        *total.amounts.entry(resource.clone()).or_default() += amount;
                    }
                }
                let hint = self.admit(&total)?;
                Ok(vec![hint; containers.len()])
            }
        }
    }
}
