//! The pod spec: what `vnf-pod` places, read from JSON.
//!
//! ```json
//! {"name": "upf1",
//!  "cpus": {"count": 2, "full_pcpus_only": true, "align_with": "data", "policy": "restricted"},
//!  "hugepages": {"size_kib": 2048, "count": 256},
//!  "networks": [
//!    {"name": "mgmt", "ifname": "eth0", "kind": "veth", "bridge": "br-mgmt",
//!     "ips": ["10.10.0.5/24"], "gateway": "10.10.0.1"},
//!    {"name": "data", "kind": "sriov", "pf": "ens1f0", "vlan": 100, "ips": ["10.20.0.5/24"]},
//!    {"name": "fast", "kind": "memif", "role": "master"}],
//!  "command": ["/usr/bin/upf", "--config", "/etc/upf.conf"]}
//! ```
//!
//! Every object rejects unknown fields, and every error names the field it is about in the
//! form `networks[1].mode: unknown macvlan mode "foo"`. Checks that span fields (a unique
//! interface name per network, `align_with` naming a network, a gateway inside one of the
//! network's subnets) run after parsing, with the same kind of message.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use telco_core::{InterfaceName, MacAddr};
use telco_net::addr::IpPrefix;
use telco_net::cni::{MemifMode, MemifRole};
use telco_net::link::{IpvlanMode, MacvlanMode};

/// Maximum pod name length in bytes. The name becomes a network namespace name, a cgroup directory
/// and, with a suffix, part of host interface names, so it stays short.
pub const MAX_NAME_LEN: usize = 32;

/// A spec that could not be read, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field_prefix(.field))]
pub struct SpecError {
    /// Path of the field, such as `networks[1].mode`; empty for the whole document.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

impl SpecError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One pod: its CPUs, hugepages, networks and the command it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PodSpec {
    /// Pod name: the network namespace's name and the key of its state under `/run/telco`.
    pub name: String,
    /// The exclusive CPUs the pod requests.
    pub cpus: CpuRequest,
    /// Hugepages to reserve for the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hugepages: Option<HugepageRequest>,
    /// Networks, attached in this order.
    pub networks: Vec<NetworkSpec>,
    /// The command to run inside the pod; empty when the caller gives it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// The pod's request for exclusive CPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CpuRequest {
    /// Number of CPUs (hardware threads).
    pub count: usize,
    /// Allocate whole physical cores only, as the kubelet's `full-pcpus-only` option does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_pcpus_only: bool,
    /// Name of the network whose device the CPUs should share a NUMA node with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align_with: Option<String>,
    /// How the topology hints are merged.
    #[serde(default)]
    pub policy: TopologyPolicy,
}

/// The topology manager policy, as the kubelet's `--topology-manager-policy` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopologyPolicy {
    /// `none`: no alignment.
    None,
    /// `best-effort`: the best merged hint, even when it is not preferred.
    #[default]
    BestEffort,
    /// `restricted`: fail unless the best merged hint is preferred.
    Restricted,
    /// `single-numa-node`: fail unless everything fits on one NUMA node.
    SingleNumaNode,
}

impl TopologyPolicy {
    /// Returns the policy's name, as the spec and the kubelet spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            TopologyPolicy::None => "none",
            TopologyPolicy::BestEffort => "best-effort",
            TopologyPolicy::Restricted => "restricted",
            TopologyPolicy::SingleNumaNode => "single-numa-node",
        }
    }
}

impl<'de> Deserialize<'de> for TopologyPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "none" => Ok(TopologyPolicy::None),
            "best-effort" => Ok(TopologyPolicy::BestEffort),
            "restricted" => Ok(TopologyPolicy::Restricted),
            "single-numa-node" => Ok(TopologyPolicy::SingleNumaNode),
            _ => Err(de::Error::custom(format!(
                "unknown topology manager policy {text:?}; expected none, best-effort, \
                 restricted or single-numa-node"
            ))),
        }
    }
}

