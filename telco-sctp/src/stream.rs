//! One-to-one style sockets (`SOCK_STREAM`, RFC 6458 section 4): [`SctpListener`] and
//! [`SctpStream`], one association per socket.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::error::SctpError;
use crate::ext::{SctpOptions, Sealed};
use crate::info::{AssocId, SendInfo};
use crate::recv::{Received, RecvPart};
use crate::socket::{Inner, SctpBuilder, set_int};
use crate::sys;

/// A one-to-one socket listening for associations, like `TcpListener`.
#[derive(Debug)]
pub struct SctpListener {
    pub(crate) inner: Inner,
}

impl SctpListener {
    /// Binds to every address of `addrs` and listens, with the kernel's default options.
    /// Use [`SctpBuilder::listen`] to set options before listening.
    ///
    /// All addresses must share one port; port 0 picks a free one.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::NoKernelSupport`] on a kernel without SCTP, else as
    /// [`SctpBuilder::listen`].
    pub fn bind(addrs: &[SocketAddr]) -> Result<SctpListener, SctpError> {
        SctpBuilder::new().listen(addrs)
    }

    pub(crate) fn from_inner(inner: Inner) -> SctpListener {
        SctpListener { inner }
    }

    /// Waits for an association and returns it with the peer's primary address.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Accept`].
    pub fn accept(&self) -> Result<(SctpStream, Option<SocketAddr>), SctpError> {
        let (socket, peer) = self
            .inner
            .socket
            .accept()
            .map_err(|source| SctpError::Accept { source })?;
        let stream = SctpStream::accepted(Inner::from_socket(socket))?;
        Ok((stream, peer.as_socket()))
    }

    /// Returns the bound addresses.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    pub fn bound_addrs(&self) -> Result<Vec<SocketAddr>, SctpError> {
        self.local_addrs(AssocId::FUTURE)
    }

    /// Moves the socket into or out of non-blocking mode.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`] naming `O_NONBLOCK`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), SctpError> {
        set_nonblocking(&self.inner, nonblocking)
    }
}

/// One association on a one-to-one socket, like `TcpStream` but with message boundaries,
/// streams and payload protocol identifiers.
#[derive(Debug)]
pub struct SctpStream {
    pub(crate) inner: Inner,
    assoc_id: AssocId,
}

impl SctpStream {
    /// Connects to the peer's addresses with `sctp_connectx` and the kernel's default options,
    /// blocking until the association is up. Use [`SctpBuilder::connect`] to set options or
    /// bind local addresses first.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::NoKernelSupport`] on a kernel without SCTP, and with
    /// [`SctpError::Connect`] if the association cannot be set up.
    pub fn connect(addrs: &[SocketAddr]) -> Result<SctpStream, SctpError> {
        SctpBuilder::new().connect(addrs, &[])
    }

    pub(crate) fn from_inner(inner: Inner, assoc_id: AssocId) -> SctpStream {
        SctpStream { inner, assoc_id }
    }

    /// Wraps an accepted or peeled-off socket, reading its association id.
    pub(crate) fn accepted(inner: Inner) -> Result<SctpStream, SctpError> {
        set_int(inner.fd(), sys::SCTP_RECVRCVINFO, "SCTP_RECVRCVINFO", 1)?;
        let mut stream = SctpStream {
            inner,
            assoc_id: AssocId::FUTURE,
        };
        stream.assoc_id = stream.status(AssocId::FUTURE)?.assoc_id;
        Ok(stream)
    }

    /// Wraps a socket that `sctp_peeloff` returned for association `assoc_id`.
    pub(crate) fn peeled(fd: OwnedFd, assoc_id: AssocId) -> Result<SctpStream, SctpError> {
        let inner = Inner::from_owned(fd);
        set_int(inner.fd(), sys::SCTP_RECVRCVINFO, "SCTP_RECVRCVINFO", 1)?;
        Ok(SctpStream { inner, assoc_id })
    }

    /// Returns the association id.
    pub fn assoc_id(&self) -> AssocId {
        self.assoc_id
    }

    /// Sends `data` as one message with `info`'s stream, PPID, flags and context.
    ///
    /// Linux rejects [`SendFlags::EOF`](crate::SendFlags::EOF) and
    /// [`SendFlags::ABORT`](crate::SendFlags::ABORT) on one-to-one sockets with `EINVAL`; use
    /// [`shutdown`](Self::shutdown) and [`abort`](Self::abort).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`], for example `EINVAL` for a stream at or above the
    /// negotiated outbound count, or `EPIPE` after shutdown.
    pub fn send(&self, data: &[u8], info: &SendInfo) -> Result<usize, SctpError> {
        self.inner.send(data, Some(info), None)
    }

