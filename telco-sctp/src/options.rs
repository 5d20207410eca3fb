//! Values of the SCTP socket options (RFC 6458 section 8) in plain Rust types, converted to and
//! from the kernel structs.
//!
//! Times are in milliseconds, as the kernel takes them. A zero in a field of [`RtoInfo`],
//! [`AssocParams`] or [`PeerAddrParams`] means "leave unchanged" when set.

use std::net::SocketAddr;

use crate::addr;
use crate::info::AssocId;
use crate::sys;

/// `SCTP_INITMSG`: the parameters a new association requests in its INIT (RFC 6458 section 8.1.3).
///
/// Set it before `connect` or `listen`. The streams actually negotiated are the smaller of ours
/// and the peer's, in each direction; read them from [`Status`] or the `CommUp` notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct InitMsg {
    /// Outbound streams requested (0 keeps the kernel default, 10).
    pub num_ostreams: u16,
    /// Inbound streams accepted at most (0 keeps the kernel default, 65535).
    pub max_instreams: u16,
    /// INIT retransmissions before giving up (0 keeps the kernel default).
    pub max_attempts: u16,
    /// Maximum INIT retransmission timeout in milliseconds (0 keeps the kernel default).
    pub max_init_timeout_ms: u16,
}

impl InitMsg {
    /// Returns an INIT message requesting `outbound` and accepting `inbound` streams.
    pub fn streams(outbound: u16, inbound: u16) -> InitMsg {
        InitMsg {
            num_ostreams: outbound,
            max_instreams: inbound,
            ..InitMsg::default()
        }
    }

    pub(crate) fn to_sys(self) -> sys::sctp_initmsg {
        sys::sctp_initmsg {
            sinit_num_ostreams: self.num_ostreams,
            sinit_max_instreams: self.max_instreams,
            sinit_max_attempts: self.max_attempts,
            sinit_max_init_timeo: self.max_init_timeout_ms,
        }
    }

    pub(crate) fn from_sys(raw: &sys::sctp_initmsg) -> InitMsg {
        InitMsg {
            num_ostreams: raw.sinit_num_ostreams,
            max_instreams: raw.sinit_max_instreams,
            max_attempts: raw.sinit_max_attempts,
            max_init_timeout_ms: raw.sinit_max_init_timeo,
        }
    }
}

/// `SCTP_RTOINFO`: retransmission timeout bounds in milliseconds (RFC 6458 section 8.1.1).
///
/// The Linux defaults are 3000 initial, 1000 minimum and 60000 maximum; signalling deployments
/// commonly use far smaller values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct RtoInfo {
    /// Initial RTO.
    pub initial_ms: u32,
    /// Maximum RTO.
    pub max_ms: u32,
    /// Minimum RTO.
    pub min_ms: u32,
}

impl RtoInfo {
    /// Returns RTO bounds of `initial_ms`, `min_ms` and `max_ms`.
    pub fn new(initial_ms: u32, min_ms: u32, max_ms: u32) -> RtoInfo {
        RtoInfo {
            initial_ms,
            max_ms,
            min_ms,
        }
    }

    pub(crate) fn to_sys(self, assoc: AssocId) -> sys::sctp_rtoinfo {
        sys::sctp_rtoinfo {
            srto_assoc_id: assoc.0,
            srto_initial: self.initial_ms,
            srto_max: self.max_ms,
            srto_min: self.min_ms,
        }
    }

    pub(crate) fn from_sys(raw: &sys::sctp_rtoinfo) -> RtoInfo {
        RtoInfo::new(raw.srto_initial, raw.srto_min, raw.srto_max)
    }
}

/// `SCTP_ASSOCINFO`: association parameters (RFC 6458 section 8.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct AssocParams {
    /// Retransmissions across all paths before the association is declared lost.
    pub max_retrans: u16,
    /// Peer addresses of the association (read-only).
    pub peer_destinations: u16,
    /// Peer's receive window in bytes (read-only).
    pub peer_rwnd: u32,
    /// Local receive window in bytes (read-only).
    pub local_rwnd: u32,
    /// State cookie lifetime in milliseconds.
    pub cookie_life_ms: u32,
}

impl AssocParams {
    /// Returns parameters that set only the association's maximum retransmissions.
    pub fn max_retrans(max_retrans: u16) -> AssocParams {
        AssocParams {
            max_retrans,
            ..AssocParams::default()
        }
    }

    pub(crate) fn to_sys(self, assoc: AssocId) -> sys::sctp_assocparams {
        sys::sctp_assocparams {
            sasoc_assoc_id: assoc.0,
            sasoc_asocmaxrxt: self.max_retrans,
            sasoc_number_peer_destinations: 0,
            sasoc_peer_rwnd: 0,
            sasoc_local_rwnd: 0,
            sasoc_cookie_life: self.cookie_life_ms,
        }
    }

