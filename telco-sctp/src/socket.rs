//! Socket creation and the state every socket type shares, and [`SctpBuilder`], which applies
//! the options that must be set before `bind`, `connect` or `listen`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::SctpError;
use crate::info::{AssocId, SendInfo};
use crate::notification::Event;
use crate::options::{InitMsg, RtoInfo};
use crate::recv::{Reassembly, Received, RecvPart};
use crate::{raw, sys};

/// A socket with its reassembly state: the inside of every public socket type.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) socket: Socket,
    pub(crate) reassembly: Reassembly,
}

impl Inner {
    /// Creates an SCTP socket of `domain` and `ty`, with `SCTP_RCVINFO` delivery turned on.
    pub(crate) fn new(domain: Domain, ty: Type) -> Result<Inner, SctpError> {
        let socket = Socket::new(
            domain,
            ty.cloexec(),
            Some(Protocol::from(sys::IPPROTO_SCTP)),
        )
        .map_err(socket_error)?;
        let inner = Inner::from_socket(socket);
        set_int(inner.fd(), sys::SCTP_RECVRCVINFO, "SCTP_RECVRCVINFO", 1)?;
        Ok(inner)
    }

    /// Wraps a socket that already is SCTP, such as one that `accept` or `peeloff` returned.
    pub(crate) fn from_socket(socket: Socket) -> Inner {
        Inner {
            socket,
            reassembly: Reassembly::default(),
        }
    }

    pub(crate) fn from_owned(fd: OwnedFd) -> Inner {
        Inner::from_socket(Socket::from(fd))
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Binds every address of `addrs` (`sctp_bindx` with `SCTP_BINDX_ADD_ADDR`).
    pub(crate) fn bind(&self, addrs: &[SocketAddr]) -> Result<(), SctpError> {
        if addrs.is_empty() {
            return Err(SctpError::NoAddresses { call: "sctp_bindx" });
        }
        self.check_family(addrs)?;
        raw::bindx(self.fd(), addrs, true).map_err(|source| SctpError::Bind {
            addrs: addrs.to_vec(),
            source,
        })
    }

    /// `sctp_connectx`: returns the association id and whether the handshake is in progress
    /// (non-blocking sockets only).
    pub(crate) fn connectx(&self, addrs: &[SocketAddr]) -> Result<(AssocId, bool), SctpError> {
        if addrs.is_empty() {
            return Err(SctpError::NoAddresses {
                call: "sctp_connectx",
            });
        }
        self.check_family(addrs)?;
        raw::connectx(self.fd(), addrs).map_err(|source| SctpError::Connect {
            addrs: addrs.to_vec(),
            source,
        })
    }

    pub(crate) fn listen(&self, backlog: i32) -> Result<(), SctpError> {
        self.socket
            .listen(backlog)
            .map_err(|source| SctpError::Listen { source })
    }

    pub(crate) fn send(
        &self,
        data: &[u8],
        info: Option<&SendInfo>,
        to: Option<&SocketAddr>,
    ) -> Result<usize, SctpError> {
        raw::send(self.fd(), data, info, to).map_err(|source| SctpError::Send { source })
    }

    pub(crate) fn recv(&self) -> Result<Received, SctpError> {
        self.reassembly.recv(self.fd())
    }

    pub(crate) fn recv_part(&self, buf: &mut [u8]) -> Result<RecvPart, SctpError> {
        crate::recv::recv_part(self.fd(), buf).map_err(|source| SctpError::Recv { source })
    }

    /// Rejects IPv6 addresses on an IPv4 socket before the kernel gives a bare `EINVAL`.
    fn check_family(&self, addrs: &[SocketAddr]) -> Result<(), SctpError> {
        let is_v4 = self
            .socket
            .domain()
            .is_ok_and(|domain| domain == Domain::IPV4);
        match addrs.iter().find(|addr| is_v4 && addr.is_ipv6()) {
            Some(addr) => Err(SctpError::AddressFamily { addr: *addr }),
            None => Ok(()),
        }
    }
}

/// Maps the `socket()` errors of a kernel without SCTP to [`SctpError::NoKernelSupport`].
fn socket_error(source: io::Error) -> SctpError {
    match source.raw_os_error() {
        Some(libc::EPROTONOSUPPORT | libc::ESOCKTNOSUPPORT) => {
            SctpError::NoKernelSupport { source }
        }
        _ => SctpError::Socket { source },
    }
}

pub(crate) fn set_int(
    fd: BorrowedFd<'_>,
    option: libc::c_int,
    name: &'static str,
    value: libc::c_int,
) -> Result<(), SctpError> {
    raw::set_option(fd, option, &value).map_err(|source| SctpError::SetOption {
        option: name,
        source,
    })
}

/// Options applied to a new socket before it binds, connects or listens.
///
/// ```no_run
/// use telco_sctp::{Event, InitMsg, SctpBuilder};
///
/// # fn main() -> Result<(), telco_sctp::SctpError> {
/// let listener = SctpBuilder::new()
///     .init_msg(InitMsg::streams(16, 16))
///     .nodelay(true)
///     .subscribe(Event::AssocChange)
///     .listen(&["10.0.0.1:38412".parse().unwrap(), "10.1.0.1:38412".parse().unwrap()])?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SctpBuilder {
    init_msg: Option<InitMsg>,
    rto: Option<RtoInfo>,
    nodelay: bool,
    recv_nxtinfo: bool,
    events: Vec<Event>,
    backlog: i32,
    ipv6: Option<bool>,
}

