//! [`HostDeviceKind`]: an existing host netdev moved into the pod and back.

use async_trait::async_trait;

use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::netns::Netns;

/// Moves the existing host interface `device` into the pod under the attachment's name, like
/// the CNI `host-device` plugin, and sets its alias to the host name. Move, rename and alias
/// go in one `RTM_SETLINK` request: the kernel moves the device, then renames it inside the
/// pod, so the new name never appears in the host (to udev or NetworkManager). The
/// plugin's temporary namespace gets the same result with one move more. Detach moves it back under its
/// host name.
#[derive(Debug, Clone)]
pub struct HostDeviceKind {
    device: String,
}

impl HostDeviceKind {
    /// Moves the host interface `device`.
    pub fn new(device: &str) -> HostDeviceKind {
        HostDeviceKind {
            device: device.to_owned(),
        }
    }
}

#[async_trait]
impl AttachKind for HostDeviceKind {
    fn kind(&self) -> &'static str {
        "host-device"
    }

    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        let mut change = cx
            .host_netlink()
            .links()
            .set(&self.device)
            .netns(cx.netns())
            .rename(cx.ifname().as_str())
            .alias(&self.device);
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
        let pod = cx.pod_netlink().links();
        if pod.find(ifname)?.is_none() {
            return Ok(());
        }
        let host = host_netns(cx)?;
        pod.set(ifname).down().apply()?;
        pod.set(ifname).rename(&self.device).netns(&host).apply()?;
        Ok(())
    }
}

/// The namespace of the host netlink session.
fn host_netns(cx: &AttachContext<'_>) -> Result<Netns, KindError> {
    let netns = cx.host_netlink().run_inside(Netns::current)??;
    Ok(netns)
}
