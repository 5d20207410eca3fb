//! The link kinds `RTM_NEWLINK` creates: veth, bridge, macvlan, ipvlan, VLAN and dummy.

use std::os::fd::AsRawFd;

use netlink_packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVeth, InfoVlan,
    IpVlanFlags, IpVlanMode, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode, VlanProtocol,
};
use telco_core::MacAddr;

use super::{LinkBuilder, LinkKind};
use crate::netns::Netns;

/// A veth pair: two links joined back to back, like
/// `ip link add NAME type veth peer name PEER [netns NS]`.
///
/// ```no_run
/// use telco_net::link::Veth;
/// use telco_net::netns::{Netlink, Netns};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pod = Netns::create("pod1")?;
/// let host = Netlink::current()?;
/// // ip link add veth-pod1 type veth peer name eth0 netns pod1
/// host.links().add(Veth::new("veth-pod1", "eth0").peer_netns(&pod).up())?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Veth {
    peer: String,
    peer_netns: Option<Netns>,
    peer_mac: Option<MacAddr>,
    peer_mtu: Option<u32>,
}

impl Veth {
    /// Starts a request for the pair `name` (here) and `peer`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str, peer: &str) -> LinkBuilder<Veth> {
        LinkBuilder::with_kind(
            name,
            Veth {
                peer: peer.to_owned(),
                peer_netns: None,
                peer_mac: None,
                peer_mtu: None,
            },
        )
    }
}

impl LinkBuilder<Veth> {
    /// Creates the peer end in `netns` (`peer name PEER netns NS`). If the namespace cannot
    /// be opened again the peer stays beside the first end.
    pub fn peer_netns(mut self, netns: &Netns) -> Self {
        match netns.try_clone() {
            Ok(netns) => self.kind.peer_netns = Some(netns),
            Err(error) => self.netns_error(error),
        }
        self
    }

    /// Sets the peer's hardware address (`peer address A`).
    pub fn peer_mac(mut self, mac: MacAddr) -> Self {
        self.kind.peer_mac = Some(mac);
        self
    }

    /// Sets the peer's MTU (`peer mtu M`); by default it gets the MTU of the first end.
    pub fn peer_mtu(mut self, mtu: u32) -> Self {
        self.kind.peer_mtu = Some(mtu);
        self
    }

    /// The peer's name.
    pub fn peer_name(&self) -> &str {
        &self.kind.peer
    }

    fn netns_error(&mut self, error: crate::netns::NetnsError) {
        self.netns = Some(Err(error));
    }
}

impl LinkKind for Veth {
    const KIND: &'static str = "veth";
    const MODULE: &'static str = "veth";

    fn link_info(&self) -> Vec<LinkInfo> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(self.peer.clone()));
        if let Some(mac) = self.peer_mac {
            peer.attributes
                .push(LinkAttribute::Address(mac.octets().to_vec()));
        }
        if let Some(mtu) = self.peer_mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(netns) = &self.peer_netns {
            peer.attributes
                .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        }
        vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]
    }
}

/// A Linux bridge, like `ip link add NAME type bridge`. Ports join it with
/// [`LinkChange::master`](super::LinkChange::master).
#[derive(Debug, Default)]
pub struct Bridge {
    vlan_filtering: Option<bool>,
    stp: Option<bool>,
}

impl Bridge {
    /// Starts a request for the bridge `name`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> LinkBuilder<Bridge> {
        LinkBuilder::with_kind(name, Bridge::default())
    }
}

impl LinkBuilder<Bridge> {
    /// Turns 802.1Q VLAN filtering on or off (`vlan_filtering 0|1`).
    pub fn vlan_filtering(mut self, on: bool) -> Self {
        self.kind.vlan_filtering = Some(on);
        self
    }

    /// Turns the spanning tree protocol on or off (`stp_state 0|1`).
    pub fn stp(mut self, on: bool) -> Self {
        self.kind.stp = Some(on);
        self
    }
}

impl LinkKind for Bridge {
    const KIND: &'static str = "bridge";
    const MODULE: &'static str = "bridge";

    fn link_info(&self) -> Vec<LinkInfo> {
        let mut data = Vec::new();
        if let Some(on) = self.vlan_filtering {
            data.push(InfoBridge::VlanFiltering(on));
        }
        if let Some(on) = self.stp {
            data.push(InfoBridge::StpState(if on {
                BridgeStpState::KernelStp
            } else {
                BridgeStpState::Disabled
            }));
        }
        let mut info = vec![LinkInfo::Kind(InfoKind::Bridge)];
        if !data.is_empty() {
            info.push(LinkInfo::Data(InfoData::Bridge(data)));
        }
        info
    }
}

/// The macvlan mode (`mode M`): the treatment of traffic between siblings on one parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MacvlanMode {
    /// `private`: no traffic between siblings.
    Private,
    /// `vepa`: sibling traffic goes out to the external switch and back.
    Vepa,
    /// `bridge`: siblings talk directly (the CNI plugin's default).
    #[default]
    Bridge,
    /// `passthru`: the one child takes over the parent.
    #[serde(rename = "passthru")]
    Passthru,
    /// `source`: only frames from listed source MACs are accepted.
    Source,
}

impl MacvlanMode {
    fn to_netlink(self) -> MacVlanMode {
        match self {
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
            MacvlanMode::Source => MacVlanMode::Source,
        }
    }
}

/// A macvlan link on a parent, like `ip link add NAME link PARENT type macvlan mode M`.
#[derive(Debug)]
pub struct Macvlan {
    parent: String,
    mode: MacvlanMode,
}

