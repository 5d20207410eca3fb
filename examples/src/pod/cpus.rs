//! The pod's hint providers for telco-topo's topology manager: the CPU manager, the hugepage
//! pools, and the NUMA node of the aligned network's device.

use std::collections::BTreeMap;

use telco_core::{
    CpuSet, HostRoot, NodeMask, ResourceHints, ResourceRequest, TopologyHint, TopologyHintProvider,
};
use telco_topo::topomanager::hugepage_resource_name;
use telco_topo::{CpuManager, CpuManagerError, CpuTopology, Policy, StaticPolicyOptions, Topology};

use super::spec::{CpuRequest, HugepageRequest, NetworkKind, NetworkSpec, TopologyPolicy};

/// Returns the topology manager policy the spec names.
pub fn policy(policy: TopologyPolicy) -> Policy {
    match policy {
        TopologyPolicy::None => Policy::None,
        TopologyPolicy::BestEffort => Policy::BestEffort,
        TopologyPolicy::Restricted => Policy::Restricted,
        TopologyPolicy::SingleNumaNode => Policy::SingleNumaNode,
    }
}

/// Creates a static-policy CPU manager over the online CPUs, without the CPUs of other pods
/// in its shared pool.
///
/// No CPU is reserved for the system, unlike the kubelet, which requires one: `vnf-pod` places
/// single workloads on hosts where the operator decides what else runs.
pub fn cpu_manager(
    topology: &Topology,
    request: &CpuRequest,
    other_pods_cpus: &CpuSet,
) -> Result<CpuManager, CpuManagerError> {
    let mut options = StaticPolicyOptions::default();
    options.full_pcpus_only = request.full_pcpus_only;
    let mut manager =
        CpuManager::without_reservation(CpuTopology::from_topology(topology), options)?;
    let shared = manager.shared_pool().difference(other_pods_cpus);
    manager.set_shared_pool(shared);
    Ok(manager)
}

/// Builds the resource request the topology manager admits: CPUs, hugepages in bytes (as Kubernetes
/// counts them) and one device of the aligned network.
pub fn resource_request(
    pod: &str,
    cpus: &CpuRequest,
    hugepages: Option<&HugepageRequest>,
    device: Option<&DeviceHints>,
) -> ResourceRequest {
    let count = u64::try_from(cpus.count).unwrap_or(u64::MAX);
    let mut request = ResourceRequest::new(pod).with("cpu", count);
    if let Some(pages) = hugepages {
        request = request.with(
            hugepage_resource_name(pages.size_kib),
            pages.count.saturating_mul(pages.size_kib * 1024),
        );
    }
    if let Some(device) = device {
        request = request.with(device.resource.clone(), 1);
    }
    request
}

/// The NUMA node of the device behind a network, as one preferred hint: the host device, the
/// parent link of macvlan, ipvlan and VLAN, or the SR-IOV PF, read from
/// `/sys/class/net/DEV/device/numa_node`. Virtual devices (no `device` link, or node -1) and
/// kinds without a host device give no preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceHints {
    resource: String,
    device: Option<String>,
    node: Option<usize>,
}

impl DeviceHints {
    /// Reads the device node of `network` on `host`.
    pub fn for_network(host: &HostRoot, network: &NetworkSpec) -> DeviceHints {
        let device = match &network.kind {
            NetworkKind::HostDevice(spec) => Some(spec.device.as_str()),
            NetworkKind::Macvlan(spec) => Some(spec.master.as_str()),
            NetworkKind::Ipvlan(spec) => Some(spec.master.as_str()),
            NetworkKind::Vlan(spec) => Some(spec.master.as_str()),
            NetworkKind::Sriov(spec) => spec.pf.as_ref().map(|pf| pf.as_str()),
            _ => None,
        };
        let node = device.and_then(|device| {
            host.read_integer(format!("/sys/class/net/{device}/device/numa_node"))
                .ok()
                .and_then(|node| usize::try_from(node).ok())
        });
        DeviceHints {
            resource: format!("network/{}", network.name),
            device: device.map(str::to_owned),
            node,
        }
    }

    /// Returns the device's NUMA node, when it has one.
    pub fn node(&self) -> Option<usize> {
        self.node
    }
}

impl TopologyHintProvider for DeviceHints {
    fn provider_name(&self) -> &str {
        "network device"
    }

    fn topology_hints(&self, request: &ResourceRequest) -> BTreeMap<String, ResourceHints> {
        let mut hints = BTreeMap::new();
        if request.amounts.contains_key(&self.resource) {
            let list = match self.node {
                Some(node) => {
                    ResourceHints::Hints(vec![TopologyHint::new(NodeMask::from_node(node), true)])
                }
                None => ResourceHints::NoPreference,
            };
            hints.insert(self.resource.clone(), list);
        }
        hints
    }
}

/// Returns the NUMA nodes of `cpus`.
pub fn nodes_of(topology: &Topology, cpus: &CpuSet) -> NodeMask {
    topology
        .numa_nodes
        .iter()
        .filter(|node| !node.cpus.intersection(cpus).is_empty())
        .map(|node| node.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_without_numa_node_has_no_preference() {
        let hints = DeviceHints {
            resource: "network/data".to_owned(),
            device: Some("veth0".to_owned()),
            node: None,
        };
        let request = ResourceRequest::new("p").with("network/data", 1);
        assert_eq!(
            hints.topology_hints(&request).get("network/data"),
            Some(&ResourceHints::NoPreference)
        );
    }

    #[test]
    fn device_node_is_one_preferred_hint() {
        let hints = DeviceHints {
            resource: "network/data".to_owned(),
            device: Some("ens1f0".to_owned()),
            node: Some(1),
        };
        let request = ResourceRequest::new("p").with("network/data", 1);
        let expected = ResourceHints::Hints(vec![TopologyHint::new(NodeMask::from_node(1), true)]);
        assert_eq!(
            hints.topology_hints(&request).get("network/data"),
            Some(&expected)
        );
        let other = ResourceRequest::new("p").with("cpu", 1);
        assert!(hints.topology_hints(&other).is_empty());
    }

    #[test]
    fn hugepages_are_requested_in_bytes() {
        let cpus: CpuRequest = serde_json::from_str(r#"{"count": 2}"#).unwrap();
        let pages = HugepageRequest {
            size_kib: 2048,
            count: 4,
        };
        let request = resource_request("p", &cpus, Some(&pages), None);
        assert_eq!(request.amounts.get("cpu"), Some(&2));
        assert_eq!(
            request.amounts.get("hugepages-2Mi"),
            Some(&(4 * 2048 * 1024))
        );
    }
}