    pub(crate) fn from_sys(raw: &sys::sctp_assocparams) -> AssocParams {
        AssocParams {
            max_retrans: raw.sasoc_asocmaxrxt,
            peer_destinations: raw.sasoc_number_peer_destinations,
            peer_rwnd: raw.sasoc_peer_rwnd,
            local_rwnd: raw.sasoc_local_rwnd,
            cookie_life_ms: raw.sasoc_cookie_life,
        }
    }
}

/// `spp_flags` bits of [`PeerAddrParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SppFlags(pub u32);

impl SppFlags {
    /// `SPP_HB_ENABLE`: turn heartbeats on.
    pub const HB_ENABLE: SppFlags = SppFlags(0x1);
    /// `SPP_HB_DISABLE`: turn heartbeats off.
    pub const HB_DISABLE: SppFlags = SppFlags(0x2);
    /// `SPP_HB_DEMAND`: send one heartbeat now.
    pub const HB_DEMAND: SppFlags = SppFlags(0x4);
    /// `SPP_PMTUD_ENABLE`: path MTU discovery on.
    pub const PMTUD_ENABLE: SppFlags = SppFlags(0x8);
    /// `SPP_PMTUD_DISABLE`: path MTU discovery off; `path_mtu` is used.
    pub const PMTUD_DISABLE: SppFlags = SppFlags(0x10);
    /// `SPP_SACKDELAY_ENABLE`: delayed SACK on, with `sack_delay_ms`.
    pub const SACKDELAY_ENABLE: SppFlags = SppFlags(0x20);
    /// `SPP_SACKDELAY_DISABLE`: delayed SACK off.
    pub const SACKDELAY_DISABLE: SppFlags = SppFlags(0x40);
    /// `SPP_HB_TIME_IS_ZERO`: a heartbeat interval of 0 means 0, not "unchanged".
    pub const HB_TIME_IS_ZERO: SppFlags = SppFlags(0x80);
    /// `SPP_IPV6_FLOWLABEL`: `ipv6_flowlabel` is valid.
    pub const IPV6_FLOWLABEL: SppFlags = SppFlags(0x100);
    /// `SPP_DSCP`: `dscp` is valid.
    pub const DSCP: SppFlags = SppFlags(0x200);

    /// Returns true if every bit of `other` is set.
    pub const fn contains(self, other: SppFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for SppFlags {
    type Output = SppFlags;

    fn bitor(self, rhs: SppFlags) -> SppFlags {
        SppFlags(self.0 | rhs.0)
    }
}

/// `SCTP_PEER_ADDR_PARAMS`: heartbeat, retransmission, PMTU and SACK settings of one peer
/// address, or of the whole association when `address` is `None` (RFC 6458 section 8.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct PeerAddrParams {
    /// Association.
    pub assoc_id: AssocId,
    /// Peer address, or `None` for every address of the association.
    pub address: Option<SocketAddr>,
    /// Heartbeat interval in milliseconds.
    pub hb_interval_ms: u32,
    /// Retransmissions on this path before it is marked unreachable.
    pub path_max_retrans: u16,
    /// Fixed path MTU in bytes, used with [`SppFlags::PMTUD_DISABLE`].
    pub path_mtu: u32,
    /// SACK delay in milliseconds, used with [`SppFlags::SACKDELAY_ENABLE`].
    pub sack_delay_ms: u32,
    /// Flags that select what the set call changes.
    pub flags: SppFlags,
    /// IPv6 flow label, used with [`SppFlags::IPV6_FLOWLABEL`].
    pub ipv6_flowlabel: u32,
    /// DSCP, used with [`SppFlags::DSCP`].
    pub dscp: u8,
}

impl PeerAddrParams {
    /// Returns parameters for `address` (or every address) of association `assoc_id` that change
    /// nothing until fields are set.
    pub fn new(assoc_id: AssocId, address: Option<SocketAddr>) -> PeerAddrParams {
        PeerAddrParams {
            assoc_id,
            address,
            ..PeerAddrParams::default()
        }
    }

    /// Turns heartbeats on with an interval of `interval_ms`.
    pub fn with_heartbeat(mut self, interval_ms: u32) -> PeerAddrParams {
        self.hb_interval_ms = interval_ms;
        self.flags = self.flags | SppFlags::HB_ENABLE;
        if interval_ms == 0 {
            self.flags = self.flags | SppFlags::HB_TIME_IS_ZERO;
        }
        self
    }

    /// Sets the path's maximum retransmissions.
    pub fn with_path_max_retrans(mut self, retrans: u16) -> PeerAddrParams {
        self.path_max_retrans = retrans;
        self
    }