impl Default for SctpBuilder {
    fn default() -> SctpBuilder {
        SctpBuilder {
            init_msg: None,
            rto: None,
            nodelay: false,
            recv_nxtinfo: false,
            events: Vec::new(),
            backlog: 128,
            ipv6: None,
        }
    }
}

impl SctpBuilder {
    /// Returns a builder with the kernel's defaults.
    pub fn new() -> SctpBuilder {
        SctpBuilder::default()
    }

    /// Sets `SCTP_INITMSG` (streams and INIT retransmissions).
    pub fn init_msg(mut self, init_msg: InitMsg) -> SctpBuilder {
        self.init_msg = Some(init_msg);
        self
    }

    /// Sets `SCTP_RTOINFO` for the associations the socket creates.
    pub fn rto_info(mut self, rto: RtoInfo) -> SctpBuilder {
        self.rto = Some(rto);
        self
    }

    /// Sets `SCTP_NODELAY`: send each message at once instead of bundling.
    pub fn nodelay(mut self, nodelay: bool) -> SctpBuilder {
        self.nodelay = nodelay;
        self
    }

    /// Turns on `SCTP_NXTINFO` delivery (`SCTP_RECVNXTINFO`).
    pub fn recv_nxtinfo(mut self, on: bool) -> SctpBuilder {
        self.recv_nxtinfo = on;
        self
    }

    /// Subscribes to `event` (`SCTP_EVENT`) for every association of the socket.
    pub fn subscribe(mut self, event: Event) -> SctpBuilder {
        if !self.events.contains(&event) {
            self.events.push(event);
        }
        self
    }

    /// Sets the `listen` backlog (default 128).
    pub fn backlog(mut self, backlog: i32) -> SctpBuilder {
        self.backlog = backlog;
        self
    }

    /// Creates an IPv6 socket (`true`) or an IPv4 one (`false`) whatever the addresses are.
    ///
    /// Without it the socket is IPv6 if any local address is, or if there are no local
    /// addresses and any peer address is. An IPv6 socket also takes IPv4 addresses.
    pub fn ipv6(mut self, ipv6: bool) -> SctpBuilder {
        self.ipv6 = Some(ipv6);
        self
    }

    /// Creates a one-to-one socket bound to `addrs` and listening.
    ///
    /// # Errors
    ///
    /// Fails if the kernel has no SCTP, the list is empty or has an IPv6 address for an IPv4
    /// socket, or a `bind`, `listen` or option call fails.
    pub fn listen(&self, addrs: &[SocketAddr]) -> Result<crate::SctpListener, SctpError> {
        let inner = self.create(Type::STREAM, addrs, &[])?;
        inner
            .socket
            .set_reuse_address(true)
            .map_err(|source| SctpError::SetOption {
                option: "SO_REUSEADDR",
                source,
            })?;
        inner.bind(addrs)?;
        inner.listen(self.backlog)?;
        Ok(crate::SctpListener::from_inner(inner))
    }

