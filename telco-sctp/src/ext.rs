//! [`SctpOptions`]: the socket options and multi-homing calls that every SCTP socket type has.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use crate::error::SctpError;
use crate::info::{AssocId, SendInfo};
use crate::notification::Event;
use crate::options::{AssocParams, InitMsg, PeerAddrInfo, PeerAddrParams, RtoInfo, Status};
use crate::{addr, raw, sys};

mod sealed {
    pub trait Sealed {}
}

pub(crate) use sealed::Sealed;

/// Sets or clears the subscription to `event` for `assoc` (`SCTP_EVENT`).
pub(crate) fn set_event(
    fd: BorrowedFd<'_>,
    event: Event,
    assoc: AssocId,
    on: bool,
) -> Result<(), SctpError> {
    let request = sys::sctp_event {
        se_assoc_id: assoc.0,
        se_type: event.kind(),
        se_on: u8::from(on),
    };
    raw::set_option(fd, sys::SCTP_EVENT, &request).map_err(|source| SctpError::SetOption {
        option: "SCTP_EVENT",
        source,
    })
}

fn set<T: sys::KernelStruct>(
    fd: BorrowedFd<'_>,
    option: libc::c_int,
    name: &'static str,
    value: &T,
) -> Result<(), SctpError> {
    raw::set_option(fd, option, value).map_err(|source| SctpError::SetOption {
        option: name,
        source,
    })
}

fn get<T: sys::KernelStruct>(
    fd: BorrowedFd<'_>,
    option: libc::c_int,
    name: &'static str,
    mut value: T,
) -> Result<T, SctpError> {
    raw::get_option(fd, option, &mut value).map_err(|source| SctpError::GetOption {
        option: name,
        source,
    })?;
    Ok(value)
}

/// Socket options and multi-homing calls of every SCTP socket type, blocking and async.
///
/// Methods that take an [`AssocId`] select the association on one-to-many sockets; one-to-one
/// sockets ignore it, so pass [`AssocId::FUTURE`] there. The trait is sealed: the crate's socket
/// types are its only implementations.
pub trait SctpOptions: AsFd + Sealed {
    /// Sets `SCTP_INITMSG`; it applies to associations set up afterwards.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`] if the kernel rejects the value.
    fn set_init_msg(&self, init_msg: InitMsg) -> Result<(), SctpError> {
        set(
            self.as_fd(),
            sys::SCTP_INITMSG,
            "SCTP_INITMSG",
            &init_msg.to_sys(),
        )
    }

