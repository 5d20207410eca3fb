//! virtio-net on a tap (virtio 1.2 section 5.1): one receive and one transmit queue, served by a
//! worker thread that polls the tap, the driver's notifications and a stop event.

use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::JoinHandle;

use telco_core::MacAddr;
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

use super::blk::read_config_bytes;
use super::chain::CheckedChain;
use super::{Interrupt, NetConfig, VIRTIO_F_VERSION_1, VirtioDevice};
use crate::memory::GuestMemory;

const VIRTIO_ID_NET: u32 = 1;
const VIRTIO_NET_F_MAC: u64 = 1 << 5;
const QUEUE_SIZE: u16 = 256;
/// `struct virtio_net_hdr_v1`: 12 bytes once `VIRTIO_F_VERSION_1` is negotiated.
const NET_HDR_LEN: usize = 12;
/// Largest frame read from the tap: 64 KiB plus an Ethernet header.
const MAX_FRAME: usize = 65_550;

/// The network device model.
#[derive(Debug)]
pub(crate) struct Net {
    tap: OwnedFd,
    mac: Option<MacAddr>,
    worker: Option<Worker>,
}

#[derive(Debug)]
struct Worker {
    kick: EventFd,
    stop: EventFd,
    handle: JoinHandle<()>,
}

impl Net {
    pub(crate) fn new(config: NetConfig) -> std::io::Result<Self> {
        set_nonblocking(&config.tap)?;
        Ok(Net {
            tap: config.tap,
            mac: config.mac,
            worker: None,
        })
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            if let Err(error) = worker.stop.write(1) {
                tracing::warn!(%error, "stopping the virtio-net worker failed");
            }
            if worker.handle.join().is_err() {
                tracing::error!("the virtio-net worker panicked");
            }
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on an fd we own; no memory is passed.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_NET
    }

    fn features(&self) -> u64 {
        let mut features = VIRTIO_F_VERSION_1;
        if self.mac.is_some() {
            features |= VIRTIO_NET_F_MAC;
        }
        features
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // Configuration space: the MAC address at offset 0.
        let mac = self.mac.map(|mac| mac.octets()).unwrap_or_default();
        read_config_bytes(&mac, offset, data);
    }

    fn activate(
        &mut self,
        memory: GuestMemory,
        queues: Vec<Queue>,
        _features: u64,
        interrupt: Interrupt,
    ) -> std::io::Result<()> {
        self.stop_worker();
        let [rx, tx]: [Queue; 2] = queues
            .try_into()
            .map_err(|_| std::io::Error::other("virtio-net needs two queues"))?;
        let kick = EventFd::new(libc::EFD_NONBLOCK)?;
        let stop = EventFd::new(libc::EFD_NONBLOCK)?;
        let mut data_path = DataPath {
            tap: self.tap.try_clone()?,
            memory,
            rx,
            tx,
            interrupt,
            pending: None,
            rx_stalled: false,
            frame: vec![0u8; NET_HDR_LEN + MAX_FRAME],
        };
        let (kick_worker, stop_worker) = (kick.try_clone()?, stop.try_clone()?);
        let handle = std::thread::Builder::new()
            .name("virtio-net".into())
            .spawn(move || data_path.run(&kick_worker, &stop_worker))?;
        self.worker = Some(Worker { kick, stop, handle });
        Ok(())
    }

    fn notify(&mut self, _queue: u16) {
        if let Some(worker) = &self.worker
            && let Err(error) = worker.kick.write(1)
        {
            tracing::warn!(%error, "waking the virtio-net worker failed");
        }
    }

