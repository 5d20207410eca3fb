//! Giving a VF to a workload and taking it back, in SR-IOV CNI's order of steps.
//!
//! [`attach_vf`]: lock the VF, refuse it when another workload owns it, detect the mode, save
//! the PF-side state, apply the new PF-side settings (in DPDK mode too), move the netdev into
//! the workload's namespace (kernel mode), and record the owner. Each step undoes the earlier
//! ones when it fails.
//!
//! [`detach_vf`]: lock the VF, skip the VF when the allocation marker names another owner (a
//! late DEL), restore the PF-side settings before the netdev (some drivers refuse a MAC reset
//! while trust is off), move the netdev back under its host name with its MTU and MAC, and
//! remove the marker.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use telco_core::{HostRoot, MacAddr, PciAddress};

use super::SriovError;
use super::alloc::AllocationStore;
use super::device::{VfMode, VirtualFunction, error_chain};
use super::netdev::{HostNetdev, move_netdev, restore_netdev_with};
use super::vf_config::{VfConfig, VfState, apply_vf_config, read_vf_state};
use crate::netns::{Netlink, Netns};

/// Attach request: a VF, the interface name it gets, its settings and its owner.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VfRequest {
    /// PCI address of the VF.
    pub pci: PciAddress,
    /// Interface name inside the workload (kernel mode).
    pub ifname: String,
    /// PF-side settings.
    pub config: VfConfig,
    /// Effective MAC to give the VF netdev; defaults to `config.mac`.
    pub mac: Option<MacAddr>,
    /// Owner recorded in the allocation marker: the workload's namespace path, as SR-IOV CNI
    /// records it, or any unique id.
    pub owner: String,
}

impl VfRequest {
    /// Creates a request for `pci` as `ifname`, owned by `owner`, with no PF-side change.
    pub fn new(pci: PciAddress, ifname: &str, owner: &str) -> Self {
        VfRequest {
            pci,
            ifname: ifname.to_owned(),
            config: VfConfig::default(),
            mac: None,
            owner: owner.to_owned(),
        }
    }
}

/// Everything [`detach_vf`] needs to restore the VF, saved as JSON between ADD and DEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VfAttachment {
    /// PCI address of the VF.
    pub pci: PciAddress,
    /// PCI address of the PF.
    pub pf_pci: PciAddress,
    /// PF netdev name.
    pub pf_netdev: String,
    /// PF driver.
    pub pf_driver: String,
    /// VF index on the PF.
    pub vf_index: u32,
    /// The driver the VF was bound to.
    pub vf_driver: Option<String>,
    /// True in DPDK mode (no netdev was moved).
    pub dpdk: bool,
    /// Interface name inside the workload (kernel mode).
    pub ifname: String,
    /// PF-side state before the attach.
    pub saved: VfState,
    /// PF-side settings that were applied.
    pub applied: VfConfig,
    /// The netdev's host-side state (kernel mode).
    pub host_netdev: Option<HostNetdev>,
    /// Effective MAC inside the workload, as read after the move.
    pub mac: Option<MacAddr>,
    /// MTU inside the workload (the PF's in DPDK mode).
    pub mtu: Option<u32>,
    /// Owner in the allocation marker.
    pub owner: String,
}

