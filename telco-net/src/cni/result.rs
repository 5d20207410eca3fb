//! [`CniResult`]: the ADD success result of CNI 1.0 and 1.1, read from and written for every
//! version from 0.3.0 on.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Device, DeviceInfo, Dns, ErrorCode, IpNet, NetworkStatus, PluginError, Version};

/// The result of ADD (CNI spec "Success"), also the `prevResult` of chained plugins.
///
/// Reads results of versions 0.3.0 to 1.1.0: the `ips[].version` key of 0.3.x and 0.4.0 is
/// ignored on input and written back by [`CniResult::to_value`] for those versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CniResult {
    /// `cniVersion`: the version of this result, equal to the request's version.
    pub cni_version: String,
    /// `interfaces`: every interface the plugins created, host side included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// `ips`: the assigned addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// `routes`: the routes the plugins installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// `dns`: resolver settings.
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

/// One entry of `interfaces`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Interface {
    /// `name`: the interface name.
    pub name: String,
    /// `mac`: the hardware address as text (InfiniBand addresses do not fit a `MacAddr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `mtu`: the MTU in bytes (CNI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// `sandbox`: the namespace path for a container interface; absent for a host interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// `socketPath`: the vhost-user or memif socket of a userspace interface (CNI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// `pciID`: the PCI address of an SR-IOV VF or DPDK device (CNI 1.1). It stays text so that a
    /// plugin's value passes through unchanged.
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

impl Interface {
    /// Creates an entry with only a name.
    pub fn new(name: impl Into<String>) -> Self {
        Interface {
            name: name.into(),
            ..Interface::default()
        }
    }

    /// Returns true when the interface lives in a container (a non-empty `sandbox`).
    pub fn in_sandbox(&self) -> bool {
        self.sandbox.as_deref().is_some_and(|s| !s.is_empty())
    }
}

/// One entry of `ips`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IpConfig {
    /// `address`: the address with its prefix length.
    pub address: IpNet,
    /// `gateway`: the default gateway on this subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// `interface`: index into `interfaces`; IPAM results leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

impl IpConfig {
    /// Creates an entry with no gateway and no interface index.
    pub fn new(address: IpNet) -> Self {
        IpConfig {
            address,
            gateway: None,
            interface: None,
        }
    }
}

/// One entry of `routes`. The numeric fields are CNI 1.1 additions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Route {
    /// `dst`: the destination network.
    pub dst: IpNet,
    /// `gw`: the next hop; absent means the interface's default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// `mtu`: path MTU of the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// `advmss`: advertised TCP MSS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// `priority`: route metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// `table`: routing table; 0 survives a round trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// `scope`: 0 global, 253 link, 254 host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    /// Creates a route to `dst` with only an optional gateway.
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

impl CniResult {
    /// Creates an empty result of `cni_version`.
    pub fn new(cni_version: impl Into<String>) -> Self {
        CniResult {
            cni_version: cni_version.into(),
            ..CniResult::default()
        }
    }

