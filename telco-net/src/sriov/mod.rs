//! SR-IOV physical and virtual functions: discovery, control, VF configuration, pools and the
//! SR-IOV CNI plugin's ADD and DEL.
//!
//! The module follows the behaviour of SR-IOV CNI and the SR-IOV network device plugin, so
//! their configs and environment work unchanged:
//!
//! - [`PhysicalFunction`] and [`VirtualFunction`] read sysfs through a [`telco_core::HostRoot`]:
//!   VF counts, drivers, NUMA nodes, netdevs, IOMMU groups and the `physfn`/`virtfnN` links.
//!   [`VirtualFunction::mode`] tells kernel mode from DPDK mode as SR-IOV CNI does.
//! - [`PhysicalFunction::set_num_vfs`] and [`bind_driver`] change the host through sysfs.
//! - [`apply_vf_config`] and [`read_vf_states`] set and read a VF's PF-side attributes over
//!   netlink (`ip link set PF vf N ...`); [`move_netdev`] and [`restore_netdev`] move a VF
//!   netdev into a namespace through a temporary one and back.
//! - [`DevicePluginConfig`] builds [`VfPool`]s from the device plugin's selectors; a pool gives
//!   topology hints ([`PoolHints`]) and the device plugin's container environment.
//! - [`attach_vf`] and [`detach_vf`] run SR-IOV CNI's ADD and DEL steps under a per-VF lock and
//!   allocation marker ([`AllocationStore`]); [`SriovKind`] is the `sriov` attachment kind of
//!   [`crate::attach`], and [`SriovPlugin`] is the CNI plugin behind the `telco-sriov` binary.
//!
//! Every VF attribute SR-IOV CNI sets exists in netlink-packet-route 0.34 (`IFLA_VF_MAC`,
//! `IFLA_VF_VLAN_LIST` with the VLAN protocol, `IFLA_VF_SPOOFCHK`, `IFLA_VF_TRUST`,
//! `IFLA_VF_LINK_STATE`, `IFLA_VF_RATE`), so no netlink message is built by hand.
//!
//! # Limitations
//!
//! - InfiniBand GUIDs (`IFLA_VF_IB_NODE_GUID`), VF representors (switchdev), vDPA and the
//!   device plugin's `accelerator` and `auxNetDevice` device types are not handled. Pools hold
//!   VFs only, not PFs without VFs as the device plugin's `netDevice` type also offers.
//! - The device plugin's `acpiIndexes`, `ddpProfiles`, `pKeys`, `isRdma`, `needVhostNet` and
//!   `vdpaType` selectors are not implemented; a config that uses them is rejected with an
//!   error that names them.
//! - Driver binding does not wait for an asynchronous probe: the bound driver is checked right
//!   after the write to `drivers_probe` returns.
//! - No gratuitous ARP or unsolicited neighbour advertisement is sent after ADD, and the
//!   plugin does not wait for carrier as SR-IOV CNI does (up to 200 ms).

mod alloc;
mod control;
mod device;
mod error;
mod kind;
mod lifecycle;
mod netdev;
mod netlink;
mod plugin;
mod pool;
mod selector;
mod vf_config;

#[cfg(test)]
mod tests;

pub use alloc::{AllocationStore, DEFAULT_ALLOCATION_DIR, VfLock};
pub use control::{bind_driver, bound_driver, num_vfs_writes, unbind_driver};
pub use device::{DPDK_DRIVERS, PhysicalFunction, VfMode, VirtualFunction, pci_of_netdev};
pub use error::SriovError;
pub use kind::{SriovKind, device_info};
pub use lifecycle::{VfAttachment, VfRequest, attach_vf, attachment_path, detach_vf};
pub use netdev::{HostNetdev, move_netdev, restore_netdev};
pub use plugin::{DEFAULT_STATE_DIR, RuntimeConfig, SriovNetConf, SriovPlugin, plugin_error};
pub use pool::{
    DEFAULT_RESOURCE_PREFIX, DevicePluginConfig, PoolHints, ResourceConfig, VfPool,
    env_variable_name,
};
pub use selector::{PfWithRange, Selector};
pub use vf_config::{
    MAX_VLAN_ID, MAX_VLAN_QOS, VfAttribute, VfConfig, VfLinkMode, VfState, VlanProto,
    apply_vf_config, apply_vf_config_with, read_vf_state, read_vf_states, read_vf_states_with,
    vf_states_from_message,
};

#[cfg(any(test, feature = "test-utils"))]
pub mod fixture;
