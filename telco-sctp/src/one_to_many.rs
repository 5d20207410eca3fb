//! One-to-many style sockets (`SOCK_SEQPACKET`, RFC 6458 section 3): many associations on one
//! socket, identified by their [`AssocId`].

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::SctpError;
use crate::info::{AssocId, SendFlags, SendInfo};
use crate::recv::{Received, RecvPart};
use crate::socket::{Inner, SctpBuilder, set_int};
use crate::stream::{SctpStream, set_nonblocking};
use crate::{raw, sys};

/// A one-to-many socket: it accepts associations like a listener and starts them like a client,
/// and sends and receives on all of them.
///
/// Messages name their association in [`SendInfo::assoc_id`] when sent and in
/// [`RecvInfo::assoc_id`](crate::RecvInfo::assoc_id) when received. [`peeloff`](Self::peeloff)
/// moves one association to its own [`SctpStream`].
#[derive(Debug)]
pub struct OneToManySocket {
    pub(crate) inner: Inner,
}

impl OneToManySocket {
    /// Binds to every address of `addrs` and listens, with the kernel's default options.
    /// Use [`SctpBuilder::one_to_many`] to set options before listening.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::NoKernelSupport`] on a kernel without SCTP, else as
    /// [`SctpBuilder::one_to_many`].
    pub fn bind(addrs: &[SocketAddr]) -> Result<OneToManySocket, SctpError> {
        SctpBuilder::new().one_to_many(addrs)
    }

    pub(crate) fn from_inner(inner: Inner) -> OneToManySocket {
        OneToManySocket { inner }
    }

    /// Starts an association to the peer's addresses with `sctp_connectx` and returns its id,
    /// blocking until it is up (or, in non-blocking mode, returning at once).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Connect`].
    pub fn connectx(&self, addrs: &[SocketAddr]) -> Result<AssocId, SctpError> {
        self.inner.connectx(addrs).map(|(assoc_id, _)| assoc_id)
    }

    /// Sends `data` on the association `info.assoc_id`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`], for example `EPIPE` for an association that is gone.
    pub fn send(&self, data: &[u8], info: &SendInfo) -> Result<usize, SctpError> {
        self.inner.send(data, Some(info), None)
    }

    /// Sends `data` to peer address `to`, setting up an association implicitly if there is
    /// none (the INIT then carries the socket's `SCTP_INITMSG`).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`].
    pub fn send_to(
        &self,
        data: &[u8],
        to: SocketAddr,
        info: &SendInfo,
    ) -> Result<usize, SctpError> {
        self.inner.send(data, Some(info), Some(&to))
    }

    /// Starts a graceful shutdown of association `assoc_id` (a send with `SCTP_EOF`).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`].
    pub fn shutdown(&self, assoc_id: AssocId) -> Result<(), SctpError> {
        let info = SendInfo::default()
            .with_flags(SendFlags::EOF)
            .with_assoc_id(assoc_id);
        self.inner.send(&[], Some(&info), None).map(drop)
    }

    /// Aborts association `assoc_id` (a send with `SCTP_ABORT`); the peer receives `reason` as
    /// the user-initiated abort cause.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Send`].
    pub fn abort(&self, assoc_id: AssocId, reason: &[u8]) -> Result<(), SctpError> {
        let info = SendInfo::default()
            .with_flags(SendFlags::ABORT)
            .with_assoc_id(assoc_id);
        self.inner.send(reason, Some(&info), None).map(drop)
    }

    /// Receives a whole message or notification from any association.
    ///
    /// # Errors
    ///
    /// As [`SctpStream::recv`].
    pub fn recv(&self) -> Result<Received, SctpError> {
        self.inner.recv()
    }

    /// Receives what one `recvmsg` call returns into `buf`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Recv`].
    pub fn recv_part(&self, buf: &mut [u8]) -> Result<RecvPart, SctpError> {
        self.inner.recv_part(buf)
    }

    /// Sets the largest message [`recv`](Self::recv) puts together, in bytes (default 16 MiB).
    pub fn set_max_message_size(&self, bytes: usize) {
        self.inner.reassembly.set_max_message_size(bytes);
    }

    /// Moves association `assoc_id` to a new one-to-one socket (`sctp_peeloff`).
    ///
    /// Messages of that association already queued on this socket stay here.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Peeloff`], for example `EINVAL` for an unknown association.
    pub fn peeloff(&self, assoc_id: AssocId) -> Result<SctpStream, SctpError> {
        let fd = raw::peeloff(self.inner.fd(), assoc_id)
            .map_err(|source| SctpError::Peeloff { assoc_id, source })?;
        SctpStream::peeled(fd, assoc_id)
    }

    /// Returns the ids of the socket's associations (`SCTP_GET_ASSOC_ID_LIST`).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    pub fn assoc_ids(&self) -> Result<Vec<AssocId>, SctpError> {
        raw::assoc_ids(self.inner.fd()).map_err(|source| SctpError::GetOption {
            option: "SCTP_GET_ASSOC_ID_LIST",
            source,
        })
    }

    /// Sets `SCTP_AUTOCLOSE`: associations idle for `idle` are shut down (`None` turns it off).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    pub fn set_autoclose(&self, idle: Option<Duration>) -> Result<(), SctpError> {
        let seconds = idle.map_or(0, |idle| i32::try_from(idle.as_secs()).unwrap_or(i32::MAX));
        set_int(
            self.inner.fd(),
            sys::SCTP_AUTOCLOSE,
            "SCTP_AUTOCLOSE",
            seconds,
        )
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

    /// Moves the socket into or out of non-blocking mode.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`] naming `O_NONBLOCK`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), SctpError> {
        set_nonblocking(&self.inner, nonblocking)
    }

    /// Returns the underlying `socket2` socket, for options this crate does not wrap.
    pub fn as_socket(&self) -> &socket2::Socket {
        &self.inner.socket
    }
}
