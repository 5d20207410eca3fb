//! The system calls behind every socket type: socket options at level `SOL_SCTP`, the
//! lksctp-tools helpers that the kernel implements as socket options (`sctp_bindx`,
//! `sctp_connectx`, `sctp_getpaddrs`, `sctp_peeloff`), and `sendmsg`/`recvmsg` with SCTP
//! ancillary data. All `unsafe` of the crate lives here.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use libc::{c_int, c_void, socklen_t};

use crate::addr;
use crate::cmsg::{self, ControlBuffer, ParsedControl};
use crate::info::{AssocId, SendInfo};
use crate::sys::{self, KernelStruct};

/// Sets the `SOL_SCTP` option `option` to `value`.
pub(crate) fn set_option<T: KernelStruct>(
    fd: BorrowedFd<'_>,
    option: c_int,
    value: &T,
) -> io::Result<()> {
    let len = socklen_t::try_from(size_of::<T>()).map_err(io::Error::other)?;
    // SAFETY: `value` points to `len` readable bytes of a plain-data struct for the duration of
    // the call, and the kernel only reads them.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            sys::SOL_SCTP,
            option,
            std::ptr::from_ref(value).cast::<c_void>(),
            len,
        )
    };
    cvt(ret).map(drop)
}

/// Sets the `SOL_SCTP` option `option` to the bytes of `value`, returning the call's result.
pub(crate) fn set_option_bytes(
    fd: BorrowedFd<'_>,
    option: c_int,
    value: &[u8],
) -> io::Result<c_int> {
    let len = socklen_t::try_from(value.len()).map_err(io::Error::other)?;
    // SAFETY: `value` is a live slice of `len` bytes, which the kernel only reads.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            sys::SOL_SCTP,
            option,
            value.as_ptr().cast::<c_void>(),
            len,
        )
    };
    cvt(ret)
}

/// Reads the `SOL_SCTP` option `option` into `value`, which carries the call's input (such as
/// an association id) on entry. Returns the length the kernel wrote.
pub(crate) fn get_option<T: KernelStruct>(
    fd: BorrowedFd<'_>,
    option: c_int,
    value: &mut T,
) -> io::Result<usize> {
    let mut len = socklen_t::try_from(size_of::<T>()).map_err(io::Error::other)?;
    // SAFETY: `value` points to `len` writable bytes of a plain-data struct for which every bit
    // pattern is valid, and `len` is a live `socklen_t` the kernel updates.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            sys::SOL_SCTP,
            option,
            std::ptr::from_mut(value).cast::<c_void>(),
            &raw mut len,
        )
    };
    cvt(ret)?;
    Ok(len as usize)
}

/// Reads the `SOL_SCTP` option `option` into `buf`, whose start carries the call's input.
fn get_option_bytes(fd: BorrowedFd<'_>, option: c_int, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = socklen_t::try_from(buf.len()).map_err(io::Error::other)?;
    // SAFETY: `buf` is a live slice of `len` writable bytes and `len` a live `socklen_t`.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            sys::SOL_SCTP,
            option,
            buf.as_mut_ptr().cast::<c_void>(),
            &raw mut len,
        )
    };
    cvt(ret)?;
    Ok(len as usize)
}

/// Reads an `int` option (`SCTP_NODELAY` and the like).
pub(crate) fn get_int(fd: BorrowedFd<'_>, option: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    get_option(fd, option, &mut value)?;
    Ok(value)
}

/// `sctp_bindx(fd, addrs, n, SCTP_BINDX_ADD_ADDR or SCTP_BINDX_REM_ADDR)`.
pub(crate) fn bindx(fd: BorrowedFd<'_>, addrs: &[SocketAddr], add: bool) -> io::Result<()> {
    let option = if add {
        sys::SCTP_SOCKOPT_BINDX_ADD
    } else {
        sys::SCTP_SOCKOPT_BINDX_REM
    };
    set_option_bytes(fd, option, &addr::pack_addrs(addrs)).map(drop)
}

