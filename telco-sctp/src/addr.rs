//! Socket addresses in the kernel's byte layouts: `sockaddr_storage` for the options that carry
//! one address, and the packed arrays of `sockaddr_in` (16 bytes) and `sockaddr_in6` (28 bytes)
//! that `sctp_bindx`, `sctp_connectx` and `sctp_getpaddrs` use instead of an array of
//! `sockaddr_storage`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libc::{AF_INET, AF_INET6, sa_family_t, sockaddr_in, sockaddr_in6, sockaddr_storage};

/// Size of `struct sockaddr_in`.
pub(crate) const SOCKADDR_IN_LEN: usize = 16;
/// Size of `struct sockaddr_in6`.
pub(crate) const SOCKADDR_IN6_LEN: usize = 28;

/// Appends `addr` to `out` as a `sockaddr_in` or `sockaddr_in6`, in host memory layout.
pub(crate) fn push_sockaddr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            out.extend_from_slice(&family_bytes(AF_INET));
            out.extend_from_slice(&v4.port().to_be_bytes());
            out.extend_from_slice(&v4.ip().octets());
            out.extend_from_slice(&[0; 8]);
        }
        SocketAddr::V6(v6) => {
            out.extend_from_slice(&family_bytes(AF_INET6));
            out.extend_from_slice(&v6.port().to_be_bytes());
            out.extend_from_slice(&v6.flowinfo().to_be_bytes());
            out.extend_from_slice(&v6.ip().octets());
            out.extend_from_slice(&v6.scope_id().to_ne_bytes());
        }
    }
}

/// Packs `addrs` one after the other, as `sctp_bindx` and `sctp_connectx` expect.
pub(crate) fn pack_addrs(addrs: &[SocketAddr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(addrs.len() * SOCKADDR_IN6_LEN);
    for addr in addrs {
        push_sockaddr(&mut out, addr);
    }
    out
}

/// Reads one socket address from the start of `bytes`, returning it and its length.
///
/// Returns `None` for an unknown family or a buffer too short for the family's struct.
pub(crate) fn read_sockaddr(bytes: &[u8]) -> Option<(SocketAddr, usize)> {
    let family = sa_family_t::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?);
    match i32::from(family) {
        AF_INET => {
            let raw = bytes.get(..SOCKADDR_IN_LEN)?;
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            Some((SocketAddr::V4(SocketAddrV4::new(ip, port)), SOCKADDR_IN_LEN))
        }
        AF_INET6 => {
            let raw = bytes.get(..SOCKADDR_IN6_LEN)?;
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let flowinfo = u32::from_be_bytes(raw[4..8].try_into().ok()?);
            let octets: [u8; 16] = raw[8..24].try_into().ok()?;
            let scope_id = u32::from_ne_bytes(raw[24..28].try_into().ok()?);
            let v6 = SocketAddrV6::new(Ipv6Addr::from(octets), port, flowinfo, scope_id);
            Some((SocketAddr::V6(v6), SOCKADDR_IN6_LEN))
        }
        _ => None,
    }
}

/// Reads `count` packed socket addresses, as `sctp_getpaddrs` returns them.
///
/// Stops early at a truncated or unknown entry, so a short buffer gives the addresses before it.
pub(crate) fn unpack_addrs(mut bytes: &[u8], count: usize) -> Vec<SocketAddr> {
    let mut addrs = Vec::with_capacity(count.min(64));
    while addrs.len() < count {
        let Some((addr, len)) = read_sockaddr(bytes) else {
            break;
        };
        addrs.push(addr);
        bytes = &bytes[len..];
    }
    addrs
}

/// Converts `addr` into a `sockaddr_storage`.
pub(crate) fn to_storage(addr: &SocketAddr) -> sockaddr_storage {
    let mut bytes = Vec::with_capacity(SOCKADDR_IN6_LEN);
    push_sockaddr(&mut bytes, addr);
    let mut storage: sockaddr_storage = crate::sys::zeroed::<sockaddr_storage>();
    // SAFETY: `bytes` is at most 28 bytes long and `sockaddr_storage` is 128 bytes, so the copy
    // stays inside `storage`; any bytes are a valid `sockaddr_storage`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&raw mut storage).cast::<u8>(), bytes.len());
    }
    storage
}

