//! [`LinkBuilder`]: the request to create a link, with setters common to every kind.

use std::fmt;
use std::os::fd::AsRawFd;

use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use telco_core::MacAddr;

use crate::netns::{Netns, NetnsError};

/// A link kind that `RTM_NEWLINK` can create: the part of the request that only this kind has.
///
/// Implemented by [`Veth`](super::Veth), [`Bridge`](super::Bridge),
/// [`Macvlan`](super::Macvlan), [`Ipvlan`](super::Ipvlan), [`Vlan`](super::Vlan) and
/// [`Dummy`](super::Dummy); the setters specific to a kind live on `LinkBuilder<ThatKind>`.
pub trait LinkKind: fmt::Debug + Send + 'static {
    /// The kind as `ip link add NAME type KIND` spells it.
    const KIND: &'static str;
    /// The kernel module that provides the kind, for the error when it is missing.
    const MODULE: &'static str;

    /// The name of the link this one sits on (`link DEV`), looked up in the same namespace.
    fn parent(&self) -> Option<&str> {
        None
    }

    /// The `IFLA_LINKINFO` entries for this kind, given the parent's index.
    fn link_info(&self) -> Vec<LinkInfo>;
}

/// A request to create a link of kind `K`, like `ip link add NAME [mtu M] [address A] type K`.
///
/// Built with the kind's constructor (such as [`Macvlan::new`](super::Macvlan::new)) and sent
/// with [`Links::add`](super::Links::add).
#[derive(Debug)]
pub struct LinkBuilder<K> {
    pub(super) name: String,
    pub(super) mtu: Option<u32>,
    pub(super) mac: Option<MacAddr>,
    pub(super) up: bool,
    pub(super) netns: Option<Result<Netns, NetnsError>>,
    pub(super) alias: Option<String>,
    pub(super) master: Option<String>,
    pub(super) txqueuelen: Option<u32>,
    pub(super) kind: K,
}

impl<K: LinkKind> LinkBuilder<K> {
    pub(super) fn with_kind(name: &str, kind: K) -> Self {
        LinkBuilder {
            name: name.to_owned(),
            mtu: None,
            mac: None,
            up: false,
            netns: None,
            alias: None,
            master: None,
            txqueuelen: None,
            kind,
        }
    }

    /// The name of the link to create.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the MTU (`mtu M`).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Sets the hardware address (`address A`).
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Brings the link up once created (`ip link add ... up`).
    pub fn up(mut self) -> Self {
        self.up = true;
        self
    }

    /// Creates the link directly in another namespace (`netns NAME`).
    pub fn netns(mut self, netns: &Netns) -> Self {
        self.netns = Some(netns.try_clone());
        self
    }

    /// Sets the link's alias (`alias TEXT`, `IFLA_IFALIAS`).
    ///
    /// The kernel ignores `IFLA_IFALIAS` in `RTM_NEWLINK`, so [`Links::add`](super::Links::add)
    /// sets it with a second request, `RTM_SETLINK`, and deletes the new link if that fails.
    /// Only for links created in the session's own namespace: together with
    /// [`LinkBuilder::netns`] the request fails with [`LinkError::Unsupported`](super::LinkError::Unsupported).
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }

    /// Makes the new link a port of the bridge or bond `master` (`master DEV`) in the same
    /// `RTM_NEWLINK` request. The kernel applies it after bringing the link up, when
    /// [`LinkBuilder::up`] is set. Because `master` is looked up in the session's namespace,
    /// the request fails with [`LinkError::Unsupported`](super::LinkError::Unsupported)
    /// together with [`LinkBuilder::netns`].
    pub fn master(mut self, master: &str) -> Self {
        self.master = Some(master.to_owned());
        self
    }

    /// Sets the transmit queue length (`txqueuelen N`).
    pub fn txqueuelen(mut self, len: u32) -> Self {
        self.txqueuelen = Some(len);
        self
    }

    /// Builds the `RTM_NEWLINK` message. `netns` is the opened target namespace, which must
    /// stay open until the request is sent.
    pub(super) fn message(
        &self,
        parent_index: Option<u32>,
        master_index: Option<u32>,
        netns: Option<&Netns>,
    ) -> LinkMessage {
        let mut message = LinkMessage::default();
        if self.up {
            message.header.flags |= LinkFlags::Up;
            message.header.change_mask |= LinkFlags::Up;
        }
        let attributes = &mut message.attributes;
        attributes.push(LinkAttribute::IfName(self.name.clone()));
        if let Some(mtu) = self.mtu {
            attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = self.mac {
            attributes.push(LinkAttribute::Address(mac.octets().to_vec()));
        }
        if let Some(alias) = &self.alias {
            attributes.push(LinkAttribute::IfAlias(alias.clone()));
        }
        if let Some(len) = self.txqueuelen {
            attributes.push(LinkAttribute::TxQueueLen(len));
        }
        if let Some(index) = parent_index {
            attributes.push(LinkAttribute::Link(index));
        }
        if let Some(index) = master_index {
            attributes.push(LinkAttribute::Controller(index));
        }
        if let Some(netns) = netns {
            attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        }
        attributes.push(LinkAttribute::LinkInfo(self.kind.link_info()));
        message
    }
}
