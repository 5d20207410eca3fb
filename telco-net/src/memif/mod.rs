//! memif: shared-memory packet interfaces that DPDK (`net_memif`), VPP and libmemif speak.
//!
//! Two processes exchange frames through rings in memory that the **client** creates (memfds
//! passed over the control socket) and the **server** maps. The server listens on a
//! `SOCK_SEQPACKET` unix socket, filesystem or abstract; the client connects, and both run the
//! protocol version 2.0 handshake. After that, frames move with no system call except optional
//! eventfd signals.
//!
//! ```no_run
//! use std::time::Duration;
//! use telco_net::memif::{Memif, MemifConfig, Role, SocketPath};
//!
//! let config = MemifConfig::new(Role::Client, SocketPath::Path("/run/memif.sock".into()));
//! let mut memif = Memif::new(config)?;
//! memif.connect(Duration::from_secs(5))?;
//! memif.tx_burst(0, &[&[0u8; 64][..]])?;
//! memif.rx_burst(0, 32, |frame| println!("{} bytes", frame.len()))?;
//! # Ok::<(), telco_net::memif::MemifError>(())
//! ```
//!
//! [`MemifKind`] makes a memif interface an attachment of the multi-network API. For a workload
//! in the client role it also serves the socket, passing the workload's frames to a
//! [`FrameHandler`] on a thread of its own ([`echo_handler`] by default).
//!
//! Everything the peer sends is validated before use. The handshake checks message sizes and
//! types, version, id, mode and secret, sequential region and ring indices, region sizes against
//! the file size, ring placement inside its region, and ring cookies. Every burst checks the
//! peer's head or tail and each descriptor's region, offset and length, in 64-bit arithmetic.
//!
//! # Limitations
//!
//! - Ethernet mode only (as DPDK); IP and punt/inject modes are rejected at configuration.
//! - One interface per socket: a server accepts one client at a time.
//! - No zero-copy: the client copies frames into its own buffers, the server into posted ones.
//! - Rings use 64-byte cache-line offsets (libmemif, VPP, and DPDK on x86); DPDK builds with
//!   128-byte cache lines (some Arm targets) lay rings out differently and cannot connect.
//! - A peer that shrinks a region's file after connecting can make accesses fault with
//!   `SIGBUS`; our own regions are sealed against shrinking, but a peer's may not be.

mod attach;
mod control;
mod datapath;
mod handshake;
mod host_server;
mod shm;
pub mod wire;

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;

pub use attach::{MAX_SOCKET_PATH_LEN, MemifKind, MemifKindError};
pub use datapath::{MAX_FRAME_LEN, MemifStats};
pub use host_server::{FrameHandler, echo_handler, swap_macs};
pub use wire::InterfaceMode;

use crate::ring::MappingError;
use handshake::Connection;

/// The end of the connection an interface takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Connects, creates and owns the shared memory (libmemif's "slave").
    Client,
    /// Listens and maps the client's memory (libmemif's "master").
    Server,
}

/// The control socket's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketPath {
    /// A socket file.
    Path(PathBuf),
    /// A name in the abstract namespace (written `@name` by libmemif and VPP).
    Abstract(String),
}

impl SocketPath {
    /// Parses `@name` as an abstract name and anything else as a path, as libmemif does.
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix('@') {
            Some(name) => Self::Abstract(name.to_owned()),
            None => Self::Path(PathBuf::from(text)),
        }
    }
}

impl fmt::Display for SocketPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::Abstract(name) => write!(f, "@{name}"),
        }
    }
}

/// Configuration of one memif interface; the defaults match libmemif's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemifConfig {
    /// Client or server.
    pub role: Role,
    /// Control socket.
    pub socket: SocketPath,
    /// Interface id; both sides must use the same (DPDK devarg `id`).
    pub id: u32,
    /// Optional shared secret of up to 24 bytes (DPDK devarg `secret`).
    pub secret: Option<String>,
    /// Interface mode; only Ethernet is implemented.
    pub mode: InterfaceMode,
    /// Name sent in HELLO/INIT and CONNECT/CONNECTED, up to 32 bytes.
    pub name: String,
    /// Ring size exponent for a client (10 = 1024 descriptors, at most 14; DPDK devarg `rsize`).
    pub log2_ring_size: u8,
    /// Bytes per buffer for a client (DPDK devarg `bsize`), a multiple of 64 bytes.
    pub buffer_size: u32,
    /// Client-to-server rings a client creates (transmit queues of a client).
    pub tx_queues: u8,
    /// Server-to-client rings a client creates (receive queues of a client).
    pub rx_queues: u8,
}

