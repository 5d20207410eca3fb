//! virtio devices on the virtio-mmio transport: virtio-net on a tap and virtio-blk on a raw
//! file. The guest learns of each device from an `LNRO0005` device in the ACPI DSDT (the
//! binding Linux's `virtio_mmio` driver matches), so the guest kernel needs `CONFIG_ACPI` and
//! `CONFIG_VIRTIO_MMIO`, but not `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`.
//!
//! # Limitations
//! - Split virtqueues only, no `VIRTIO_F_RING_PACKED`, no indirect descriptors, no event index.
//! - virtio-net offers no checksum or segmentation offload and no control queue; the tap must
//!   be opened without `IFF_VNET_HDR`.
//! - The ACPI tables describe a hardware-reduced platform; with them Linux takes its CPUs and
//!   IOAPIC from the MADT instead of the MP table. A VM without virtio devices gets no ACPI.

mod blk;
pub(crate) mod chain;
mod mmio;
mod net;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use kvm_ioctls::VmFd;
use telco_core::MacAddr;
use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

pub(crate) use mmio::{Interrupt, MmioTransport};

use crate::bus::MmioDevice;
use crate::error::VmmError;
use crate::layout::{VIRTIO_IRQ_END, VIRTIO_IRQ_START, VIRTIO_MMIO_SIZE, VIRTIO_MMIO_START};
use crate::memory::GuestMemory;

/// `VIRTIO_F_VERSION_1`: the device follows virtio 1.0 or later.
pub(crate) const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// Interrupt lines for virtio devices: 5 to 15 without 8 (RTC) and 12 (PS/2 mouse).
fn virtio_irqs() -> impl Iterator<Item = u32> {
    (VIRTIO_IRQ_START..=VIRTIO_IRQ_END).filter(|irq| *irq != 8 && *irq != 12)
}

/// Most virtio devices one microVM can have.
pub const MAX_DEVICES: usize = 9;

/// A virtio-net device on a tap the caller opened.
#[derive(Debug)]
#[non_exhaustive]
pub struct NetConfig {
    /// The tap's file descriptor, opened with `IFF_TAP | IFF_NO_PI` (no `IFF_VNET_HDR`). The
    /// device sets it non-blocking.
    pub tap: OwnedFd,
    /// The MAC address the guest uses; the guest picks a random one when `None`.
    pub mac: Option<MacAddr>,
}

impl NetConfig {
    /// Describes a virtio-net device on `tap`.
    pub fn new(tap: OwnedFd, mac: Option<MacAddr>) -> Self {
        NetConfig { tap, mac }
    }
}

/// A virtio-blk device on a raw image file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BlockConfig {
    /// The image file.
    pub path: PathBuf,
    /// Offer the device read-only (`VIRTIO_BLK_F_RO`) and reject writes.
    pub read_only: bool,
}

impl BlockConfig {
    /// Describes a virtio-blk device on the raw file at `path`.
    pub fn new(path: impl Into<PathBuf>, read_only: bool) -> Self {
        BlockConfig {
            path: path.into(),
            read_only,
        }
    }
}

/// A device model behind the virtio-mmio transport.
pub(crate) trait VirtioDevice: Send + std::fmt::Debug {
    fn device_type(&self) -> u32;
    fn features(&self) -> u64;
    fn queue_max_sizes(&self) -> &[u16];
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Starts the device once the driver sets DRIVER_OK with valid queues.
    fn activate(
        &mut self,
        memory: GuestMemory,
        queues: Vec<Queue>,
        features: u64,
        interrupt: Interrupt,
    ) -> std::io::Result<()>;
    /// Handles the driver's write of `queue` to QueueNotify.
    fn notify(&mut self, queue: u16);
    /// Stops the device and drops its queues.
    fn reset(&mut self);
}

/// A virtio device placed in the MMIO window with its interrupt line.
#[derive(Debug)]
pub(crate) struct VirtioMmioDevice {
    transport: Arc<MmioTransport>,
    address: u64,
    irq: u32,
}

impl VirtioMmioDevice {
    pub(crate) fn mmio(&self) -> Arc<dyn MmioDevice> {
        Arc::clone(&self.transport) as Arc<dyn MmioDevice>
    }

    /// Returns the device's entry in the ACPI DSDT.
    pub(crate) fn acpi_entry(&self) -> crate::boot::acpi::MmioDeviceEntry {
        crate::boot::acpi::MmioDeviceEntry {
            address: self.address,
            size: VIRTIO_MMIO_SIZE,
            irq: self.irq,
        }
    }

    pub(crate) fn start_worker(&mut self) -> Result<(), VmmError> {
        Ok(())
    }

    pub(crate) fn stop_worker(&mut self) {
        self.transport.shutdown();
    }
}

/// Creates the devices in the order net, then block, each in the next MMIO window and on the
/// next interrupt line.
pub(crate) fn create_devices(
    vm: &VmFd,
    memory: &GuestMemory,
    nets: Vec<NetConfig>,
    blocks: Vec<BlockConfig>,
) -> Result<Vec<VirtioMmioDevice>, VmmError> {
    let mut models: Vec<(String, Box<dyn VirtioDevice>)> = Vec::new();
    for (index, config) in nets.into_iter().enumerate() {
        let name = format!("net{index}");
        let device = net::Net::new(config).map_err(|source| VmmError::Device {
            device: name.clone(),
            source,
        })?;
        models.push((name, Box::new(device)));
    }
    for (index, config) in blocks.into_iter().enumerate() {
        let name = format!("block{index} ({})", config.path.display());
        let device = blk::Block::open(&config).map_err(|source| VmmError::Device {
            device: name.clone(),
            source,
        })?;
        models.push((name, Box::new(device)));
    }

    let mut devices = Vec::with_capacity(models.len());
    for (slot, ((name, model), irq)) in models.into_iter().zip(virtio_irqs()).enumerate() {
        let line = EventFd::new(libc::EFD_NONBLOCK)
            .map_err(VmmError::host("eventfd for a virtio interrupt"))?;
        vm.register_irqfd(&line, irq)
            .map_err(VmmError::kvm("KVM_IRQFD"))?;
        let transport =
            MmioTransport::new(model, memory.clone(), Interrupt::new(line)).map_err(|e| {
                VmmError::Device {
                    device: name.clone(),
                    source: std::io::Error::other(format!("{e}")),
                }
            })?;
        devices.push(VirtioMmioDevice {
            transport: Arc::new(transport),
            address: VIRTIO_MMIO_START + slot as u64 * VIRTIO_MMIO_SIZE,
            irq,
        });
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irq_lines_skip_rtc_and_mouse() {
        let irqs: Vec<u32> = virtio_irqs().collect();
        assert_eq!(irqs, vec![5, 6, 7, 9, 10, 11, 13, 14, 15]);
        assert_eq!(irqs.len(), MAX_DEVICES);
    }
}
