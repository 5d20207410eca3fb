//! Discovery of physical and virtual functions through sysfs.
//!
//! Everything is read under a [`HostRoot`], from `/sys/bus/pci/devices/<pci>/`: `sriov_totalvfs`,
//! `sriov_numvfs`, the `driver`, `physfn`, `virtfnN` and `iommu_group` links, `numa_node`,
//! `vendor`, `device` and the `net/` directory.

use std::fs;
use std::path::{Path, PathBuf};

use telco_core::{FileError, HostRoot, PciAddress};

use super::SriovError;

/// Host path of the PCI device directory.
pub(crate) fn device_path(pci: PciAddress) -> PathBuf {
    PathBuf::from(format!("/sys/bus/pci/devices/{pci}"))
}

/// Drivers with which SR-IOV CNI treats a VF without netdev as a DPDK device.
pub const DPDK_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// An SR-IOV physical function as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhysicalFunction {
    /// PCI address of the PF.
    pub pci: PciAddress,
    /// PCI vendor id (`vendor`, such as 0x8086).
    pub vendor: u16,
    /// PCI device id (`device`, such as 0x1572 for an X710).
    pub device: u16,
    /// Bound driver (the `driver` link), if any.
    pub driver: Option<String>,
    /// NUMA node, or `None` when sysfs reports -1 or nothing.
    pub numa_node: Option<usize>,
    /// Netdev name under `net/`, if the driver created one.
    pub netdev: Option<String>,
    /// `sriov_totalvfs`: the most VFs the device supports.
    pub total_vfs: u32,
    /// `sriov_numvfs`: the VFs enabled now.
    pub num_vfs: u32,
}

/// An SR-IOV virtual function as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VirtualFunction {
    /// PCI address of the VF.
    pub pci: PciAddress,
    /// PCI address of its PF (the `physfn` link).
    pub pf: PciAddress,
    /// VF index on the PF: `N` of the PF's `virtfnN` link.
    pub index: u32,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id (such as 0x154c for an X710 VF).
    pub device: u16,
    /// Bound driver, if any (`iavf`, `igbvf`, `vfio-pci`).
    pub driver: Option<String>,
    /// Netdev name under `net/`, if the VF has one.
    pub netdev: Option<String>,
    /// IOMMU group (the `iommu_group` link), if the kernel put the device in one.
    pub iommu_group: Option<u32>,
    /// NUMA node, or `None` when sysfs reports -1 or nothing.
    pub numa_node: Option<usize>,
}

/// Mode of a VF (kernel netdev or userspace I/O driver), detected as SR-IOV CNI does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VfMode {
    /// The VF has a kernel netdev, which gets moved into the workload's namespace.
    Kernel {
        /// The netdev's name.
        netdev: String,
    },
    /// The VF has no netdev and is bound to a userspace I/O driver (one of [`DPDK_DRIVERS`]).
    Dpdk {
        /// The bound driver.
        driver: String,
    },
}

impl PhysicalFunction {
    /// Reads the PF at `pci`.
    ///
    /// Fails with [`SriovError::DeviceNotFound`] when the device is absent and
    /// [`SriovError::NotPhysicalFunction`] when it has no `sriov_totalvfs`.
    pub fn read(host: &HostRoot, pci: PciAddress) -> Result<Self, SriovError> {
        let dir = device_path(pci);
        require_device(host, pci)?;
        let total_vfs = match host.read_optional(dir.join("sriov_totalvfs")) {
            Ok(Some(text)) => parse_u32(host, pci, "sriov_totalvfs", &text)?,
            Ok(None) => return Err(SriovError::NotPhysicalFunction { pci }),
            Err(source) => return Err(SriovError::read_attribute(pci, "sriov_totalvfs", source)),
        };
        let num_vfs = host
            .read_string(dir.join("sriov_numvfs"))
            .map_err(|source| SriovError::read_attribute(pci, "sriov_numvfs", source))
            .and_then(|text| parse_u32(host, pci, "sriov_numvfs", &text))?;
        Ok(PhysicalFunction {
            pci,
            vendor: read_hex_id(host, pci, "vendor")?,
            device: read_hex_id(host, pci, "device")?,
            driver: read_driver(host, pci)?,
            numa_node: read_numa_node(host, pci)?,
            netdev: read_netdev(host, pci)?,
            total_vfs,
            num_vfs,
        })
    }

    /// Reads the PF behind the netdev `interface` (through `/sys/class/net/<interface>/device`).
    pub fn from_netdev(host: &HostRoot, interface: &str) -> Result<Self, SriovError> {
        let pci = pci_of_netdev(host, interface)?;
        PhysicalFunction::read(host, pci)
    }