    /// Parses a result, or `prevResult`, of any version from 0.3.0 to 1.1.0.
    ///
    /// # Errors
    ///
    /// Code 1 for a version this crate does not read, code 6 for JSON that is not a result.
    pub fn from_value(value: Value) -> Result<Self, PluginError> {
        let version = value
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        check_result_version(version)?;
        serde_json::from_value(value).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::DECODING_FAILURE,
                "failed to decode CNI result",
                &error,
            )
        })
    }

    /// The result as JSON in the layout of its own `cniVersion`: versions before 1.0.0 get
    /// `ips[].version` ("4" or "6").
    pub fn to_value(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        let before_1_0 = self
            .cni_version
            .parse::<Version>()
            .is_ok_and(|v| v < Version::V1_0_0);
        if before_1_0 {
            let ips = value.get_mut("ips").and_then(Value::as_array_mut);
            for (ip, config) in ips.into_iter().flatten().zip(&self.ips) {
                let family = if config.address.addr().is_ipv4() {
                    "4"
                } else {
                    "6"
                };
                ip["version"] = Value::from(family);
            }
        }
        value
    }

    /// Returns a copy converted to `cni_version`. The layouts from 0.3.0 to 1.1.0 differ only in
    /// `ips[].version`, which [`CniResult::to_value`] adds, so only the version string changes.
    ///
    /// # Errors
    ///
    /// Code 1 when this crate does not write `cni_version`.
    pub fn convert_to(&self, cni_version: &str) -> Result<Self, PluginError> {
        check_result_version(cni_version)?;
        let mut converted = self.clone();
        converted.cni_version = cni_version.to_owned();
        Ok(converted)
    }

    /// The first interface inside the container, with the addresses that point at it; when no
    /// interface has a sandbox, the addresses without an interface index (multi-network spec
    /// v1.3 section 5).
    pub fn container_interface(&self) -> (Option<&Interface>, Vec<&IpConfig>) {
        let sandboxed = self.interfaces.iter().position(Interface::in_sandbox);
        let ips = self
            .ips
            .iter()
            .filter(|ip| ip.interface == sandboxed)
            .collect();
        (sandboxed.map(|index| &self.interfaces[index]), ips)
    }

    /// Builds the network-status entry of the network `name` from this result.
    pub fn to_network_status(&self, name: impl Into<String>) -> NetworkStatus {
        let (interface, ips) = self.container_interface();
        let mut status = NetworkStatus::new(name);
        if let Some(interface) = interface {
            status.interface = Some(interface.name.clone());
            status.mac = interface.mac.clone().filter(|mac| !mac.is_empty());
            status.mtu = interface.mtu;
        }
        status.ips = ips.iter().map(|ip| ip.address.addr()).collect();
        status.dns = self.dns.clone();
        status
    }
}

impl CniResult {
    /// Builds a result of `cni_version` from network-status entries (what
    /// [`Attacher::attach`](crate::attach::Attacher::attach) returns), one `interfaces` entry
    /// per status entry, in order. `sandbox` is the pod's namespace path, such as
    /// `/var/run/netns/pod1`.
    ///
    /// - An entry whose `device-info` is of type `memif` or `vhost-user` is a userspace
    ///   interface: it gets `socketPath` from the device-info `path`, the MAC and MTU when the
    ///   entry has them, and no `sandbox` and no addresses.
    /// - Any other entry is a kernel interface in `sandbox`, with its MAC and MTU, `pciID` from a
    ///   `pci` device-info, and one `ips` entry per address that points at it. An address gets
    ///   the entry's gateway of the same family.
    /// - The default entry's gateways become default routes, and its DNS settings (else the
    ///   first non-empty ones) become the result's.
    ///
    /// An entry without an interface name is reported under its network name.
    // NOTE: network-status entries carry addresses without a prefix length, so each address
    // becomes a host prefix (/32 or /128) here.
    pub fn from_network_status(
        cni_version: impl Into<String>,
        sandbox: &str,
        statuses: &[NetworkStatus],
    ) -> CniResult {
        let mut result = CniResult::new(cni_version);
        for status in statuses {
            let index = result.interfaces.len();
            let mut interface = Interface::new(
                status
                    .interface
                    .clone()
                    .unwrap_or_else(|| status.name.clone()),
            );
            interface.mac = status.mac.clone();
            interface.mtu = status.mtu;
            match userspace_socket(status.device_info.as_ref()) {
                Some(socket) => interface.socket_path = Some(socket),
                None => {
                    interface.sandbox = Some(sandbox.to_owned());
                    interface.pci_id = pci_address(status.device_info.as_ref());
                    result.ips.extend(status.ips.iter().map(|address| {
                        let mut ip = IpConfig::new(host_prefix(*address));
                        ip.gateway = same_family(&status.gateway, *address);
                        ip.interface = Some(index);
                        ip
                    }));
                }
            }
            result.interfaces.push(interface);
            if status.default {
                result.routes.extend(status.gateway.iter().map(|gateway| {
                    let any = if gateway.is_ipv4() {
                        IpAddr::from([0u8; 4])
                    } else {
                        IpAddr::from([0u16; 8])
                    };
                    Route::new(
                        IpNet::new(any, 0).expect("/0 fits every family"),
                        Some(*gateway),
                    )
                }));
            }
        }
        let dns = statuses
            .iter()
            .find(|status| status.default && !status.dns.is_empty())
            .or_else(|| statuses.iter().find(|status| !status.dns.is_empty()));
        if let Some(status) = dns {
            result.dns = status.dns.clone();
        }
        result
    }
}