/// `sctp_connectx(fd, addrs, n, &assoc_id)`: starts an association to the peer's addresses and
/// returns its id.
///
/// Uses `SCTP_SOCKOPT_CONNECTX3`, which returns the id also from a non-blocking socket (together
/// with `EINPROGRESS`, reported as `Ok`), and falls back to `SCTP_SOCKOPT_CONNECTX` on kernels
/// without it. Returns the association id and whether the connection is still in progress.
pub(crate) fn connectx(fd: BorrowedFd<'_>, addrs: &[SocketAddr]) -> io::Result<(AssocId, bool)> {
    let mut packed = addr::pack_addrs(addrs);
    let mut request = sys::sctp_getaddrs_old {
        assoc_id: 0,
        addr_num: c_int::try_from(packed.len()).map_err(io::Error::other)?,
        addrs: packed.as_mut_ptr().cast::<libc::sockaddr>(),
    };
    match get_option(fd, sys::SCTP_SOCKOPT_CONNECTX3, &mut request) {
        Ok(_) => Ok((AssocId(request.assoc_id), false)),
        Err(error) if error.raw_os_error() == Some(libc::EINPROGRESS) => {
            Ok((AssocId(request.assoc_id), true))
        }
        Err(error) if error.raw_os_error() == Some(libc::ENOPROTOOPT) => {
            let id = set_option_bytes(fd, sys::SCTP_SOCKOPT_CONNECTX, &packed)?;
            Ok((AssocId(id), false))
        }
        Err(error) => Err(error),
    }
}

/// `sctp_getpaddrs` (`peer` true) or `sctp_getladdrs`: the addresses of association `assoc`.
pub(crate) fn get_addrs(
    fd: BorrowedFd<'_>,
    assoc: AssocId,
    peer: bool,
) -> io::Result<Vec<SocketAddr>> {
    let option = if peer {
        sys::SCTP_GET_PEER_ADDRS
    } else {
        sys::SCTP_GET_LOCAL_ADDRS
    };
    let head_len = size_of::<sys::sctp_getaddrs>();
    let mut room = 16;
    loop {
        let mut buf = vec![0u8; head_len + room * addr::SOCKADDR_IN6_LEN];
        buf[0..4].copy_from_slice(&assoc.0.to_ne_bytes());
        match get_option_bytes(fd, option, &mut buf) {
            // The returned length is not usable: for local addresses the kernel reports only the
            // bytes of the addresses, for peer addresses the header too. The count is reliable,
            // and the zeroed rest of the buffer stops the parser.
            Ok(_) => {
                let count = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
                return Ok(addr::unpack_addrs(&buf[head_len..], count));
            }
            // The kernel returns ENOMEM when the addresses do not fit the buffer.
            Err(error) if error.raw_os_error() == Some(libc::ENOMEM) && room < 65536 => {
                room *= 4;
            }
            Err(error) => return Err(error),
        }
    }
}

/// `SCTP_GET_ASSOC_ID_LIST`: the ids of every association of a one-to-many socket.
pub(crate) fn assoc_ids(fd: BorrowedFd<'_>) -> io::Result<Vec<AssocId>> {
    let count = usize::try_from(get_int(fd, sys::SCTP_GET_ASSOC_NUMBER)?).unwrap_or(0);
    // Room for associations that come up between the two calls.
    let mut buf = vec![0u8; 4 + 4 * (count + 64)];
    let len = get_option_bytes(fd, sys::SCTP_GET_ASSOC_ID_LIST, &mut buf)?;
    let listed = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let ids = buf[4..len.clamp(4, buf.len())]
        .chunks_exact(4)
        .take(listed)
        .map(|id| AssocId(i32::from_ne_bytes([id[0], id[1], id[2], id[3]])))
        .collect();
    Ok(ids)
}

