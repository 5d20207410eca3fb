//! VF resource pools built from the SR-IOV network device plugin's config, their topology
//! hints, allocation and the container environment the device plugin gives a workload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use telco_core::{
    HostRoot, NodeMask, ResourceHints, ResourceRequest, TopologyHint, TopologyHintProvider,
};

use super::SriovError;
use super::alloc::{AllocationStore, VfLock};
use super::device::{PhysicalFunction, VirtualFunction};
use super::selector::{Candidate, Selector};

/// The device plugin's default resource prefix.
pub const DEFAULT_RESOURCE_PREFIX: &str = "intel.com";

/// The device plugin's config file (`/etc/pcidp/config.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DevicePluginConfig {
    /// The resource pools, in the order devices are offered to them.
    pub resource_list: Vec<ResourceConfig>,
}

/// One entry of `resourceList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResourceConfig {
    /// Resource name without prefix, such as `sriov_netdevice`.
    pub resource_name: String,
    /// Resource prefix; [`DEFAULT_RESOURCE_PREFIX`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_prefix: Option<String>,
    /// Device type; only `netDevice` (the default) is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// When true, the pool gives no topology hints.
    #[serde(default)]
    pub exclude_topology: bool,
    /// Selector objects, tried in order; the device plugin also accepts a single object.
    #[serde(default, deserialize_with = "one_or_many")]
    pub selectors: Vec<Selector>,
    /// Extra information per PCI address (or `"*"`) for the `_INFO` environment variable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_info: BTreeMap<String, BTreeMap<String, String>>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Selector>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Box<Selector>),
        Many(Vec<Selector>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(selector) => vec![*selector],
        OneOrMany::Many(selectors) => selectors,
    })
}

impl ResourceConfig {
    /// Returns the advertised name, `<prefix>/<name>`.
    pub fn full_name(&self) -> String {
        let prefix = self
            .resource_prefix
            .as_deref()
            .unwrap_or(DEFAULT_RESOURCE_PREFIX);
        format!("{prefix}/{}", self.resource_name)
    }
}

impl DevicePluginConfig {
    /// Parses the config file's JSON and checks every selector.
    pub fn from_json(text: &str) -> Result<Self, SriovError> {
        let config: DevicePluginConfig =
            serde_json::from_str(text).map_err(|error| SriovError::InvalidConfig {
                field: "resourceList",
                reason: error.to_string(),
            })?;
        for resource in &config.resource_list {
            if let Some(kind) = resource
                .device_type
                .as_deref()
                .filter(|kind| *kind != "netDevice")
            {
                return Err(SriovError::InvalidConfig {
                    field: "deviceType",
                    reason: format!("{kind:?} is not supported; only \"netDevice\" is"),
                });
            }
            for selector in &resource.selectors {
                selector.validate()?;
            }
        }
        Ok(config)
    }

    /// Builds the pools from the host's VFs. Each VF joins the first resource, in list order,
    /// with a selector that matches it; a VF no selector matches joins no pool.
    pub fn build_pools(&self, host: &HostRoot) -> Result<Vec<VfPool>, SriovError> {
        let mut pools: Vec<VfPool> = self
            .resource_list
            .iter()
            .map(|resource| VfPool {
                name: resource.full_name(),
                exclude_topology: resource.exclude_topology,
                additional_info: resource.additional_info.clone(),
                devices: Vec::new(),
            })
            .collect();
        for pf in PhysicalFunction::list(host)? {
            let vfs = match pf.virtual_functions(host) {
                Ok(vfs) => vfs,
                Err(error) => {
                    tracing::warn!(pf = %pf.pci, error = %super::device::error_chain(&error), "skipping VFs of PF");
                    continue;
                }
            };
            for vf in vfs {
                let candidate = Candidate::read(host, vf, &pf);
                let pool = self.resource_list.iter().position(|resource| {
                    resource
                        .selectors
                        .iter()
                        .any(|selector| selector.matches(&candidate))
                });
                if let Some(pool) = pool {
                    pools[pool].devices.push(candidate.vf);
                }
            }
        }
        Ok(pools)
    }
}

/// A pool of VFs advertised as one resource.
#[derive(Debug, Clone)]
pub struct VfPool {
    name: String,
    exclude_topology: bool,
    additional_info: BTreeMap<String, BTreeMap<String, String>>,
    devices: Vec<VirtualFunction>,
}

impl VfPool {
    /// Returns the resource name, `<prefix>/<name>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the pool's VFs, in PCI address order of their PFs and VF index.
    pub fn devices(&self) -> &[VirtualFunction] {
        &self.devices
    }

    /// Lists the VFs whose allocation marker in `store` is absent.
    pub fn free_devices(
        &self,
        store: &AllocationStore,
    ) -> Result<Vec<&VirtualFunction>, SriovError> {
        let mut free = Vec::new();
        for vf in &self.devices {
            if store.owner(vf.pci)?.is_none() {
                free.push(vf);
            }
        }
        Ok(free)
    }

