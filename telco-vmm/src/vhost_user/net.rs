//! The vhost-user-net device model and its accept loop.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vhost::vhost_user::Listener;
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VhostUserDaemon, VringRwLock, VringT};

use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    EventConsumer, EventFlag, EventNotifier, new_event_consumer_and_notifier,
};

use crate::devices::console::lock;
use crate::virtio::chain::CheckedChain;

const RX_QUEUE: u16 = 0;
const TX_QUEUE: u16 = 1;
const NUM_QUEUES: usize = 2;
/// Event id of the tap in the worker's epoll set: ids up to `NUM_QUEUES` are the queues' kicks
/// and the exit event.
const TAP_EVENT: u16 = 3;
const _: () = assert!(TAP_EVENT as usize > NUM_QUEUES);
const MAX_QUEUE_SIZE: usize = 1024;
/// `struct virtio_net_hdr_v1` (`num_buffers` included): 12 bytes with `VIRTIO_F_VERSION_1`.
const NET_HDR_LEN: usize = 12;
const MAX_FRAME: usize = 65_550;
/// Frames the loopback holds while the front end has no receive buffers; more are dropped.
const LOOPBACK_BACKLOG: usize = 512;
/// `VHOST_MEMORY_MAX_NREGIONS` of the protocol without `CONFIGURE_MEM_SLOTS`.
const MAX_MEMORY_REGIONS: usize = 8;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;

type Memory = GuestMemoryAtomic<GuestMemoryMmap>;

/// Errors of the vhost-user-net backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VhostUserError {
    /// Binding the listening socket failed.
    #[error("listening on vhost-user socket {path} failed")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The error from `vhost`.
        #[source]
        source: vhost::vhost_user::Error,
    },
    /// Setting up the tap or an eventfd failed.
    #[error("{what} failed")]
    Io {
        /// The failing call.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Where frames from the front end go, and where frames to it come from.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetPeer {
    /// A tap opened with `IFF_TAP | IFF_NO_PI`, without `IFF_VNET_HDR`.
    Tap(OwnedFd),
    /// Every transmitted frame comes back on the receive queue unchanged.
    Loopback,
    /// Transmitted frames are counted and dropped.
    Sink,
}

/// Counters since the backend started, over all connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// Front-end connections accepted.
    pub connections: u64,
    /// Frames the front end transmitted.
    pub tx_frames: u64,
    /// Bytes of those frames, without the virtio-net header.
    pub tx_bytes: u64,
    /// Frames delivered into the front end's receive queue.
    pub rx_frames: u64,
    /// Bytes of those frames, without the virtio-net header.
    pub rx_bytes: u64,
    /// Frames dropped for want of receive buffers.
    pub rx_dropped: u64,
    /// Descriptor chains rejected by the bounds and shape checks.
    pub bad_chains: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    tx_frames: AtomicU64,
    tx_bytes: AtomicU64,
    rx_frames: AtomicU64,
    rx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    bad_chains: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    fn snapshot(&self) -> NetStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetStats {
            connections: get(&self.connections),
            tx_frames: get(&self.tx_frames),
            tx_bytes: get(&self.tx_bytes),
            rx_frames: get(&self.rx_frames),
            rx_bytes: get(&self.rx_bytes),
            rx_dropped: get(&self.rx_dropped),
            bad_chains: get(&self.bad_chains),
        }
    }
}

#[derive(Debug)]
enum Peer {
    Tap(OwnedFd),
    Loopback(Mutex<VecDeque<Vec<u8>>>),
    Sink,
}

/// The device state shared by the accept loop and the vring worker of the current connection.
#[derive(Debug)]
struct Device {
    peer: Peer,
    memory: Mutex<Option<Memory>>,
    counters: Counters,
    capture: Mutex<(usize, Vec<Vec<u8>>)>,
}

/// The `VhostUserBackend` implementation; cheap to clone, one per connection.
#[derive(Debug, Clone)]
struct Backend {
    device: Arc<Device>,
}