impl Macvlan {
    /// Starts a request for a macvlan `name` on `parent`, in bridge mode.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str, parent: &str) -> LinkBuilder<Macvlan> {
        LinkBuilder::with_kind(
            name,
            Macvlan {
                parent: parent.to_owned(),
                mode: MacvlanMode::default(),
            },
        )
    }
}

impl LinkBuilder<Macvlan> {
    /// Sets the mode (`mode private|vepa|bridge|passthru|source`).
    pub fn mode(mut self, mode: MacvlanMode) -> Self {
        self.kind.mode = mode;
        self
    }
}

impl LinkKind for Macvlan {
    const KIND: &'static str = "macvlan";
    const MODULE: &'static str = "macvlan";

    fn parent(&self) -> Option<&str> {
        Some(&self.parent)
    }

    fn link_info(&self) -> Vec<LinkInfo> {
        vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                self.mode.to_netlink(),
            )])),
        ]
    }
}

/// The layer an ipvlan link works at (`mode l2|l3|l3s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum IpvlanMode {
    /// `l2`: switching at layer 2 (the CNI plugin's default).
    #[default]
    L2,
    /// `l3`: routing at layer 3, no broadcast or multicast.
    L3,
    /// `l3s`: like `l3` with the traffic passing netfilter.
    L3s,
}

/// An ipvlan link on a parent, sharing its MAC, like
/// `ip link add NAME link PARENT type ipvlan mode M`.
#[derive(Debug)]
pub struct Ipvlan {
    parent: String,
    mode: IpvlanMode,
    private: bool,
}

impl Ipvlan {
    /// Starts a request for an ipvlan `name` on `parent`, in l2 mode.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str, parent: &str) -> LinkBuilder<Ipvlan> {
        LinkBuilder::with_kind(
            name,
            Ipvlan {
                parent: parent.to_owned(),
                mode: IpvlanMode::default(),
                private: false,
            },
        )
    }
}

impl LinkBuilder<Ipvlan> {
    /// Sets the mode (`mode l2|l3|l3s`).
    pub fn mode(mut self, mode: IpvlanMode) -> Self {
        self.kind.mode = mode;
        self
    }

    /// Blocks traffic between siblings (`private`).
    pub fn private(mut self) -> Self {
        self.kind.private = true;
        self
    }
}

impl LinkKind for Ipvlan {
    const KIND: &'static str = "ipvlan";
    const MODULE: &'static str = "ipvlan";

    fn parent(&self) -> Option<&str> {
        Some(&self.parent)
    }

    fn link_info(&self) -> Vec<LinkInfo> {
        let mode = match self.mode {
            IpvlanMode::L2 => IpVlanMode::L2,
            IpvlanMode::L3 => IpVlanMode::L3,
            IpvlanMode::L3s => IpVlanMode::L3S,
        };
        let mut data = vec![InfoIpVlan::Mode(mode)];
        if self.private {
            data.push(InfoIpVlan::Flags(IpVlanFlags::Private));
        }
        vec![
            LinkInfo::Kind(InfoKind::IpVlan),
            LinkInfo::Data(InfoData::IpVlan(data)),
        ]
    }
}

/// The VLAN tag protocol (`protocol 802.1Q|802.1ad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum VlanTagProtocol {
    /// 802.1Q, ethertype 0x8100.
    #[default]
    #[serde(rename = "802.1Q")]
    Ieee8021Q,
    /// 802.1ad (QinQ service tag), ethertype 0x88a8.
    #[serde(rename = "802.1ad")]
    Ieee8021Ad,
}

/// A VLAN sub-interface, like `ip link add NAME link PARENT type vlan id ID [protocol P]`.
#[derive(Debug)]
pub struct Vlan {
    parent: String,
    id: u16,
    protocol: VlanTagProtocol,
}

impl Vlan {
    /// Starts a request for an 802.1Q VLAN `id` on `parent`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str, parent: &str, id: u16) -> LinkBuilder<Vlan> {
        LinkBuilder::with_kind(
            name,
            Vlan {
                parent: parent.to_owned(),
                id,
                protocol: VlanTagProtocol::default(),
            },
        )
    }
}

impl LinkBuilder<Vlan> {
    /// Sets the tag protocol (`protocol 802.1Q|802.1ad`).
    pub fn protocol(mut self, protocol: VlanTagProtocol) -> Self {
        self.kind.protocol = protocol;
        self
    }
}

impl LinkKind for Vlan {
    const KIND: &'static str = "vlan";
    const MODULE: &'static str = "8021q";

    fn parent(&self) -> Option<&str> {
        Some(&self.parent)
    }

    fn link_info(&self) -> Vec<LinkInfo> {
        let protocol = match self.protocol {
            VlanTagProtocol::Ieee8021Q => VlanProtocol::Ieee8021Q,
            VlanTagProtocol::Ieee8021Ad => VlanProtocol::Ieee8021Ad,
        };
        vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![
                InfoVlan::Id(self.id),
                InfoVlan::Protocol(protocol),
            ])),
        ]
    }
}

/// A dummy link that only carries addresses, like `ip link add NAME type dummy`.
#[derive(Debug, Default)]
pub struct Dummy;

impl Dummy {
    /// Starts a request for the dummy link `name`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> LinkBuilder<Dummy> {
        LinkBuilder::with_kind(name, Dummy)
    }
}

impl LinkKind for Dummy {
    const KIND: &'static str = "dummy";
    const MODULE: &'static str = "dummy";

    fn link_info(&self) -> Vec<LinkInfo> {
        vec![LinkInfo::Kind(InfoKind::Dummy)]
    }
}
