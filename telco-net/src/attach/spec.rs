//! [`AttachmentSpec`], [`IpConfig`] and [`Attached`]: what to attach and what came of it.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use telco_core::{InterfaceName, MacAddr};

use super::AttachKind;
use crate::addr::IpPrefix;
use crate::cni::{DeviceInfo, Dns};
use crate::ipam::RangeSet;
use crate::route::Route;

/// How the attach driver gives the interface its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IpConfig {
    /// No addresses (or the kind assigns them itself, as the `cni` kind does).
    #[default]
    None,
    /// Fixed addresses, like the CNI `static` IPAM plugin's `addresses`.
    Static(Vec<StaticAddress>),
    /// Addresses from a host-local store, one per range set.
    HostLocal(HostLocalIpam),
}

/// One fixed address: `{"address": "10.1.0.5/24", "gateway": "10.1.0.1"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct StaticAddress {
    /// The address with its prefix length.
    pub address: IpPrefix,
    /// The gateway of its subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

impl StaticAddress {
    /// A fixed address with an optional gateway.
    pub fn new(address: IpPrefix, gateway: Option<IpAddr>) -> StaticAddress {
        StaticAddress { address, gateway }
    }
}

/// Host-local allocation settings, the same as the plugin's `ranges` and `dataDir`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostLocalIpam {
    /// The store's name: the CNI network name when shared with the plugin.
    pub network: String,
    /// The range sets, one address from each.
    pub ranges: Vec<RangeSet>,
    /// The data directory; the attacher's ([`Attacher::ipam_data_dir`](super::Attacher::ipam_data_dir))
    /// when none.
    pub data_dir: Option<PathBuf>,
}

impl HostLocalIpam {
    /// Allocation from `ranges` in the store `network`.
    pub fn new(network: &str, ranges: Vec<RangeSet>) -> HostLocalIpam {
        HostLocalIpam {
            network: network.to_owned(),
            ranges,
            data_dir: None,
        }
    }
}

/// One network to attach: the interface name, the kind that makes it, and what the driver
/// does around it (addresses, routes, default route, DNS).
///
/// ```
/// use telco_net::attach::{AttachmentSpec, IpConfig, StaticAddress, kinds::VethKind};
///
/// let spec = AttachmentSpec::new("default/mgmt", "eth0".parse().unwrap(), VethKind::new().bridge("br-mgmt"))
///     .ip(IpConfig::Static(vec![StaticAddress::new("10.1.0.5/24".parse().unwrap(), Some("10.1.0.1".parse().unwrap()))]))
///     .default_route();
/// assert!(spec.is_default());
/// ```
#[non_exhaustive]
pub struct AttachmentSpec {
    /// The network's name in the status list (`namespace/name` for a NetworkAttachmentDefinition).
    pub network: String,
    /// The interface name inside the pod.
    pub interface: InterfaceName,
    /// The kind that makes the interface.
    pub kind: Box<dyn AttachKind>,
    /// How the interface gets addresses.
    pub ip: IpConfig,
    /// Extra routes through the interface (`dev` is filled in).
    pub routes: Vec<Route>,
    /// Whether the pod's default route goes through this interface's gateway; the status
    /// entry then has `default: true`.
    pub default_route: bool,
    /// Resolver settings to report.
    pub dns: Dns,
    /// MAC address for the interface.
    pub mac: Option<MacAddr>,
    /// MTU for the interface.
    pub mtu: Option<u32>,
}

impl AttachmentSpec {
    /// A spec for `network` as `interface`, made by `kind`, with no addresses.
    pub fn new(network: &str, interface: InterfaceName, kind: impl AttachKind + 'static) -> Self {
        Self::with_kind(network, interface, Box::new(kind))
    }

    /// Like [`AttachmentSpec::new`] with a boxed kind.
    pub fn with_kind(network: &str, interface: InterfaceName, kind: Box<dyn AttachKind>) -> Self {
        AttachmentSpec {
            network: network.to_owned(),
            interface,
            kind,
            ip: IpConfig::None,
            routes: Vec::new(),
            default_route: false,
            dns: Dns::default(),
            mac: None,
            mtu: None,
        }
    }

    /// Sets how the interface gets addresses.
    pub fn ip(mut self, ip: IpConfig) -> Self {
        self.ip = ip;
        self
    }

    /// Adds a route through the interface.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Sends the pod's default route through this interface's gateway.
    pub fn default_route(mut self) -> Self {
        self.default_route = true;
        self
    }

    /// Sets the resolver settings to report.
    pub fn dns(mut self, dns: Dns) -> Self {
        self.dns = dns;
        self
    }

    /// Sets the MAC address.
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Sets the MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Returns true when the pod's default route goes through this attachment.
    pub fn is_default(&self) -> bool {
        self.default_route
    }
}

impl fmt::Debug for AttachmentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentSpec")
            .field("network", &self.network)
            .field("interface", &self.interface)
            .field("kind", &self.kind)
            .field("ip", &self.ip)
            .field("routes", &self.routes)
            .field("default_route", &self.default_route)
            .field("mac", &self.mac)
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

/// What an [`AttachKind`] reports after making its interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attached {
    /// True when the attachment is a kernel interface in the pod namespace: the driver then
    /// assigns addresses and routes and reads MAC and MTU from it. False for userspace
    /// interfaces (memif, vhost-user, a VF bound to vfio-pci).
    pub kernel_interface: bool,
    /// Addresses the kind configured itself (a CNI result's `ips`).
    pub ips: Vec<IpPrefix>,
    /// Gateways the kind learned (a CNI result's gateways).
    pub gateways: Vec<IpAddr>,
    /// Resolver settings the kind learned.
    pub dns: Dns,
    /// The device behind the attachment, for the status entry's `device-info`.
    pub device_info: Option<DeviceInfo>,
    /// MAC address to report when there is no kernel interface to read it from.
    pub mac: Option<String>,
    /// MTU to report when there is no kernel interface to read it from.
    pub mtu: Option<u32>,
}

impl Attached {
    /// A kernel interface, with nothing else to report.
    pub fn kernel_interface() -> Attached {
        Attached {
            kernel_interface: true,
            ..Attached::default()
        }
    }

    /// A userspace interface described by `device_info`.
    pub fn userspace(device_info: DeviceInfo) -> Attached {
        Attached {
            kernel_interface: false,
            device_info: Some(device_info),
            ..Attached::default()
        }
    }

    /// Adds the device behind a kernel interface (an SR-IOV VF's PCI address).
    pub fn with_device_info(mut self, device_info: DeviceInfo) -> Attached {
        self.device_info = Some(device_info);
        self
    }

    /// Adds addresses and gateways the kind configured itself.
    pub fn with_ips(mut self, ips: Vec<IpPrefix>, gateways: Vec<IpAddr>) -> Attached {
        self.ips = ips;
        self.gateways = gateways;
        self
    }

    /// Adds resolver settings.
    pub fn with_dns(mut self, dns: Dns) -> Attached {
        self.dns = dns;
        self
    }
}
