//! [`VethKind`]: a veth pair with one end in the pod, optionally on a host bridge.

use async_trait::async_trait;

use super::gone_is_ok;
use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::link::{Bridge, Veth};

/// A veth pair: the pod end is the attachment's interface, the host end is named
/// `veth` plus a hash of container ID and interface name. With [`VethKind::bridge`] the host
/// end joins that bridge, which is created (and brought up) when missing, as the CNI
/// `bridge` plugin does; without it the pair is point to point, like the `ptp` plugin.
///
/// Detach deletes the host end (which deletes the pair); the bridge stays.
#[derive(Debug, Clone, Default)]
pub struct VethKind {
    bridge: Option<String>,
}

impl VethKind {
    /// A point to point veth pair.
    pub fn new() -> VethKind {
        VethKind::default()
    }

    /// Puts the host end on the bridge `name`.
    pub fn bridge(mut self, name: &str) -> VethKind {
        self.bridge = Some(name.to_owned());
        self
    }
}

#[async_trait]
impl AttachKind for VethKind {
    fn kind(&self) -> &'static str {
        "veth"
    }

    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        let host = cx.host_netlink().links();
        let host_end = cx.host_ifname("veth");
        if let Some(bridge) = &self.bridge
            && host.find(bridge)?.is_none()
        {
            match host.add(Bridge::new(bridge).up()) {
                Err(error) if !matches!(error, crate::link::LinkError::AlreadyExists { .. }) => {
                    return Err(error.into());
                }
                _ => {}
            }
        }
        let mut request = Veth::new(&host_end, cx.ifname().as_str()).peer_netns(cx.netns());
        if let Some(mtu) = cx.mtu() {
            request = request.mtu(mtu).peer_mtu(mtu);
        }
        if let Some(mac) = cx.mac() {
            request = request.peer_mac(mac);
        }
        host.add(request)?;
        let change = host.set(&host_end).up();
        match &self.bridge {
            Some(bridge) => change.master(bridge).apply()?,
            None => change.apply()?,
        }
        Ok(Attached::kernel_interface())
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        gone_is_ok(cx.host_netlink().links().delete(&cx.host_ifname("veth")))?;
        gone_is_ok(cx.pod_netlink().links().delete(cx.ifname().as_str()))
    }
}
