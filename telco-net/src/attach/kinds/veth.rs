//! [`VethKind`]: a veth pair with one end in the pod, optionally on a host bridge.

use async_trait::async_trait;

use super::gone_is_ok;
use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::link::{Bridge, LinkBuilder, LinkError, Veth};

/// A veth pair: the pod end is the attachment's interface, the host end is named
/// `veth` plus a hash of container ID and interface name. With [`VethKind::bridge`] the host
/// end joins that bridge, which is created (and brought up) when missing, as the CNI
/// `bridge` plugin does; without it the pair is point to point, like the `ptp` plugin.
///
/// The host end's alias names the container and interface
/// ([`AttachContext::host_alias`]). Detach deletes the host end (which deletes the pair); the
/// bridge stays.
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
        // The common case, with the bridge present, takes one request: create the pair with
        // the host end up, on the bridge and with its alias. Only a missing bridge costs a
        // second try.
        match host.add(self.request(cx)) {
            Err(LinkError::NotFound { link, .. }) if self.bridge.as_ref() == Some(&link) => {
                match host.add(Bridge::new(&link).up()) {
                    Err(error) if !matches!(error, LinkError::AlreadyExists { .. }) => {
                        return Err(error.into());
                    }
                    _ => {}
                }
                host.add(self.request(cx))?;
            }
            result => result?,
        }
        Ok(Attached::kernel_interface())
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        // Deleting the host end deletes the pod end with it. Only when the host end is gone
        // can a pod end be left over.
        match cx.host_netlink().links().delete(&cx.host_ifname("veth")) {
            Err(error) if error.is_not_found() => {
                gone_is_ok(cx.pod_netlink().links().delete(cx.ifname().as_str()))
            }
            result => Ok(result?),
        }
    }

    /// Deleting the pod end deletes the host end with it.
    fn undone_by_deleting_pod_link(&self) -> bool {
        true
    }
}

impl VethKind {
    /// Builds the `RTM_NEWLINK` request for the pair. The pod end is created in the pod
    /// namespace, and the host end comes up with its alias and, with a bridge, as its port.
    fn request(&self, cx: &AttachContext<'_>) -> LinkBuilder<Veth> {
        let mut request = Veth::new(&cx.host_ifname("veth"), cx.ifname().as_str())
            .peer_netns(cx.netns())
            .alias(cx.host_alias())
            .up();
        if let Some(bridge) = &self.bridge {
            request = request.master(bridge);
        }
        if let Some(mtu) = cx.mtu() {
            request = request.mtu(mtu).peer_mtu(mtu);
        }
        if let Some(mac) = cx.mac() {
            request = request.peer_mac(mac);
        }
        request
    }
}