impl MemifConfig {
    /// Creates a configuration with libmemif's defaults: id 0, no secret, Ethernet, 1024-descriptor rings,
    /// 2048-byte buffers, one queue per direction.
    pub fn new(role: Role, socket: SocketPath) -> Self {
        Self {
            role,
            socket,
            id: 0,
            secret: None,
            mode: InterfaceMode::Ethernet,
            name: "telco".to_owned(),
            log2_ring_size: 10,
            buffer_size: 2048,
            tx_queues: 1,
            rx_queues: 1,
        }
    }

    fn validate(&self) -> Result<(), MemifError> {
        let invalid = |reason| Err(MemifError::InvalidConfig { reason });
        if self.mode != InterfaceMode::Ethernet {
            return invalid("only Ethernet mode is implemented");
        }
        if self
            .secret
            .as_ref()
            .is_some_and(|secret| secret.len() > wire::SECRET_LEN)
        {
            return invalid("secret longer than 24 bytes");
        }
        if self.name.len() > wire::NAME_LEN {
            return invalid("name longer than 32 bytes");
        }
        if self.log2_ring_size == 0 || self.log2_ring_size > wire::MAX_LOG2_RING_SIZE {
            return invalid("log2_ring_size must be 1 to 14");
        }
        if self.buffer_size == 0 || !self.buffer_size.is_multiple_of(64) || self.buffer_size > 65536
        {
            return invalid("buffer_size must be a non-zero multiple of 64 up to 65536");
        }
        if self.tx_queues == 0 || self.rx_queues == 0 {
            return invalid("at least one queue per direction is required");
        }
        let rings = u64::from(self.tx_queues) + u64::from(self.rx_queues);
        if rings * (1u64 << self.log2_ring_size) * u64::from(self.buffer_size) > u64::from(u32::MAX)
        {
            return invalid("buffers exceed the 4 GiB a descriptor offset reaches");
        }
        Ok(())
    }
}

/// Errors of memif setup and operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemifError {
    /// The configuration is invalid.
    #[error("invalid memif configuration: {reason}")]
    InvalidConfig {
        /// The rule the configuration breaks.
        reason: &'static str,
    },
    /// A socket call on the control socket failed.
    #[error("{op} memif socket {socket} failed")]
    Socket {
        /// The call, such as `bind` or `connect to`.
        op: &'static str,
        /// The socket address.
        socket: String,
        /// Cause.
        #[source]
        source: Errno,
    },
    /// No server listens on the socket. Start the server or check the path, because DPDK's
    /// `socket-abstract` devarg defaults to yes and then puts its socket in the abstract namespace.
    #[error("no memif server listens on {socket}")]
    NoServer {
        /// The socket address.
        socket: String,
        /// Cause (`ENOENT` or `ECONNREFUSED`).
        #[source]
        source: Errno,
    },
    /// Sending a control message failed.
    #[error("sending memif {message} failed")]
    Send {
        /// Message type.
        message: &'static str,
        /// Cause.
        #[source]
        source: Errno,
    },
    /// Receiving a control message failed.
    #[error("receiving a memif control message failed")]
    Recv {
        /// Cause.
        #[source]
        source: Errno,
    },
    /// The peer sent no reply in time.
    #[error("timed out waiting for {waiting_for}")]
    Timeout {
        /// The message or event expected.
        waiting_for: &'static str,
    },
    /// The peer closed the control socket.
    #[error("memif peer closed the control socket")]
    PeerClosed,
    /// The peer sent DISCONNECT.
    #[error("memif peer disconnected (code {code}): {reason}")]
    PeerDisconnected {
        /// Code sent by the peer.
        code: u32,
        /// Reason sent by the peer.
        reason: String,
    },
    /// The peer sent a message or value that breaks the protocol.
    #[error("memif protocol violation: {0}")]
    Protocol(String),
    /// The server speaks no version this side does.
    #[error("memif server supports versions {min:#06x} to {max:#06x}, we speak 0x0200")]
    IncompatibleVersion {
        /// Lowest version of the server.
        min: u16,
        /// Highest version of the server.
        max: u16,
    },
    /// Creating or mapping a region failed.
    #[error("memif region {index} could not be created or mapped")]
    Region {
        /// Region index.
        index: usize,
        /// Cause.
        #[source]
        source: MappingError,
    },
    /// `eventfd(2)` failed.
    #[error("eventfd for a memif ring failed")]
    Eventfd {
        /// Cause.
        #[source]
        source: Errno,
    },
    /// The interface is not connected.
    #[error("memif interface is not connected")]
    NotConnected,
    /// The queue index is out of range.
    #[error("memif queue {queue} does not exist ({count} queues)")]
    NoQueue {
        /// Requested queue.
        queue: usize,
        /// Queues in that direction.
        count: usize,
    },
}

