//! [`TapKind`]: a tap device inside the pod, for a VM running there.

use async_trait::async_trait;

use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::link::Tap;

/// A persistent tap inside the pod under the attachment's name, like the CNI `tap` plugin
/// (`owner`, `group`, `multiQueue`; always with `IFF_VNET_HDR` unless turned off). A VMM in
/// the pod opens it again by name.
#[derive(Debug, Clone)]
pub struct TapKind {
    owner: Option<u32>,
    group: Option<u32>,
    queues: Option<usize>,
    vnet_hdr: bool,
}

impl Default for TapKind {
    fn default() -> Self {
        TapKind {
            owner: None,
            group: None,
            queues: None,
            vnet_hdr: true,
        }
    }
}

impl TapKind {
    /// A single-queue tap with a vnet header, owned by root.
    pub fn new() -> TapKind {
        TapKind::default()
    }

    /// Lets `uid` open it.
    pub fn owner(mut self, uid: u32) -> TapKind {
        self.owner = Some(uid);
        self
    }

    /// Lets `gid` open it.
    pub fn group(mut self, gid: u32) -> TapKind {
        self.group = Some(gid);
        self
    }

    /// Makes it multi-queue with `queues` queues.
    pub fn multi_queue(mut self, queues: usize) -> TapKind {
        self.queues = Some(queues);
        self
    }

    /// Turns the vnet header on or off.
    pub fn vnet_hdr(mut self, on: bool) -> TapKind {
        self.vnet_hdr = on;
        self
    }
}

#[async_trait]
impl AttachKind for TapKind {
    fn kind(&self) -> &'static str {
        "tap"
    }

    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        let ifname = cx.ifname().as_str();
        let mut tap = Tap::new(ifname).vnet_hdr(self.vnet_hdr);
        if let Some(uid) = self.owner {
            tap = tap.owner(uid);
        }
        if let Some(gid) = self.group {
            tap = tap.group(gid);
        }
        if let Some(queues) = self.queues {
            tap = tap.multi_queue(queues);
        }
        drop(tap.create(cx.pod_netlink())?);
        let mut change = cx.pod_netlink().links().set(ifname);
        if let Some(mtu) = cx.mtu() {
            change = change.mtu(mtu);
        }
        if let Some(mac) = cx.mac() {
            change = change.mac(mac);
        }
        change.apply()?;
        Ok(Attached::kernel_interface())
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        let ifname = cx.ifname().as_str();
        let links = cx.pod_netlink().links();
        match links.find(ifname)? {
            None => Ok(()),
            Some(_) => match links.delete(ifname) {
                Ok(()) => Ok(()),
                Err(error) if error.is_not_found() => Ok(()),
                Err(_) => Ok(Tap::delete(cx.pod_netlink(), ifname)?),
            },
        }
    }
}
