//! Legacy devices on the I/O port bus: the 16550 console and the i8042 reset line.

pub(crate) mod console;
pub(crate) mod i8042;

use vm_superio::Trigger;
use vmm_sys_util::eventfd::EventFd;

/// An interrupt line raised by writing to an eventfd that KVM routes to a GSI (`KVM_IRQFD`).
#[derive(Debug)]
pub(crate) struct IrqLine {
    event: EventFd,
}

impl IrqLine {
    pub(crate) fn new(event: EventFd) -> Self {
        IrqLine { event }
    }

    pub(crate) fn raise(&self) -> std::io::Result<()> {
        self.event.write(1)
    }
}

impl Trigger for IrqLine {
    type E = std::io::Error;

    fn trigger(&self) -> std::io::Result<()> {
        self.raise()
    }
}