/// One memif interface: configuration, the server's listening socket, and the connection when
/// there is one. After the peer goes away, [`connect`](Self::connect) again reconnects.
#[derive(Debug)]
pub struct Memif {
    config: MemifConfig,
    listener: Option<OwnedFd>,
    connection: Option<Connection>,
    stats: MemifStats,
}

impl Memif {
    /// Validates `config`; a server also starts listening on its socket, replacing a stale
    /// socket file.
    pub fn new(config: MemifConfig) -> Result<Self, MemifError> {
        config.validate()?;
        let listener = match config.role {
            Role::Server => Some(control::listen_on(&config.socket)?),
            Role::Client => None,
        };
        Ok(Self {
            config,
            listener,
            connection: None,
            stats: MemifStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MemifConfig {
        &self.config
    }

    /// Connects: a client connects to the server's socket, a server waits for a client; both
    /// then run the handshake, each step waiting up to `timeout`. An existing connection is
    /// dropped first.
    pub fn connect(&mut self, timeout: Duration) -> Result<(), MemifError> {
        self.connect_within(timeout, timeout)
    }

    /// Like [`Memif::connect`], but a server waits up to `wait` for a client to connect and then
    /// up to `timeout` for each handshake step. A client ignores `wait`.
    pub(crate) fn connect_within(
        &mut self,
        wait: Duration,
        timeout: Duration,
    ) -> Result<(), MemifError> {
        self.connection = None;
        let connection = match self.config.role {
            Role::Client => {
                let channel = control::connect_to(&self.config.socket)?;
                handshake::client(channel, &self.config, timeout)?
            }
            Role::Server => {
                let listener = self.listener.as_ref().expect("servers listen from new()");
                let channel = control::accept_on(listener, &self.config.socket, wait)?;
                handshake::server(channel, &self.config, timeout)?
            }
        };
        tracing::info!(socket = %self.config.socket, peer = connection.peer_name, "memif connected");
        self.connection = Some(connection);
        Ok(())
    }

    /// Whether a connection is up, as of the last call that looked at the control socket.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// The peer's interface name, while connected.
    pub fn peer_name(&self) -> Option<&str> {
        self.connection
            .as_ref()
            .map(|connection| connection.peer_name.as_str())
    }

    /// Checks the control socket without blocking: a DISCONNECT, a hang-up or any other
    /// message ends the connection. Returns whether it is still up. Call it now and then from
    /// a polling loop, since the data path itself makes no system call.
    pub fn poll_control(&mut self) -> bool {
        let Some(connection) = &self.connection else {
            return false;
        };
        match control::wait_readable(connection.channel.fd(), Duration::ZERO) {
            Ok(false) => return true,
            Ok(true) => {
                let reason = match connection.channel.recv_now() {
                    Ok((message, _)) => format!("peer sent {}", message.kind()),
                    Err(error) => error.to_string(),
                };
                tracing::info!(socket = %self.config.socket, reason, "memif disconnected");
            }
            Err(error) => {
                tracing::warn!(socket = %self.config.socket, %error, "polling the memif control socket failed")
            }
        }
        self.connection = None;
        false
    }

    /// Returns true when the peer has sent a control message or hung up, without acting on it.
    ///
    /// A peer writes its last frames before it disconnects, so a caller that sees this can drain
    /// the receive rings before [`Memif::poll_control`] drops the connection.
    pub fn control_pending(&self) -> bool {
        self.connection.as_ref().is_some_and(|connection| {
            control::wait_readable(connection.channel.fd(), Duration::ZERO).unwrap_or(true)
        })
    }

    /// Sends DISCONNECT with `reason` and drops the connection.
    pub fn disconnect(&mut self, reason: &str) {
        if let Some(connection) = self.connection.take() {
            let message = wire::Message::Disconnect {
                code: 0,
                reason: reason.as_bytes().to_vec(),
            };
            if let Err(error) = connection.channel.send(&message, None) {
                tracing::debug!(%error, "DISCONNECT not delivered");
            }
        }
    }

    /// Transmits frames on queue `queue`; returns how many of `frames`, from the front, were
    /// consumed. A frame that is empty or longer than [`MAX_FRAME_LEN`] is consumed, dropped and
    /// counted in [`MemifStats::errors`]; frames longer than a buffer are chained.
    pub fn tx_burst(&mut self, queue: usize, frames: &[&[u8]]) -> Result<usize, MemifError> {
        let role = self.config.role;
        let connection = self.connection.as_mut().ok_or(MemifError::NotConnected)?;
        let count = connection.tx.len();
        let ring = connection
            .tx
            .get_mut(queue)
            .ok_or(MemifError::NoQueue { queue, count })?;
        Ok(match role {
            Role::Client => ring.client_tx(&connection.regions, frames, &mut self.stats),
            Role::Server => ring.server_tx(&connection.regions, frames, &mut self.stats),
        })
    }

    /// Receives up to `max` frames from queue `queue`, passing each to `deliver`; returns how
    /// many. The slice points into shared memory and is only valid during the call.
    pub fn rx_burst(
        &mut self,
        queue: usize,
        max: usize,
        mut deliver: impl FnMut(&[u8]),
    ) -> Result<usize, MemifError> {
        let role = self.config.role;
        let connection = self.connection.as_mut().ok_or(MemifError::NotConnected)?;
        let count = connection.rx.len();
        let ring = connection
            .rx
            .get_mut(queue)
            .ok_or(MemifError::NoQueue { queue, count })?;
        Ok(match role {
            Role::Client => ring.client_rx(&connection.regions, max, &mut deliver, &mut self.stats),
            Role::Server => ring.server_rx(&connection.regions, max, &mut deliver, &mut self.stats),
        })
    }

    /// Number of transmit and receive queues while connected.
    pub fn queues(&self) -> Option<(usize, usize)> {
        self.connection
            .as_ref()
            .map(|connection| (connection.tx.len(), connection.rx.len()))
    }

    /// Switches receive queue `queue` between interrupt mode (the peer writes the ring's eventfd
    /// after adding frames) and polling mode (the peer does not; the default).
    pub fn set_rx_interrupt(&mut self, queue: usize, enabled: bool) -> Result<(), MemifError> {
        let connection = self.connection.as_ref().ok_or(MemifError::NotConnected)?;
        let count = connection.rx.len();
        connection
            .rx
            .get(queue)
            .ok_or(MemifError::NoQueue { queue, count })?
            .set_interrupt(enabled);
        Ok(())
    }

    /// The eventfd that the peer writes when it adds frames to receive queue `queue` in
    /// interrupt mode, to wait on with `poll` or an event loop.
    pub fn rx_interrupt_fd(&self, queue: usize) -> Option<BorrowedFd<'_>> {
        self.connection
            .as_ref()?
            .rx
            .get(queue)
            .map(|ring| ring.eventfd.as_fd())
    }

    /// Waits up to `timeout` for the interrupt of receive queue `queue` and clears it; returns
    /// whether it fired.
    pub fn wait_rx_interrupt(
        &mut self,
        queue: usize,
        timeout: Duration,
    ) -> Result<bool, MemifError> {
        let connection = self.connection.as_ref().ok_or(MemifError::NotConnected)?;
        let count = connection.rx.len();
        let ring = connection
            .rx
            .get(queue)
            .ok_or(MemifError::NoQueue { queue, count })?;
        let fired = control::wait_readable(ring.eventfd.as_fd(), timeout)
            .map_err(|source| MemifError::Eventfd { source })?;
        if fired {
            let mut counter = [0u8; 8];
            let _ = nix::unistd::read(&ring.eventfd, &mut counter);
        }
        Ok(fired)
    }

    /// Counters since the interface was made.
    pub fn stats(&self) -> MemifStats {
        self.stats
    }
}

impl Drop for Memif {
    fn drop(&mut self) {
        self.disconnect("interface deleted");
        if let (Some(_), SocketPath::Path(path)) = (&self.listener, &self.config.socket) {
            let _ = std::fs::remove_file(path);
        }
    }
}
