//! PCI devices from `sys/bus/pci/devices`.

use serde::{Deserialize, Serialize};
use telco_core::{CpuSet, FileError, HostRoot, ParseError, PciAddress};

use super::{list_dir, read_cpu_set, read_int, read_text};
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
    /// Network interfaces of the device (`net/`).
    pub net: Vec<String>,
    /// Virtual functions the device supports (`sriov_totalvfs`), for SR-IOV physical functions.
    pub sriov_totalvfs: Option<u32>,
    /// Virtual functions enabled (`sriov_numvfs`).
    pub sriov_numvfs: Option<u32>,
}

/// Reads every device; entries whose name is not a PCI address are skipped with a warning.
pub(super) fn read_pci_devices(host: &HostRoot) -> Result<Vec<PciDevice>, DiscoverError> {
    let mut devices = Vec::new();
    for name in list_dir(&host.path(PCI_DIR))? {
        let Ok(address) = name.parse::<PciAddress>() else {
            tracing::warn!(entry = %name, "skipping a PCI device entry that is not an address");
            continue;
        };
        devices.push(read_device(host, address, &format!("{PCI_DIR}/{name}"))?);
    }
    devices.sort_by_key(|device| device.address);
    Ok(devices)
}

fn read_device(
    host: &HostRoot,
    address: PciAddress,
    dir: &str,
) -> Result<PciDevice, DiscoverError> {
    let numa_node =
        read_int(host, &format!("{dir}/numa_node"))?.and_then(|node| usize::try_from(node).ok());
    let local_cpus = read_cpu_set(
        host,
        &[&format!("{dir}/local_cpus")],
        &[&format!("{dir}/local_cpulist")],
    )?;
    let driver = std::fs::read_link(host.path(format!("{dir}/driver")))
        .ok()
        .and_then(|target| target.file_name()?.to_str().map(str::to_owned));
    Ok(PciDevice {
        address,
        class: read_hex(host, &format!("{dir}/class"))?.unwrap_or(0),
        vendor: read_hex_u16(host, &format!("{dir}/vendor"))?,
        device: read_hex_u16(host, &format!("{dir}/device"))?,
        driver,
        numa_node,
        local_cpus,
        net: list_dir(&host.path(format!("{dir}/net")))?,
        sriov_totalvfs: read_decimal(host, &format!("{dir}/sriov_totalvfs"))?,
        sriov_numvfs: read_decimal(host, &format!("{dir}/sriov_numvfs"))?,
    })
}

fn read_hex(host: &HostRoot, path: &str) -> Result<Option<u32>, DiscoverError> {
    let Some(text) = read_text(host, path)? else {
        return Ok(None);
    };
    let digits = text.trim().trim_start_matches("0x");
    u32::from_str_radix(digits, 16).map(Some).map_err(|_| {
        FileError::parse(
            host.path(path),
            ParseError::new("hex id", &text, "not a hex number"),
        )
        .into()
    })
}

fn read_hex_u16(host: &HostRoot, path: &str) -> Result<u16, DiscoverError> {
    let value = read_hex(host, path)?.unwrap_or(0);
    u16::try_from(value).map_err(|_| {
        FileError::parse(
            host.path(path),
            ParseError::new("PCI id", &format!("{value:#x}"), "exceeds 16 bits"),
        )
        .into()
    })
}

fn read_decimal(host: &HostRoot, path: &str) -> Result<Option<u32>, DiscoverError> {
    Ok(read_int(host, path)?.and_then(|value| u32::try_from(value).ok()))
}
