//! [`MacvlanKind`], [`IpvlanKind`] and [`VlanKind`]: child links of a host interface, made
//! straight into the pod namespace.

use async_trait::async_trait;

use super::gone_is_ok;
use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::link::{
    Ipvlan, IpvlanMode, LinkBuilder, LinkKind, Macvlan, MacvlanMode, Vlan, VlanTagProtocol,
};

/// Sends a child-link request from the host with the pod as target namespace, so the link
/// is born inside the pod under its final name.
fn add_into_pod<K: LinkKind>(
    cx: &AttachContext<'_>,
    request: LinkBuilder<K>,
) -> Result<Attached, KindError> {
    let mut request = request.netns(cx.netns());
    if let Some(mtu) = cx.mtu() {
        request = request.mtu(mtu);
    }
    if let Some(mac) = cx.mac() {
        request = request.mac(mac);
    }
    cx.host_netlink().links().add(request)?;
    Ok(Attached::kernel_interface())
}

/// A macvlan child of the host interface `master`, like the CNI `macvlan` plugin
/// (`master`, `mode`, default mode bridge).
#[derive(Debug, Clone)]
pub struct MacvlanKind {
    master: String,
    mode: MacvlanMode,
}

impl MacvlanKind {
    /// A bridge-mode macvlan on `master`.
    pub fn new(master: &str) -> MacvlanKind {
        MacvlanKind {
            master: master.to_owned(),
            mode: MacvlanMode::Bridge,
        }
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: MacvlanMode) -> MacvlanKind {
        self.mode = mode;
        self
    }
}

#[async_trait]
impl AttachKind for MacvlanKind {
    fn kind(&self) -> &'static str {
        "macvlan"
    }

    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        add_into_pod(
            cx,
            Macvlan::new(cx.ifname().as_str(), &self.master).mode(self.mode),
        )
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        gone_is_ok(cx.pod_netlink().links().delete(cx.ifname().as_str()))
    }

    fn undone_by_deleting_pod_link(&self) -> bool {
        true
    }
}

/// An ipvlan child of the host interface `master`, like the CNI `ipvlan` plugin (`master`,
/// `mode`, default mode l2). It shares the master's MAC.
#[derive(Debug, Clone)]
pub struct IpvlanKind {
    master: String,
    mode: IpvlanMode,
}

impl IpvlanKind {
    /// An l2-mode ipvlan on `master`.
    pub fn new(master: &str) -> IpvlanKind {
        IpvlanKind {
            master: master.to_owned(),
            mode: IpvlanMode::L2,
        }
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: IpvlanMode) -> IpvlanKind {
        self.mode = mode;
        self
    }
}

#[async_trait]
impl AttachKind for IpvlanKind {
    fn kind(&self) -> &'static str {
        "ipvlan"
    }

    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        add_into_pod(
            cx,
            Ipvlan::new(cx.ifname().as_str(), &self.master).mode(self.mode),
        )
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        gone_is_ok(cx.pod_netlink().links().delete(cx.ifname().as_str()))
    }

    fn undone_by_deleting_pod_link(&self) -> bool {
        true
    }
}

/// An 802.1Q (or 802.1ad) VLAN sub-interface of the host interface `master`, like the CNI
/// `vlan` plugin (`master`, `vlanId`). Only one pod can hold a given (master, VLAN ID).
#[derive(Debug, Clone)]
pub struct VlanKind {
    master: String,
    id: u16,
    protocol: VlanTagProtocol,
}

impl VlanKind {
    /// An 802.1Q VLAN `id` on `master`.
    pub fn new(master: &str, id: u16) -> VlanKind {
        VlanKind {
            master: master.to_owned(),
            id,
            protocol: VlanTagProtocol::Ieee8021Q,
        }
    }

    /// Sets the tag protocol.
    pub fn protocol(mut self, protocol: VlanTagProtocol) -> VlanKind {
        self.protocol = protocol;
        self
    }
}

#[async_trait]
impl AttachKind for VlanKind {
    fn kind(&self) -> &'static str {
        "vlan"
    }

    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        add_into_pod(
            cx,
            Vlan::new(cx.ifname().as_str(), &self.master, self.id).protocol(self.protocol),
        )
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        gone_is_ok(cx.pod_netlink().links().delete(cx.ifname().as_str()))
    }

    fn undone_by_deleting_pod_link(&self) -> bool {
        true
    }
}