/// Hugepages to reserve, from the NUMA node the pod lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HugepageRequest {
    /// Page size in KiB: 2048 or 1048576 on x86-64.
    pub size_kib: u64,
    /// Number of pages.
    pub count: u64,
}

/// One network of the pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NetworkSpec {
    /// Network name, as the network-status list reports it.
    pub name: String,
    /// Interface name inside the pod, or for memif the name the status entry reports. When
    /// the spec gives none it is `netN`, N the position from 1, as Multus names them.
    pub ifname: InterfaceName,
    /// How the interface is made.
    #[serde(flatten)]
    pub kind: NetworkKind,
}

/// The kind of a network and its settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NetworkKind {
    /// A veth pair, the host end optionally on a bridge.
    Veth(VethSpec),
    /// A macvlan on a parent link.
    Macvlan(MacvlanSpec),
    /// An ipvlan on a parent link.
    Ipvlan(IpvlanSpec),
    /// An 802.1Q VLAN on a parent link.
    Vlan(VlanSpec),
    /// A host netdev moved into the pod.
    HostDevice(HostDeviceSpec),
    /// An SR-IOV virtual function.
    Sriov(SriovSpec),
    /// A memif shared-memory interface.
    Memif(MemifSpec),
    /// A tap device inside the pod.
    Tap(TapSpec),
    /// A CNI network configuration list run with the plugins on `CNI_PATH`.
    Cni(CniSpec),
}

impl NetworkKind {
    /// Returns the `kind` text.
    pub fn name(&self) -> &'static str {
        match self {
            NetworkKind::Veth(_) => "veth",
            NetworkKind::Macvlan(_) => "macvlan",
            NetworkKind::Ipvlan(_) => "ipvlan",
            NetworkKind::Vlan(_) => "vlan",
            NetworkKind::HostDevice(_) => "host-device",
            NetworkKind::Sriov(_) => "sriov",
            NetworkKind::Memif(_) => "memif",
            NetworkKind::Tap(_) => "tap",
            NetworkKind::Cni(_) => "cni",
        }
    }

    /// Returns the addresses and gateway the spec gives, empty for kinds whose addresses come from
    /// elsewhere (CNI IPAM) or that have none (memif).
    pub fn addressing(&self) -> (&[IpPrefix], Option<IpAddr>) {
        match self {
            NetworkKind::Veth(spec) => (&spec.ips, spec.gateway),
            NetworkKind::Macvlan(spec) => (&spec.ips, spec.gateway),
            NetworkKind::Ipvlan(spec) => (&spec.ips, spec.gateway),
            NetworkKind::Vlan(spec) => (&spec.ips, spec.gateway),
            NetworkKind::HostDevice(spec) => (&spec.ips, spec.gateway),
            NetworkKind::Sriov(spec) => (&spec.ips, spec.gateway),
            NetworkKind::Tap(spec) => (&spec.ips, spec.gateway),
            NetworkKind::Memif(_) | NetworkKind::Cni(_) => (&[], None),
        }
    }
}

/// `veth`: a pair whose host end may join a bridge (created when missing), like the CNI
/// `bridge` plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VethSpec {
    /// Bridge for the host end; created when it does not exist and removed with the pod then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<InterfaceName>,
    /// Addresses of the pod end, in CIDR notation.
    #[serde(default)]
    pub ips: Vec<IpPrefix>,
    /// Default gateway through this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// MTU in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Hardware address of the pod end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
}

/// `macvlan`: a child of `master` moved into the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MacvlanSpec {
    /// Parent link on the host.
    pub master: InterfaceName,
    /// Macvlan mode; bridge by default.
    #[serde(default, deserialize_with = "macvlan_mode")]
    pub mode: MacvlanMode,
    /// Addresses in CIDR notation.
    #[serde(default)]
    pub ips: Vec<IpPrefix>,
    /// Default gateway through this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// MTU in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
}

