//! [`SriovError`]: every failure of the SR-IOV module.

use std::io;
use std::path::PathBuf;

use telco_core::{FileError, PciAddress};
use thiserror::Error;

use super::vf_config::VfAttribute;

/// An SR-IOV discovery, control, configuration or allocation step that failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SriovError {
    /// No PCI device with this address exists under `/sys/bus/pci/devices`.
    #[error("PCI device {pci} not found under /sys/bus/pci/devices")]
    DeviceNotFound {
        /// Address that was looked up.
        pci: PciAddress,
    },

    /// No network interface with this name has a PCI device behind it.
    #[error("network interface {interface} not found or not backed by a PCI device")]
    InterfaceNotFound {
        /// Interface name that was looked up.
        interface: String,
    },

    /// The device has no `sriov_totalvfs`, so it is not an SR-IOV physical function.
    #[error("PCI device {pci} is not an SR-IOV physical function (no sriov_totalvfs)")]
    NotPhysicalFunction {
        /// Address of the device.
        pci: PciAddress,
    },

    /// The device has no `physfn` link, so it is not a virtual function.
    #[error("PCI device {pci} is not an SR-IOV virtual function (no physfn link)")]
    NotVirtualFunction {
        /// Address of the device.
        pci: PciAddress,
    },

    /// The VF's PF lists no `virtfnN` link that points back at the VF.
    #[error("PF {pf} has no virtfn link to VF {vf}")]
    VfIndexNotFound {
        /// Address of the PF.
        pf: PciAddress,
        /// Address of the VF.
        vf: PciAddress,
    },

    /// A sysfs attribute of a device could not be read or parsed.
    #[error("failed to read {attribute} of PCI device {pci}")]
    ReadAttribute {
        /// Address of the device.
        pci: PciAddress,
        /// Attribute file or link, such as `sriov_totalvfs` or `physfn`.
        attribute: String,
        /// Error of the read.
        #[source]
        source: Box<FileError>,
    },

    /// A sysfs directory could not be listed.
    #[error("failed to list {}", path.display())]
    ListDirectory {
        /// Directory that was listed.
        path: PathBuf,
        /// Error of the listing.
        #[source]
        source: io::Error,
    },

    /// More VFs were requested than the PF supports.
    #[error("PF {pci} supports at most {total} VFs, {requested} requested")]
    TooManyVfs {
        /// Address of the PF.
        pci: PciAddress,
        /// Requested number of VFs.
        requested: u32,
        /// The PF's `sriov_totalvfs`.
        total: u32,
    },

    /// The PF has no driver bound, and the kernel creates VFs only through the PF driver.
    #[error("cannot create VFs on PF {pci}: no driver is bound; bind the PF to its kernel driver")]
    PfWithoutDriver {
        /// Address of the PF.
        pci: PciAddress,
    },

    /// The PF driver has no `sriov_configure` callback, so `sriov_numvfs` cannot be written.
    #[error(
        "driver {driver} of PF {pci} cannot create VFs through sriov_numvfs; use the driver's own \
         mechanism (such as the max_vfs module parameter)"
    )]
    NumVfsUnsupported {
        /// Address of the PF.
        pci: PciAddress,
        /// Driver bound to the PF.
        driver: String,
    },

    /// Writing a sysfs attribute failed for a reason not covered by another variant.
    #[error("failed to write {attribute} of PCI device {pci}")]
    WriteAttribute {
        /// Address of the device.
        pci: PciAddress,
        /// Attribute file, such as `sriov_numvfs` or `driver_override`.
        attribute: String,
        /// Error of the write.
        #[source]
        source: Box<FileError>,
    },

    /// The operation needs privileges this process does not have.
    #[error("{operation} requires root (CAP_SYS_ADMIN for sysfs, CAP_NET_ADMIN for netlink)")]
    PermissionDenied {
        /// Operation that was rejected, such as "writing sriov_numvfs of 0000:3b:00.0".
        operation: String,
    },

    /// The kernel driver to bind is not loaded, so `/sys/bus/pci/drivers/<driver>` is missing.
    #[error(
        "driver {driver} is not loaded (no /sys/bus/pci/drivers/{driver}); run modprobe {driver}"
    )]
    DriverNotLoaded {
        /// Driver name.
        driver: String,
    },

    /// After the bind steps the device is bound to another driver or to none.
    #[error("binding PCI device {pci} to {driver} failed: it is bound to {}", bound.as_deref().unwrap_or("no driver"))]
    BindFailed {
        /// Address of the device.
        pci: PciAddress,
        /// Driver that was requested.
        driver: String,
        /// Driver bound after the attempt.
        bound: Option<String>,
    },

    /// The VF has no netdev and its driver is not a DPDK driver, so neither mode applies.
    #[error(
        "VF {pci} has no netdev and driver {} is not a DPDK driver (vfio-pci, uio_pci_generic, igb_uio)",
        driver.as_deref().unwrap_or("(none)")
    )]
    UnknownVfMode {
        /// Address of the VF.
        pci: PciAddress,
        /// Driver bound to the VF.
        driver: Option<String>,
    },

    /// The PF has no netdev, so its VFs cannot be configured over netlink.
    #[error("PF {pci} has no netdev; VF attributes are set through the PF's netdev")]
    PfWithoutNetdev {
        /// Address of the PF.
        pci: PciAddress,
    },

    /// A netlink request failed.
    #[error("netlink {request} on {interface} failed")]
    Netlink {
        /// Request, such as "RTM_GETLINK" or "RTM_SETLINK IFLA_VF_MAC".
        request: String,
        /// Interface the request was about.
        interface: String,
        /// Error from rtnetlink.
        #[source]
        source: Box<rtnetlink::Error>,
    },

    /// Opening a netlink socket or starting its runtime failed.
    #[error("failed to open a netlink socket")]
    NetlinkSocket(#[source] io::Error),

    /// The PF driver rejected a VF attribute it does not implement.
    #[error("driver {driver} of PF {pf} does not support setting {attribute} on VF {vf}")]
    AttributeUnsupported {
        /// Attribute that was set.
        attribute: VfAttribute,
        /// PF netdev name.
        pf: String,
        /// VF index.
        vf: u32,
        /// Driver bound to the PF.
        driver: String,
        /// Error from the kernel.
        #[source]
        source: Box<rtnetlink::Error>,
    },

    /// The PF driver rejected a VF attribute value.
    #[error("driver {driver} of PF {pf} rejected {attribute} on VF {vf}")]
    AttributeRejected {
        /// Attribute that was set.
        attribute: VfAttribute,
        /// PF netdev name.
        pf: String,
        /// VF index.
        vf: u32,
        /// Driver bound to the PF.
        driver: String,
        /// Error from the kernel.
        #[source]
        source: Box<rtnetlink::Error>,
    },

    /// The PF's `IFLA_VFINFO_LIST` has no entry for the VF.
    #[error("PF {pf} reports no VF info for VF {vf} (IFLA_VFINFO_LIST)")]
    VfInfoMissing {
        /// PF netdev name.
        pf: String,
        /// VF index.
        vf: u32,
    },

    /// A link step of moving or restoring a VF netdev failed.
    #[error("{step} of VF netdev {netdev} failed")]
    Link {
        /// Step, such as "move into the temporary namespace" or "rename".
        step: &'static str,
        /// Netdev name at that step.
        netdev: String,
        /// Error of the link request.
        #[source]
        source: Box<crate::link::LinkError>,
    },

    /// A namespace step (open, create, start a netlink session) failed.
    #[error("{step} failed")]
    Netns {
        /// Step, such as "create the temporary namespace".
        step: &'static str,
        /// Error of the namespace call.
        #[source]
        source: Box<crate::netns::NetnsError>,
    },

    /// A configuration value is invalid; `field` is the JSON key.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// JSON key of the value, such as `vlan` or `min_tx_rate`.
        field: &'static str,
        /// Reason the value is invalid.
        reason: String,
    },

    /// The VF is allocated to another workload.
    #[error("VF {pci} is already allocated to {owner}")]
    VfTaken {
        /// Address of the VF.
        pci: PciAddress,
        /// Owner recorded in the allocation marker.
        owner: String,
    },

    /// No free VF is left in the pool.
    #[error("pool {pool} has no free VF")]
    PoolExhausted {
        /// Resource name of the pool.
        pool: String,
    },

    /// A state file (allocation marker, lock, saved VF state) could not be used.
    #[error("failed to {operation} {}", path.display())]
    StateFile {
        /// Step, such as "lock" or "write".
        operation: &'static str,
        /// State file.
        path: PathBuf,
        /// Error of the step.
        #[source]
        source: io::Error,
    },

    /// A saved state file does not hold valid JSON.
    #[error("failed to decode {}", path.display())]
    StateDecode {
        /// State file.
        path: PathBuf,
        /// Error from the decoder.
        #[source]
        source: serde_json::Error,
    },
}

impl SriovError {
    /// Maps an I/O error on a sysfs write to [`SriovError::PermissionDenied`] when the errno is
    /// `EACCES` or `EPERM`, else to [`SriovError::WriteAttribute`].
    pub(crate) fn write_attribute(pci: PciAddress, attribute: &str, source: FileError) -> Self {
        match source.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => SriovError::PermissionDenied {
                operation: format!("writing {attribute} of {pci}"),
            },
            _ => SriovError::WriteAttribute {
                pci,
                attribute: attribute.to_owned(),
                source: Box::new(source),
            },
        }
    }

    /// Creates a [`SriovError::ReadAttribute`].
    pub(crate) fn read_attribute(pci: PciAddress, attribute: &str, source: FileError) -> Self {
        SriovError::ReadAttribute {
            pci,
            attribute: attribute.to_owned(),
            source: Box::new(source),
        }
    }
}
