//! [`CniResult`]: the ADD success result of CNI 1.0 and 1.1, read from and written for every
//! version from 0.3.0 on.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Dns, ErrorCode, IpNet, NetworkStatus, PluginError, Version};

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
