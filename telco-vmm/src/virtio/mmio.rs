//! The virtio-mmio transport, version 2 (virtio 1.2 section 4.2.2): registers, queue setup, the
//! status handshake and the interrupt status.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

use super::VirtioDevice;
use crate::bus::MmioDevice;
use crate::devices::console::lock;
use crate::memory::GuestMemory;

const MAGIC_VALUE: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
const VENDOR_ID: u32 = 0x5443_4c4f; // "TCLO"

mod reg {
    pub(super) const MAGIC: u64 = 0x000;
    pub(super) const VERSION: u64 = 0x004;
    pub(super) const DEVICE_ID: u64 = 0x008;
    pub(super) const VENDOR_ID: u64 = 0x00c;
    pub(super) const DEVICE_FEATURES: u64 = 0x010;
    pub(super) const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub(super) const DRIVER_FEATURES: u64 = 0x020;
    pub(super) const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub(super) const QUEUE_SEL: u64 = 0x030;
    pub(super) const QUEUE_NUM_MAX: u64 = 0x034;
    pub(super) const QUEUE_NUM: u64 = 0x038;
    pub(super) const QUEUE_READY: u64 = 0x044;
    pub(super) const QUEUE_NOTIFY: u64 = 0x050;
    pub(super) const INTERRUPT_STATUS: u64 = 0x060;
    pub(super) const INTERRUPT_ACK: u64 = 0x064;
    pub(super) const STATUS: u64 = 0x070;
    pub(super) const QUEUE_DESC_LOW: u64 = 0x080;
    pub(super) const QUEUE_DESC_HIGH: u64 = 0x084;
    pub(super) const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub(super) const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub(super) const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub(super) const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub(super) const CONFIG_GENERATION: u64 = 0x0fc;
    pub(super) const CONFIG: u64 = 0x100;
}

/// Device status bits (virtio 1.2 section 2.1).
const STATUS_DRIVER_OK: u32 = 4;
const STATUS_FEATURES_OK: u32 = 8;
const STATUS_FAILED: u32 = 0x80;

fn low_half(value: u64) -> u32 {
    u32::try_from(value & 0xffff_ffff).unwrap_or(0)
}

/// Interrupt status bit: a used buffer was added.
pub(crate) const INT_USED_RING: u32 = 1;

/// The interrupt a device raises: status bits the driver reads and acknowledges, and the
/// eventfd that KVM turns into the device's interrupt line.
#[derive(Debug, Clone)]
pub(crate) struct Interrupt {
    status: Arc<AtomicU32>,
    line: Arc<EventFd>,
}

impl Interrupt {
    pub(crate) fn new(line: EventFd) -> Self {
        Interrupt {
            status: Arc::new(AtomicU32::new(0)),
            line: Arc::new(line),
        }
    }

    /// Signals that used buffers were added.
    pub(crate) fn signal_used(&self) {
        self.status.fetch_or(INT_USED_RING, Ordering::SeqCst);
        if let Err(error) = self.line.write(1) {
            tracing::warn!(%error, "raising a virtio interrupt failed");
        }
    }

    pub(crate) fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct TransportState {
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    status: u32,
    queues: Vec<Queue>,
    activated: bool,
}

/// One virtio device behind its MMIO register window.
#[derive(Debug)]
pub(crate) struct MmioTransport {
    state: Mutex<TransportState>,
    device: Mutex<Box<dyn VirtioDevice>>,
    memory: GuestMemory,
    interrupt: Interrupt,
}

impl MmioTransport {
    pub(crate) fn new(
        device: Box<dyn VirtioDevice>,
        memory: GuestMemory,
        interrupt: Interrupt,
    ) -> Result<Self, virtio_queue::Error> {
        let queues = device
            .queue_max_sizes()
            .iter()
            .map(|&size| Queue::new(size))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MmioTransport {
            state: Mutex::new(TransportState {
                device_features_sel: 0,
                driver_features_sel: 0,
                driver_features: 0,
                queue_sel: 0,
                status: 0,
                queues,
                activated: false,
            }),
            device: Mutex::new(device),
            memory,
            interrupt,
        })
    }

