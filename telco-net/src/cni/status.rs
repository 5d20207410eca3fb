//! [`NetworkStatus`]: one entry of the Kubernetes network-status list
//! (`k8s.v1.cni.cncf.io/network-status`, NPWG multi-network spec v1.3 section 5).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{DeviceInfo, Dns};

/// The pod annotation that carries the network-status list.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";

/// One attachment of a pod as the network-status list reports it.
///
/// The JSON keys are those of the NPWG network-attachment-definition client library: `name`,
/// `interface`, `ips`, `mac`, `mtu`, `default`, `dns`, `device-info` and `gateway` (the spec text
/// calls the last one `default-route`; it is accepted on input). Empty fields are left out.
///
/// ```
/// use telco_net::cni::NetworkStatus;
///
/// let mut status = NetworkStatus::new("default/data");
/// status.interface = Some("net1".to_owned());
/// status.ips = vec!["10.1.0.5".parse().unwrap()];
/// let json = serde_json::to_string(&status).unwrap();
/// assert_eq!(json, r#"{"name":"default/data","interface":"net1","ips":["10.1.0.5"]}"#);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NetworkStatus {
    /// `name`: the network, `namespace/name` for a NetworkAttachmentDefinition.
    pub name: String,
    /// `interface`: the interface name inside the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `ips`: the interface's addresses, without prefix length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// `mac`: the hardware address as text. It stays text because InfiniBand addresses are 20
    /// bytes, which [`telco_core::MacAddr`] cannot hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `mtu`: the interface MTU in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// `default`: true for the one attachment that holds the pod's default route.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// `dns`: resolver settings the network gave.
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
    /// `device-info`: the device behind the attachment.
    #[serde(
        rename = "device-info",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub device_info: Option<DeviceInfo>,
    /// `gateway`: the default-route gateways requested for this attachment.
    #[serde(
        alias = "default-route",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gateway: Vec<IpAddr>,
}

impl NetworkStatus {
    /// Creates an entry for the network `name` with every other field empty.
    pub fn new(name: impl Into<String>) -> Self {
        NetworkStatus {
            name: name.into(),
            ..NetworkStatus::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::{PciDevice, VhostUserDevice, VhostUserMode};
    use serde_json::json;

    #[test]
    fn full_entry_uses_npwg_keys() {
        let status = NetworkStatus {
            name: "default/sriov-net".to_owned(),
            interface: Some("net1".to_owned()),
            ips: vec!["10.56.217.171".parse().unwrap(), "fd00::5".parse().unwrap()],
            mac: Some("02:00:00:aa:bb:cc".to_owned()),
            mtu: Some(9000),
            default: true,
            dns: Dns {
                nameservers: vec!["10.0.0.10".to_owned()],
                domain: Some("cluster.local".to_owned()),
                search: vec!["svc.cluster.local".to_owned()],
                options: vec!["ndots:5".to_owned()],
            },
            device_info: Some(DeviceInfo::new(
                PciDevice::new("0000:18:02.5".parse().unwrap()).into(),
            )),
            gateway: vec!["10.56.217.1".parse().unwrap()],
        };
        let value = serde_json::to_value(&status).unwrap();
        assert_eq!(
            value,
            json!({
                "name": "default/sriov-net", "interface": "net1",
                "ips": ["10.56.217.171", "fd00::5"], "mac": "02:00:00:aa:bb:cc", "mtu": 9000,
                "default": true,
                "dns": {"nameservers": ["10.0.0.10"], "domain": "cluster.local",
                        "search": ["svc.cluster.local"], "options": ["ndots:5"]},
                "device-info": {"type": "pci", "version": "1.1.0",
                                "pci": {"pci-address": "0000:18:02.5"}},
                "gateway": ["10.56.217.1"]
            })
        );
        let back: NetworkStatus = serde_json::from_value(value).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn empty_fields_are_left_out() {
        let status = NetworkStatus::new("mgmt");
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"name":"mgmt"}"#
        );
    }

    #[test]
    fn multus_list_with_default_route_key_parses() {
        let text = r#"[
          {"name": "cbr0", "interface": "eth0", "ips": ["10.244.1.4"], "mac": "0a:58:0a:f4:01:04",
           "default": true, "dns": {}},
          {"name": "default/vhu", "interface": "net1", "default-route": ["192.168.1.1"],
           "device-info": {"type": "vhost-user", "version": "1.1.0",
                           "vhost-user": {"mode": "server", "path": "/var/run/vhu/net1.sock"}}}
        ]"#;
        let list: Vec<NetworkStatus> = serde_json::from_str(text).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].default);
        assert!(list[0].dns.is_empty());
        assert_eq!(
            list[1].gateway,
            vec!["192.168.1.1".parse::<IpAddr>().unwrap()]
        );
        let expected = DeviceInfo::new(
            VhostUserDevice::new(VhostUserMode::Server, "/var/run/vhu/net1.sock").into(),
        );
        assert_eq!(list[1].device_info, Some(expected));
    }
}
