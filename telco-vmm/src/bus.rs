//! Dispatch of port I/O and MMIO exits to the devices.

use std::sync::{Arc, Mutex};

use crate::devices::console::{ConsoleAction, SerialConsole, lock};
use crate::devices::i8042::{self, I8042Action};
use crate::layout::{SERIAL_PORT, VIRTIO_MMIO_SIZE, VIRTIO_MMIO_START};

/// Number of I/O ports a 16550 decodes.
const SERIAL_PORT_COUNT: u16 = 8;
/// CMOS RTC index and data ports. There is no RTC: reads return 0, so the guest never sees the
/// update-in-progress bit that 0xff would set, which keeps Linux from polling it.
const CMOS_PORTS: std::ops::RangeInclusive<u16> = 0x70..=0x71;

/// A device in the MMIO window, addressed by offset within its window.
pub(crate) trait MmioDevice: Send + Sync + std::fmt::Debug {
    fn read(&self, offset: u64, data: &mut [u8]);
    fn write(&self, offset: u64, data: &[u8]);
}

/// What a device access asks of the VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BusAction {
    None,
    Reset,
    PowerOff,
}

/// The devices a vCPU reaches through port I/O and MMIO.
#[derive(Debug)]
pub(crate) struct DeviceBus {
    serial: Mutex<SerialConsole>,
    mmio: Vec<Arc<dyn MmioDevice>>,
}

impl DeviceBus {
    pub(crate) fn new(serial: SerialConsole, mmio: Vec<Arc<dyn MmioDevice>>) -> Self {
        DeviceBus {
            serial: Mutex::new(serial),
            mmio,
        }
    }

    pub(crate) fn io_in(&self, port: u16, data: &mut [u8]) {
        data.fill(0xff);
        if let Some(offset) = serial_offset(port) {
            data[0] = lock(&self.serial).read(offset);
        } else if port == i8042::DATA_PORT || port == i8042::COMMAND_PORT {
            data[0] = i8042::read(port);
        } else if CMOS_PORTS.contains(&port) {
            data.fill(0);
        }
    }

    pub(crate) fn io_out(&self, port: u16, data: &[u8]) -> BusAction {
        let Some(&value) = data.first() else {
            return BusAction::None;
        };
        if let Some(offset) = serial_offset(port) {
            return match lock(&self.serial).write(offset, value) {
                ConsoleAction::PowerOff => BusAction::PowerOff,
                ConsoleAction::None => BusAction::None,
            };
        }
        if port == i8042::COMMAND_PORT && i8042::write(port, value) == I8042Action::Reset {
            return BusAction::Reset;
        }
        BusAction::None
    }

    fn mmio_device(&self, addr: u64) -> Option<(&Arc<dyn MmioDevice>, u64)> {
        let offset = addr.checked_sub(VIRTIO_MMIO_START)?;
        let index = usize::try_from(offset / VIRTIO_MMIO_SIZE).ok()?;
        self.mmio
            .get(index)
            .map(|device| (device, offset % VIRTIO_MMIO_SIZE))
    }

    pub(crate) fn mmio_read(&self, addr: u64, data: &mut [u8]) {
        match self.mmio_device(addr) {
            Some((device, offset)) => device.read(offset, data),
            None => data.fill(0xff),
        }
    }

    pub(crate) fn mmio_write(&self, addr: u64, data: &[u8]) {
        if let Some((device, offset)) = self.mmio_device(addr) {
            device.write(offset, data);
        }
    }
}

fn serial_offset(port: u16) -> Option<u8> {
    let offset = port.checked_sub(SERIAL_PORT)?;
    (offset < SERIAL_PORT_COUNT).then(|| u8::try_from(offset).unwrap_or(0))
}
