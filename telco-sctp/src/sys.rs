//! The kernel's SCTP ABI: constants and `#[repr(C)]` mirrors of the structs in Linux
//! `include/uapi/linux/sctp.h`.
//!
//! Written by hand because neither `libc` nor `socket2` carries the whole SCTP ABI. The structs
//! the header marks `__attribute__((packed, aligned(4)))` are `#[repr(C, packed)]` or
//! `#[repr(C, packed(4))]` here, so the fields after their `sockaddr_storage` sit where the kernel
//! expects them. The tests at the end
//! check every size and field offset against the x86_64 layout of the Linux 6.1 header.

#![allow(non_camel_case_types, missing_docs, dead_code)]

use libc::{c_int, c_uint, sockaddr_storage};

/// `sctp_assoc_t`.
pub type sctp_assoc_t = i32;

pub const IPPROTO_SCTP: c_int = 132;
pub const SOL_SCTP: c_int = 132;

pub const MSG_NOTIFICATION: c_int = 0x8000;

// Association selectors.
pub const SCTP_FUTURE_ASSOC: sctp_assoc_t = 0;
pub const SCTP_CURRENT_ASSOC: sctp_assoc_t = 1;
pub const SCTP_ALL_ASSOC: sctp_assoc_t = 2;

// Socket options at level SOL_SCTP.
pub const SCTP_RTOINFO: c_int = 0;
pub const SCTP_ASSOCINFO: c_int = 1;
pub const SCTP_INITMSG: c_int = 2;
pub const SCTP_NODELAY: c_int = 3;
pub const SCTP_AUTOCLOSE: c_int = 4;
pub const SCTP_PRIMARY_ADDR: c_int = 6;
pub const SCTP_DISABLE_FRAGMENTS: c_int = 8;
pub const SCTP_PEER_ADDR_PARAMS: c_int = 9;
pub const SCTP_EVENTS: c_int = 11;
pub const SCTP_MAXSEG: c_int = 13;
pub const SCTP_STATUS: c_int = 14;
pub const SCTP_GET_PEER_ADDR_INFO: c_int = 15;
pub const SCTP_FRAGMENT_INTERLEAVE: c_int = 18;
pub const SCTP_PARTIAL_DELIVERY_POINT: c_int = 19;
pub const SCTP_GET_ASSOC_NUMBER: c_int = 28;
pub const SCTP_GET_ASSOC_ID_LIST: c_int = 29;
pub const SCTP_RECVRCVINFO: c_int = 32;
pub const SCTP_RECVNXTINFO: c_int = 33;
pub const SCTP_DEFAULT_SNDINFO: c_int = 34;
pub const SCTP_REUSE_PORT: c_int = 36;
pub const SCTP_SOCKOPT_BINDX_ADD: c_int = 100;
pub const SCTP_SOCKOPT_BINDX_REM: c_int = 101;
pub const SCTP_SOCKOPT_PEELOFF: c_int = 102;
pub const SCTP_SOCKOPT_CONNECTX_OLD: c_int = 107;
pub const SCTP_GET_PEER_ADDRS: c_int = 108;
pub const SCTP_GET_LOCAL_ADDRS: c_int = 109;
pub const SCTP_SOCKOPT_CONNECTX: c_int = 110;
pub const SCTP_SOCKOPT_CONNECTX3: c_int = 111;
pub const SCTP_SOCKOPT_PEELOFF_FLAGS: c_int = 122;
pub const SCTP_EVENT: c_int = 127;

// Ancillary data types (`enum sctp_cmsg_type`), at level IPPROTO_SCTP.
pub const SCTP_INIT: c_int = 0;
pub const SCTP_SNDRCV: c_int = 1;
pub const SCTP_SNDINFO: c_int = 2;
pub const SCTP_RCVINFO: c_int = 3;
pub const SCTP_NXTINFO: c_int = 4;
pub const SCTP_PRINFO: c_int = 5;
pub const SCTP_AUTHINFO: c_int = 6;
pub const SCTP_DSTADDRV4: c_int = 7;
pub const SCTP_DSTADDRV6: c_int = 8;

