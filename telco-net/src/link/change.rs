//! [`LinkChange`]: a change to an existing link, like `ip link set`.

use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use std::os::fd::AsRawFd;
use telco_core::MacAddr;

use super::{LinkError, index_of};
use crate::netns::{Netlink, Netns};

/// A change to the link `name`, like `ip link set NAME ...`; nothing is sent before
/// [`LinkChange::apply`].
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let host = telco_net::netns::Netlink::current()?;
/// // ip link set veth0 down; ip link set veth0 name data0 mtu 9000 up
/// host.links().set("veth0").down().apply()?;
/// host.links().set("veth0").rename("data0").mtu(9000).up().apply()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a link change does nothing until apply() is called"]
pub struct LinkChange<'a> {
    netlink: &'a Netlink,
    name: String,
    up: Option<bool>,
    mtu: Option<u32>,
    mac: Option<MacAddr>,
    rename: Option<String>,
    master: Option<Option<String>>,
    alias: Option<String>,
    netns: Option<Netns>,
    netns_error: Option<crate::netns::NetnsError>,
}

impl<'a> LinkChange<'a> {
    pub(super) fn new(netlink: &'a Netlink, name: &str) -> Self {
        LinkChange {
            netlink,
            name: name.to_owned(),
            up: None,
            mtu: None,
            mac: None,
            rename: None,
            master: None,
            alias: None,
            netns: None,
            netns_error: None,
        }
    }

    /// Brings the link up (`up`).
    pub fn up(mut self) -> Self {
        self.up = Some(true);
        self
    }

    /// Takes the link down (`down`).
    pub fn down(mut self) -> Self {
        self.up = Some(false);
        self
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

    /// Renames the link (`name NEW`); the kernel refuses this while the link is up, except
    /// together with a move to another namespace.
    pub fn rename(mut self, new_name: &str) -> Self {
        self.rename = Some(new_name.to_owned());
        self
    }

    /// Makes the link a port of the bridge or bond `master` (`master DEV`).
    pub fn master(mut self, master: &str) -> Self {
        self.master = Some(Some(master.to_owned()));
        self
    }

    /// Removes the link from its bridge or bond (`nomaster`).
    pub fn nomaster(mut self) -> Self {
        self.master = Some(None);
        self
    }

    /// Sets the alias (`alias TEXT`).
    pub fn alias(mut self, alias: &str) -> Self {
        self.alias = Some(alias.to_owned());
        self
    }

    /// Moves the link into another namespace (`netns NS`); with [`LinkChange::rename`] it
    /// arrives under the new name.
    pub fn netns(mut self, netns: &Netns) -> Self {
        match netns.try_clone() {
            Ok(netns) => self.netns = Some(netns),
            Err(error) => self.netns_error = Some(error),
        }
        self
    }

    /// Sends the change as one `RTM_SETLINK` request.
    pub fn apply(self) -> Result<(), LinkError> {
        const REQUEST: &str = "RTM_SETLINK";
        if let Some(source) = self.netns_error {
            return Err(LinkError::Netns {
                request: REQUEST,
                link: self.name,
                source,
            });
        }
        let label = self.netlink.netns().to_owned();
        let LinkChange {
            netlink,
            name,
            up,
            mtu,
            mac,
            rename,
            master,
            alias,
            netns,
            netns_error: _,
        } = self;
        let link = name.clone();
        netlink
            .call(move |handle| async move {
                let index = index_of(&handle, &name, &label).await?;
                let mut message = LinkMessage::default();
                message.header.index = index;
                if let Some(up) = up {
                    if up {
                        message.header.flags |= LinkFlags::Up;
                    }
                    message.header.change_mask |= LinkFlags::Up;
                }
                let attributes = &mut message.attributes;
                if let Some(mtu) = mtu {
                    attributes.push(LinkAttribute::Mtu(mtu));
                }
                if let Some(mac) = mac {
                    attributes.push(LinkAttribute::Address(mac.octets().to_vec()));
                }
                if let Some(new_name) = &rename {
                    attributes.push(LinkAttribute::IfName(new_name.clone()));
                }
                match &master {
                    Some(Some(master)) => {
                        let master = index_of(&handle, master, &label).await?;
                        attributes.push(LinkAttribute::Controller(master));
                    }
                    Some(None) => attributes.push(LinkAttribute::Controller(0)),
                    None => {}
                }
                if let Some(alias) = &alias {
                    attributes.push(LinkAttribute::IfAlias(alias.clone()));
                }
                if let Some(netns) = &netns {
                    attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
                }
                handle
                    .link()
                    .set(message)
                    .execute()
                    .await
                    .map_err(|source| LinkError::netlink(REQUEST, name.as_str(), &label, source))
            })
            .map_err(|_| LinkError::SessionClosed {
                request: REQUEST,
                link,
                netns: netlink.netns().to_owned(),
            })?
    }
}