    /// Lists every SR-IOV PF of the host, sorted by PCI address.
    ///
    /// A device whose attributes cannot be read is skipped with a warning, so one broken
    /// device does not hide the others; [`PhysicalFunction::read`] returns its error.
    pub fn list(host: &HostRoot) -> Result<Vec<Self>, SriovError> {
        let mut pfs = Vec::new();
        for pci in list_pci_devices(host)? {
            if !host.path(device_path(pci).join("sriov_totalvfs")).exists() {
                continue;
            }
            match PhysicalFunction::read(host, pci) {
                Ok(pf) => pfs.push(pf),
                Err(error) => {
                    tracing::warn!(%pci, error = %error_chain(&error), "skipping SR-IOV PF")
                }
            }
        }
        Ok(pfs)
    }

    /// Reads the PF's VFs from its `virtfnN` links, sorted by index.
    ///
    /// A dangling `virtfnN` link (the VF was removed while the PF was read) is an error.
    pub fn virtual_functions(&self, host: &HostRoot) -> Result<Vec<VirtualFunction>, SriovError> {
        let mut vfs = Vec::new();
        for (index, vf_pci) in virtfn_links(host, self.pci)? {
            vfs.push(VirtualFunction::read_with_parent(
                host, vf_pci, self.pci, index,
            )?);
        }
        Ok(vfs)
    }
}

impl VirtualFunction {
    /// Reads the VF at `pci`, with its PF and index from the `physfn` and `virtfnN` links.
    pub fn read(host: &HostRoot, pci: PciAddress) -> Result<Self, SriovError> {
        require_device(host, pci)?;
        let pf = match read_link_name(host, pci, "physfn")? {
            Some(name) => parse_pci_link(host, pci, "physfn", &name)?,
            None => return Err(SriovError::NotVirtualFunction { pci }),
        };
        let index = virtfn_links(host, pf)?
            .into_iter()
            .find(|(_, vf)| *vf == pci)
            .map(|(index, _)| index)
            .ok_or(SriovError::VfIndexNotFound { pf, vf: pci })?;
        VirtualFunction::read_with_parent(host, pci, pf, index)
    }

    /// Reads the VF at index `index` of the PF with netdev `pf_netdev`.
    pub fn from_pf_netdev(
        host: &HostRoot,
        pf_netdev: &str,
        index: u32,
    ) -> Result<Self, SriovError> {
        let pf = pci_of_netdev(host, pf_netdev)?;
        let link = format!("virtfn{index}");
        let name = read_link_name(host, pf, &link)?.ok_or_else(|| {
            let path = host.path(device_path(pf).join(&link));
            SriovError::read_attribute(
                pf,
                &link,
                FileError::read(path, std::io::ErrorKind::NotFound.into()),
            )
        })?;
        let pci = parse_pci_link(host, pf, &link, &name)?;
        VirtualFunction::read_with_parent(host, pci, pf, index)
    }

    fn read_with_parent(
        host: &HostRoot,
        pci: PciAddress,
        pf: PciAddress,
        index: u32,
    ) -> Result<Self, SriovError> {
        require_device(host, pci)?;
        let iommu_group = match read_link_name(host, pci, "iommu_group")? {
            Some(name) => Some(name.parse::<u32>().map_err(|_| {
                SriovError::read_attribute(
                    pci,
                    "iommu_group",
                    FileError::parse(
                        host.path(device_path(pci).join("iommu_group")),
                        telco_core::ParseError::new("IOMMU group", &name, "not a decimal number"),
                    ),
                )
            })?),
            None => None,
        };
        Ok(VirtualFunction {
            pci,
            pf,
            index,
            vendor: read_hex_id(host, pci, "vendor")?,
            device: read_hex_id(host, pci, "device")?,
            driver: read_driver(host, pci)?,
            netdev: read_netdev(host, pci)?,
            iommu_group,
            numa_node: read_numa_node(host, pci)?,
        })
    }

    /// Reads the VF's PF.
    pub fn physical_function(&self, host: &HostRoot) -> Result<PhysicalFunction, SriovError> {
        PhysicalFunction::read(host, self.pf)
    }

    /// Detects how the VF is used: a netdev means kernel mode; no netdev and a driver from
    /// [`DPDK_DRIVERS`] means DPDK mode; anything else is [`SriovError::UnknownVfMode`].
    pub fn mode(&self) -> Result<VfMode, SriovError> {
        match (&self.netdev, &self.driver) {
            (Some(netdev), _) => Ok(VfMode::Kernel {
                netdev: netdev.clone(),
            }),
            (None, Some(driver)) if DPDK_DRIVERS.contains(&driver.as_str()) => Ok(VfMode::Dpdk {
                driver: driver.clone(),
            }),
            (None, driver) => Err(SriovError::UnknownVfMode {
                pci: self.pci,
                driver: driver.clone(),
            }),
        }
    }

    /// Path of the VFIO group device (`/dev/vfio/<group>`) when the VF is bound to `vfio-pci`.
    pub fn vfio_device(&self) -> Option<PathBuf> {
        let bound_to_vfio = self.driver.as_deref() == Some("vfio-pci");
        self.iommu_group
            .filter(|_| bound_to_vfio)
            .map(|group| PathBuf::from(format!("/dev/vfio/{group}")))
    }
}