/// Gives the VF of `request` to the workload whose namespace is `target`.
///
/// `host` is a netlink session in the namespace that contains the PF and the VF netdev.
pub fn attach_vf(
    sysfs: &HostRoot,
    host: &Netlink,
    store: &AllocationStore,
    target: &Netns,
    request: &VfRequest,
) -> Result<VfAttachment, SriovError> {
    request.config.validate()?;
    let lock = store.lock(request.pci)?;
    if let Some(owner) = lock.owner()?
        && owner != request.owner
        && !is_stale_owner(&owner)
    {
        return Err(SriovError::VfTaken {
            pci: request.pci,
            owner,
        });
    }
    let vf = VirtualFunction::read(sysfs, request.pci)?;
    let mode = vf.mode()?;
    let pf = vf.physical_function(sysfs)?;
    let pf_netdev = pf
        .netdev
        .clone()
        .ok_or(SriovError::PfWithoutNetdev { pci: pf.pci })?;
    let pf_driver = pf.driver.clone().unwrap_or_else(|| "(none)".to_owned());
    let saved = read_vf_state(host, &pf_netdev, vf.index)?;

    let mut attachment = VfAttachment {
        pci: vf.pci,
        pf_pci: pf.pci,
        pf_netdev,
        pf_driver,
        vf_index: vf.index,
        vf_driver: vf.driver.clone(),
        dpdk: matches!(mode, VfMode::Dpdk { .. }),
        ifname: request.ifname.clone(),
        saved,
        applied: request.config.clone(),
        host_netdev: None,
        mac: None,
        mtu: None,
        owner: request.owner.clone(),
    };
    if let Err(error) = apply_vf_config(
        host,
        &attachment.pf_netdev,
        &attachment.pf_driver,
        vf.index,
        &request.config,
    ) {
        restore_pf_side(host, &attachment);
        return Err(error);
    }
    match &mode {
        VfMode::Kernel { netdev } => {
            let mac = request.mac.or(request.config.mac);
            match move_netdev(host, netdev, target, &request.ifname, mac) {
                Ok(saved_netdev) => attachment.host_netdev = Some(saved_netdev),
                Err(error) => {
                    restore_pf_side(host, &attachment);
                    return Err(error);
                }
            }
            read_pod_link(target, &mut attachment);
        }
        VfMode::Dpdk { .. } => {
            attachment.mtu = host
                .links()
                .get(&attachment.pf_netdev)
                .ok()
                .and_then(|link| link.mtu);
            attachment.mac = request.config.mac;
        }
    }
    if let Err(error) = lock.claim(&request.owner) {
        drop(lock);
        let _ = detach_netdev_and_pf(host, target, &attachment);
        return Err(error);
    }
    tracing::info!(vf = %attachment.pci, pf = %attachment.pf_netdev, index = attachment.vf_index, ifname = %attachment.ifname, dpdk = attachment.dpdk, "attached VF");
    Ok(attachment)
}

/// Takes the VF of `attachment` back: PF-side settings, then the netdev (when `target` is
/// still there), then the allocation marker.
///
/// When the marker names another owner the VF is left alone and the call succeeds: the VF
/// belongs to a newer workload. When `target` is `None` (the namespace is gone) the kernel
/// has already returned the netdev to the initial namespace; it is renamed back there if its
/// host name is free.
pub fn detach_vf(
    sysfs: &HostRoot,
    host: &Netlink,
    store: &AllocationStore,
    target: Option<&Netns>,
    attachment: &VfAttachment,
) -> Result<(), SriovError> {
    let lock = store.lock(attachment.pci)?;
    match lock.owner()? {
        Some(owner) if owner != attachment.owner => {
            tracing::info!(vf = %attachment.pci, owner = %attachment.owner, current_owner = %owner, "VF belongs to another workload; leaving it alone");
            return Ok(());
        }
        _ => {}
    }
    let restore = attachment.saved.restore_config(&attachment.applied);
    let pf_result = apply_vf_config(
        host,
        &attachment.pf_netdev,
        &attachment.pf_driver,
        attachment.vf_index,
        &restore,
    );
    let netdev_result = match (target, &attachment.host_netdev) {
        (Some(target), Some(saved)) => restore_if_present(target, attachment, saved, host),
        (None, Some(saved)) => rename_returned_netdev(sysfs, host, attachment, saved),
        (_, None) => Ok(()),
    };
    pf_result?;
    netdev_result?;
    lock.release(&attachment.owner)?;
    tracing::info!(vf = %attachment.pci, pf = %attachment.pf_netdev, index = attachment.vf_index, "detached VF");
    Ok(())
}

fn is_stale_owner(owner: &str) -> bool {
    owner.starts_with('/') && !std::path::Path::new(owner).exists()
}

fn restore_pf_side(host: &Netlink, attachment: &VfAttachment) {
    let restore = attachment.saved.restore_config(&attachment.applied);
    if let Err(error) = apply_vf_config(
        host,
        &attachment.pf_netdev,
        &attachment.pf_driver,
        attachment.vf_index,
        &restore,
    ) {
        tracing::warn!(vf = %attachment.pci, error = %error_chain(&error), "could not restore PF-side VF settings");
    }
}

