//! Ancillary data (control messages) of `sendmsg` and `recvmsg` at level `IPPROTO_SCTP`.
//!
//! The layout is glibc's `struct cmsghdr` (`size_t cmsg_len; int cmsg_level; int cmsg_type;`)
//! followed by the payload, each message padded to the alignment of `size_t`, as `CMSG_SPACE`
//! computes. It is built and parsed here as bytes so the parser can be fed hostile buffers.

use crate::info::{NextInfo, RecvInfo, SendInfo};
use crate::sys;

const ALIGN: usize = size_of::<usize>();
const HEADER_LEN: usize = size_of::<libc::cmsghdr>();

/// Room for the control messages `recvmsg` may return: one `SCTP_RCVINFO`, one `SCTP_NXTINFO`,
/// and slack for an `SCTP_SNDRCV` if an application also enabled the old data I/O event.
pub(crate) const RECV_CONTROL_LEN: usize = 256;

/// An 8-byte aligned control buffer for `recvmsg`.
#[repr(C, align(8))]
pub(crate) struct ControlBuffer(pub [u8; RECV_CONTROL_LEN]);

impl ControlBuffer {
    pub(crate) fn new() -> ControlBuffer {
        ControlBuffer([0; RECV_CONTROL_LEN])
    }
}

/// `CMSG_ALIGN`.
const fn align(len: usize) -> usize {
    (len + ALIGN - 1) & !(ALIGN - 1)
}

/// `CMSG_SPACE`.
pub(crate) const fn space(payload_len: usize) -> usize {
    align(HEADER_LEN) + align(payload_len)
}

/// Length of the control buffer `sndinfo_control` fills.
pub(crate) const SNDINFO_SPACE: usize = space(size_of::<sys::sctp_sndinfo>());

/// An 8-byte aligned buffer holding one `SCTP_SNDINFO` control message.
#[repr(C, align(8))]
pub(crate) struct SendControl(pub [u8; SNDINFO_SPACE]);

/// Builds the `SCTP_SNDINFO` control message for `info`.
pub(crate) fn sndinfo_control(info: &SendInfo) -> SendControl {
    let raw = info.to_sys();
    let mut payload = [0u8; size_of::<sys::sctp_sndinfo>()];
    payload[0..2].copy_from_slice(&raw.snd_sid.to_ne_bytes());
    payload[2..4].copy_from_slice(&raw.snd_flags.to_ne_bytes());
    payload[4..8].copy_from_slice(&raw.snd_ppid.to_ne_bytes());
    payload[8..12].copy_from_slice(&raw.snd_context.to_ne_bytes());
    payload[12..16].copy_from_slice(&raw.snd_assoc_id.to_ne_bytes());

    let mut out = SendControl([0; SNDINFO_SPACE]);
    write_header(&mut out.0, sys::SCTP_SNDINFO, payload.len());
    out.0[align(HEADER_LEN)..align(HEADER_LEN) + payload.len()].copy_from_slice(&payload);
    out
}

fn write_header(out: &mut [u8], kind: i32, payload_len: usize) {
    let len = align(HEADER_LEN) + payload_len;
    out[0..ALIGN].copy_from_slice(&len.to_ne_bytes());
    out[ALIGN..ALIGN + 4].copy_from_slice(&sys::IPPROTO_SCTP.to_ne_bytes());
    out[ALIGN + 4..ALIGN + 8].copy_from_slice(&kind.to_ne_bytes());
}

/// The SCTP control messages found in a `recvmsg` control buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ParsedControl {
    pub rcvinfo: Option<RecvInfo>,
    pub nxtinfo: Option<NextInfo>,
}

/// Parses the control buffer `recvmsg` filled (`msg_controllen` bytes of it).
///
/// Messages of other levels or types, and messages whose length field is out of bounds or too
/// short for their payload, are skipped.
pub(crate) fn parse_control(mut bytes: &[u8]) -> ParsedControl {
    let mut parsed = ParsedControl::default();
    while bytes.len() >= HEADER_LEN {
        let len = usize::from_ne_bytes(bytes[0..ALIGN].try_into().unwrap_or_default());
        if len < HEADER_LEN || len > bytes.len() {
            break;
        }
        let level = i32::from_ne_bytes(bytes[ALIGN..ALIGN + 4].try_into().unwrap_or_default());
        let kind = i32::from_ne_bytes(bytes[ALIGN + 4..ALIGN + 8].try_into().unwrap_or_default());
        let payload = &bytes[align(HEADER_LEN).min(len)..len];
        if level == sys::IPPROTO_SCTP {
            match kind {
                sys::SCTP_RCVINFO => parsed.rcvinfo = parse_rcvinfo(payload).or(parsed.rcvinfo),
                sys::SCTP_NXTINFO => parsed.nxtinfo = parse_nxtinfo(payload).or(parsed.nxtinfo),
                _ => {}
            }
        }
        bytes = &bytes[align(len).min(bytes.len())..];
    }
    parsed
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_ne_bytes([bytes[offset], bytes[offset + 1]])
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ])
}

fn parse_rcvinfo(payload: &[u8]) -> Option<RecvInfo> {
    if payload.len() < size_of::<sys::sctp_rcvinfo>() {
        return None;
    }
    let raw = sys::sctp_rcvinfo {
        rcv_sid: u16_at(payload, 0),
        rcv_ssn: u16_at(payload, 2),
        rcv_flags: u16_at(payload, 4),
        rcv_ppid: u32_at(payload, 8),
        rcv_tsn: u32_at(payload, 12),
        rcv_cumtsn: u32_at(payload, 16),
        rcv_context: u32_at(payload, 20),
        rcv_assoc_id: u32_at(payload, 24).cast_signed(),
    };
    Some(RecvInfo::from_sys(&raw))
}