impl VhostUserBackend for Backend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        NUM_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
            | VIRTIO_NET_F_MRG_RXBUF
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::REPLY_ACK
    }

    fn set_event_idx(&self, _enabled: bool) {}

    fn update_memory(&self, memory: Memory) -> std::io::Result<()> {
        let regions = memory.memory().num_regions();
        if regions == 0 || regions > MAX_MEMORY_REGIONS {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "memory table with {regions} regions; 1 to {MAX_MEMORY_REGIONS} are accepted"
                ),
            ));
        }
        tracing::debug!(regions, "vhost-user memory table accepted");
        *lock(&self.device.memory) = Some(memory);
        Ok(())
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        match new_event_consumer_and_notifier(EventFlag::NONBLOCK) {
            Ok(pair) => Some(pair),
            Err(error) => {
                tracing::error!(%error, "creating the vhost-user worker exit event failed");
                None
            }
        }
    }

    fn handle_event(
        &self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> std::io::Result<()> {
        let Some(memory) = lock(&self.device.memory).clone() else {
            return Ok(());
        };
        let memory = memory.memory();
        let [rx, tx] = vrings else {
            return Ok(());
        };
        match device_event {
            TX_QUEUE => self.device.transmit(&memory, tx, rx),
            RX_QUEUE | TAP_EVENT => self.device.receive(&memory, rx),
            _ => {}
        }
        Ok(())
    }
}

impl Device {
    /// Takes every frame the front end queued and hands it to the peer.
    fn transmit(&self, memory: &GuestMemoryMmap, tx: &VringRwLock, rx: &VringRwLock) {
        if !tx.get_ref().is_enabled() {
            return;
        }
        let mut used_any = false;
        loop {
            let popped = {
                let mut state = tx.get_mut();
                CheckedChain::pop(state.get_queue_mut(), memory)
            };
            let Some(popped) = popped else { break };
            let head = match popped {
                Ok(chain) => {
                    match chain.read_all(memory, NET_HDR_LEN + MAX_FRAME) {
                        Ok(bytes) if bytes.len() > NET_HDR_LEN => self.deliver(bytes, NET_HDR_LEN),
                        Ok(_) => Counters::add(&self.counters.bad_chains, 1),
                        Err(_) => Counters::add(&self.counters.bad_chains, 1),
                    }
                    chain.head
                }
                Err((head, error)) => {
                    tracing::debug!(%error, "vhost-user-net transmit chain rejected");
                    Counters::add(&self.counters.bad_chains, 1);
                    head
                }
            };
            if let Err(error) = tx.add_used(head, 0) {
                tracing::debug!(%error, "vhost-user-net add_used failed");
            }
            used_any = true;
        }
        if used_any {
            signal(tx);
        }
        if matches!(self.peer, Peer::Loopback(_)) {
            self.receive(memory, rx);
        }
    }