    /// Sends `data` as one message with the socket's `SCTP_DEFAULT_SNDINFO`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`].
    pub fn send_default(&self, data: &[u8]) -> Result<usize, SctpError> {
        self.inner.send(data, None, None)
    }

    /// Receives a whole message or notification, reading parts until `MSG_EOR`.
    ///
    /// Messages larger than [`max_message_size`](Self::max_message_size) fail with
    /// [`SctpError::MessageTooLarge`]; the rest of such a message is then skipped.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Recv`], or with [`SctpError::Notification`] for a notification
    /// that does not parse.
    pub fn recv(&self) -> Result<Received, SctpError> {
        self.inner.recv()
    }

    /// Receives what one `recvmsg` call returns into `buf`: a whole message, or a part of one
    /// marked `complete: false` when it does not fit.
    ///
    /// Do not mix it with [`recv`](Self::recv) while `recv` has a partly read message.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Recv`].
    pub fn recv_part(&self, buf: &mut [u8]) -> Result<RecvPart, SctpError> {
        self.inner.recv_part(buf)
    }

    /// Returns the largest message [`recv`](Self::recv) puts together, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.inner.reassembly.max_message_size()
    }

    /// Sets the largest message [`recv`](Self::recv) puts together, in bytes (default 16 MiB).
    pub fn set_max_message_size(&self, bytes: usize) {
        self.inner.reassembly.set_max_message_size(bytes);
    }

    /// Starts a graceful shutdown (SHUTDOWN chunk): no more sends, receives continue until the
    /// peer's data is in.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`].
    pub fn shutdown(&self) -> Result<(), SctpError> {
        self.inner
            .socket
            .shutdown(std::net::Shutdown::Write)
            .map_err(|source| SctpError::Send { source })
    }

    /// Aborts the association (ABORT chunk) and closes the socket.
    ///
    /// Linux rejects the `SCTP_ABORT` send flag on one-to-one sockets, so this closes with a
    /// zero linger time, which sends an ABORT without a user reason. To abort with a reason,
    /// use a one-to-many socket ([`OneToManySocket::abort`](crate::OneToManySocket::abort)).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`] naming `SO_LINGER`.
    pub fn abort(self) -> Result<(), SctpError> {
        self.inner
            .socket
            .set_linger(Some(Duration::ZERO))
            .map_err(|source| SctpError::SetOption {
                option: "SO_LINGER",
                source,
            })?;
        drop(self);
        Ok(())
    }

    /// Sets the receive timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`] naming `SO_RCVTIMEO`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), SctpError> {
        self.inner
            .socket
            .set_read_timeout(timeout)
            .map_err(|source| SctpError::SetOption {
                option: "SO_RCVTIMEO",
                source,
            })
    }

    /// Sets the send timeout; `None` blocks forever.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`] naming `SO_SNDTIMEO`.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<(), SctpError> {
        self.inner
            .socket
            .set_write_timeout(timeout)
            .map_err(|source| SctpError::SetOption {
                option: "SO_SNDTIMEO",
                source,
            })
    }

    /// Moves the socket into or out of non-blocking mode.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`] naming `O_NONBLOCK`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), SctpError> {
        set_nonblocking(&self.inner, nonblocking)
    }

    /// Returns the underlying `socket2` socket, for options this crate does not wrap (buffer
    /// sizes, linger, DSCP).
    pub fn as_socket(&self) -> &socket2::Socket {
        &self.inner.socket
    }
}

pub(crate) fn set_nonblocking(inner: &Inner, nonblocking: bool) -> Result<(), SctpError> {
    inner
        .socket
        .set_nonblocking(nonblocking)
        .map_err(|source| SctpError::SetOption {
            option: "O_NONBLOCK",
            source,
        })
}

macro_rules! fd_traits {
    ($($name:ty),*) => {$(
        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.socket.as_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            fn from(socket: $name) -> OwnedFd {
                socket.inner.socket.into()
            }
        }

        impl Sealed for $name {}
        impl SctpOptions for $name {}
    )*};
}

fd_traits!(SctpListener, SctpStream, crate::OneToManySocket);
