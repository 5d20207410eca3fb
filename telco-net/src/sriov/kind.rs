//! [`SriovKind`]: an SR-IOV VF as an attachment of the multi-network API.

use std::path::PathBuf;

use async_trait::async_trait;
use telco_core::{HostRoot, PciAddress};

use super::alloc::{AllocationStore, DEFAULT_ALLOCATION_DIR};
use super::lifecycle::{VfAttachment, VfRequest, attach_vf, attachment_path, detach_vf};
use super::plugin::DEFAULT_STATE_DIR;
use super::vf_config::VfConfig;
use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::cni::{Device, DeviceInfo, PciDevice};

/// Attaches one VF: in kernel mode its netdev is moved into the pod under the attachment's
/// interface name; in DPDK mode (VF bound to vfio-pci or a uio driver) only the PF-side
/// settings change. Either way the status entry carries a `pci` device-info entry with the
/// VF's and PF's PCI addresses.
///
/// ```no_run
/// use telco_net::attach::AttachmentSpec;
/// use telco_net::sriov::{SriovKind, VfConfig};
///
/// let mut config = VfConfig::default();
/// config.vlan = Some(100);
/// let kind = SriovKind::new("0000:3b:02.1".parse().unwrap()).config(config);
/// let spec = AttachmentSpec::new("default/sriov-net", "net1".parse().unwrap(), kind);
/// # let _ = spec;
/// ```
#[derive(Debug, Clone)]
pub struct SriovKind {
    pci: PciAddress,
    config: VfConfig,
    sysfs: HostRoot,
    allocations: AllocationStore,
    state_dir: PathBuf,
}

impl SriovKind {
    /// Creates the kind for the VF at `pci`, with no PF-side change, SR-IOV CNI's allocation directory and this
    /// crate's default state directory.
    pub fn new(pci: PciAddress) -> Self {
        SriovKind {
            pci,
            config: VfConfig::default(),
            sysfs: HostRoot::system(),
            allocations: AllocationStore::new(DEFAULT_ALLOCATION_DIR),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        }
    }

    /// Sets the PF-side settings to apply.
    pub fn config(mut self, config: VfConfig) -> Self {
        self.config = config;
        self
    }

    /// Keeps saved attachments in `dir` and allocation markers in `dir/pci`.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.allocations = AllocationStore::new(dir.join("pci"));
        self.state_dir = dir;
        self
    }

    fn saved_path(&self, cx: &AttachContext<'_>) -> PathBuf {
        attachment_path(&self.state_dir, cx.container_id(), cx.ifname().as_str())
    }
}

/// Builds the `pci` device-info entry of an attached VF.
pub fn device_info(attachment: &VfAttachment) -> DeviceInfo {
    let mut pci = PciDevice::new(attachment.pci);
    pci.pf_pci_address = Some(attachment.pf_pci);
    DeviceInfo::new(Device::Pci(pci))
}

#[async_trait]
impl AttachKind for SriovKind {
    fn kind(&self) -> &'static str {
        "sriov"
    }

    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        let owner = format!("{}/{}", cx.container_id(), cx.ifname().as_str());
        let mut request = VfRequest::new(self.pci, cx.ifname().as_str(), &owner);
        request.config = self.config.clone();
        request.mac = cx.mac();
        let attachment = attach_vf(
            &self.sysfs,
            cx.host_netlink(),
            &self.allocations,
            cx.netns(),
            &request,
        )?;
        attachment.save(&self.saved_path(cx))?;
        if attachment.dpdk {
            let mut attached = Attached::userspace(device_info(&attachment));
            attached.mac = attachment.mac.map(|mac| mac.to_string());
            attached.mtu = attachment.mtu;
            Ok(attached)
        } else {
            Ok(Attached::kernel_interface().with_device_info(device_info(&attachment)))
        }
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        let path = self.saved_path(cx);
        let Some(attachment) = VfAttachment::load(&path)? else {
            return Ok(());
        };
        detach_vf(
            &self.sysfs,
            cx.host_netlink(),
            &self.allocations,
            Some(cx.netns()),
            &attachment,
        )?;
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }
}