/// Reads the PCI address behind the netdev `interface`.
pub fn pci_of_netdev(host: &HostRoot, interface: &str) -> Result<PciAddress, SriovError> {
    let link = host.path(format!("/sys/class/net/{interface}/device"));
    let not_found = || SriovError::InterfaceNotFound {
        interface: interface.to_owned(),
    };
    let target = fs::read_link(&link).map_err(|_| not_found())?;
    let name = target
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(not_found)?;
    name.parse().map_err(|_| not_found())
}

fn require_device(host: &HostRoot, pci: PciAddress) -> Result<(), SriovError> {
    if host.path(device_path(pci)).is_dir() {
        Ok(())
    } else {
        Err(SriovError::DeviceNotFound { pci })
    }
}

/// Lists `/sys/bus/pci/devices`, skipping names that are not PCI addresses.
pub(crate) fn list_pci_devices(host: &HostRoot) -> Result<Vec<PciAddress>, SriovError> {
    let dir = host.path("/sys/bus/pci/devices");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(SriovError::ListDirectory { path: dir, source }),
    };
    let mut devices: Vec<PciAddress> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse().ok())
        })
        .collect();
    devices.sort();
    Ok(devices)
}

/// Reads the PF's `virtfnN` links as (index, VF address), sorted by index.
fn virtfn_links(host: &HostRoot, pf: PciAddress) -> Result<Vec<(u32, PciAddress)>, SriovError> {
    let dir = host.path(device_path(pf));
    let entries = fs::read_dir(&dir).map_err(|source| SriovError::ListDirectory {
        path: dir.clone(),
        source,
    })?;
    let mut links = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|name| name.strip_prefix("virtfn"))
            .and_then(|index| index.parse::<u32>().ok())
        else {
            continue;
        };
        let link = format!("virtfn{index}");
        let target = read_link_name(host, pf, &link)?.unwrap_or_default();
        links.push((index, parse_pci_link(host, pf, &link, &target)?));
    }
    links.sort();
    Ok(links)
}

/// Reads the last path component of the link `attribute` of a device, or `None` if absent.
fn read_link_name(
    host: &HostRoot,
    pci: PciAddress,
    attribute: &str,
) -> Result<Option<String>, SriovError> {
    let path = host.path(device_path(pci).join(attribute));
    match fs::read_link(&path) {
        Ok(target) => Ok(target
            .file_name()
            .and_then(|name| name.to_str())
            .map(str::to_owned)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SriovError::read_attribute(
            pci,
            attribute,
            FileError::read(path, source),
        )),
    }
}

fn parse_pci_link(
    host: &HostRoot,
    pci: PciAddress,
    attribute: &str,
    target: &str,
) -> Result<PciAddress, SriovError> {
    target.parse().map_err(|source| {
        SriovError::read_attribute(
            pci,
            attribute,
            FileError::parse(host.path(device_path(pci).join(attribute)), source),
        )
    })
}

fn read_driver(host: &HostRoot, pci: PciAddress) -> Result<Option<String>, SriovError> {
    read_link_name(host, pci, "driver")
}

/// Reads the single netdev under `net/`, the first in name order if a driver made several.
fn read_netdev(host: &HostRoot, pci: PciAddress) -> Result<Option<String>, SriovError> {
    let dir = host.path(device_path(pci).join("net"));
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SriovError::ListDirectory { path: dir, source }),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .collect();
    names.sort();
    Ok(names.into_iter().next())
}

fn read_numa_node(host: &HostRoot, pci: PciAddress) -> Result<Option<usize>, SriovError> {
    match host.read_integer(device_path(pci).join("numa_node")) {
        Ok(node) => Ok(usize::try_from(node).ok()),
        Err(error) if error.is_not_found() => Ok(None),
        Err(source) => Err(SriovError::read_attribute(pci, "numa_node", source)),
    }
}

fn read_hex_id(host: &HostRoot, pci: PciAddress, attribute: &str) -> Result<u16, SriovError> {
    let path = device_path(pci).join(attribute);
    let text = host
        .read_string(&path)
        .map_err(|source| SriovError::read_attribute(pci, attribute, source))?;
    let digits = text.trim().trim_start_matches("0x");
    u16::from_str_radix(digits, 16).map_err(|_| {
        let error =
            telco_core::ParseError::new("PCI id", &text, "not a 16-bit hex number such as 0x8086");
        SriovError::read_attribute(pci, attribute, FileError::parse(host.path(&path), error))
    })
}

fn parse_u32(
    host: &HostRoot,
    pci: PciAddress,
    attribute: &str,
    text: &str,
) -> Result<u32, SriovError> {
    text.trim().parse().map_err(|_| {
        let error = telco_core::ParseError::new("VF count", text, "not a decimal number");
        let path: &Path = &device_path(pci).join(attribute);
        SriovError::read_attribute(pci, attribute, FileError::parse(host.path(path), error))
    })
}

/// Formats an error with its sources, for log fields.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