/// `ipvlan`: a child of `master` that shares its MAC, moved into the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IpvlanSpec {
    /// Parent link on the host.
    pub master: InterfaceName,
    /// Ipvlan mode; l2 by default.
    #[serde(default, deserialize_with = "ipvlan_mode")]
    pub mode: IpvlanMode,
    /// Addresses in CIDR notation.
    #[serde(default)]
    pub ips: Vec<IpPrefix>,
    /// Default gateway through this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// MTU in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// `vlan`: an 802.1Q sub-interface of `master` moved into the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VlanSpec {
    /// Parent link on the host.
    pub master: InterfaceName,
    /// VLAN id, 1 to 4094.
    pub id: u16,
    /// Addresses in CIDR notation.
    #[serde(default)]
    pub ips: Vec<IpPrefix>,
    /// Default gateway through this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// MTU in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// `host-device`: an existing host netdev moved into the pod and moved back on teardown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HostDeviceSpec {
    /// The host link's name.
    pub device: InterfaceName,
    /// Addresses in CIDR notation.
    #[serde(default)]
    pub ips: Vec<IpPrefix>,
    /// Default gateway through this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// `sriov`: a virtual function of a physical function, from a named pool or a PF link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SriovSpec {
    /// Resource pool to take a VF from (such as `intel.com/sriov_netdevice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// PF link to take a VF from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pf: Option<InterfaceName>,
    /// Hardware address of the VF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// VLAN id the PF tags the VF's traffic with, 0 to 4094.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// 802.1p priority of that VLAN, 0 to 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_qos: Option<u8>,
    /// MAC spoof checking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoofchk: Option<bool>,
    /// Trusted mode (promiscuous and MAC changes allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<bool>,
    /// Minimum transmit rate in Mbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tx_rate: Option<u32>,
    /// Maximum transmit rate in Mbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tx_rate: Option<u32>,
    /// Addresses in CIDR notation.
    #[serde(default)]
    pub ips: Vec<IpPrefix>,
    /// Default gateway through this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// `memif`: a shared-memory packet interface reached through a unix socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemifSpec {
    /// The workload's role: `master` creates the socket, `slave` connects to it.
    #[serde(deserialize_with = "memif_role")]
    pub role: MemifRole,
    /// Socket path; by default a file in the pod's directory under `/run/telco`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Interface mode; ethernet by default.
    #[serde(default, deserialize_with = "memif_mode")]
    pub mode: MemifMode,
}

/// `tap`: a tap device made inside the pod, for a VM or a userspace stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TapSpec {
    /// Addresses in CIDR notation.
    #[serde(default)]
    pub ips: Vec<IpPrefix>,
    /// Default gateway through this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// MTU in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
}

/// `cni`: a CNI network configuration list, given inline or as a file path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CniSpec {
    /// The conflist: a JSON object, or the path of a `.conflist` file.
    pub conflist: Value,
}

fn macvlan_mode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<MacvlanMode, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.as_str() {
        "bridge" => Ok(MacvlanMode::Bridge),
        "private" => Ok(MacvlanMode::Private),
        "vepa" => Ok(MacvlanMode::Vepa),
        "passthru" => Ok(MacvlanMode::Passthru),
        "source" => Ok(MacvlanMode::Source),
        _ => Err(de::Error::custom(format!(
            "unknown macvlan mode {text:?}; expected bridge, private, vepa, passthru or source"
        ))),
    }
}

fn ipvlan_mode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<IpvlanMode, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.as_str() {
        "l2" => Ok(IpvlanMode::L2),
        "l3" => Ok(IpvlanMode::L3),
        "l3s" => Ok(IpvlanMode::L3s),
        _ => Err(de::Error::custom(format!(
            "unknown ipvlan mode {text:?}; expected l2, l3 or l3s"
        ))),
    }
}