    pub(crate) fn to_sys(self) -> sys::sctp_paddrparams {
        let mut raw = sys::zeroed::<sys::sctp_paddrparams>();
        raw.spp_assoc_id = self.assoc_id.0;
        if let Some(address) = &self.address {
            raw.spp_address = addr::to_storage(address);
        }
        raw.spp_hbinterval = self.hb_interval_ms;
        raw.spp_pathmaxrxt = self.path_max_retrans;
        raw.spp_pathmtu = self.path_mtu;
        raw.spp_sackdelay = self.sack_delay_ms;
        raw.spp_flags = self.flags.0;
        raw.spp_ipv6_flowlabel = self.ipv6_flowlabel;
        raw.spp_dscp = self.dscp;
        raw
    }

    pub(crate) fn from_sys(raw: &sys::sctp_paddrparams) -> PeerAddrParams {
        let storage = raw.spp_address;
        PeerAddrParams {
            assoc_id: AssocId(raw.spp_assoc_id),
            address: addr::from_storage(&storage),
            hb_interval_ms: raw.spp_hbinterval,
            path_max_retrans: raw.spp_pathmaxrxt,
            path_mtu: raw.spp_pathmtu,
            sack_delay_ms: raw.spp_sackdelay,
            flags: SppFlags(raw.spp_flags),
            ipv6_flowlabel: raw.spp_ipv6_flowlabel,
            dscp: raw.spp_dscp,
        }
    }
}

/// `sstat_state`: the association's protocol state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AssocState {
    /// `SCTP_EMPTY`.
    Empty,
    /// `SCTP_CLOSED`.
    Closed,
    /// `SCTP_COOKIE_WAIT`: INIT sent.
    CookieWait,
    /// `SCTP_COOKIE_ECHOED`: COOKIE ECHO sent.
    CookieEchoed,
    /// `SCTP_ESTABLISHED`.
    Established,
    /// `SCTP_SHUTDOWN_PENDING`.
    ShutdownPending,
    /// `SCTP_SHUTDOWN_SENT`.
    ShutdownSent,
    /// `SCTP_SHUTDOWN_RECEIVED`.
    ShutdownReceived,
    /// `SCTP_SHUTDOWN_ACK_SENT`.
    ShutdownAckSent,
    /// A value this crate does not know.
    Other(i32),
}

impl AssocState {
    fn from_raw(raw: i32) -> AssocState {
        match raw {
            0 => AssocState::Empty,
            1 => AssocState::Closed,
            2 => AssocState::CookieWait,
            3 => AssocState::CookieEchoed,
            4 => AssocState::Established,
            5 => AssocState::ShutdownPending,
            6 => AssocState::ShutdownSent,
            7 => AssocState::ShutdownReceived,
            8 => AssocState::ShutdownAckSent,
            other => AssocState::Other(other),
        }
    }
}

/// `spinfo_state`: the state of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathState {
    /// `SCTP_INACTIVE`: unreachable.
    Inactive,
    /// `SCTP_PF`: potentially failed.
    PotentiallyFailed,
    /// `SCTP_ACTIVE`: reachable.
    Active,
    /// `SCTP_UNCONFIRMED`: not yet confirmed by a heartbeat.
    Unconfirmed,
    /// `SCTP_UNKNOWN`.
    Unknown,
    /// A value this crate does not know.
    Other(i32),
}

impl PathState {
    fn from_raw(raw: i32) -> PathState {
        match raw {
            0 => PathState::Inactive,
            1 => PathState::PotentiallyFailed,
            2 => PathState::Active,
            3 => PathState::Unconfirmed,
            0xffff => PathState::Unknown,
            other => PathState::Other(other),
        }
    }
}

/// `SCTP_GET_PEER_ADDR_INFO`: one path of an association (RFC 6458 section 8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PeerAddrInfo {
    /// Association.
    pub assoc_id: AssocId,
    /// Peer address of the path.
    pub address: Option<SocketAddr>,
    /// Path state.
    pub state: PathState,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Smoothed round-trip time in milliseconds.
    pub srtt_ms: u32,
    /// Current retransmission timeout in milliseconds.
    pub rto_ms: u32,
    /// Path MTU in bytes.
    pub mtu: u32,
}

impl PeerAddrInfo {
    pub(crate) fn from_sys(raw: &sys::sctp_paddrinfo) -> PeerAddrInfo {
        let storage = raw.spinfo_address;
        PeerAddrInfo {
            assoc_id: AssocId(raw.spinfo_assoc_id),
            address: addr::from_storage(&storage),
            state: PathState::from_raw(raw.spinfo_state),
            cwnd: raw.spinfo_cwnd,
            srtt_ms: raw.spinfo_srtt,
            rto_ms: raw.spinfo_rto,
            mtu: raw.spinfo_mtu,
        }
    }
}