    fn read_register(&self, offset: u64) -> u32 {
        let state = lock(&self.state);
        let queue = state.queues.get(state.queue_sel as usize);
        match offset {
            reg::MAGIC => MAGIC_VALUE,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => lock(&self.device).device_type(),
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => {
                let features = lock(&self.device).features();
                match state.device_features_sel {
                    0 => low_half(features),
                    1 => low_half(features >> 32),
                    _ => 0,
                }
            }
            reg::QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready())),
            reg::INTERRUPT_STATUS => self.interrupt.status(),
            reg::STATUS => state.status,
            reg::CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn write_register(&self, offset: u64, value: u32) {
        let mut state = lock(&self.state);
        let queue_sel = state.queue_sel as usize;
        // Queue registers may only change before the driver sets DRIVER_OK.
        let queue = if state.status & STATUS_DRIVER_OK == 0 {
            state.queues.get_mut(queue_sel)
        } else {
            None
        };
        match offset {
            reg::DEVICE_FEATURES_SEL => state.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => state.driver_features_sel = value,
            reg::DRIVER_FEATURES => match state.driver_features_sel {
                0 => {
                    state.driver_features =
                        (state.driver_features & !0xffff_ffff) | u64::from(value)
                }
                1 => {
                    state.driver_features =
                        (state.driver_features & 0xffff_ffff) | (u64::from(value) << 32)
                }
                _ => {}
            },
            reg::QUEUE_SEL => state.queue_sel = value,
            reg::QUEUE_NUM => {
                if let Some(q) = queue {
                    q.set_size(u16::try_from(value).unwrap_or(0));
                }
            }
            reg::QUEUE_READY => {
                if let Some(q) = queue {
                    q.set_ready(value == 1);
                }
            }
            reg::QUEUE_DESC_LOW => queue
                .into_iter()
                .for_each(|q| q.set_desc_table_address(Some(value), None)),
            reg::QUEUE_DESC_HIGH => queue
                .into_iter()
                .for_each(|q| q.set_desc_table_address(None, Some(value))),
            reg::QUEUE_DRIVER_LOW => queue
                .into_iter()
                .for_each(|q| q.set_avail_ring_address(Some(value), None)),
            reg::QUEUE_DRIVER_HIGH => queue
                .into_iter()
                .for_each(|q| q.set_avail_ring_address(None, Some(value))),
            reg::QUEUE_DEVICE_LOW => queue
                .into_iter()
                .for_each(|q| q.set_used_ring_address(Some(value), None)),
            reg::QUEUE_DEVICE_HIGH => queue
                .into_iter()
                .for_each(|q| q.set_used_ring_address(None, Some(value))),
            reg::QUEUE_NOTIFY => {
                if state.activated {
                    drop(state);
                    lock(&self.device).notify(u16::try_from(value).unwrap_or(u16::MAX));
                }
            }
            reg::INTERRUPT_ACK => {
                self.interrupt.status.fetch_and(!value, Ordering::SeqCst);
            }
            reg::STATUS => self.write_status(&mut state, value),
            _ => tracing::debug!(
                offset,
                value,
                "write to unknown virtio-mmio register ignored"
            ),
        }
    }

    fn write_status(&self, state: &mut TransportState, value: u32) {
        if value == 0 {
            self.reset(state);
            return;
        }
        let newly_set = value & !state.status;
        if newly_set & STATUS_FEATURES_OK != 0 {
            let offered = lock(&self.device).features();
            if state.driver_features & !offered != 0 {
                tracing::debug!(
                    driver = state.driver_features,
                    offered,
                    "driver accepted features the device did not offer"
                );
                state.status = value & !STATUS_FEATURES_OK;
                return;
            }
        }
        state.status = value;
        if newly_set & STATUS_DRIVER_OK != 0 && !state.activated {
            self.activate(state);
        }
    }

    fn activate(&self, state: &mut TransportState) {
        let valid = state
            .queues
            .iter()
            .all(|q| q.ready() && q.is_valid(&self.memory));
        if !valid {
            tracing::debug!("driver set DRIVER_OK with an invalid queue; device failed");
            state.status |= STATUS_FAILED;
            return;
        }
        let queues = std::mem::take(&mut state.queues);
        let result = lock(&self.device).activate(
            self.memory.clone(),
            queues,
            state.driver_features,
            self.interrupt.clone(),
        );
        match result {
            Ok(()) => state.activated = true,
            Err(error) => {
                tracing::warn!(%error, "activating virtio device failed");
                state.status |= STATUS_FAILED;
            }
        }
    }

    fn reset(&self, state: &mut TransportState) {
        let mut device = lock(&self.device);
        device.reset();
        // The queues moved into the device on activation: start again from fresh ones.
        match device
            .queue_max_sizes()
            .iter()
            .map(|&size| Queue::new(size))
            .collect()
        {
            Ok(queues) => state.queues = queues,
            Err(error) => tracing::error!(%error, "recreating virtio queues failed"),
        }
        drop(device);
        state.status = 0;
        state.driver_features = 0;
        state.activated = false;
        self.interrupt.status.store(0, Ordering::SeqCst);
    }

    /// Stops the device's worker, if any.
    pub(crate) fn shutdown(&self) {
        lock(&self.device).reset();
    }
}

impl MmioDevice for MmioTransport {
    fn read(&self, offset: u64, data: &mut [u8]) {
        if offset >= reg::CONFIG {
            lock(&self.device).read_config(offset - reg::CONFIG, data);
            return;
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
            data.fill(0);
            return;
        }
        data.copy_from_slice(&self.read_register(offset).to_le_bytes());
    }

    fn write(&self, offset: u64, data: &[u8]) {
        if offset >= reg::CONFIG {
            // The devices here have read-only configuration space.
            return;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return;
        };
        if offset.is_multiple_of(4) {
            self.write_register(offset, u32::from_le_bytes(bytes));
        }
    }
}