fn memif_role<'de, D: Deserializer<'de>>(deserializer: D) -> Result<MemifRole, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.as_str() {
        "master" => Ok(MemifRole::Master),
        "slave" => Ok(MemifRole::Slave),
        _ => Err(de::Error::custom(format!(
            "unknown memif role {text:?}; expected master or slave"
        ))),
    }
}

fn memif_mode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<MemifMode, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.as_str() {
        "ethernet" => Ok(MemifMode::Ethernet),
        "ip" => Ok(MemifMode::Ip),
        "inject-punt" => Ok(MemifMode::InjectPunt),
        _ => Err(de::Error::custom(format!(
            "unknown memif mode {text:?}; expected ethernet, ip or inject-punt"
        ))),
    }
}

/// The document's top level as serde reads it; networks are read one by one afterwards,
/// because their fields depend on `kind`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    cpus: CpuRequest,
    #[serde(default)]
    hugepages: Option<HugepageRequest>,
    #[serde(default)]
    networks: Vec<Value>,
    #[serde(default)]
    command: Option<Vec<String>>,
}

impl PodSpec {
    /// Checks that `vnf-pod up` can place this spec. `up` exits once the pod is placed, but a
    /// memif network whose workload is the `slave` needs `vnf-pod`'s echo responder as its
    /// server, which lives only as long as the `vnf-pod` process.
    pub fn check_for_up(&self) -> Result<(), SpecError> {
        for (index, network) in self.networks.iter().enumerate() {
            if let NetworkKind::Memif(memif) = &network.kind
                && memif.role == MemifRole::Slave
            {
                return Err(SpecError::new(
                    format!("networks[{index}].role"),
                    "a slave workload needs vnf-pod's memif echo responder, which runs only \
                     while `vnf-pod run` runs; use `vnf-pod run`, or role master with the \
                     peer in the workload",
                ));
            }
        }
        Ok(())
    }

    /// Parses and checks a spec from JSON text.
    pub fn from_json(text: &str) -> Result<PodSpec, SpecError> {
        let mut json = serde_json::Deserializer::from_str(text);
        let raw: RawSpec = deserialize_tracked(&mut json, "")?;
        json.end()
            .map_err(|error| SpecError::new("", error.to_string()))?;
        PodSpec::from_raw(raw)
    }

    fn from_raw(raw: RawSpec) -> Result<PodSpec, SpecError> {
        let networks = raw
            .networks
            .into_iter()
            .enumerate()
            .map(|(index, value)| parse_network(index, value))
            .collect::<Result<Vec<_>, _>>()?;
        let spec = PodSpec {
            name: raw.name,
            cpus: raw.cpus,
            hugepages: raw.hugepages,
            networks,
            command: raw.command.unwrap_or_default(),
        };
        spec.check()?;
        Ok(spec)
    }