/// `SCTP_STATUS`: the state of an association (RFC 6458 section 8.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Status {
    /// Association.
    pub assoc_id: AssocId,
    /// Protocol state.
    pub state: AssocState,
    /// Peer's receive window in bytes.
    pub rwnd: u32,
    /// DATA chunks not yet acknowledged.
    pub unacked_data: u16,
    /// DATA chunks waiting to be received.
    pub pending_data: u16,
    /// Inbound streams negotiated.
    pub inbound_streams: u16,
    /// Outbound streams negotiated.
    pub outbound_streams: u16,
    /// Largest user message sent without fragmentation, in bytes.
    pub fragmentation_point: u32,
    /// The primary path.
    pub primary: PeerAddrInfo,
}

impl Status {
    pub(crate) fn from_sys(raw: &sys::sctp_status) -> Status {
        Status {
            assoc_id: AssocId(raw.sstat_assoc_id),
            state: AssocState::from_raw(raw.sstat_state),
            rwnd: raw.sstat_rwnd,
            unacked_data: raw.sstat_unackdata,
            pending_data: raw.sstat_penddata,
            inbound_streams: raw.sstat_instrms,
            outbound_streams: raw.sstat_outstrms,
            fragmentation_point: raw.sstat_fragmentation_point,
            primary: PeerAddrInfo::from_sys(&raw.sstat_primary),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use super::*;

    fn raw_bytes<T: sys::KernelStruct>(value: &T) -> Vec<u8> {
        // SAFETY: `value` is a live plain-data struct of `size_of::<T>()` bytes.
        unsafe {
            std::slice::from_raw_parts(std::ptr::from_ref(value).cast::<u8>(), size_of::<T>())
        }
        .to_vec()
    }

    #[test]
    fn peer_addr_params_encode_at_packed_offsets() {
        let address: SocketAddr = "10.9.8.7:2905".parse().unwrap();
        let params = PeerAddrParams::new(AssocId(5), Some(address))
            .with_heartbeat(500)
            .with_path_max_retrans(3);
        let bytes = raw_bytes(&params.to_sys());
        assert_eq!(bytes.len(), 156);
        assert_eq!(&bytes[0..4], &5i32.to_ne_bytes());
        assert_eq!(&bytes[8..12], &[10, 9, 8, 7]);
        assert_eq!(&bytes[132..136], &500u32.to_ne_bytes());
        assert_eq!(&bytes[136..138], &3u16.to_ne_bytes());
        assert_eq!(&bytes[146..150], &1u32.to_ne_bytes());
        assert_eq!(PeerAddrParams::from_sys(&params.to_sys()), params);
    }

    #[test]
    fn zero_heartbeat_sets_time_is_zero() {
        let params = PeerAddrParams::new(AssocId::FUTURE, None).with_heartbeat(0);
        assert!(
            params
                .flags
                .contains(SppFlags::HB_ENABLE | SppFlags::HB_TIME_IS_ZERO)
        );
        let storage = params.to_sys().spp_address;
        assert_eq!(storage.ss_family, 0);
    }

    #[test]
    fn status_decodes_primary_path() {
        let mut raw = sys::zeroed::<sys::sctp_status>();
        raw.sstat_assoc_id = 3;
        raw.sstat_state = 4;
        raw.sstat_outstrms = 10;
        raw.sstat_primary.spinfo_address = addr::to_storage(&"[fd00::1]:9".parse().unwrap());
        raw.sstat_primary.spinfo_state = 2;
        raw.sstat_primary.spinfo_srtt = 12;
        let status = Status::from_sys(&raw);
        assert_eq!(status.state, AssocState::Established);
        assert_eq!(status.outbound_streams, 10);
        assert_eq!(status.primary.state, PathState::Active);
        assert_eq!(status.primary.address, Some("[fd00::1]:9".parse().unwrap()));
        assert_eq!(status.primary.srtt_ms, 12);
        assert_eq!(offset_of!(sys::sctp_status, sstat_primary), 24);
    }

    #[test]
    fn rto_and_assoc_params_encode() {
        let rto = RtoInfo::new(120, 100, 500).to_sys(AssocId(2));
        assert_eq!(
            raw_bytes(&rto),
            [2u32, 120, 500, 100]
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect::<Vec<u8>>()
        );
        let assoc = AssocParams::max_retrans(4).to_sys(AssocId(1));
        let bytes = raw_bytes(&assoc);
        assert_eq!(&bytes[4..6], &4u16.to_ne_bytes());
        assert_eq!(&bytes[16..20], &0u32.to_ne_bytes());
        let init = InitMsg::streams(16, 32).to_sys();
        assert_eq!(raw_bytes(&init), vec![16, 0, 32, 0, 0, 0, 0, 0]);
    }
}