fn detach_netdev_and_pf(
    host: &Netlink,
    target: &Netns,
    attachment: &VfAttachment,
) -> Result<(), SriovError> {
    restore_pf_side(host, attachment);
    match &attachment.host_netdev {
        Some(saved) => restore_if_present(target, attachment, saved, host),
        None => Ok(()),
    }
}

fn read_pod_link(target: &Netns, attachment: &mut VfAttachment) {
    if let Ok(session) = Netlink::in_netns(target)
        && let Ok(link) = session.links().get(&attachment.ifname)
    {
        attachment.mac = link.mac;
        attachment.mtu = link.mtu;
    }
}

/// Restores the netdev from the workload namespace when it is still in there.
fn restore_if_present(
    target: &Netns,
    attachment: &VfAttachment,
    saved: &HostNetdev,
    host: &Netlink,
) -> Result<(), SriovError> {
    let session = Netlink::in_netns(target).map_err(|source| SriovError::Netns {
        step: "open a netlink session in the workload namespace",
        source: Box::new(source),
    })?;
    let present = session
        .links()
        .find(&attachment.ifname)
        .map_err(|source| SriovError::Link {
            step: "look up",
            netdev: attachment.ifname.clone(),
            source: Box::new(source),
        })?
        .is_some();
    if present {
        restore_netdev_with(&session, &attachment.ifname, saved, host)
    } else {
        tracing::debug!(vf = %attachment.pci, ifname = %attachment.ifname, "VF netdev not in the workload namespace; nothing to move");
        Ok(())
    }
}

/// After the workload namespace is gone, the kernel moved the VF netdev back to the initial
/// namespace under its workload name: rename it to its host name.
fn rename_returned_netdev(
    sysfs: &HostRoot,
    host: &Netlink,
    attachment: &VfAttachment,
    saved: &HostNetdev,
) -> Result<(), SriovError> {
    let Some(current) = VirtualFunction::read(sysfs, attachment.pci)
        .ok()
        .and_then(|vf| vf.netdev)
    else {
        return Ok(());
    };
    if current == saved.name || host.links().find(&saved.name).ok().flatten().is_some() {
        return Ok(());
    }
    let links = host.links();
    links
        .set(&current)
        .down()
        .apply()
        .map_err(|source| SriovError::Link {
            step: "set down",
            netdev: current.clone(),
            source: Box::new(source),
        })?;
    let mut change = links.set(&current).rename(&saved.name);
    if let Some(mtu) = saved.mtu {
        change = change.mtu(mtu);
    }
    if let Some(mac) = saved.mac {
        change = change.mac(mac);
    }
    change.apply().map_err(|source| SriovError::Link {
        step: "rename back",
        netdev: current,
        source: Box::new(source),
    })
}

/// Returns the file under `dir` that contains the attachment of `container_id` and `ifname`, named as
/// SR-IOV CNI names its cache (`<containerID>-<ifname>`).
pub fn attachment_path(dir: &std::path::Path, container_id: &str, ifname: &str) -> PathBuf {
    dir.join(format!("{container_id}-{ifname}"))
}

impl VfAttachment {
    /// Writes the attachment as JSON to `path`, creating the directory.
    pub fn save(&self, path: &std::path::Path) -> Result<(), SriovError> {
        let state_error = |operation, source| SriovError::StateFile {
            operation,
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|source| state_error("create the directory of", source))?;
        }
        let text =
            serde_json::to_string_pretty(self).map_err(|source| SriovError::StateDecode {
                path: path.to_owned(),
                source,
            })?;
        std::fs::write(path, text).map_err(|source| state_error("write", source))
    }

    /// Reads an attachment saved by [`VfAttachment::save`]; `None` when the file is absent.
    pub fn load(path: &std::path::Path) -> Result<Option<Self>, SriovError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SriovError::StateFile {
                    operation: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| SriovError::StateDecode {
                path: path.to_owned(),
                source,
            })
    }
}
