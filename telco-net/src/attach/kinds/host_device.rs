//! [`HostDeviceKind`]: an existing host netdev moved into the pod and back.

use async_trait::async_trait;

use super::gone_is_ok;
use crate::attach::{AttachContext, AttachKind, Attached, KindError};

/// Moves the existing host interface `device` into the pod under the attachment's name, like
/// the CNI `host-device` plugin, and sets its alias to the host name. Move, rename and alias
/// go in one `RTM_SETLINK` request: the kernel moves the device, then renames it inside the
/// pod, so the new name never appears in the host (to udev or NetworkManager). The
/// plugin's temporary namespace gets the same result with one move more. Detach moves it back under its
/// host name with one request of the same form, and it arrives down.
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
        // One request, like attach: the move closes the device (so it arrives down) and the
        // kernel renames it once it is in the host. A device no longer in the pod means there
        // is nothing left to do.
        let host = cx.host_netlink().open_netns()?;
        let moved = cx
            .pod_netlink()
            .links()
            .set(cx.ifname().as_str())
            .rename(&self.device)
            .netns(&host)
            .apply();
        gone_is_ok(moved)
    }
}
