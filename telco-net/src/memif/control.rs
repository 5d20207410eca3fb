//! The memif control channel: an `AF_UNIX` `SOCK_SEQPACKET` socket carrying 128-byte messages,
//! each with at most one fd in `SCM_RIGHTS`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr, accept4, bind, connect, listen, recvmsg, sendmsg, setsockopt, socket, sockopt,
};

use super::wire::{MSG_SIZE, Message};
use super::{MemifError, SocketPath};

fn socket_error<'a>(
    op: &'static str,
    socket: &'a SocketPath,
) -> impl FnOnce(Errno) -> MemifError + 'a {
    move |source| MemifError::Socket {
        op,
        socket: socket.to_string(),
        source,
    }
}

fn address(path: &SocketPath) -> Result<UnixAddr, MemifError> {
    match path {
        SocketPath::Path(path) => UnixAddr::new(path.as_path()),
        SocketPath::Abstract(name) => UnixAddr::new_abstract(name.as_bytes()),
    }
    .map_err(socket_error("build address of", path))
}

fn seqpacket(path: &SocketPath) -> Result<OwnedFd, MemifError> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(socket_error("socket", path))
}

/// Binds and listens on `path`, with `SO_PASSCRED` as libmemif sets it. A filesystem socket left
/// behind by a previous listener is removed first.
pub(crate) fn listen_on(path: &SocketPath) -> Result<OwnedFd, MemifError> {
    let fd = seqpacket(path)?;
    let addr = address(path)?;
    if let SocketPath::Path(file) = path {
        match std::fs::remove_file(file) {
            Ok(()) => tracing::debug!(socket = %path, "removed stale memif socket"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => {}
        }
    }
    bind(fd.as_raw_fd(), &addr).map_err(socket_error("bind", path))?;
    setsockopt(&fd, sockopt::PassCred, &true).map_err(socket_error("set SO_PASSCRED on", path))?;
    listen(&fd, Backlog::new(8).unwrap_or(Backlog::MAXCONN))
        .map_err(socket_error("listen on", path))?;
    Ok(fd)
}

/// Connects to the server listening on `path`.
pub(crate) fn connect_to(path: &SocketPath) -> Result<Channel, MemifError> {
    let fd = seqpacket(path)?;
    let addr = address(path)?;
    connect(fd.as_raw_fd(), &addr).map_err(|source| match source {
        Errno::ENOENT | Errno::ECONNREFUSED => MemifError::NoServer {
            socket: path.to_string(),
            source,
        },
        _ => MemifError::Socket {
            op: "connect to",
            socket: path.to_string(),
            source,
        },
    })?;
    Ok(Channel { fd })
}

/// Waits up to `timeout` for `fd` to be readable; `Ok(false)` on timeout.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> Result<bool, Errno> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128))
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, millis) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(error) => return Err(error),
        }
    }
}

/// Accepts one connection on a listening socket, waiting up to `timeout`.
pub(crate) fn accept_on(
    listener: &OwnedFd,
    path: &SocketPath,
    timeout: Duration,
) -> Result<Channel, MemifError> {
    if !wait_readable(listener.as_fd(), timeout).map_err(socket_error("poll", path))? {
        return Err(MemifError::Timeout {
            waiting_for: "a client to connect",
        });
    }
    let fd = accept4(listener, SockFlag::SOCK_CLOEXEC).map_err(socket_error("accept on", path))?;
    Ok(Channel { fd })
}

/// A connected control channel.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sends one message, with `fd` attached if given.
    pub(crate) fn send(
        &self,
        message: &Message,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(), MemifError> {
        let frame = message.encode();
        let iov = [IoSlice::new(&frame)];
        let raw;
        let cmsgs: &[ControlMessage<'_>] = match fd {
            Some(fd) => {
                raw = [fd.as_raw_fd()];
                &[ControlMessage::ScmRights(&raw)]
            }
            None => &[],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|source| MemifError::Send {
            message: message.kind(),
            source,
        })?;
        Ok(())
    }

    /// Receives one message and the fd that came with it, waiting up to `timeout`.
    pub(crate) fn recv(
        &self,
        timeout: Duration,
        waiting_for: &'static str,
    ) -> Result<(Message, Option<OwnedFd>), MemifError> {
        let ready = wait_readable(self.fd.as_fd(), timeout)
            .map_err(|source| MemifError::Recv { source })?;
        if !ready {
            return Err(MemifError::Timeout { waiting_for });
        }
        self.recv_now()
    }

    /// Receives one message that poll reported readable.
    pub(crate) fn recv_now(&self) -> Result<(Message, Option<OwnedFd>), MemifError> {
        let mut frame = [0u8; MSG_SIZE + 1];
        let mut iov = [IoSliceMut::new(&mut frame)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4], libc::ucred);
        let received = recvmsg::<()>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        )
        .map_err(|source| MemifError::Recv { source })?;
        let length = received.bytes;
        let truncated = received.flags.contains(MsgFlags::MSG_TRUNC);
        let mut fds: Vec<OwnedFd> = Vec::new();
        for cmsg in received
            .cmsgs()
            .map_err(|source| MemifError::Recv { source })?
        {
            if let ControlMessageOwned::ScmRights(raw_fds) = cmsg {
                // SAFETY: the kernel installed these fds for us; each is owned exactly once.
                fds.extend(
                    raw_fds
                        .into_iter()
                        .map(|raw| unsafe { OwnedFd::from_raw_fd(raw) }),
                );
            }
        }
        if length == 0 {
            return Err(MemifError::PeerClosed);
        }
        if truncated || length != MSG_SIZE {
            return Err(MemifError::Protocol(format!(
                "control message of {length} bytes, expected {MSG_SIZE}"
            )));
        }
        if fds.len() > 1 {
            return Err(MemifError::Protocol(format!(
                "{} fds in one message, expected at most 1",
                fds.len()
            )));
        }
        let message = Message::decode(&frame[..MSG_SIZE])
            .map_err(|error| MemifError::Protocol(error.to_string()))?;
        Ok((message, fds.pop()))
    }
}