    /// Creates a one-to-one socket, binds it to `local` if not empty, and connects it to the
    /// peer's `addrs` with `sctp_connectx`, blocking until the association is up.
    ///
    /// # Errors
    ///
    /// As [`listen`](Self::listen), and fails if the association cannot be set up.
    pub fn connect(
        &self,
        addrs: &[SocketAddr],
        local: &[SocketAddr],
    ) -> Result<crate::SctpStream, SctpError> {
        let inner = self.connect_socket(addrs, local)?;
        let (assoc_id, _) = inner.connectx(addrs)?;
        Ok(crate::SctpStream::from_inner(inner, assoc_id))
    }

    /// Creates the socket of [`connect`](Self::connect), bound but not connected.
    pub(crate) fn connect_socket(
        &self,
        addrs: &[SocketAddr],
        local: &[SocketAddr],
    ) -> Result<Inner, SctpError> {
        let inner = self.create(Type::STREAM, local, addrs)?;
        if !local.is_empty() {
            inner.bind(local)?;
        }
        Ok(inner)
    }

    /// Creates a one-to-many socket bound to `addrs` and listening, so it accepts associations
    /// as well as starting them.
    ///
    /// # Errors
    ///
    /// As [`listen`](Self::listen).
    pub fn one_to_many(&self, addrs: &[SocketAddr]) -> Result<crate::OneToManySocket, SctpError> {
        let inner = self.create(Type::SEQPACKET, addrs, &[])?;
        inner.bind(addrs)?;
        inner.listen(self.backlog)?;
        Ok(crate::OneToManySocket::from_inner(inner))
    }

    /// Creates a socket of `ty` for `local` addresses (or `peers` when there are none) and
    /// applies the options.
    fn create(
        &self,
        ty: Type,
        local: &[SocketAddr],
        peers: &[SocketAddr],
    ) -> Result<Inner, SctpError> {
        let ipv6 = self.ipv6.unwrap_or_else(|| {
            if local.is_empty() {
                peers.iter().any(SocketAddr::is_ipv6)
            } else {
                local.iter().any(SocketAddr::is_ipv6)
            }
        });
        let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
        let inner = Inner::new(domain, ty)?;
        self.apply(&inner)?;
        Ok(inner)
    }

    fn apply(&self, inner: &Inner) -> Result<(), SctpError> {
        let fd = inner.fd();
        if let Some(init_msg) = self.init_msg {
            raw::set_option(fd, sys::SCTP_INITMSG, &init_msg.to_sys()).map_err(|source| {
                SctpError::SetOption {
                    option: "SCTP_INITMSG",
                    source,
                }
            })?;
        }
        if let Some(rto) = self.rto {
            raw::set_option(fd, sys::SCTP_RTOINFO, &rto.to_sys(AssocId::FUTURE)).map_err(
                |source| SctpError::SetOption {
                    option: "SCTP_RTOINFO",
                    source,
                },
            )?;
        }
        if self.nodelay {
            set_int(fd, sys::SCTP_NODELAY, "SCTP_NODELAY", 1)?;
        }
        if self.recv_nxtinfo {
            set_int(fd, sys::SCTP_RECVNXTINFO, "SCTP_RECVNXTINFO", 1)?;
        }
        for event in &self.events {
            crate::ext::set_event(fd, *event, AssocId::FUTURE, true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_protocol_maps_to_no_kernel_support() {
        for errno in [libc::EPROTONOSUPPORT, libc::ESOCKTNOSUPPORT] {
            let error = socket_error(io::Error::from_raw_os_error(errno));
            assert!(
                matches!(error, SctpError::NoKernelSupport { .. }),
                "{errno}"
            );
            assert_eq!(
                error.to_string(),
                "kernel has no SCTP support (CONFIG_IP_SCTP); load the sctp module"
            );
        }
        let other = socket_error(io::Error::from_raw_os_error(libc::EMFILE));
        assert!(matches!(other, SctpError::Socket { .. }));
    }
}