    fn reset(&mut self) {
        self.stop_worker();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

/// The worker's state: both queues, the tap, and a frame read from the tap that waits for a
/// receive buffer.
pub(crate) struct DataPath {
    tap: OwnedFd,
    memory: GuestMemory,
    rx: Queue,
    tx: Queue,
    interrupt: Interrupt,
    pending: Option<usize>,
    rx_stalled: bool,
    frame: Vec<u8>,
}

impl DataPath {
    fn run(&mut self, kick: &EventFd, stop: &EventFd) {
        loop {
            // With no receive buffers left the tap is not polled, so the worker sleeps until the
            // driver adds buffers and notifies instead of spinning on a readable tap.
            let tap_events = if self.rx_stalled { 0 } else { libc::POLLIN };
            let mut fds = [
                libc::pollfd {
                    fd: self.tap.as_raw_fd(),
                    events: tap_events,
                    revents: 0,
                },
                libc::pollfd {
                    fd: kick.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: stop.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of three pollfd for the duration of the call.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) };
            if rc < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(%error, "virtio-net poll failed, device stopped");
                return;
            }
            if fds[2].revents != 0 {
                return;
            }
            if fds[1].revents != 0 {
                // Reading only resets the counter: the work below covers every queue.
                let _ = kick.read();
                self.rx_stalled = false;
                self.transmit();
            }
            self.receive();
        }
    }

    /// Sends every frame the driver queued on the transmit queue to the tap.
    pub(crate) fn transmit(&mut self) {
        let mut used_any = false;
        while let Some(popped) = CheckedChain::pop(&mut self.tx, &self.memory) {
            let head = match popped {
                Ok(chain) => {
                    match chain.read_all(&self.memory, NET_HDR_LEN + MAX_FRAME) {
                        Ok(bytes) if bytes.len() > NET_HDR_LEN => {
                            self.write_tap(&bytes[NET_HDR_LEN..])
                        }
                        Ok(_) => {
                            tracing::debug!("virtio-net frame shorter than its header dropped")
                        }
                        Err(error) => tracing::debug!(%error, "virtio-net transmit chain rejected"),
                    }
                    chain.head
                }
                Err((head, error)) => {
                    tracing::debug!(%error, "virtio-net transmit chain rejected");
                    head
                }
            };
            if let Err(error) = self.tx.add_used(&self.memory, head, 0) {
                tracing::debug!(%error, "virtio-net add_used failed");
            }
            used_any = true;
        }
        if used_any {
            notify_queue(&mut self.tx, &self.memory, &self.interrupt);
        }
    }

    fn write_tap(&self, frame: &[u8]) {
        // SAFETY: `frame` is a valid slice for the duration of the call.
        let rc = unsafe { libc::write(self.tap.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if rc < 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "tap write failed, frame dropped");
        }
    }

    /// Moves frames from the tap into receive buffers until either runs out.
    pub(crate) fn receive(&mut self) {
        let mut used_any = false;
        loop {
            let len = match self.pending.take() {
                Some(len) => len,
                None => match self.read_tap() {
                    Some(len) => len,
                    None => break,
                },
            };
            let Some(popped) = CheckedChain::pop(&mut self.rx, &self.memory) else {
                self.pending = Some(len);
                self.rx_stalled = true;
                break;
            };
            let (head, written) = match popped {
                Ok(chain) => {
                    let written = chain
                        .write_all(&self.memory, &self.frame[..NET_HDR_LEN + len])
                        .unwrap_or_else(|error| {
                            tracing::debug!(%error, "virtio-net receive chain rejected");
                            0
                        });
                    (chain.head, written)
                }
                Err((head, error)) => {
                    // The frame stays pending for the next buffer.
                    tracing::debug!(%error, "virtio-net receive chain rejected");
                    self.pending = Some(len);
                    (head, 0)
                }
            };
            if let Err(error) = self.rx.add_used(&self.memory, head, written) {
                tracing::debug!(%error, "virtio-net add_used failed");
            }
            used_any = true;
        }
        if used_any {
            notify_queue(&mut self.rx, &self.memory, &self.interrupt);
        }
    }

    /// Reads one frame after a zeroed header; `None` when the tap has nothing.
    fn read_tap(&mut self) -> Option<usize> {
        self.frame[..NET_HDR_LEN].fill(0);
        // num_buffers = 1, as required without VIRTIO_NET_F_MRG_RXBUF.
        self.frame[10] = 1;
        let buffer = &mut self.frame[NET_HDR_LEN..];
        // SAFETY: `buffer` is a valid writable slice for the duration of the call.
        let rc = unsafe {
            libc::read(
                self.tap.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        match usize::try_from(rc) {
            Ok(0) | Err(_) => None,
            Ok(len) => Some(len),
        }
    }
}

impl std::fmt::Debug for DataPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPath")
            .field("tap", &self.tap)
            .field("pending", &self.pending)
            .field("rx_stalled", &self.rx_stalled)
            .finish_non_exhaustive()
    }
}

fn notify_queue(queue: &mut Queue, memory: &GuestMemory, interrupt: &Interrupt) {
    if queue.needs_notification(memory).unwrap_or(true) {
        interrupt.signal_used();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::chain::tests::{F_NEXT, F_WRITE, TestQueue};
    use std::os::fd::FromRawFd;
    use vm_memory::{Bytes, GuestAddress};

    /// A seqpacket socket pair replaces the tap, so one write is one frame.
    fn data_path(rx: &TestQueue, tx: &TestQueue) -> (DataPath, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid out array of two ints.
        let rc =
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, fds.as_mut_ptr()) };
        assert_eq!(rc, 0);
        // SAFETY: both fds were just created and are owned here.
        let (ours, peer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_nonblocking(&ours).unwrap();
        let path = DataPath {
            tap: ours,
            memory: rx.mem.clone(),
            rx: Queue::try_from(rx.queue.state()).unwrap(),
            tx: Queue::try_from(tx.queue.state()).unwrap(),
            interrupt: Interrupt::new(EventFd::new(0).unwrap()),
            pending: None,
            rx_stalled: false,
            frame: vec![0u8; NET_HDR_LEN + MAX_FRAME],
        };
        (path, peer)
    }

    #[test]
    fn transmit_strips_header_and_writes_frame() {
        let mut q = TestQueue::new(8);
        q.mem
            .write_slice(&[0u8; NET_HDR_LEN], GuestAddress(0x10000))
            .unwrap();
        q.mem
            .write_slice(b"frame-bytes", GuestAddress(0x20000))
            .unwrap();
        q.set_descriptor(0, 0x10000, 12, F_NEXT, 1);
        q.set_descriptor(1, 0x20000, 11, 0, 0);
        q.make_available(0);
        let (mut path, peer) = data_path(&q, &q);
        path.transmit();

        let mut buf = [0u8; 64];
        // SAFETY: valid buffer.
        let n = unsafe { libc::read(peer.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(&buf[..usize::try_from(n).unwrap()], b"frame-bytes");
        assert_eq!(path.tx.next_used(), 1);
    }

    #[test]
    fn receive_prepends_header_with_one_buffer() {
        let mut q = TestQueue::new(8);
        q.set_descriptor(0, 0x10000, 2048, F_WRITE, 0);
        q.make_available(0);
        let (mut path, peer) = data_path(&q, &q);
        // SAFETY: valid buffer.
        unsafe { libc::write(peer.as_raw_fd(), b"hello".as_ptr().cast(), 5) };
        path.receive();

        let mut buf = [0u8; NET_HDR_LEN + 5];
        q.mem.read_slice(&mut buf, GuestAddress(0x10000)).unwrap();
        assert_eq!(buf[10], 1);
        assert_eq!(&buf[NET_HDR_LEN..], b"hello");
        assert_eq!(q.used(0), (0, 12 + 5));
    }

    #[test]
    fn receive_without_buffers_keeps_frame_pending() {
        let q = TestQueue::new(8);
        let (mut path, peer) = data_path(&q, &q);
        // SAFETY: valid buffer.
        unsafe { libc::write(peer.as_raw_fd(), b"hello".as_ptr().cast(), 5) };
        path.receive();
        assert_eq!(path.pending, Some(5));
        assert!(path.rx_stalled);
    }

    #[test]
    fn hostile_transmit_chain_is_returned_unused() {
        let mut q = TestQueue::new(4);
        q.set_descriptor(0, 0x10000, 64, F_NEXT, 0);
        q.make_available(0);
        let (mut path, _peer) = data_path(&q, &q);
        path.transmit();
        assert_eq!(q.used_idx(), 1);
        assert_eq!(q.used(0), (0, 0));
    }
}