    /// Allocates the first free VF to `owner`, preferring VFs on `numa_node` when given.
    /// Returns the VF with its lock held; drop the lock when the VF is set up. A VF whose lock
    /// another caller holds is skipped, since that caller is setting it up or tearing it down.
    pub fn allocate(
        &self,
        store: &AllocationStore,
        owner: &str,
        numa_node: Option<usize>,
    ) -> Result<(VirtualFunction, VfLock), SriovError> {
        let mut order: Vec<&VirtualFunction> = self.devices.iter().collect();
        if let Some(node) = numa_node {
            order.sort_by_key(|vf| vf.numa_node != Some(node));
        }
        for vf in order {
            let Some(lock) = store.try_lock(vf.pci)? else {
                continue;
            };
            match lock.claim(owner) {
                Ok(()) => return Ok((vf.clone(), lock)),
                Err(SriovError::VfTaken { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(SriovError::PoolExhausted {
            pool: self.name.clone(),
        })
    }

    /// Builds the environment the device plugin gives a container that was allocated `devices` from
    /// this pool: `PCIDEVICE_<RESOURCE>` with the comma-separated PCI addresses and
    /// `PCIDEVICE_<RESOURCE>_INFO` with the per-device JSON.
    pub fn container_env(&self, devices: &[&VirtualFunction]) -> Vec<(String, String)> {
        let variable = env_variable_name(&self.name);
        let addresses: Vec<String> = devices.iter().map(|vf| vf.pci.to_string()).collect();
        let mut info = serde_json::Map::new();
        for vf in devices {
            info.insert(vf.pci.to_string(), self.device_info(vf));
        }
        vec![
            (variable.clone(), addresses.join(",")),
            (format!("{variable}_INFO"), Value::Object(info).to_string()),
        ]
    }

    fn device_info(&self, vf: &VirtualFunction) -> Value {
        let mut entry = serde_json::Map::new();
        if let Some(device) = vf.vfio_device() {
            entry.insert(
                "vfio".to_owned(),
                json!({"vfio-dev-mount": device.display().to_string(), "vfio-mount": "/dev/vfio/vfio"}),
            );
        }
        let extra = self
            .additional_info
            .get(&vf.pci.to_string())
            .or_else(|| self.additional_info.get("*"));
        if let Some(extra) = extra {
            entry.insert("extraInfo".to_owned(), json!(extra));
        }
        Value::Object(entry)
    }

    /// Hints for `count` VFs from the devices in `available`, as the kubelet device manager
    /// computes them: one hint per NUMA node set that contains enough available VFs, preferred
    /// when no smaller set could hold them even with every VF free.
    fn hints_for(&self, count: usize, available: &[&VirtualFunction]) -> ResourceHints {
        let mut nodes: Vec<usize> = self.devices.iter().filter_map(|vf| vf.numa_node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        if self.exclude_topology || nodes.is_empty() {
            return ResourceHints::NoPreference;
        }
        let in_mask = |devices: &mut dyn Iterator<Item = &VirtualFunction>, mask: &NodeMask| {
            devices
                .filter(|vf| vf.numa_node.is_some_and(|node| mask.contains(node)))
                .count()
        };
        let mut min_size = usize::MAX;
        let mut hints = Vec::new();
        NodeMask::for_each_combination(&nodes, |mask| {
            if in_mask(&mut self.devices.iter(), mask) >= count {
                min_size = min_size.min(mask.len());
            }
            if in_mask(&mut available.iter().copied(), mask) >= count {
                hints.push(TopologyHint::new(mask.clone(), false));
            }
        });
        for hint in &mut hints {
            hint.preferred = hint.affinity.len() == min_size;
        }
        ResourceHints::Hints(hints)
    }
}

/// Returns the variable name the device plugin uses for a resource: `PCIDEVICE_` and the resource name
/// upper-cased with `.` and `/` replaced by `_`.
pub fn env_variable_name(resource: &str) -> String {
    let name: String = resource
        .chars()
        .map(|c| {
            if c == '.' || c == '/' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    format!("PCIDEVICE_{name}")
}

/// A pool together with the store that records its allocations: the form in which a pool is a
/// [`TopologyHintProvider`].
#[derive(Debug, Clone)]
pub struct PoolHints<'a> {
    /// The pool.
    pub pool: &'a VfPool,
    /// Its allocation store; VFs with a marker are not available.
    pub store: &'a AllocationStore,
}

impl TopologyHintProvider for PoolHints<'_> {
    fn provider_name(&self) -> &str {
        self.pool.name()
    }

    fn topology_hints(&self, request: &ResourceRequest) -> BTreeMap<String, ResourceHints> {
        let mut hints = BTreeMap::new();
        let Some(&amount) = request.amounts.get(self.pool.name()) else {
            return hints;
        };
        let available = match self.pool.free_devices(self.store) {
            Ok(available) => available,
            Err(error) => {
                tracing::warn!(pool = self.pool.name(), error = %super::device::error_chain(&error), "cannot read allocations; reporting no placement");
                Vec::new()
            }
        };
        let count = usize::try_from(amount).unwrap_or(usize::MAX);
        hints.insert(
            self.pool.name().to_owned(),
            self.pool.hints_for(count, &available),
        );
        hints
    }
}

impl TopologyHintProvider for VfPool {
    fn provider_name(&self) -> &str {
        &self.name
    }

    /// Hints with every VF counted as available; use [`PoolHints`] to leave out allocated VFs.
    fn topology_hints(&self, request: &ResourceRequest) -> BTreeMap<String, ResourceHints> {
        let mut hints = BTreeMap::new();
        if let Some(&amount) = request.amounts.get(&self.name) {
            let all: Vec<&VirtualFunction> = self.devices.iter().collect();
            let count = usize::try_from(amount).unwrap_or(usize::MAX);
            hints.insert(self.name.clone(), self.hints_for(count, &all));
        }
        hints
    }
}
