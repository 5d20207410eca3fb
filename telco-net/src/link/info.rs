//! [`Link`]: what the kernel reports about a link.

use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, Prop, State,
};
use telco_core::MacAddr;

/// A link as `RTM_GETLINK` reports it (`ip -d link show`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// The interface index.
    pub index: u32,
    /// The name.
    pub name: String,
    /// The kind (`veth`, `bridge`, `macvlan`, `tun`...), absent for physical devices and `lo`.
    pub kind: Option<String>,
    /// The hardware address, when it is 6 bytes long.
    pub mac: Option<MacAddr>,
    /// The MTU.
    pub mtu: Option<u32>,
    /// True when administratively up (`IFF_UP`).
    pub up: bool,
    /// The operational state, such as `UP`, `DOWN` or `UNKNOWN`.
    pub oper_state: String,
    /// The index of the bridge or bond this link is a port of.
    pub master: Option<u32>,
    /// The index of the link this one sits on (`IFLA_LINK`), in this namespace or the one
    /// `link_netnsid` names.
    pub parent: Option<u32>,
    /// The alternative names (`altname`).
    pub altnames: Vec<String>,
    /// The alias (`ifalias`).
    pub alias: Option<String>,
}

impl Link {
    pub(crate) fn from_message(message: &LinkMessage) -> Link {
        let mut link = Link {
            index: message.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: None,
            up: message.header.flags.contains(LinkFlags::Up),
            oper_state: String::new(),
            master: None,
            parent: None,
            altnames: Vec::new(),
            alias: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => link.name.clone_from(name),
                LinkAttribute::Address(bytes) => {
                    link.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr::new);
                }
                LinkAttribute::Mtu(mtu) => link.mtu = Some(*mtu),
                LinkAttribute::OperState(state) => link.oper_state = oper_state_name(*state),
                LinkAttribute::Controller(index) if *index != 0 => link.master = Some(*index),
                LinkAttribute::Link(index) if *index != 0 => link.parent = Some(*index),
                LinkAttribute::IfAlias(alias) => link.alias = Some(alias.clone()),
                LinkAttribute::PropList(props) => {
                    for prop in props {
                        if let Prop::AltIfName(name) = prop {
                            link.altnames.push(name.clone());
                        }
                    }
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            link.kind = Some(kind_name(kind));
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

fn kind_name(kind: &InfoKind) -> String {
    match kind {
        InfoKind::Other(name) => name.clone(),
        other => other.to_string(),
    }
}

fn oper_state_name(state: State) -> String {
    match state {
        State::Up => "UP",
        State::Down => "DOWN",
        State::LowerLayerDown => "LOWERLAYERDOWN",
        State::Dormant => "DORMANT",
        State::Testing => "TESTING",
        State::NotPresent => "NOTPRESENT",
        _ => "UNKNOWN",
    }
    .to_owned()
}
