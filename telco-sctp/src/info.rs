//! Per-message metadata: association ids, the send information a message goes out with
//! (`SCTP_SNDINFO`) and the receive information it arrives with (`SCTP_RCVINFO`,
//! `SCTP_NXTINFO`), RFC 6458 sections 5.3.4 to 5.3.6.
//!
//! Payload protocol identifiers are in host byte order in this API and converted to network
//! byte order for the kernel, which copies them into DATA chunks unchanged. So `ppid: 60` is NGAP
//! on the wire, as 3GPP TS 38.412 requires.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use crate::sys;

/// Association id (`sctp_assoc_t`).
///
/// On one-to-many sockets it selects the association an option or message applies to. The
/// special values [`AssocId::FUTURE`], [`AssocId::CURRENT`] and [`AssocId::ALL`] select
/// associations still to come, the ones that exist, or both. One-to-one sockets ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AssocId(pub i32);

impl AssocId {
    /// `SCTP_FUTURE_ASSOC`: associations created from now on (the endpoint's defaults).
    pub const FUTURE: AssocId = AssocId(sys::SCTP_FUTURE_ASSOC);
    /// `SCTP_CURRENT_ASSOC`: every association that exists now.
    pub const CURRENT: AssocId = AssocId(sys::SCTP_CURRENT_ASSOC);
    /// `SCTP_ALL_ASSOC`: the existing associations and the future ones.
    pub const ALL: AssocId = AssocId(sys::SCTP_ALL_ASSOC);
}

