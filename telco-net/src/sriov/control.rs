//! Changes through sysfs: the number of VFs and the driver a device is bound to.

use telco_core::{HostRoot, PciAddress};

use super::SriovError;
use super::device::{PhysicalFunction, device_path};

/// Returns the values to write to `sriov_numvfs` to go from `current` to `wanted` VFs.
///
/// The kernel rejects a change between two non-zero counts with `EBUSY`, so such a change goes
/// through 0 first. No write is needed when the count is already right.
pub fn num_vfs_writes(current: u32, wanted: u32) -> Vec<u32> {
    if current == wanted {
        Vec::new()
    } else if current == 0 || wanted == 0 {
        vec![wanted]
    } else {
        vec![0, wanted]
    }
}

impl PhysicalFunction {
    /// Sets the number of VFs, like `echo N > /sys/bus/pci/devices/<pci>/sriov_numvfs`, going
    /// through 0 when VFs are already enabled.
    ///
    /// Checks `sriov_totalvfs` and the PF driver first, so the error names the reason a write would fail.
    /// Updates `self.num_vfs` after each successful write.
    pub fn set_num_vfs(&mut self, host: &HostRoot, wanted: u32) -> Result<(), SriovError> {
        let pci = self.pci;
        if wanted > self.total_vfs {
            return Err(SriovError::TooManyVfs {
                pci,
                requested: wanted,
                total: self.total_vfs,
            });
        }
        let current = host
            .read_string(device_path(pci).join("sriov_numvfs"))
            .map_err(|source| SriovError::read_attribute(pci, "sriov_numvfs", source))?;
        let current: u32 = current.trim().parse().unwrap_or(self.num_vfs);
        let writes = num_vfs_writes(current, wanted);
        if !writes.is_empty() && self.driver.is_none() {
            return Err(SriovError::PfWithoutDriver { pci });
        }
        for value in writes {
            tracing::debug!(%pci, value, "writing sriov_numvfs");
            host.write(device_path(pci).join("sriov_numvfs"), &value.to_string())
                .map_err(|source| self.num_vfs_error(source))?;
            self.num_vfs = value;
        }
        Ok(())
    }

    fn num_vfs_error(&self, source: telco_core::FileError) -> SriovError {
        let pci = self.pci;
        match (source.raw_os_error(), &self.driver) {
            // The kernel returns ENOENT when the bound driver has no sriov_configure callback.
            (Some(libc::ENOENT), Some(driver)) => SriovError::NumVfsUnsupported {
                pci,
                driver: driver.clone(),
            },
            (Some(libc::ENOENT), None) => SriovError::PfWithoutDriver { pci },
            _ => SriovError::write_attribute(pci, "sriov_numvfs", source),
        }
    }
}

/// Binds the PCI device to `driver` the way `driverctl` and SR-IOV tooling do: write
/// `driver_override`, unbind from the current driver, ask `drivers_probe` to bind it, then
/// clear `driver_override` again.
///
/// Binding to `vfio-pci` needs an IOMMU (or VFIO no-IOMMU mode). Returns without a change when
/// the device is bound to `driver` already. Fails with [`SriovError::BindFailed`] when the
/// device ends up on another driver.
pub fn bind_driver(host: &HostRoot, pci: PciAddress, driver: &str) -> Result<(), SriovError> {
    let dir = device_path(pci);
    if !host.path(&dir).is_dir() {
        return Err(SriovError::DeviceNotFound { pci });
    }
    if !host.path(format!("/sys/bus/pci/drivers/{driver}")).is_dir() {
        return Err(SriovError::DriverNotLoaded {
            driver: driver.to_owned(),
        });
    }
    let current = bound_driver(host, pci)?;
    if current.as_deref() == Some(driver) {
        return Ok(());
    }
    tracing::info!(%pci, from = current.as_deref().unwrap_or("(none)"), to = driver, "rebinding PCI device");
    write_device_attribute(host, pci, "driver_override", driver)?;
    let result = unbind_and_probe(host, pci, current.as_deref());
    // An empty driver_override lets the next probe pick the device's default driver again.
    let cleared = write_device_attribute(host, pci, "driver_override", "\n");
    result?;
    cleared?;
    let bound = bound_driver(host, pci)?;
    if bound.as_deref() == Some(driver) {
        Ok(())
    } else {
        Err(SriovError::BindFailed {
            pci,
            driver: driver.to_owned(),
            bound,
        })
    }
}

/// Unbinds the device from its driver, like `echo <pci> > .../driver/unbind`. Does nothing when
/// no driver is bound.
pub fn unbind_driver(host: &HostRoot, pci: PciAddress) -> Result<(), SriovError> {
    match bound_driver(host, pci)? {
        Some(driver) => write_bus_attribute(
            host,
            pci,
            &format!("/sys/bus/pci/drivers/{driver}/unbind"),
            "unbind",
        ),
        None => Ok(()),
    }
}

/// Reads the name of the driver bound to the device.
pub fn bound_driver(host: &HostRoot, pci: PciAddress) -> Result<Option<String>, SriovError> {
    let path = host.path(device_path(pci).join("driver"));
    match std::fs::read_link(&path) {
        Ok(target) => Ok(target
            .file_name()
            .and_then(|name| name.to_str())
            .map(str::to_owned)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SriovError::read_attribute(
            pci,
            "driver",
            telco_core::FileError::read(path, source),
        )),
    }
}

fn unbind_and_probe(
    host: &HostRoot,
    pci: PciAddress,
    current: Option<&str>,
) -> Result<(), SriovError> {
    if let Some(current) = current {
        write_bus_attribute(
            host,
            pci,
            &format!("/sys/bus/pci/drivers/{current}/unbind"),
            "unbind",
        )?;
    }
    write_bus_attribute(host, pci, "/sys/bus/pci/drivers_probe", "drivers_probe")
}

fn write_device_attribute(
    host: &HostRoot,
    pci: PciAddress,
    attribute: &str,
    value: &str,
) -> Result<(), SriovError> {
    host.write(device_path(pci).join(attribute), value)
        .map_err(|source| SriovError::write_attribute(pci, attribute, source))
}

fn write_bus_attribute(
    host: &HostRoot,
    pci: PciAddress,
    path: &str,
    attribute: &str,
) -> Result<(), SriovError> {
    host.write(path, &pci.to_string())
        .map_err(|source| SriovError::write_attribute(pci, attribute, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_vfs_change_goes_through_zero() {
        assert_eq!(num_vfs_writes(4, 2), vec![0, 2]);
        assert_eq!(num_vfs_writes(0, 7), vec![7]);
        assert_eq!(num_vfs_writes(3, 0), vec![0]);
        assert!(num_vfs_writes(5, 5).is_empty());
    }
}