/// Converts a `sockaddr_storage` back into an address; `None` for `AF_UNSPEC` and other
/// families.
pub(crate) fn from_storage(storage: &sockaddr_storage) -> Option<SocketAddr> {
    // SAFETY: `sockaddr_storage` is 128 plain bytes, so viewing it as a byte slice is valid for
    // the lifetime of the borrow.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            std::ptr::from_ref(storage).cast::<u8>(),
            size_of::<sockaddr_storage>(),
        )
    };
    read_sockaddr(bytes).map(|(addr, _)| addr)
}

fn family_bytes(family: i32) -> [u8; 2] {
    // AF_INET and AF_INET6 are 2 and 10, which fit `sa_family_t`.
    sa_family_t::try_from(family)
        .unwrap_or_default()
        .to_ne_bytes()
}

// The byte layouts written above must be the ones of the libc structs.
const _: () = assert!(size_of::<sockaddr_in>() == SOCKADDR_IN_LEN);
const _: () = assert!(size_of::<sockaddr_in6>() == SOCKADDR_IN6_LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_packs_like_sockaddr_in() {
        let addr: SocketAddr = "10.1.2.3:36412".parse().unwrap();
        let bytes = pack_addrs(&[addr]);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[0..2], &2u16.to_ne_bytes());
        assert_eq!(&bytes[2..4], &[0x8e, 0x3c]);
        assert_eq!(&bytes[4..8], &[10, 1, 2, 3]);
        assert_eq!(&bytes[8..], &[0; 8]);
    }

    #[test]
    fn ipv6_packs_like_sockaddr_in6() {
        let addr: SocketAddr = "[fd00::1%7]:38412".parse().unwrap();
        let bytes = pack_addrs(&[addr]);
        assert_eq!(bytes.len(), 28);
        assert_eq!(&bytes[0..2], &10u16.to_ne_bytes());
        assert_eq!(&bytes[2..4], &38412u16.to_be_bytes());
        assert_eq!(bytes[8], 0xfd);
        assert_eq!(bytes[23], 1);
        assert_eq!(&bytes[24..28], &7u32.to_ne_bytes());
    }

    #[test]
    fn mixed_list_round_trips() {
        let addrs: Vec<SocketAddr> = vec![
            "10.0.0.1:1".parse().unwrap(),
            "[fd00::2]:2".parse().unwrap(),
            "192.168.0.3:3".parse().unwrap(),
        ];
        let bytes = pack_addrs(&addrs);
        assert_eq!(bytes.len(), 16 + 28 + 16);
        assert_eq!(unpack_addrs(&bytes, 3), addrs);
    }

    #[test]
    fn unpack_stops_at_truncated_entry() {
        let addrs: Vec<SocketAddr> = vec![
            "10.0.0.1:1".parse().unwrap(),
            "[fd00::2]:2".parse().unwrap(),
        ];
        let bytes = pack_addrs(&addrs);
        assert_eq!(unpack_addrs(&bytes[..30], 2), addrs[..1]);
        assert_eq!(unpack_addrs(&bytes, 5), addrs);
    }

    #[test]
    fn unpack_stops_at_unknown_family() {
        let mut bytes = pack_addrs(&["10.0.0.1:1".parse().unwrap()]);
        bytes.extend_from_slice(&[0xff; 16]);
        assert_eq!(unpack_addrs(&bytes, 2).len(), 1);
        assert_eq!(unpack_addrs(&[], 1), Vec::<SocketAddr>::new());
    }

    #[test]
    fn storage_round_trips() {
        for text in ["127.0.0.1:9", "[::1]:38412", "[fe80::1%3]:5"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(from_storage(&to_storage(&addr)), Some(addr));
        }
        assert_eq!(
            from_storage(&crate::sys::zeroed::<sockaddr_storage>()),
            None
        );
    }
}