    /// Reads `SCTP_INITMSG`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn init_msg(&self) -> Result<InitMsg, SctpError> {
        let raw = get(
            self.as_fd(),
            sys::SCTP_INITMSG,
            "SCTP_INITMSG",
            sys::sctp_initmsg::default(),
        )?;
        Ok(InitMsg::from_sys(&raw))
    }

    /// Sets `SCTP_RTOINFO` of `assoc`; zero fields stay unchanged.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`], for example `EINVAL` if min > max.
    fn set_rto_info(&self, assoc: AssocId, rto: RtoInfo) -> Result<(), SctpError> {
        set(
            self.as_fd(),
            sys::SCTP_RTOINFO,
            "SCTP_RTOINFO",
            &rto.to_sys(assoc),
        )
    }

    /// Reads `SCTP_RTOINFO` of `assoc`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn rto_info(&self, assoc: AssocId) -> Result<RtoInfo, SctpError> {
        let raw = get(
            self.as_fd(),
            sys::SCTP_RTOINFO,
            "SCTP_RTOINFO",
            RtoInfo::default().to_sys(assoc),
        )?;
        Ok(RtoInfo::from_sys(&raw))
    }

    /// Sets `SCTP_ASSOCINFO` (maximum retransmissions, cookie life) of `assoc`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    fn set_assoc_params(&self, assoc: AssocId, params: AssocParams) -> Result<(), SctpError> {
        set(
            self.as_fd(),
            sys::SCTP_ASSOCINFO,
            "SCTP_ASSOCINFO",
            &params.to_sys(assoc),
        )
    }

    /// Reads `SCTP_ASSOCINFO` of `assoc`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn assoc_params(&self, assoc: AssocId) -> Result<AssocParams, SctpError> {
        let raw = get(
            self.as_fd(),
            sys::SCTP_ASSOCINFO,
            "SCTP_ASSOCINFO",
            AssocParams::default().to_sys(assoc),
        )?;
        Ok(AssocParams::from_sys(&raw))
    }

    /// Sets `SCTP_PEER_ADDR_PARAMS` of one peer address or a whole association.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`], for example `EINVAL` for an address that is not the
    /// association's.
    fn set_peer_addr_params(&self, params: PeerAddrParams) -> Result<(), SctpError> {
        set(
            self.as_fd(),
            sys::SCTP_PEER_ADDR_PARAMS,
            "SCTP_PEER_ADDR_PARAMS",
            &params.to_sys(),
        )
    }

    /// Reads `SCTP_PEER_ADDR_PARAMS` of `address` (or the association's, for `None`).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn peer_addr_params(
        &self,
        assoc: AssocId,
        address: Option<SocketAddr>,
    ) -> Result<PeerAddrParams, SctpError> {
        let raw = get(
            self.as_fd(),
            sys::SCTP_PEER_ADDR_PARAMS,
            "SCTP_PEER_ADDR_PARAMS",
            PeerAddrParams::new(assoc, address).to_sys(),
        )?;
        Ok(PeerAddrParams::from_sys(&raw))
    }

    /// Sets `SCTP_NODELAY`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    fn set_nodelay(&self, nodelay: bool) -> Result<(), SctpError> {
        crate::socket::set_int(
            self.as_fd(),
            sys::SCTP_NODELAY,
            "SCTP_NODELAY",
            nodelay.into(),
        )
    }

    /// Reads `SCTP_NODELAY`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn nodelay(&self) -> Result<bool, SctpError> {
        let value = get(self.as_fd(), sys::SCTP_NODELAY, "SCTP_NODELAY", 0)?;
        Ok(value != 0)
    }

    /// Sets `SCTP_DEFAULT_SNDINFO`: what a message sent without [`SendInfo`] goes out with, for
    /// the association in `info.assoc_id`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    fn set_default_send_info(&self, info: SendInfo) -> Result<(), SctpError> {
        set(
            self.as_fd(),
            sys::SCTP_DEFAULT_SNDINFO,
            "SCTP_DEFAULT_SNDINFO",
            &info.to_sys(),
        )
    }

    /// Reads `SCTP_DEFAULT_SNDINFO` of `assoc`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn default_send_info(&self, assoc: AssocId) -> Result<SendInfo, SctpError> {
        let request = SendInfo::default().with_assoc_id(assoc).to_sys();
        let raw = get(
            self.as_fd(),
            sys::SCTP_DEFAULT_SNDINFO,
            "SCTP_DEFAULT_SNDINFO",
            request,
        )?;
        Ok(SendInfo::from_sys(&raw))
    }

    /// Sets `SCTP_MAXSEG`: the largest DATA chunk payload in bytes (0 = path MTU based).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    fn set_max_seg(&self, assoc: AssocId, bytes: u32) -> Result<(), SctpError> {
        let value = sys::sctp_assoc_value {
            assoc_id: assoc.0,
            assoc_value: bytes,
        };
        set(self.as_fd(), sys::SCTP_MAXSEG, "SCTP_MAXSEG", &value)
    }

    /// Reads `SCTP_MAXSEG` of `assoc`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn max_seg(&self, assoc: AssocId) -> Result<u32, SctpError> {
        let request = sys::sctp_assoc_value {
            assoc_id: assoc.0,
            assoc_value: 0,
        };
        Ok(get(self.as_fd(), sys::SCTP_MAXSEG, "SCTP_MAXSEG", request)?.assoc_value)
    }

    /// Sets `SCTP_PARTIAL_DELIVERY_POINT`: the bytes of a message the kernel keeps before it
    /// starts handing it to the application in parts.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    fn set_partial_delivery_point(&self, bytes: u32) -> Result<(), SctpError> {
        set(
            self.as_fd(),
            sys::SCTP_PARTIAL_DELIVERY_POINT,
            "SCTP_PARTIAL_DELIVERY_POINT",
            &bytes.cast_signed(),
        )
    }

    /// Reads `SCTP_STATUS` of `assoc`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`], for example `EINVAL` if there is no such
    /// association.
    fn status(&self, assoc: AssocId) -> Result<Status, SctpError> {
        let mut request = sys::zeroed::<sys::sctp_status>();
        request.sstat_assoc_id = assoc.0;
        let raw = get(self.as_fd(), sys::SCTP_STATUS, "SCTP_STATUS", request)?;
        Ok(Status::from_sys(&raw))
    }

    /// Reads `SCTP_GET_PEER_ADDR_INFO`: the state of the path to `address`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`], for example `EINVAL` for an address that is not the
    /// association's.
    fn peer_addr_info(
        &self,
        assoc: AssocId,
        address: SocketAddr,
    ) -> Result<PeerAddrInfo, SctpError> {
        let mut request = sys::zeroed::<sys::sctp_paddrinfo>();
        request.spinfo_assoc_id = assoc.0;
        request.spinfo_address = addr::to_storage(&address);
        let raw = get(
            self.as_fd(),
            sys::SCTP_GET_PEER_ADDR_INFO,
            "SCTP_GET_PEER_ADDR_INFO",
            request,
        )?;
        Ok(PeerAddrInfo::from_sys(&raw))
    }

    /// Sets `SCTP_PRIMARY_ADDR`: sends on `assoc` go to peer address `address` while it is
    /// reachable.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    fn set_primary_addr(&self, assoc: AssocId, address: SocketAddr) -> Result<(), SctpError> {
        let mut request = sys::zeroed::<sys::sctp_prim>();
        request.ssp_assoc_id = assoc.0;
        request.ssp_addr = addr::to_storage(&address);
        set(
            self.as_fd(),
            sys::SCTP_PRIMARY_ADDR,
            "SCTP_PRIMARY_ADDR",
            &request,
        )
    }

    /// Reads the peer's primary address of `assoc` (`SCTP_PRIMARY_ADDR`).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn primary_addr(&self, assoc: AssocId) -> Result<Option<SocketAddr>, SctpError> {
        let mut request = sys::zeroed::<sys::sctp_prim>();
        request.ssp_assoc_id = assoc.0;
        let raw = get(
            self.as_fd(),
            sys::SCTP_PRIMARY_ADDR,
            "SCTP_PRIMARY_ADDR",
            request,
        )?;
        let storage = raw.ssp_addr;
        Ok(addr::from_storage(&storage))
    }

    /// Subscribes to `event` on `assoc` (`SCTP_EVENT`); [`AssocId::FUTURE`] for the
    /// associations to come.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`], for example `EINVAL` on a kernel older than the
    /// event.
    fn subscribe(&self, event: Event, assoc: AssocId) -> Result<(), SctpError> {
        set_event(self.as_fd(), event, assoc, true)
    }

    /// Ends the subscription to `event` on `assoc`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    fn unsubscribe(&self, event: Event, assoc: AssocId) -> Result<(), SctpError> {
        set_event(self.as_fd(), event, assoc, false)
    }

    /// Returns whether `event` is subscribed on `assoc`.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn is_subscribed(&self, event: Event, assoc: AssocId) -> Result<bool, SctpError> {
        let request = sys::sctp_event {
            se_assoc_id: assoc.0,
            se_type: event.kind(),
            se_on: 0,
        };
        Ok(get(self.as_fd(), sys::SCTP_EVENT, "SCTP_EVENT", request)?.se_on != 0)
    }

    /// Turns `SCTP_NXTINFO` delivery on or off (`SCTP_RECVNXTINFO`).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::SetOption`].
    fn set_recv_nxtinfo(&self, on: bool) -> Result<(), SctpError> {
        crate::socket::set_int(
            self.as_fd(),
            sys::SCTP_RECVNXTINFO,
            "SCTP_RECVNXTINFO",
            on.into(),
        )
    }

    /// Adds local addresses to the bound set (`sctp_bindx` with `SCTP_BINDX_ADD_ADDR`). On a
    /// socket with associations this sends ASCONF when the peer supports it and
    /// `net.sctp.addip_enable` is 1.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Bind`].
    fn bindx_add(&self, addrs: &[SocketAddr]) -> Result<(), SctpError> {
        if addrs.is_empty() {
            return Err(SctpError::NoAddresses { call: "sctp_bindx" });
        }
        raw::bindx(self.as_fd(), addrs, true).map_err(|source| SctpError::Bind {
            addrs: addrs.to_vec(),
            source,
        })
    }

    /// Removes local addresses from the bound set (`sctp_bindx` with `SCTP_BINDX_REM_ADDR`).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::Unbind`], for example `EBUSY` for the last address.
    fn bindx_remove(&self, addrs: &[SocketAddr]) -> Result<(), SctpError> {
        if addrs.is_empty() {
            return Err(SctpError::NoAddresses { call: "sctp_bindx" });
        }
        raw::bindx(self.as_fd(), addrs, false).map_err(|source| SctpError::Unbind {
            addrs: addrs.to_vec(),
            source,
        })
    }

    /// Returns the local addresses of `assoc` (`sctp_getladdrs`); with [`AssocId::FUTURE`] on an
    /// unconnected socket, the bound addresses.
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`].
    fn local_addrs(&self, assoc: AssocId) -> Result<Vec<SocketAddr>, SctpError> {
        raw::get_addrs(self.as_fd(), assoc, false).map_err(|source| SctpError::GetOption {
            option: "SCTP_GET_LOCAL_ADDRS",
            source,
        })
    }

    /// Returns the peer addresses of `assoc` (`sctp_getpaddrs`).
    ///
    /// # Errors
    ///
    /// Fails with [`SctpError::GetOption`], for example `EINVAL` without an association.
    fn peer_addrs(&self, assoc: AssocId) -> Result<Vec<SocketAddr>, SctpError> {
        raw::get_addrs(self.as_fd(), assoc, true).map_err(|source| SctpError::GetOption {
            option: "SCTP_GET_PEER_ADDRS",
            source,
        })
    }
}