    /// Formats the spec as JSON text that [`PodSpec::from_json`] reads back.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a spec always serialises")
    }

    /// Returns the network named `name`.
    pub fn network(&self, name: &str) -> Option<&NetworkSpec> {
        self.networks.iter().find(|network| network.name == name)
    }

    /// Checks what spans fields: names, counts, interface names, gateways.
    fn check(&self) -> Result<(), SpecError> {
        check_pod_name(&self.name)?;
        if self.cpus.count == 0 {
            return Err(SpecError::new("cpus.count", "must be at least 1"));
        }
        if let Some(target) = &self.cpus.align_with
            && self.network(target).is_none()
        {
            return Err(SpecError::new(
                "cpus.align_with",
                format!("no network named {target:?} in networks"),
            ));
        }
        if let Some(hugepages) = &self.hugepages {
            if hugepages.size_kib == 0 || !hugepages.size_kib.is_power_of_two() {
                return Err(SpecError::new(
                    "hugepages.size_kib",
                    format!(
                        "{} is not a page size (a power of two in KiB)",
                        hugepages.size_kib
                    ),
                ));
            }
            if hugepages.count == 0 {
                return Err(SpecError::new("hugepages.count", "must be at least 1"));
            }
        }
        if let Some(program) = self.command.first()
            && program.is_empty()
        {
            return Err(SpecError::new("command[0]", "empty program name"));
        }
        self.check_networks()
    }

    fn check_networks(&self) -> Result<(), SpecError> {
        let mut names = BTreeSet::new();
        let mut ifnames = BTreeSet::new();
        let mut gateway_owner: Option<&str> = None;
        for (index, network) in self.networks.iter().enumerate() {
            let field = |name: &str| format!("networks[{index}].{name}");
            if !names.insert(network.name.as_str()) {
                return Err(SpecError::new(
                    field("name"),
                    format!("network name {:?} is used twice", network.name),
                ));
            }
            if !ifnames.insert(network.ifname.as_str()) {
                return Err(SpecError::new(
                    field("ifname"),
                    format!("interface name {:?} is used twice", network.ifname.as_str()),
                ));
            }
            let (ips, gateway) = network.kind.addressing();
            if let Some(gateway) = gateway {
                if let Some(owner) = gateway_owner {
                    return Err(SpecError::new(
                        field("gateway"),
                        format!("network {owner:?} already has the default gateway"),
                    ));
                }
                gateway_owner = Some(&network.name);
                if !ips.iter().any(|ip| ip.network().contains(gateway)) {
                    return Err(SpecError::new(
                        field("gateway"),
                        format!("{gateway} is in none of the subnets of ips"),
                    ));
                }
            }
            check_kind(&network.kind, &field)?;
        }
        Ok(())
    }
}

/// Checks the values of one kind that serde cannot: ranges and either-or fields.
fn check_kind(kind: &NetworkKind, field: &dyn Fn(&str) -> String) -> Result<(), SpecError> {
    match kind {
        NetworkKind::Vlan(vlan) if !(1..=4094).contains(&vlan.id) => Err(SpecError::new(
            field("id"),
            format!("VLAN id {} is outside 1 to 4094", vlan.id),
        )),
        NetworkKind::Sriov(sriov) => {
            match (&sriov.pool, &sriov.pf) {
                (Some(_), Some(_)) => {
                    return Err(SpecError::new(field("pf"), "give pool or pf, not both"));
                }
                (None, None) => return Err(SpecError::new(field("pool"), "give pool or pf")),
                _ => {}
            }
            if let Some(vlan) = sriov.vlan
                && vlan > 4094
            {
                return Err(SpecError::new(
                    field("vlan"),
                    format!("VLAN id {vlan} is outside 0 to 4094"),
                ));
            }
            if let Some(qos) = sriov.vlan_qos
                && qos > 7
            {
                return Err(SpecError::new(
                    field("vlan_qos"),
                    format!("priority {qos} is outside 0 to 7"),
                ));
            }
            if let (Some(min), Some(max)) = (sriov.min_tx_rate, sriov.max_tx_rate)
                && max != 0
                && min > max
            {
                return Err(SpecError::new(
                    field("min_tx_rate"),
                    format!("{min} Mbit/s exceeds max_tx_rate {max} Mbit/s"),
                ));
            }
            Ok(())
        }
        NetworkKind::Memif(memif) => match &memif.socket {
            Some(socket) if !socket.is_absolute() => Err(SpecError::new(
                field("socket"),
                format!("{} is not an absolute path", socket.display()),
            )),
            _ => Ok(()),
        },
        NetworkKind::Cni(cni) => match &cni.conflist {
            Value::Object(_) => Ok(()),
            Value::String(path) if path.starts_with('/') => Ok(()),
            Value::String(path) => Err(SpecError::new(
                field("conflist"),
                format!("{path} is not an absolute path"),
            )),
            _ => Err(SpecError::new(
                field("conflist"),
                "expected a conflist object or the absolute path of a conflist file",
            )),
        },
        _ => Ok(()),
    }
}