/// Returns the socket path of a memif or vhost-user device, as text.
fn userspace_socket(info: Option<&DeviceInfo>) -> Option<String> {
    match &info?.device {
        Device::Memif(memif) => Some(memif.path.display().to_string()),
        Device::VhostUser(vhost) => Some(vhost.path.display().to_string()),
        _ => None,
    }
}

/// Returns the PCI address of a `pci` device, as text.
fn pci_address(info: Option<&DeviceInfo>) -> Option<String> {
    match &info?.device {
        Device::Pci(pci) => pci.pci_address.map(|address| address.to_string()),
        _ => None,
    }
}

fn host_prefix(address: IpAddr) -> IpNet {
    let bits = if address.is_ipv4() { 32 } else { 128 };
    IpNet::new(address, bits).expect("the full length fits the family")
}

fn same_family(gateways: &[IpAddr], address: IpAddr) -> Option<IpAddr> {
    gateways
        .iter()
        .find(|gateway| gateway.is_ipv4() == address.is_ipv4())
        .copied()
}

fn check_result_version(version: &str) -> Result<(), PluginError> {
    let supported = version.parse::<Version>().is_ok_and(|v| v.is_supported());
    if supported {
        return Ok(());
    }
    Err(PluginError::new(
        ErrorCode::INCOMPATIBLE_VERSION,
        format!("unsupported CNI result version \"{version}\""),
    )
    .details("this implementation reads and writes results of versions 0.3.0 to 1.1.0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_example() -> Value {
        json!({
            "cniVersion": "1.1.0",
            "interfaces": [
                {"name": "cni0", "mac": "00:11:22:33:44:55"},
                {"name": "veth3243", "mac": "55:44:33:22:11:11"},
                {"name": "eth0", "mac": "00:11:22:33:44:66", "mtu": 1500,
                 "sandbox": "/var/run/netns/blue", "socketPath": "/var/run/vhu/x.sock",
                 "pciID": "0000:18:02.5"}
            ],
            "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1", "mtu": 1400, "advmss": 1360,
                        "priority": 10, "table": 0, "scope": 0}],
            "dns": {"nameservers": ["10.1.0.1"]}
        })
    }

    #[test]
    fn spec_result_round_trips_exactly() {
        let value = spec_example();
        let result = CniResult::from_value(value.clone()).unwrap();
        assert_eq!(result.interfaces[2].pci_id.as_deref(), Some("0000:18:02.5"));
        assert_eq!(
            result.interfaces[2].socket_path.as_deref(),
            Some("/var/run/vhu/x.sock")
        );
        assert_eq!(result.routes[0].table, Some(0));
        assert_eq!(result.to_value(), value);
    }

    #[test]
    fn old_results_gain_ip_version_on_output() {
        let old = json!({"cniVersion": "0.4.0",
                         "ips": [{"version": "4", "address": "10.0.0.2/24"},
                                 {"version": "6", "address": "fd00::2/64"}]});
        let result = CniResult::from_value(old.clone()).unwrap();
        assert_eq!(result.to_value(), old);
        let new = result.convert_to("1.0.0").unwrap().to_value();
        assert_eq!(new["ips"][0], json!({"address": "10.0.0.2/24"}));
    }

    #[test]
    fn unsupported_result_versions_get_code_1() {
        let error = CniResult::from_value(json!({"cniVersion": "0.2.0", "ip4": {}})).unwrap_err();
        assert_eq!(error.code, ErrorCode::INCOMPATIBLE_VERSION);
        let error = CniResult::from_value(json!({"ips": []})).unwrap_err();
        assert_eq!(error.code, ErrorCode::INCOMPATIBLE_VERSION);
        let error =
            CniResult::from_value(json!({"cniVersion": "1.0.0", "ips": [{"address": "x"}]}))
                .unwrap_err();
        assert_eq!(error.code, ErrorCode::DECODING_FAILURE);
    }

    #[test]
    fn network_status_comes_from_sandbox_interface() {
        let result = CniResult::from_value(spec_example()).unwrap();
        let status = result.to_network_status("default/blue");
        assert_eq!(status.interface.as_deref(), Some("eth0"));
        assert_eq!(status.mac.as_deref(), Some("00:11:22:33:44:66"));
        assert_eq!(status.mtu, Some(1500));
        assert_eq!(status.ips, vec!["10.1.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(status.dns.nameservers, vec!["10.1.0.1".to_owned()]);
    }

    fn memif_status() -> NetworkStatus {
        let mut status = NetworkStatus::new("data");
        status.interface = Some("memif0".to_owned());
        status.mac = Some("02:00:00:00:00:07".to_owned());
        status.device_info = Some(DeviceInfo::new(
            super::super::MemifDevice::new(
                super::super::MemifRole::Slave,
                "/run/memif/memif-abc-memif0.sock",
            )
            .into(),
        ));
        status
    }

    #[test]
    fn memif_status_becomes_socket_path() {
        let result = CniResult::from_network_status("1.1.0", "/var/run/netns/p", &[memif_status()]);
        let value = result.to_value();
        assert_eq!(
            value["interfaces"],
            json!([{"name": "memif0", "mac": "02:00:00:00:00:07",
                    "socketPath": "/run/memif/memif-abc-memif0.sock"}])
        );
        assert!(result.ips.is_empty(), "{value}");
        assert!(!result.interfaces[0].in_sandbox());
    }

    #[test]
    fn vhost_user_status_becomes_socket_path() {
        let mut status = NetworkStatus::new("vhu");
        status.interface = Some("net2".to_owned());
        status.device_info = Some(DeviceInfo::new(
            super::super::VhostUserDevice::new(
                super::super::VhostUserMode::Client,
                "/var/run/vhu/net2.sock",
            )
            .into(),
        ));
        let result = CniResult::from_network_status("1.1.0", "/var/run/netns/p", &[status]);
        assert_eq!(
            result.to_value()["interfaces"],
            json!([{"name": "net2", "socketPath": "/var/run/vhu/net2.sock"}])
        );
    }

    #[test]
    fn kernel_status_keeps_sandbox_ips_and_routes() {
        let mut mgmt = NetworkStatus::new("mgmt");
        mgmt.interface = Some("eth0".to_owned());
        mgmt.mac = Some("0a:58:0a:f4:01:04".to_owned());
        mgmt.mtu = Some(1500);
        mgmt.ips = vec!["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        mgmt.gateway = vec!["10.1.0.1".parse().unwrap()];
        mgmt.default = true;
        mgmt.dns.nameservers = vec!["10.1.0.1".to_owned()];
        let mut vf = NetworkStatus::new("sriov");
        vf.interface = Some("net1".to_owned());
        vf.ips = vec!["10.2.0.7".parse().unwrap()];
        vf.device_info = Some(DeviceInfo::new(
            super::super::PciDevice::new("0000:18:02.5".parse().unwrap()).into(),
        ));
        let statuses = [mgmt, vf, memif_status()];

        let result = CniResult::from_network_status("1.1.0", "/var/run/netns/p", &statuses);
        let value = result.to_value();
        assert_eq!(
            value["interfaces"][0],
            json!({"name": "eth0", "mac": "0a:58:0a:f4:01:04", "mtu": 1500,
                   "sandbox": "/var/run/netns/p"})
        );
        assert_eq!(
            value["interfaces"][1],
            json!({"name": "net1", "sandbox": "/var/run/netns/p", "pciID": "0000:18:02.5"})
        );
        assert_eq!(
            value["ips"],
            json!([{"address": "10.1.0.5/32", "gateway": "10.1.0.1", "interface": 0},
                   {"address": "fd00::5/128", "interface": 0},
                   {"address": "10.2.0.7/32", "interface": 1}])
        );
        assert_eq!(
            value["routes"],
            json!([{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}])
        );
        assert_eq!(value["dns"], json!({"nameservers": ["10.1.0.1"]}));
        assert_eq!(
            value["interfaces"][2]["socketPath"],
            "/run/memif/memif-abc-memif0.sock"
        );

        // The result reads back into the same entry for the first sandboxed interface.
        let back = result.to_network_status("mgmt");
        assert_eq!(back.interface.as_deref(), Some("eth0"));
        assert_eq!(back.ips, statuses[0].ips);
    }

    #[test]
    fn network_status_without_sandbox_uses_unindexed_ips() {
        let result = CniResult::from_value(json!({"cniVersion": "1.0.0",
            "ips": [{"address": "10.9.0.3/24"}, {"address": "10.8.0.3/24", "interface": 0}]}))
        .unwrap();
        let status = result.to_network_status("n");
        assert_eq!(status.interface, None);
        assert_eq!(status.ips, vec!["10.9.0.3".parse::<IpAddr>().unwrap()]);
    }
}
