//! The error type of every SCTP socket operation.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

use crate::AssocId;
use crate::notification::NotificationError;

/// Error from an SCTP socket operation: the variant names the failing call and its context.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SctpError {
    /// The running kernel has no SCTP stack: `socket()` failed with `EPROTONOSUPPORT` or
    /// `ESOCKTNOSUPPORT`.
    #[error("kernel has no SCTP support (CONFIG_IP_SCTP); load the sctp module")]
    NoKernelSupport {
        /// Error from `socket()`.
        #[source]
        source: io::Error,
    },
    /// `socket(..., IPPROTO_SCTP)` failed for another reason.
    #[error("failed to create an SCTP socket")]
    Socket {
        /// Error from `socket()`.
        #[source]
        source: io::Error,
    },
    /// An operation that needs at least one address got an empty list.
    #[error("{call} needs at least one address")]
    NoAddresses {
        /// Call that was made, such as `sctp_bindx`.
        call: &'static str,
    },
    /// An IPv6 address was given to an IPv4 socket.
    #[error("address {addr} is IPv6 but the socket is IPv4")]
    AddressFamily {
        /// Rejected address.
        addr: SocketAddr,
    },
    /// `bind()` or `sctp_bindx(SCTP_BINDX_ADD_ADDR)` failed.
    #[error("failed to bind to {addrs:?}")]
    Bind {
        /// Addresses that were bound.
        addrs: Vec<SocketAddr>,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `sctp_bindx(SCTP_BINDX_REM_ADDR)` failed.
    #[error("failed to remove local addresses {addrs:?}")]
    Unbind {
        /// Addresses that were removed.
        addrs: Vec<SocketAddr>,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `listen()` failed.
    #[error("failed to listen")]
    Listen {
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `accept()` failed.
    #[error("failed to accept an association")]
    Accept {
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `sctp_connectx()` failed.
    #[error("failed to connect to {addrs:?}")]
    Connect {
        /// Peer addresses that were given.
        addrs: Vec<SocketAddr>,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `sctp_peeloff()` failed.
    #[error("failed to peel off association {assoc_id}")]
    Peeloff {
        /// Association that was peeled off.
        assoc_id: AssocId,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `setsockopt(SOL_SCTP, ...)` failed.
    #[error("failed to set socket option {option}")]
    SetOption {
        /// Option name, such as `SCTP_INITMSG`.
        option: &'static str,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `getsockopt(SOL_SCTP, ...)` failed.
    #[error("failed to read socket option {option}")]
    GetOption {
        /// Option name, such as `SCTP_STATUS`.
        option: &'static str,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// The socket could not be registered with the tokio reactor, for example outside a runtime
    /// with I/O enabled.
    #[error("failed to register the SCTP socket with the tokio reactor")]
    Register {
        /// Error from tokio.
        #[source]
        source: io::Error,
    },
    /// `sendmsg()` failed.
    #[error("failed to send a message")]
    Send {
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `recvmsg()` failed.
    #[error("failed to receive a message")]
    Recv {
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// A received message grew past the socket's maximum message size before its last part
    /// (`MSG_EOR`) arrived. The rest of that message is discarded by the next receive calls.
    #[error(
        "received message exceeds the maximum of {limit} bytes; raise it with set_max_message_size"
    )]
    MessageTooLarge {
        /// Maximum message size in bytes.
        limit: usize,
    },
    /// The kernel delivered a notification that could not be parsed.
    #[error("failed to parse an SCTP notification")]
    Notification {
        /// Parse error.
        #[source]
        source: NotificationError,
    },
}

impl SctpError {
    /// Returns the I/O error underneath, if the failure came from a system call.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            SctpError::NoKernelSupport { source }
            | SctpError::Socket { source }
            | SctpError::Bind { source, .. }
            | SctpError::Unbind { source, .. }
            | SctpError::Listen { source }
            | SctpError::Accept { source }
            | SctpError::Connect { source, .. }
            | SctpError::Peeloff { source, .. }
            | SctpError::SetOption { source, .. }
            | SctpError::GetOption { source, .. }
            | SctpError::Register { source }
            | SctpError::Send { source }
            | SctpError::Recv { source } => Some(source),
            SctpError::NoAddresses { .. }
            | SctpError::AddressFamily { .. }
            | SctpError::MessageTooLarge { .. }
            | SctpError::Notification { .. } => None,
        }
    }

    /// Returns true if the call would have blocked on a non-blocking socket (`EAGAIN`).
    pub fn is_would_block(&self) -> bool {
        self.io_error()
            .is_some_and(|error| error.kind() == io::ErrorKind::WouldBlock)
    }
}

impl From<SctpError> for io::Error {
    fn from(error: SctpError) -> io::Error {
        match error.io_error() {
            Some(source) => io::Error::new(source.kind(), error),
            None => io::Error::other(error),
        }
    }
}