/// Checks a pod name: 1 to [`MAX_NAME_LEN`] bytes of lowercase letters, digits and `-`,
/// starting and ending with a letter or digit (a DNS label, as Kubernetes names are).
pub fn check_pod_name(name: &str) -> Result<(), SpecError> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let valid_ends = !name.starts_with('-') && !name.ends_with('-');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !valid_chars || !valid_ends {
        return Err(SpecError::new(
            "name",
            format!(
                "invalid pod name {name:?}: use 1 to {MAX_NAME_LEN} lowercase letters, digits \
                 and '-', starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Reads network `index` from its JSON object: `name`, `ifname` and `kind` first, then the
/// fields of that kind.
fn parse_network(index: usize, value: Value) -> Result<NetworkSpec, SpecError> {
    let prefix = format!("networks[{index}]");
    let Value::Object(mut object) = value else {
        return Err(SpecError::new(prefix, "expected an object"));
    };
    let name: String = take_field(&mut object, &prefix, "name")?
        .ok_or_else(|| SpecError::new(format!("{prefix}.name"), "missing field"))?;
    if name.is_empty() {
        return Err(SpecError::new(
            format!("{prefix}.name"),
            "empty network name",
        ));
    }
    let kind_name: String = take_field(&mut object, &prefix, "kind")?
        .ok_or_else(|| SpecError::new(format!("{prefix}.kind"), "missing field"))?;
    let ifname: Option<InterfaceName> = take_field(&mut object, &prefix, "ifname")?;
    let rest = Value::Object(object);
    let kind = match kind_name.as_str() {
        "veth" => NetworkKind::Veth(deserialize_value(rest, &prefix)?),
        "macvlan" => NetworkKind::Macvlan(deserialize_value(rest, &prefix)?),
        "ipvlan" => NetworkKind::Ipvlan(deserialize_value(rest, &prefix)?),
        "vlan" => NetworkKind::Vlan(deserialize_value(rest, &prefix)?),
        "host-device" => NetworkKind::HostDevice(deserialize_value(rest, &prefix)?),
        "sriov" => NetworkKind::Sriov(deserialize_value(rest, &prefix)?),
        "memif" => NetworkKind::Memif(deserialize_value(rest, &prefix)?),
        "tap" => NetworkKind::Tap(deserialize_value(rest, &prefix)?),
        "cni" => NetworkKind::Cni(deserialize_value(rest, &prefix)?),
        other => {
            return Err(SpecError::new(
                format!("{prefix}.kind"),
                format!(
                    "unknown network kind {other:?}; expected veth, macvlan, ipvlan, vlan, \
                     host-device, sriov, memif, tap or cni"
                ),
            ));
        }
    };
    let ifname = match ifname {
        Some(ifname) => ifname,
        None => format!("net{}", index + 1)
            .parse()
            .expect("netN is a valid interface name"),
    };
    Ok(NetworkSpec { name, ifname, kind })
}

/// Removes `key` from `object` and deserializes it; `None` when absent.
fn take_field<T: DeserializeOwned>(
    object: &mut Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<Option<T>, SpecError> {
    match object.remove(key) {
        None => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|error| SpecError::new(format!("{prefix}.{key}"), error.to_string())),
    }
}

fn deserialize_value<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, SpecError> {
    deserialize_tracked(value, prefix)
}

/// Deserializes with the path of the failing field, prefixed with `prefix`.
fn deserialize_tracked<'de, D, T>(deserializer: D, prefix: &str) -> Result<T, SpecError>
where
    D: Deserializer<'de>,
    D::Error: fmt::Display,
    T: Deserialize<'de>,
{
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = match (prefix.is_empty(), path.as_str()) {
            (_, "." | "?") => prefix.to_owned(),
            (true, _) => path,
            (false, _) => format!("{prefix}.{path}"),
        };
        SpecError::new(field, error.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests;
