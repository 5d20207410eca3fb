//! PCI devices from `sys/bus/pci/devices`.

use serde::{Deserialize, Serialize};
use telco_core::{CpuSet, FileError, ParseError, PciAddress};

use super::numbered;
use super::sysfs::{Dir, Sysfs, file_path};
use crate::error::DiscoverError;

const PCI_DIR: &str = "/sys/bus/pci/devices";

/// One PCI function and where it sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PciDevice {
    /// Address (`0000:3b:00.1`).
    pub address: PciAddress,
    /// Class code, 24 bits (`0x020000` is an Ethernet controller).
    pub class: u32,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Bound driver, from the `driver` link.
    pub driver: Option<String>,
    /// NUMA node (`numa_node`); `None` where the kernel reports `-1` (unknown).
    pub numa_node: Option<usize>,
    /// CPUs near the device (`local_cpulist` or `local_cpus`).
    pub local_cpus: Option<CpuSet>,
    /// Network interfaces of the device: the entries of `net/`, and for virtio devices those of
    /// `virtioN/net/`, where the virtio driver puts them.
    pub net: Vec<String>,
    /// Virtual functions the device supports (`sriov_totalvfs`), for SR-IOV physical functions.
    pub sriov_totalvfs: Option<u32>,
    /// Virtual functions enabled (`sriov_numvfs`).
    pub sriov_numvfs: Option<u32>,
}

/// PCI vendor id of virtio devices (Red Hat, formerly Qumranet).
const VIRTIO_VENDOR: u16 = 0x1af4;

/// Reads every device; entries whose name is not a PCI address are skipped with a warning.
pub(super) fn read_pci_devices(sysfs: &mut Sysfs<'_>) -> Result<Vec<PciDevice>, DiscoverError> {
    let pci_dir = sysfs.dir(PCI_DIR)?;
    let mut devices = Vec::new();
    for name in sysfs.list(&pci_dir)? {
        let Ok(address) = name.parse::<PciAddress>() else {
            tracing::warn!(entry = %name, "skipping a PCI device entry that is not an address");
            continue;
        };
        let dir = sysfs.subdir(&pci_dir, &name)?;
        devices.push(read_device(sysfs, address, &dir)?);
    }
    devices.sort_by_key(|device| device.address);
    Ok(devices)
}

fn read_device(
    sysfs: &mut Sysfs<'_>,
    address: PciAddress,
    dir: &Dir,
) -> Result<PciDevice, DiscoverError> {
    let numa_node = sysfs
        .int(dir, "numa_node")?
        .and_then(|node| usize::try_from(node).ok());
    let local_cpus: Option<CpuSet> = sysfs.cpu_set(dir, &["local_cpus"], &["local_cpulist"])?;
    let driver = sysfs.link_name(dir, "driver");
    let vendor = read_hex_u16(sysfs, dir, "vendor")?;
    let mut net = sysfs.list_at(dir, "net")?;
    if vendor == VIRTIO_VENDOR {
        net.extend(read_virtio_net(sysfs, dir)?);
    }
    Ok(PciDevice {
        address,
        class: read_hex(sysfs, dir, "class")?.unwrap_or(0),
        vendor,
        device: read_hex_u16(sysfs, dir, "device")?,
        driver,
        numa_node,
        local_cpus,
        net,
        sriov_totalvfs: read_decimal(sysfs, dir, "sriov_totalvfs")?,
        sriov_numvfs: read_decimal(sysfs, dir, "sriov_numvfs")?,
    })
}

/// Interfaces of a virtio PCI device, which the virtio driver registers under the device's
/// `virtioN` child (`0000:00:03.0/virtio0/net/eth0`) rather than under its `net/`.
fn read_virtio_net(sysfs: &mut Sysfs<'_>, dir: &Dir) -> Result<Vec<String>, DiscoverError> {
    let mut interfaces = Vec::new();
    for child in sysfs.list(dir)? {
        if numbered(&child, "virtio").is_none() {
            continue;
        }
        interfaces.extend(sysfs.list_at(dir, &format!("{child}/net"))?);
    }
    Ok(interfaces)
}

fn read_hex(sysfs: &mut Sysfs<'_>, dir: &Dir, name: &str) -> Result<Option<u32>, DiscoverError> {
    let host = sysfs.host();
    let Some(text) = sysfs.text(dir, name)? else {
        return Ok(None);
    };
    let digits = text.trim().trim_start_matches("0x");
    u32::from_str_radix(digits, 16).map(Some).map_err(|_| {
        FileError::parse(
            file_path(host, dir, name),
            ParseError::new("hex id", text, "not a hex number"),
        )
        .into()
    })
}

fn read_hex_u16(sysfs: &mut Sysfs<'_>, dir: &Dir, name: &str) -> Result<u16, DiscoverError> {
    let value = read_hex(sysfs, dir, name)?.unwrap_or(0);
    u16::try_from(value).map_err(|_| {
        FileError::parse(
            sysfs.file_path(dir, name),
            ParseError::new("PCI id", &format!("{value:#x}"), "exceeds 16 bits"),
        )
        .into()
    })
}

fn read_decimal(
    sysfs: &mut Sysfs<'_>,
    dir: &Dir,
    name: &str,
) -> Result<Option<u32>, DiscoverError> {
    Ok(sysfs
        .int(dir, name)?
        .and_then(|value| u32::try_from(value).ok()))
}