impl fmt::Display for AssocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Flags of a message to send (`snd_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SendFlags(u16);

impl SendFlags {
    /// No flag: an ordered message.
    pub const NONE: SendFlags = SendFlags(0);
    /// `SCTP_UNORDERED`: deliver the message as soon as it arrives, outside the stream's order.
    pub const UNORDERED: SendFlags = SendFlags(sys::SCTP_UNORDERED);
    /// `SCTP_EOF`: start a graceful shutdown of the association after this message.
    pub const EOF: SendFlags = SendFlags(sys::SCTP_EOF);
    /// `SCTP_ABORT`: abort the association; the payload, if any, is the user abort reason.
    pub const ABORT: SendFlags = SendFlags(sys::SCTP_ABORT);
    /// `SCTP_SACK_IMMEDIATELY`: ask the peer to acknowledge this message without delay.
    pub const SACK_IMMEDIATELY: SendFlags = SendFlags(sys::SCTP_SACK_IMMEDIATELY);
    /// `SCTP_SENDALL`: send the message on every association of a one-to-many socket.
    pub const SEND_ALL: SendFlags = SendFlags(sys::SCTP_SENDALL);

    /// Returns the flags from their kernel bits, keeping unknown bits.
    pub const fn from_bits(bits: u16) -> SendFlags {
        SendFlags(bits)
    }

    /// Returns the kernel bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Returns true if every flag of `other` is set in `self`.
    pub const fn contains(self, other: SendFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for SendFlags {
    type Output = SendFlags;

    fn bitor(self, rhs: SendFlags) -> SendFlags {
        SendFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for SendFlags {
    fn bitor_assign(&mut self, rhs: SendFlags) {
        self.0 |= rhs.0;
    }
}

/// Send information of a message (`struct sctp_sndinfo`, RFC 6458 section 5.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct SendInfo {
    /// Stream id; it must be below the association's negotiated outbound stream count.
    pub stream: u16,
    /// Payload protocol identifier, in host byte order.
    pub ppid: u32,
    /// Message flags.
    pub flags: SendFlags,
    /// Opaque value returned in a send-failed notification for this message.
    pub context: u32,
    /// Association to send on (one-to-many sockets); ignored on one-to-one sockets.
    pub assoc_id: AssocId,
}

impl SendInfo {
    /// Returns send information for `stream` with payload protocol `ppid` and no flags.
    pub fn new(stream: u16, ppid: u32) -> SendInfo {
        SendInfo {
            stream,
            ppid,
            ..SendInfo::default()
        }
    }

    /// Sets the flags.
    pub fn with_flags(mut self, flags: SendFlags) -> SendInfo {
        self.flags = flags;
        self
    }

    /// Sets the context.
    pub fn with_context(mut self, context: u32) -> SendInfo {
        self.context = context;
        self
    }

    /// Sets the association.
    pub fn with_assoc_id(mut self, assoc_id: AssocId) -> SendInfo {
        self.assoc_id = assoc_id;
        self
    }

    pub(crate) fn to_sys(self) -> sys::sctp_sndinfo {
        sys::sctp_sndinfo {
            snd_sid: self.stream,
            snd_flags: self.flags.bits(),
            snd_ppid: self.ppid.to_be(),
            snd_context: self.context,
            snd_assoc_id: self.assoc_id.0,
        }
    }

    pub(crate) fn from_sys(raw: &sys::sctp_sndinfo) -> SendInfo {
        SendInfo {
            stream: raw.snd_sid,
            ppid: u32::from_be(raw.snd_ppid),
            flags: SendFlags(raw.snd_flags),
            context: raw.snd_context,
            assoc_id: AssocId(raw.snd_assoc_id),
        }
    }
}

/// Receive information of a message (`struct sctp_rcvinfo`, RFC 6458 section 5.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct RecvInfo {
    /// Stream id.
    pub stream: u16,
    /// Stream sequence number (0 for unordered messages).
    pub ssn: u16,
    /// `SCTP_UNORDERED` if the message was sent unordered.
    pub flags: SendFlags,
    /// Payload protocol identifier, in host byte order.
    pub ppid: u32,
    /// Transmission sequence number of the message's first DATA chunk.
    pub tsn: u32,
    /// Current cumulative TSN of the association.
    pub cumtsn: u32,
    /// Context set with `SCTP_CONTEXT` on the receiving association.
    pub context: u32,
    /// Association the message arrived on.
    pub assoc_id: AssocId,
}

impl RecvInfo {
    pub(crate) fn from_sys(raw: &sys::sctp_rcvinfo) -> RecvInfo {
        RecvInfo {
            stream: raw.rcv_sid,
            ssn: raw.rcv_ssn,
            flags: SendFlags(raw.rcv_flags),
            ppid: u32::from_be(raw.rcv_ppid),
            tsn: raw.rcv_tsn,
            cumtsn: raw.rcv_cumtsn,
            context: raw.rcv_context,
            assoc_id: AssocId(raw.rcv_assoc_id),
        }
    }
}

/// Information on the next message waiting on the socket (`struct sctp_nxtinfo`, RFC 6458
/// section 5.3.6). Only delivered after [`set_recv_nxtinfo(true)`](crate::SctpOptions::set_recv_nxtinfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct NextInfo {
    /// Stream id of the next message.
    pub stream: u16,
    /// Flags of the next message: `SCTP_UNORDERED`, `SCTP_COMPLETE` (0x2, the whole message is
    /// there) and `SCTP_NOTIFICATION` (0x8000, it is a notification).
    pub flags: u16,
    /// Payload protocol identifier of the next message, in host byte order.
    pub ppid: u32,
    /// Bytes of the next message available now.
    pub length: u32,
    /// Association of the next message.
    pub assoc_id: AssocId,
}

impl NextInfo {
    pub(crate) fn from_sys(raw: &sys::sctp_nxtinfo) -> NextInfo {
        NextInfo {
            stream: raw.nxt_sid,
            flags: raw.nxt_flags,
            ppid: u32::from_be(raw.nxt_ppid),
            length: raw.nxt_length,
            assoc_id: AssocId(raw.nxt_assoc_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_info_puts_ppid_in_network_order() {
        let raw = SendInfo::new(3, 60).to_sys();
        assert_eq!(raw.snd_ppid.to_ne_bytes(), [0, 0, 0, 60]);
        assert_eq!(raw.snd_sid, 3);
    }

    #[test]
    fn send_info_round_trips_through_sys() {
        let info = SendInfo::new(7, 18)
            .with_flags(SendFlags::UNORDERED | SendFlags::SACK_IMMEDIATELY)
            .with_context(99)
            .with_assoc_id(AssocId(42));
        assert_eq!(SendInfo::from_sys(&info.to_sys()), info);
    }

    #[test]
    fn send_flags_have_kernel_values() {
        assert_eq!(SendFlags::UNORDERED.bits(), 0x1);
        assert_eq!(SendFlags::ABORT.bits(), 0x4);
        assert_eq!(SendFlags::SACK_IMMEDIATELY.bits(), 0x8);
        assert_eq!(SendFlags::SEND_ALL.bits(), 0x40);
        assert_eq!(SendFlags::EOF.bits(), 0x200);
        let both = SendFlags::EOF | SendFlags::UNORDERED;
        assert!(both.contains(SendFlags::EOF));
        assert!(!both.contains(SendFlags::ABORT));
    }
}