    /// Hands one frame (at `bytes[offset..]`) to the peer.
    fn deliver(&self, bytes: Vec<u8>, offset: usize) {
        let frame = &bytes[offset..];
        Counters::add(&self.counters.tx_frames, 1);
        Counters::add(&self.counters.tx_bytes, frame.len() as u64);
        {
            let mut capture = lock(&self.capture);
            if capture.1.len() < capture.0 {
                capture.1.push(frame.to_vec());
            }
        }
        match &self.peer {
            Peer::Sink => {}
            Peer::Tap(tap) => {
                // SAFETY: `frame` is a valid slice for the duration of the call.
                let rc =
                    unsafe { libc::write(tap.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
                if rc < 0 {
                    tracing::debug!(error = %std::io::Error::last_os_error(), "tap write failed");
                }
            }
            Peer::Loopback(backlog) => {
                let mut backlog = lock(backlog);
                if backlog.len() < LOOPBACK_BACKLOG {
                    backlog.push_back(bytes);
                } else {
                    Counters::add(&self.counters.rx_dropped, 1);
                }
            }
        }
    }

    /// Moves frames from the peer into the front end's receive buffers.
    fn receive(&self, memory: &GuestMemoryMmap, rx: &VringRwLock) {
        if !rx.get_ref().is_enabled() {
            return;
        }
        let mut used_any = false;
        while let Some(frame) = self.next_frame() {
            let popped = {
                let mut state = rx.get_mut();
                CheckedChain::pop(state.get_queue_mut(), memory)
            };
            let Some(popped) = popped else {
                self.hold_frame(frame);
                break;
            };
            let (head, written) = match popped {
                Ok(chain) => match chain.write_all(memory, &frame) {
                    Ok(written) => {
                        Counters::add(&self.counters.rx_frames, 1);
                        Counters::add(&self.counters.rx_bytes, (frame.len() - NET_HDR_LEN) as u64);
                        (chain.head, written)
                    }
                    Err(_) => {
                        Counters::add(&self.counters.bad_chains, 1);
                        (chain.head, 0)
                    }
                },
                Err((head, error)) => {
                    tracing::debug!(%error, "vhost-user-net receive chain rejected");
                    Counters::add(&self.counters.bad_chains, 1);
                    self.hold_frame(frame);
                    (head, 0)
                }
            };
            if let Err(error) = rx.add_used(head, written) {
                tracing::debug!(%error, "vhost-user-net add_used failed");
            }
            used_any = true;
        }
        if used_any {
            signal(rx);
        }
    }

    /// The next frame for the front end, with a virtio-net header in front (`num_buffers` 1).
    fn next_frame(&self) -> Option<Vec<u8>> {
        let mut frame = match &self.peer {
            Peer::Sink => return None,
            Peer::Loopback(backlog) => lock(backlog).pop_front()?,
            Peer::Tap(tap) => {
                let mut buffer = vec![0u8; NET_HDR_LEN + MAX_FRAME];
                let body = &mut buffer[NET_HDR_LEN..];
                // SAFETY: `body` is a valid writable slice for the duration of the call.
                let rc =
                    unsafe { libc::read(tap.as_raw_fd(), body.as_mut_ptr().cast(), body.len()) };
                let len = usize::try_from(rc).ok().filter(|len| *len > 0)?;
                buffer.truncate(NET_HDR_LEN + len);
                buffer
            }
        };
        frame[..NET_HDR_LEN].fill(0);
        frame[10] = 1;
        Some(frame)
    }

    /// Keeps a frame that found no receive buffer: the loopback queues it again, a tap's is
    /// dropped.
    fn hold_frame(&self, frame: Vec<u8>) {
        match &self.peer {
            Peer::Loopback(backlog) => lock(backlog).push_front(frame),
            _ => Counters::add(&self.counters.rx_dropped, 1),
        }
    }
}

fn signal(vring: &VringRwLock) {
    if vring.needs_notification().unwrap_or(true)
        && let Err(error) = vring.signal_used_queue()
    {
        tracing::debug!(%error, "signalling the vhost-user front end failed");
    }
}

/// A running vhost-user-net backend: a listening socket and the connection it serves.
/// Dropping it stops the backend and removes the socket.
#[derive(Debug)]
pub struct VhostUserNet {
    device: Arc<Device>,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    connection: Arc<Mutex<Option<Connection>>>,
    thread: Option<JoinHandle<()>>,
}

/// The shutdown handle of the connection being served.
struct Connection(vhost_user_backend::ShutdownHandle);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl VhostUserNet {
    /// Listens on `socket` (replacing a stale socket file) and serves front ends one after the
    /// other, forwarding to `peer`, until dropped.
    pub fn serve(socket: impl AsRef<Path>, peer: NetPeer) -> Result<Self, VhostUserError> {
        let socket = socket.as_ref().to_path_buf();
        let peer = match peer {
            NetPeer::Tap(fd) => {
                set_nonblocking(&fd).map_err(|source| VhostUserError::Io {
                    what: "setting the tap non-blocking",
                    source,
                })?;
                Peer::Tap(fd)
            }
            NetPeer::Loopback => Peer::Loopback(Mutex::new(VecDeque::new())),
            NetPeer::Sink => Peer::Sink,
        };
        let listener = Listener::new(&socket, true).map_err(|source| VhostUserError::Listen {
            path: socket.clone(),
            source,
        })?;
        let device = Arc::new(Device {
            peer,
            memory: Mutex::new(None),
            counters: Counters::default(),
            capture: Mutex::new((0, Vec::new())),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let connection = Arc::new(Mutex::new(None));
        let thread = {
            let (device, stop, connection) = (
                Arc::clone(&device),
                Arc::clone(&stop),
                Arc::clone(&connection),
            );
            std::thread::Builder::new()
                .name("vhost-user-net".into())
                .spawn(move || accept_loop(listener, &device, &stop, &connection))
                .map_err(|source| VhostUserError::Io {
                    what: "spawning the vhost-user accept thread",
                    source,
                })?
        };
        tracing::info!(socket = %socket.display(), "vhost-user-net backend listening");
        Ok(VhostUserNet {
            device,
            socket,
            stop,
            connection,
            thread: Some(thread),
        })
    }

    /// Counters since the backend started.
    pub fn stats(&self) -> NetStats {
        self.device.counters.snapshot()
    }

    /// Keeps copies of the next `max_frames` frames the front end transmits, for inspection
    /// with [`captured_frames`](Self::captured_frames).
    pub fn capture_frames(&self, max_frames: usize) {
        let mut capture = lock(&self.device.capture);
        capture.0 = max_frames;
        capture.1.clear();
    }

    /// The frames captured so far, without their virtio-net headers.
    pub fn captured_frames(&self) -> Vec<Vec<u8>> {
        lock(&self.device.capture).1.clone()
    }

    /// The socket path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Whether a front end is connected now.
    pub fn is_connected(&self) -> bool {
        lock(&self.connection).is_some()
    }
}

impl Drop for VhostUserNet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        match lock(&self.connection).take() {
            Some(connection) => connection.0.shutdown(),
            // Wakes the accept loop blocked in accept(2); it sees the stop flag and leaves.
            None => drop(UnixStream::connect(&self.socket)),
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the vhost-user accept thread panicked");
        }
        if let Err(error) = std::fs::remove_file(&self.socket) {
            tracing::debug!(%error, socket = %self.socket.display(), "removing the vhost-user socket failed");
        }
    }
}

fn accept_loop(
    mut listener: Listener,
    device: &Arc<Device>,
    stop: &AtomicBool,
    connection: &Mutex<Option<Connection>>,
) {
    while !stop.load(Ordering::SeqCst) {
        let backend = Backend {
            device: Arc::clone(device),
        };
        let memory = GuestMemoryAtomic::new(GuestMemoryMmap::new());
        let mut daemon = match VhostUserDaemon::new("vhost-user-net".into(), backend, memory) {
            Ok(daemon) => daemon,
            Err(error) => {
                tracing::error!(%error, "creating the vhost-user daemon failed, backend stopped");
                return;
            }
        };
        if let Err(error) = daemon.start(&mut listener) {
            tracing::warn!(%error, "accepting a vhost-user front end failed");
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        if stop.load(Ordering::SeqCst) {
            daemon.request_shutdown();
            let _ = daemon.wait();
            return;
        }
        Counters::add(&device.counters.connections, 1);
        tracing::info!("vhost-user front end connected");
        if let Peer::Tap(tap) = &device.peer {
            for handler in daemon.get_epoll_handlers().iter().take(1) {
                if let Err(error) =
                    handler.register_listener(tap.as_raw_fd(), EventSet::IN, u64::from(TAP_EVENT))
                {
                    tracing::error!(%error, "watching the tap failed; frames from it are not received");
                }
            }
        }
        *lock(connection) = daemon.shutdown_handle().map(Connection);
        match daemon.wait() {
            Ok(()) => tracing::info!("vhost-user front end disconnected"),
            Err(error) => tracing::warn!(%error, "vhost-user connection ended with an error"),
        }
        *lock(connection) = None;
        *lock(&device.memory) = None;
        if let Peer::Loopback(backlog) = &device.peer {
            lock(backlog).clear();
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