/// `sctp_peeloff(fd, assoc)` with `SOCK_CLOEXEC`: the association as a new one-to-one socket.
pub(crate) fn peeloff(fd: BorrowedFd<'_>, assoc: AssocId) -> io::Result<OwnedFd> {
    let mut request = sys::sctp_peeloff_flags_arg_t {
        p_arg: sys::sctp_peeloff_arg_t {
            associd: assoc.0,
            sd: -1,
        },
        flags: libc::SOCK_CLOEXEC as libc::c_uint,
    };
    let sd = match get_option(fd, sys::SCTP_SOCKOPT_PEELOFF_FLAGS, &mut request) {
        Ok(_) => request.p_arg.sd,
        Err(error) if error.raw_os_error() == Some(libc::ENOPROTOOPT) => {
            let mut old = request.p_arg;
            get_option(fd, sys::SCTP_SOCKOPT_PEELOFF, &mut old)?;
            set_cloexec(old.sd);
            old.sd
        }
        Err(error) => return Err(error),
    };
    // SAFETY: the kernel returned `sd` as a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(sd) })
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: `fd` is an open descriptor the caller just received; F_SETFD only changes its
    // flags.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// `sendmsg` of `data` with an optional `SCTP_SNDINFO` and destination address.
pub(crate) fn send(
    fd: BorrowedFd<'_>,
    data: &[u8],
    info: Option<&SendInfo>,
    to: Option<&SocketAddr>,
) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast::<c_void>(),
        iov_len: data.len(),
    };
    let mut control = info.map(cmsg::sndinfo_control);
    let mut name = to.map(addr::to_storage);
    let name_len: socklen_t = match to {
        Some(SocketAddr::V4(_)) => 16,
        Some(SocketAddr::V6(_)) => 28,
        None => 0,
    };

    // SAFETY: an all-zero msghdr is valid: null pointers with zero lengths.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    if let Some(name) = name.as_mut() {
        msg.msg_name = std::ptr::from_mut(name).cast::<c_void>();
        msg.msg_namelen = name_len;
    }
    if let Some(control) = control.as_mut() {
        msg.msg_control = control.0.as_mut_ptr().cast::<c_void>();
        msg.msg_controllen = cmsg::SNDINFO_SPACE;
    }
    // SAFETY: every pointer in `msg` refers to a local that outlives the call, with the length
    // given beside it. The kernel only reads the payload, name and control buffer.
    let ret = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, libc::MSG_NOSIGNAL) };
    cvt_size(ret)
}

/// Size of `sockaddr_storage`, 128 bytes.
const STORAGE_LEN: socklen_t = 128;
const _: () = assert!(size_of::<libc::sockaddr_storage>() == STORAGE_LEN as usize);

/// One `recvmsg` call: a message, or a part of one when `complete` is false.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawPart {
    pub len: usize,
    pub complete: bool,
    pub notification: bool,
    pub control: ParsedControl,
    pub from: Option<SocketAddr>,
}

/// Receives into `buf` with one `recvmsg` call.
///
/// # Safety
///
/// `buf` must point to `len` bytes that are valid for writes; they need not be initialized.
pub(crate) unsafe fn recv_into(
    fd: BorrowedFd<'_>,
    buf: *mut u8,
    len: usize,
    flags: c_int,
) -> io::Result<RawPart> {
    let mut iov = libc::iovec {
        iov_base: buf.cast::<c_void>(),
        iov_len: len,
    };
    let mut control = ControlBuffer::new();
    let mut name = sys::zeroed::<libc::sockaddr_storage>();

    // SAFETY: an all-zero msghdr is valid: null pointers with zero lengths.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_name = (&raw mut name).cast::<c_void>();
    msg.msg_namelen = STORAGE_LEN;
    msg.msg_control = control.0.as_mut_ptr().cast::<c_void>();
    msg.msg_controllen = control.0.len();

    // SAFETY: the iovec points to `len` writable bytes by the caller's contract. Name and
    // control are locals that outlive the call, with their sizes in `msg`.
    let ret = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, flags) };
    let received = cvt_size(ret)?;
    let control_len = msg.msg_controllen.min(control.0.len());
    Ok(RawPart {
        len: received,
        complete: msg.msg_flags & libc::MSG_EOR != 0,
        notification: msg.msg_flags & sys::MSG_NOTIFICATION != 0,
        control: cmsg::parse_control(&control.0[..control_len]),
        from: if msg.msg_namelen > 0 {
            addr::from_storage(&name)
        } else {
            None
        },
    })
}

fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: isize) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}