// Send and receive flags (`snd_flags`, `rcv_flags`).
pub const SCTP_UNORDERED: u16 = 0x1;
pub const SCTP_ADDR_OVER: u16 = 0x2;
pub const SCTP_ABORT: u16 = 0x4;
pub const SCTP_SACK_IMMEDIATELY: u16 = 0x8;
pub const SCTP_SENDALL: u16 = 0x40;
pub const SCTP_EOF: u16 = 0x200;

// Notification types (`enum sctp_sn_type`).
pub const SCTP_SN_TYPE_BASE: u16 = 1 << 15;
pub const SCTP_DATA_IO_EVENT: u16 = SCTP_SN_TYPE_BASE;
pub const SCTP_ASSOC_CHANGE: u16 = SCTP_SN_TYPE_BASE + 1;
pub const SCTP_PEER_ADDR_CHANGE: u16 = SCTP_SN_TYPE_BASE + 2;
pub const SCTP_SEND_FAILED: u16 = SCTP_SN_TYPE_BASE + 3;
pub const SCTP_REMOTE_ERROR: u16 = SCTP_SN_TYPE_BASE + 4;
pub const SCTP_SHUTDOWN_EVENT: u16 = SCTP_SN_TYPE_BASE + 5;
pub const SCTP_PARTIAL_DELIVERY_EVENT: u16 = SCTP_SN_TYPE_BASE + 6;
pub const SCTP_ADAPTATION_INDICATION: u16 = SCTP_SN_TYPE_BASE + 7;
pub const SCTP_AUTHENTICATION_EVENT: u16 = SCTP_SN_TYPE_BASE + 8;
pub const SCTP_SENDER_DRY_EVENT: u16 = SCTP_SN_TYPE_BASE + 9;
pub const SCTP_STREAM_RESET_EVENT: u16 = SCTP_SN_TYPE_BASE + 10;
pub const SCTP_ASSOC_RESET_EVENT: u16 = SCTP_SN_TYPE_BASE + 11;
pub const SCTP_STREAM_CHANGE_EVENT: u16 = SCTP_SN_TYPE_BASE + 12;
pub const SCTP_SEND_FAILED_EVENT: u16 = SCTP_SN_TYPE_BASE + 13;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_initmsg {
    pub sinit_num_ostreams: u16,
    pub sinit_max_instreams: u16,
    pub sinit_max_attempts: u16,
    pub sinit_max_init_timeo: u16,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_sndrcvinfo {
    pub sinfo_stream: u16,
    pub sinfo_ssn: u16,
    pub sinfo_flags: u16,
    pub sinfo_ppid: u32,
    pub sinfo_context: u32,
    pub sinfo_timetolive: u32,
    pub sinfo_tsn: u32,
    pub sinfo_cumtsn: u32,
    pub sinfo_assoc_id: sctp_assoc_t,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_sndinfo {
    pub snd_sid: u16,
    pub snd_flags: u16,
    pub snd_ppid: u32,
    pub snd_context: u32,
    pub snd_assoc_id: sctp_assoc_t,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_rcvinfo {
    pub rcv_sid: u16,
    pub rcv_ssn: u16,
    pub rcv_flags: u16,
    pub rcv_ppid: u32,
    pub rcv_tsn: u32,
    pub rcv_cumtsn: u32,
    pub rcv_context: u32,
    pub rcv_assoc_id: sctp_assoc_t,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_nxtinfo {
    pub nxt_sid: u16,
    pub nxt_flags: u16,
    pub nxt_ppid: u32,
    pub nxt_length: u32,
    pub nxt_assoc_id: sctp_assoc_t,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_event {
    pub se_assoc_id: sctp_assoc_t,
    pub se_type: u16,
    pub se_on: u8,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_rtoinfo {
    pub srto_assoc_id: sctp_assoc_t,
    pub srto_initial: u32,
    pub srto_max: u32,
    pub srto_min: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_assocparams {
    pub sasoc_assoc_id: sctp_assoc_t,
    pub sasoc_asocmaxrxt: u16,
    pub sasoc_number_peer_destinations: u16,
    pub sasoc_peer_rwnd: u32,
    pub sasoc_local_rwnd: u32,
    pub sasoc_cookie_life: u32,
}

/// `struct sctp_paddrparams`. C packs it to byte alignment and then pads it to 4 bytes; Rust
/// cannot combine `packed` and `align` on one struct, so it is byte-packed here with the tail
/// padding written out. The kernel copies it as bytes, so its alignment does not matter.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct sctp_paddrparams {
    pub spp_assoc_id: sctp_assoc_t,
    pub spp_address: sockaddr_storage,
    pub spp_hbinterval: u32,
    pub spp_pathmaxrxt: u16,
    pub spp_pathmtu: u32,
    pub spp_sackdelay: u32,
    pub spp_flags: u32,
    pub spp_ipv6_flowlabel: u32,
    pub spp_dscp: u8,
    pub spp_tail_padding: u8,
}

#[repr(C, packed(4))]
#[derive(Clone, Copy)]
pub struct sctp_prim {
    pub ssp_assoc_id: sctp_assoc_t,
    pub ssp_addr: sockaddr_storage,
}

#[repr(C, packed(4))]
#[derive(Clone, Copy)]
pub struct sctp_paddrinfo {
    pub spinfo_assoc_id: sctp_assoc_t,
    pub spinfo_address: sockaddr_storage,
    pub spinfo_state: i32,
    pub spinfo_cwnd: u32,
    pub spinfo_srtt: u32,
    pub spinfo_rto: u32,
    pub spinfo_mtu: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct sctp_status {
    pub sstat_assoc_id: sctp_assoc_t,
    pub sstat_state: i32,
    pub sstat_rwnd: u32,
    pub sstat_unackdata: u16,
    pub sstat_penddata: u16,
    pub sstat_instrms: u16,
    pub sstat_outstrms: u16,
    pub sstat_fragmentation_point: u32,
    pub sstat_primary: sctp_paddrinfo,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_assoc_value {
    pub assoc_id: sctp_assoc_t,
    pub assoc_value: u32,
}

/// `struct sctp_getaddrs_old`, the argument of `SCTP_SOCKOPT_CONNECTX3`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sctp_getaddrs_old {
    pub assoc_id: sctp_assoc_t,
    pub addr_num: c_int,
    pub addrs: *mut libc::sockaddr,
}

/// Head of `struct sctp_getaddrs`; packed socket addresses follow it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_getaddrs {
    pub assoc_id: sctp_assoc_t,
    pub addr_num: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_peeloff_arg_t {
    pub associd: sctp_assoc_t,
    pub sd: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sctp_peeloff_flags_arg_t {
    pub p_arg: sctp_peeloff_arg_t,
    pub flags: c_uint,
}

/// Returns an all-zero value of a kernel struct.
pub fn zeroed<T: KernelStruct>() -> T {
    // SAFETY: `KernelStruct` is only implemented for plain-data structs of integers, byte arrays,
    // `sockaddr_storage` and raw pointers, for which all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// Marker for the plain-data kernel structs above: every bit pattern is a valid value.
///
/// # Safety
///
/// Implement it only for `#[repr(C)]` structs made of integers, `sockaddr_storage` and raw
/// pointers, with no invariants and no drop glue.
pub unsafe trait KernelStruct: Copy {}

macro_rules! kernel_struct {
    ($($name:ty),* $(,)?) => {
        // SAFETY: each of these is a `#[repr(C)]` struct of integers, `sockaddr_storage` and raw
        // pointers only, as the trait requires.
        $(unsafe impl KernelStruct for $name {})*
    };
}

kernel_struct!(
    c_int,
    sockaddr_storage,
    sctp_initmsg,
    sctp_sndrcvinfo,
    sctp_sndinfo,
    sctp_rcvinfo,
    sctp_nxtinfo,
    sctp_event,
    sctp_rtoinfo,
    sctp_assocparams,
    sctp_paddrparams,
    sctp_prim,
    sctp_paddrinfo,
    sctp_status,
    sctp_assoc_value,
    sctp_getaddrs_old,
    sctp_getaddrs,
    sctp_peeloff_arg_t,
    sctp_peeloff_flags_arg_t,
);

#[cfg(test)]
mod tests {
    use std::mem::{align_of, offset_of, size_of};

    use super::*;

    #[test]
    fn option_structs_match_linux_layout() {
        assert_eq!(size_of::<sctp_initmsg>(), 8);
        assert_eq!(align_of::<sctp_initmsg>(), 2);
        assert_eq!(offset_of!(sctp_initmsg, sinit_max_instreams), 2);
        assert_eq!(offset_of!(sctp_initmsg, sinit_max_attempts), 4);
        assert_eq!(offset_of!(sctp_initmsg, sinit_max_init_timeo), 6);

        assert_eq!(size_of::<sctp_rtoinfo>(), 16);
        assert_eq!(offset_of!(sctp_rtoinfo, srto_initial), 4);
        assert_eq!(offset_of!(sctp_rtoinfo, srto_max), 8);
        assert_eq!(offset_of!(sctp_rtoinfo, srto_min), 12);

        assert_eq!(size_of::<sctp_assocparams>(), 20);
        assert_eq!(offset_of!(sctp_assocparams, sasoc_asocmaxrxt), 4);
        assert_eq!(
            offset_of!(sctp_assocparams, sasoc_number_peer_destinations),
            6
        );
        assert_eq!(offset_of!(sctp_assocparams, sasoc_peer_rwnd), 8);
        assert_eq!(offset_of!(sctp_assocparams, sasoc_local_rwnd), 12);
        assert_eq!(offset_of!(sctp_assocparams, sasoc_cookie_life), 16);

        assert_eq!(size_of::<sctp_event>(), 8);
        assert_eq!(offset_of!(sctp_event, se_type), 4);
        assert_eq!(offset_of!(sctp_event, se_on), 6);

        assert_eq!(size_of::<sctp_assoc_value>(), 8);
        assert_eq!(offset_of!(sctp_assoc_value, assoc_value), 4);
    }

    #[test]
    fn packed_structs_match_linux_layout() {
        assert_eq!(size_of::<sockaddr_storage>(), 128);

        assert_eq!(size_of::<sctp_paddrparams>(), 156);
        assert_eq!(align_of::<sctp_paddrparams>(), 1);
        assert_eq!(offset_of!(sctp_paddrparams, spp_address), 4);
        assert_eq!(offset_of!(sctp_paddrparams, spp_hbinterval), 132);
        assert_eq!(offset_of!(sctp_paddrparams, spp_pathmaxrxt), 136);
        assert_eq!(offset_of!(sctp_paddrparams, spp_pathmtu), 138);
        assert_eq!(offset_of!(sctp_paddrparams, spp_sackdelay), 142);
        assert_eq!(offset_of!(sctp_paddrparams, spp_flags), 146);
        assert_eq!(offset_of!(sctp_paddrparams, spp_ipv6_flowlabel), 150);
        assert_eq!(offset_of!(sctp_paddrparams, spp_dscp), 154);

        assert_eq!(size_of::<sctp_prim>(), 132);
        assert_eq!(offset_of!(sctp_prim, ssp_addr), 4);

        assert_eq!(size_of::<sctp_paddrinfo>(), 152);
        assert_eq!(offset_of!(sctp_paddrinfo, spinfo_address), 4);
        assert_eq!(offset_of!(sctp_paddrinfo, spinfo_state), 132);
        assert_eq!(offset_of!(sctp_paddrinfo, spinfo_cwnd), 136);
        assert_eq!(offset_of!(sctp_paddrinfo, spinfo_srtt), 140);
        assert_eq!(offset_of!(sctp_paddrinfo, spinfo_rto), 144);
        assert_eq!(offset_of!(sctp_paddrinfo, spinfo_mtu), 148);
    }

    #[test]
    fn status_matches_linux_layout() {
        assert_eq!(size_of::<sctp_status>(), 176);
        assert_eq!(offset_of!(sctp_status, sstat_state), 4);
        assert_eq!(offset_of!(sctp_status, sstat_rwnd), 8);
        assert_eq!(offset_of!(sctp_status, sstat_unackdata), 12);
        assert_eq!(offset_of!(sctp_status, sstat_penddata), 14);
        assert_eq!(offset_of!(sctp_status, sstat_instrms), 16);
        assert_eq!(offset_of!(sctp_status, sstat_outstrms), 18);
        assert_eq!(offset_of!(sctp_status, sstat_fragmentation_point), 20);
        assert_eq!(offset_of!(sctp_status, sstat_primary), 24);
    }

    #[test]
    fn ancillary_structs_match_linux_layout() {
        assert_eq!(size_of::<sctp_sndrcvinfo>(), 32);
        assert_eq!(offset_of!(sctp_sndrcvinfo, sinfo_flags), 4);
        assert_eq!(offset_of!(sctp_sndrcvinfo, sinfo_ppid), 8);
        assert_eq!(offset_of!(sctp_sndrcvinfo, sinfo_context), 12);
        assert_eq!(offset_of!(sctp_sndrcvinfo, sinfo_timetolive), 16);
        assert_eq!(offset_of!(sctp_sndrcvinfo, sinfo_tsn), 20);
        assert_eq!(offset_of!(sctp_sndrcvinfo, sinfo_cumtsn), 24);
        assert_eq!(offset_of!(sctp_sndrcvinfo, sinfo_assoc_id), 28);

        assert_eq!(size_of::<sctp_sndinfo>(), 16);
        assert_eq!(offset_of!(sctp_sndinfo, snd_flags), 2);
        assert_eq!(offset_of!(sctp_sndinfo, snd_ppid), 4);
        assert_eq!(offset_of!(sctp_sndinfo, snd_context), 8);
        assert_eq!(offset_of!(sctp_sndinfo, snd_assoc_id), 12);

        assert_eq!(size_of::<sctp_rcvinfo>(), 28);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_ssn), 2);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_flags), 4);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_ppid), 8);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_tsn), 12);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_cumtsn), 16);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_context), 20);
        assert_eq!(offset_of!(sctp_rcvinfo, rcv_assoc_id), 24);

        assert_eq!(size_of::<sctp_nxtinfo>(), 16);
        assert_eq!(offset_of!(sctp_nxtinfo, nxt_flags), 2);
        assert_eq!(offset_of!(sctp_nxtinfo, nxt_ppid), 4);
        assert_eq!(offset_of!(sctp_nxtinfo, nxt_length), 8);
        assert_eq!(offset_of!(sctp_nxtinfo, nxt_assoc_id), 12);
    }

    #[test]
    fn address_and_peeloff_structs_match_linux_layout() {
        assert_eq!(size_of::<sctp_getaddrs_old>(), 16);
        assert_eq!(align_of::<sctp_getaddrs_old>(), 8);
        assert_eq!(offset_of!(sctp_getaddrs_old, addr_num), 4);
        assert_eq!(offset_of!(sctp_getaddrs_old, addrs), 8);

        assert_eq!(size_of::<sctp_getaddrs>(), 8);
        assert_eq!(offset_of!(sctp_getaddrs, addr_num), 4);

        assert_eq!(size_of::<sctp_peeloff_arg_t>(), 8);
        assert_eq!(offset_of!(sctp_peeloff_arg_t, sd), 4);
        assert_eq!(size_of::<sctp_peeloff_flags_arg_t>(), 12);
        assert_eq!(offset_of!(sctp_peeloff_flags_arg_t, flags), 8);
    }
}