fn parse_nxtinfo(payload: &[u8]) -> Option<NextInfo> {
    if payload.len() < size_of::<sys::sctp_nxtinfo>() {
        return None;
    }
    let raw = sys::sctp_nxtinfo {
        nxt_sid: u16_at(payload, 0),
        nxt_flags: u16_at(payload, 2),
        nxt_ppid: u32_at(payload, 4),
        nxt_length: u32_at(payload, 8),
        nxt_assoc_id: u32_at(payload, 12).cast_signed(),
    };
    Some(NextInfo::from_sys(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::{AssocId, SendFlags};

    fn control_message(level: i32, kind: i32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; space(payload.len())];
        write_header(&mut out, kind, payload.len());
        out[ALIGN..ALIGN + 4].copy_from_slice(&level.to_ne_bytes());
        out[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
        out
    }

    fn rcvinfo_payload(stream: u16, ppid_be: u32, assoc: i32) -> Vec<u8> {
        let mut payload = vec![0u8; 28];
        payload[0..2].copy_from_slice(&stream.to_ne_bytes());
        payload[2..4].copy_from_slice(&9u16.to_ne_bytes());
        payload[4..6].copy_from_slice(&1u16.to_ne_bytes());
        payload[8..12].copy_from_slice(&ppid_be.to_ne_bytes());
        payload[12..16].copy_from_slice(&1000u32.to_ne_bytes());
        payload[24..28].copy_from_slice(&assoc.to_ne_bytes());
        payload
    }

    #[test]
    fn sndinfo_matches_cmsg_macros() {
        let info = SendInfo::new(5, 18)
            .with_flags(SendFlags::UNORDERED)
            .with_context(7)
            .with_assoc_id(AssocId(3));
        let control = sndinfo_control(&info);

        // SAFETY: CMSG_SPACE and CMSG_LEN only compute lengths.
        let (expected_space, expected_len) = unsafe { (libc::CMSG_SPACE(16), libc::CMSG_LEN(16)) };
        assert_eq!(SNDINFO_SPACE, expected_space as usize);
        assert_eq!(
            usize::from_ne_bytes(control.0[0..8].try_into().unwrap()),
            expected_len as usize
        );
        assert_eq!(
            i32::from_ne_bytes(control.0[8..12].try_into().unwrap()),
            132
        );
        assert_eq!(i32::from_ne_bytes(control.0[12..16].try_into().unwrap()), 2);
        assert_eq!(u16::from_ne_bytes([control.0[16], control.0[17]]), 5);
        assert_eq!(u16::from_ne_bytes([control.0[18], control.0[19]]), 1);
        assert_eq!(&control.0[20..24], &[0, 0, 0, 18]);
        assert_eq!(i32::from_ne_bytes(control.0[28..32].try_into().unwrap()), 3);
    }

    #[test]
    fn parses_rcvinfo_and_nxtinfo() {
        let mut bytes = control_message(132, 3, &rcvinfo_payload(4, 60u32.to_be(), 11));
        let mut next = vec![0u8; 16];
        next[0..2].copy_from_slice(&2u16.to_ne_bytes());
        next[4..8].copy_from_slice(&18u32.to_be().to_ne_bytes());
        next[8..12].copy_from_slice(&500u32.to_ne_bytes());
        bytes.extend(control_message(132, 4, &next));

        let parsed = parse_control(&bytes);
        let rcv = parsed.rcvinfo.unwrap();
        assert_eq!(rcv.stream, 4);
        assert_eq!(rcv.ssn, 9);
        assert_eq!(rcv.flags, SendFlags::UNORDERED);
        assert_eq!(rcv.ppid, 60);
        assert_eq!(rcv.tsn, 1000);
        assert_eq!(rcv.assoc_id, AssocId(11));
        let nxt = parsed.nxtinfo.unwrap();
        assert_eq!(nxt.stream, 2);
        assert_eq!(nxt.ppid, 18);
        assert_eq!(nxt.length, 500);
    }

    #[test]
    fn skips_other_levels_and_short_payloads() {
        let mut bytes = control_message(libc::SOL_SOCKET, 3, &rcvinfo_payload(1, 0, 1));
        bytes.extend(control_message(132, 3, &[0u8; 10]));
        assert_eq!(parse_control(&bytes), ParsedControl::default());
    }

    #[test]
    fn hostile_lengths_stop_parsing() {
        let good = control_message(132, 3, &rcvinfo_payload(1, 0, 1));

        let mut too_long = good.clone();
        too_long[0..8].copy_from_slice(&(good.len() + 1).to_ne_bytes());
        assert_eq!(parse_control(&too_long), ParsedControl::default());

        let mut too_short = good.clone();
        too_short[0..8].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(parse_control(&too_short), ParsedControl::default());

        let mut huge = good.clone();
        huge[0..8].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(parse_control(&huge), ParsedControl::default());

        assert_eq!(parse_control(&good[..20]), ParsedControl::default());
        assert_eq!(parse_control(&[]), ParsedControl::default());
    }

    #[test]
    fn unaligned_tail_after_message_is_ignored() {
        let mut bytes = control_message(132, 3, &rcvinfo_payload(6, 0, 1));
        bytes.extend_from_slice(&[0xff; 7]);
        assert_eq!(parse_control(&bytes).rcvinfo.unwrap().stream, 6);
    }

    proptest::proptest! {
        /// Arbitrary control buffers, as a corrupt `recvmsg` result would be, never panic.
        #[test]
        fn arbitrary_control_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_control(&bytes);
        }
    }
}
