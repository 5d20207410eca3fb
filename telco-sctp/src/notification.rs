//! SCTP notifications (RFC 6458 section 6.1) parsed from the bytes `recvmsg` returns with
//! `MSG_NOTIFICATION`, and the event types they are subscribed with (`SCTP_EVENT`).
//!
//! Every notification starts with `u16 sn_type, u16 sn_flags, u32 sn_length`. The parser checks
//! the declared length against the bytes received and against each struct's fixed size, so a
//! truncated or hostile buffer gives a [`NotificationError`], never a panic or an out-of-bounds
//! read. Offsets are those of Linux `include/uapi/linux/sctp.h` on x86_64; `sctp_paddr_change`
//! is packed there, so its fields after the address are not naturally aligned.

use std::net::SocketAddr;

use thiserror::Error;

use crate::addr;
use crate::info::{AssocId, SendFlags, SendInfo};
use crate::sys;

/// Length of the common notification header.
const HEADER_LEN: usize = 8;

/// An event type to subscribe to with `SCTP_EVENT` (the `se_type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// `SCTP_ASSOC_CHANGE`: an association came up, was lost, restarted, shut down or could
    /// not start.
    AssocChange,
    /// `SCTP_PEER_ADDR_CHANGE`: a peer address became reachable, unreachable, was added, removed
    /// or made primary.
    PeerAddrChange,
    /// `SCTP_SEND_FAILED`: the old send-failed event, carrying `sctp_sndrcvinfo`.
    SendFailed,
    /// `SCTP_REMOTE_ERROR`: the peer sent an ERROR chunk.
    RemoteError,
    /// `SCTP_SHUTDOWN_EVENT`: the peer started a graceful shutdown.
    Shutdown,
    /// `SCTP_PARTIAL_DELIVERY_EVENT`: a partially delivered message was aborted.
    PartialDelivery,
    /// `SCTP_ADAPTATION_INDICATION`: the peer's adaptation layer indication.
    AdaptationIndication,
    /// `SCTP_AUTHENTICATION_EVENT`: an SCTP-AUTH key event.
    Authentication,
    /// `SCTP_SENDER_DRY_EVENT`: every sent message has been acknowledged.
    SenderDry,
    /// `SCTP_STREAM_RESET_EVENT`: streams were reset.
    StreamReset,
    /// `SCTP_ASSOC_RESET_EVENT`: the association's TSNs were reset.
    AssocReset,
    /// `SCTP_STREAM_CHANGE_EVENT`: streams were added.
    StreamChange,
    /// `SCTP_SEND_FAILED_EVENT`: the RFC 6458 send-failed event, carrying `sctp_sndinfo`.
    SendFailedEvent,
}

impl Event {
    /// Every event type, in kernel order.
    pub const ALL: [Event; 13] = [
        Event::AssocChange,
        Event::PeerAddrChange,
        Event::SendFailed,
        Event::RemoteError,
        Event::Shutdown,
        Event::PartialDelivery,
        Event::AdaptationIndication,
        Event::Authentication,
        Event::SenderDry,
        Event::StreamReset,
        Event::AssocReset,
        Event::StreamChange,
        Event::SendFailedEvent,
    ];

    /// Returns the kernel's `sn_type` value of the event.
    pub const fn kind(self) -> u16 {
        match self {
            Event::AssocChange => sys::SCTP_ASSOC_CHANGE,
            Event::PeerAddrChange => sys::SCTP_PEER_ADDR_CHANGE,
            Event::SendFailed => sys::SCTP_SEND_FAILED,
            Event::RemoteError => sys::SCTP_REMOTE_ERROR,
            Event::Shutdown => sys::SCTP_SHUTDOWN_EVENT,
            Event::PartialDelivery => sys::SCTP_PARTIAL_DELIVERY_EVENT,
            Event::AdaptationIndication => sys::SCTP_ADAPTATION_INDICATION,
            Event::Authentication => sys::SCTP_AUTHENTICATION_EVENT,
            Event::SenderDry => sys::SCTP_SENDER_DRY_EVENT,
            Event::StreamReset => sys::SCTP_STREAM_RESET_EVENT,
            Event::AssocReset => sys::SCTP_ASSOC_RESET_EVENT,
            Event::StreamChange => sys::SCTP_STREAM_CHANGE_EVENT,
            Event::SendFailedEvent => sys::SCTP_SEND_FAILED_EVENT,
        }
    }
}

/// A notification that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NotificationError {
    /// Fewer bytes than the 8-byte notification header.
    #[error("notification of {len} bytes is shorter than its 8-byte header")]
    NoHeader {
        /// Bytes received.
        len: usize,
    },
    /// The header declares more bytes than were received.
    #[error("notification type {kind:#06x} declares {declared} bytes but {len} were received")]
    Truncated {
        /// `sn_type`.
        kind: u16,
        /// `sn_length`.
        declared: usize,
        /// Bytes received.
        len: usize,
    },
    /// The declared length is shorter than the fixed part of the notification's struct.
    #[error(
        "notification type {kind:#06x} of {declared} bytes is shorter than its {needed}-byte struct"
    )]
    TooShort {
        /// `sn_type`.
        kind: u16,
        /// `sn_length`.
        declared: usize,
        /// Fixed size of the struct.
        needed: usize,
    },
}

/// `sac_state` of an association change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AssocChangeState {
    /// `SCTP_COMM_UP`: the association is established.
    CommUp,
    /// `SCTP_COMM_LOST`: the association failed (ABORT received or retransmissions exhausted).
    CommLost,
    /// `SCTP_RESTART`: the peer restarted.
    Restart,
    /// `SCTP_SHUTDOWN_COMP`: the graceful shutdown completed.
    ShutdownComplete,
    /// `SCTP_CANT_STR_ASSOC`: the association could not be started.
    CantStartAssoc,
    /// A value this crate does not know.
    Other(u16),
}

impl AssocChangeState {
    fn from_raw(raw: u16) -> AssocChangeState {
        match raw {
            0 => AssocChangeState::CommUp,
            1 => AssocChangeState::CommLost,
            2 => AssocChangeState::Restart,
            3 => AssocChangeState::ShutdownComplete,
            4 => AssocChangeState::CantStartAssoc,
            other => AssocChangeState::Other(other),
        }
    }
}

/// `spc_state` of a peer address change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerAddrState {
    /// `SCTP_ADDR_AVAILABLE`: the address is reachable again.
    Available,
    /// `SCTP_ADDR_UNREACHABLE`: the address failed its heartbeats or retransmissions.
    Unreachable,
    /// `SCTP_ADDR_REMOVED`: the peer removed the address (ASCONF).
    Removed,
    /// `SCTP_ADDR_ADDED`: the peer added the address (ASCONF).
    Added,
    /// `SCTP_ADDR_MADE_PRIM`: the address became the primary path.
    MadePrimary,
    /// `SCTP_ADDR_CONFIRMED`: the address was confirmed by a heartbeat.
    Confirmed,
    /// `SCTP_ADDR_POTENTIALLY_FAILED`: the address passed its potentially-failed threshold.
    PotentiallyFailed,
    /// A value this crate does not know.
    Other(i32),
}

impl PeerAddrState {
    fn from_raw(raw: i32) -> PeerAddrState {
        match raw {
            0 => PeerAddrState::Available,
            1 => PeerAddrState::Unreachable,
            2 => PeerAddrState::Removed,
            3 => PeerAddrState::Added,
            4 => PeerAddrState::MadePrimary,
            5 => PeerAddrState::Confirmed,
            6 => PeerAddrState::PotentiallyFailed,
            other => PeerAddrState::Other(other),
        }
    }
}

/// `struct sctp_assoc_change`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssocChange {
    /// What happened.
    pub state: AssocChangeState,
    /// `sac_error`: the cause code of a lost association, else 0.
    pub error: u16,
    /// Outbound streams negotiated (the highest usable stream id is one less).
    pub outbound_streams: u16,
    /// Inbound streams negotiated.
    pub inbound_streams: u16,
    /// Association.
    pub assoc_id: AssocId,
    /// `sac_info`: the ABORT chunk for a lost association, the supported extensions for one
    /// that came up.
    pub info: Vec<u8>,
}

/// `struct sctp_paddr_change`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerAddrChange {
    /// Peer address; `None` if the kernel sent a family this crate cannot read.
    pub address: Option<SocketAddr>,
    /// New state of the address.
    pub state: PeerAddrState,
    /// `spc_error`: the reason (`sctp_sn_error`, such as 0 for failure threshold reached).
    pub error: i32,
    /// Association.
    pub assoc_id: AssocId,
}

/// `struct sctp_remote_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteError {
    /// Cause code of the ERROR chunk, in host byte order.
    pub error: u16,
    /// Association.
    pub assoc_id: AssocId,
    /// The ERROR chunk's causes.
    pub data: Vec<u8>,
}

/// `struct sctp_send_failed_event` (or the old `struct sctp_send_failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendFailed {
    /// True if the message had been put on the wire (`SCTP_DATA_SENT`), false if it never left
    /// (`SCTP_DATA_UNSENT`).
    pub sent: bool,
    /// `ssf_error`: the cause.
    pub error: u32,
    /// Send information of the message, including its context.
    pub info: SendInfo,
    /// Association.
    pub assoc_id: AssocId,
    /// The undelivered payload.
    pub data: Vec<u8>,
}

/// `struct sctp_pdapi_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartialDelivery {
    /// `pdapi_indication`: 0 (`SCTP_PARTIAL_DELIVERY_ABORTED`).
    pub indication: u32,
    /// Association.
    pub assoc_id: AssocId,
    /// Stream of the aborted message; `None` from kernels older than 4.x whose struct is 16
    /// bytes.
    pub stream: Option<u32>,
    /// Stream sequence number of the aborted message; `None` with `stream`.
    pub seq: Option<u32>,
}

/// `struct sctp_authkey_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthKeyEvent {
    /// Key number.
    pub key_number: u16,
    /// Alternative key number.
    pub alt_key_number: u16,
    /// `auth_indication`: new key 0, free key 1, no auth 2.
    pub indication: u32,
    /// Association.
    pub assoc_id: AssocId,
}

/// `struct sctp_stream_reset_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamReset {
    /// Incoming 0x1, outgoing 0x2, denied 0x4, failed 0x8.
    pub flags: u16,
    /// Association.
    pub assoc_id: AssocId,
    /// Streams that were reset; empty means all.
    pub streams: Vec<u16>,
}

/// `struct sctp_assoc_reset_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssocReset {
    /// Denied 0x4, failed 0x8.
    pub flags: u16,
    /// Association.
    pub assoc_id: AssocId,
    /// Next local TSN.
    pub local_tsn: u32,
    /// Next remote TSN.
    pub remote_tsn: u32,
}

/// `struct sctp_stream_change_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamChange {
    /// Denied 0x4, failed 0x8.
    pub flags: u16,
    /// Association.
    pub assoc_id: AssocId,
    /// Inbound streams now.
    pub inbound_streams: u16,
    /// Outbound streams now.
    pub outbound_streams: u16,
}

/// A notification (`union sctp_notification`), RFC 6458 section 6.1.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// `SCTP_ASSOC_CHANGE`.
    AssocChange(AssocChange),
    /// `SCTP_PEER_ADDR_CHANGE`.
    PeerAddrChange(PeerAddrChange),
    /// `SCTP_REMOTE_ERROR`.
    RemoteError(RemoteError),
    /// `SCTP_SEND_FAILED_EVENT` or the old `SCTP_SEND_FAILED`.
    SendFailed(SendFailed),
    /// `SCTP_SHUTDOWN_EVENT`: the peer sent SHUTDOWN, so no more data arrives.
    Shutdown {
        /// Association.
        assoc_id: AssocId,
    },
    /// `SCTP_PARTIAL_DELIVERY_EVENT`.
    PartialDelivery(PartialDelivery),
    /// `SCTP_ADAPTATION_INDICATION`.
    AdaptationIndication {
        /// The peer's adaptation layer indication.
        indication: u32,
        /// Association.
        assoc_id: AssocId,
    },
    /// `SCTP_AUTHENTICATION_EVENT`.
    Authentication(AuthKeyEvent),
    /// `SCTP_SENDER_DRY_EVENT`.
    SenderDry {
        /// Association.
        assoc_id: AssocId,
    },
    /// `SCTP_STREAM_RESET_EVENT`.
    StreamReset(StreamReset),
    /// `SCTP_ASSOC_RESET_EVENT`.
    AssocReset(AssocReset),
    /// `SCTP_STREAM_CHANGE_EVENT`.
    StreamChange(StreamChange),
    /// A notification type this crate does not parse, with its bytes after the header.
    Unknown {
        /// `sn_type`.
        kind: u16,
        /// `sn_flags`.
        flags: u16,
        /// Bytes after the 8-byte header, up to the declared length.
        data: Vec<u8>,
    },
}

impl Notification {
    /// Returns the association the notification is about, where it names one.
    pub fn assoc_id(&self) -> Option<AssocId> {
        match self {
            Notification::AssocChange(change) => Some(change.assoc_id),
            Notification::PeerAddrChange(change) => Some(change.assoc_id),
            Notification::RemoteError(error) => Some(error.assoc_id),
            Notification::SendFailed(failed) => Some(failed.assoc_id),
            Notification::Shutdown { assoc_id }
            | Notification::AdaptationIndication { assoc_id, .. }
            | Notification::SenderDry { assoc_id } => Some(*assoc_id),
            Notification::PartialDelivery(event) => Some(event.assoc_id),
            Notification::Authentication(event) => Some(event.assoc_id),
            Notification::StreamReset(event) => Some(event.assoc_id),
            Notification::AssocReset(event) => Some(event.assoc_id),
            Notification::StreamChange(event) => Some(event.assoc_id),
            Notification::Unknown { .. } => None,
        }
    }

    /// Parses one notification from the bytes of a complete (`MSG_EOR`) notification message.
    ///
    /// # Errors
    ///
    /// Fails if the buffer is shorter than the header, shorter than the length the header
    /// declares, or the declared length is shorter than the notification's fixed struct.
    pub fn parse(bytes: &[u8]) -> Result<Notification, NotificationError> {
        if bytes.len() < HEADER_LEN {
            return Err(NotificationError::NoHeader { len: bytes.len() });
        }
        let kind = u16_at(bytes, 0);
        let flags = u16_at(bytes, 2);
        let declared = usize::try_from(u32_at(bytes, 4)).unwrap_or(usize::MAX);
        if declared > bytes.len() {
            return Err(NotificationError::Truncated {
                kind,
                declared,
                len: bytes.len(),
            });
        }
        let body = Body {
            kind,
            bytes: &bytes[..declared],
        };
        let notification = match kind {
            sys::SCTP_ASSOC_CHANGE => Notification::AssocChange(body.assoc_change()?),
            sys::SCTP_PEER_ADDR_CHANGE => Notification::PeerAddrChange(body.peer_addr_change()?),
            sys::SCTP_REMOTE_ERROR => Notification::RemoteError(body.remote_error()?),
            sys::SCTP_SEND_FAILED => Notification::SendFailed(body.send_failed_old(flags)?),
            sys::SCTP_SEND_FAILED_EVENT => Notification::SendFailed(body.send_failed(flags)?),
            sys::SCTP_SHUTDOWN_EVENT => Notification::Shutdown {
                assoc_id: body.fixed(12)?.assoc_at(8),
            },
            sys::SCTP_PARTIAL_DELIVERY_EVENT => {
                Notification::PartialDelivery(body.partial_delivery()?)
            }
            sys::SCTP_ADAPTATION_INDICATION => {
                let body = body.fixed(16)?;
                Notification::AdaptationIndication {
                    indication: body.u32(8),
                    assoc_id: body.assoc_at(12),
                }
            }
            sys::SCTP_AUTHENTICATION_EVENT => {
                let body = body.fixed(20)?;
                Notification::Authentication(AuthKeyEvent {
                    key_number: body.u16(8),
                    alt_key_number: body.u16(10),
                    indication: body.u32(12),
                    assoc_id: body.assoc_at(16),
                })
            }
            sys::SCTP_SENDER_DRY_EVENT => Notification::SenderDry {
                assoc_id: body.fixed(12)?.assoc_at(8),
            },
            sys::SCTP_STREAM_RESET_EVENT => Notification::StreamReset(body.stream_reset(flags)?),
            sys::SCTP_ASSOC_RESET_EVENT => {
                let body = body.fixed(20)?;
                Notification::AssocReset(AssocReset {
                    flags,
                    assoc_id: body.assoc_at(8),
                    local_tsn: body.u32(12),
                    remote_tsn: body.u32(16),
                })
            }
            sys::SCTP_STREAM_CHANGE_EVENT => {
                let body = body.fixed(16)?;
                Notification::StreamChange(StreamChange {
                    flags,
                    assoc_id: body.assoc_at(8),
                    inbound_streams: body.u16(12),
                    outbound_streams: body.u16(14),
                })
            }
            _ => Notification::Unknown {
                kind,
                flags,
                data: body.bytes[HEADER_LEN.min(declared)..].to_vec(),
            },
        };
        Ok(notification)
    }
}

/// The declared bytes of one notification, with readers at offsets that `fixed` has checked.
#[derive(Clone, Copy)]
struct Body<'a> {
    kind: u16,
    bytes: &'a [u8],
}

impl<'a> Body<'a> {
    /// Checks that the notification has at least `needed` bytes.
    fn fixed(self, needed: usize) -> Result<Body<'a>, NotificationError> {
        if self.bytes.len() < needed {
            return Err(NotificationError::TooShort {
                kind: self.kind,
                declared: self.bytes.len(),
                needed,
            });
        }
        Ok(self)
    }

    fn u16(self, offset: usize) -> u16 {
        u16_at(self.bytes, offset)
    }

    fn u32(self, offset: usize) -> u32 {
        u32_at(self.bytes, offset)
    }

    fn assoc_at(self, offset: usize) -> AssocId {
        AssocId(u32_at(self.bytes, offset).cast_signed())
    }

    fn tail(self, offset: usize) -> Vec<u8> {
        self.bytes[offset..].to_vec()
    }

    fn assoc_change(self) -> Result<AssocChange, NotificationError> {
        let body = self.fixed(20)?;
        Ok(AssocChange {
            state: AssocChangeState::from_raw(body.u16(8)),
            error: body.u16(10),
            outbound_streams: body.u16(12),
            inbound_streams: body.u16(14),
            assoc_id: body.assoc_at(16),
            info: body.tail(20),
        })
    }

    fn peer_addr_change(self) -> Result<PeerAddrChange, NotificationError> {
        let body = self.fixed(148)?;
        Ok(PeerAddrChange {
            address: addr::read_sockaddr(&body.bytes[8..136]).map(|(address, _)| address),
            state: PeerAddrState::from_raw(body.u32(136).cast_signed()),
            error: body.u32(140).cast_signed(),
            assoc_id: body.assoc_at(144),
        })
    }

    fn remote_error(self) -> Result<RemoteError, NotificationError> {
        let body = self.fixed(16)?;
        Ok(RemoteError {
            error: u16::from_be_bytes([body.bytes[8], body.bytes[9]]),
            assoc_id: body.assoc_at(12),
            data: body.tail(16),
        })
    }

    fn send_failed(self, flags: u16) -> Result<SendFailed, NotificationError> {
        let body = self.fixed(32)?;
        let info = sys::sctp_sndinfo {
            snd_sid: body.u16(12),
            snd_flags: body.u16(14),
            snd_ppid: body.u32(16),
            snd_context: body.u32(20),
            snd_assoc_id: body.u32(24).cast_signed(),
        };
        Ok(SendFailed {
            sent: flags & 1 != 0,
            error: body.u32(8),
            info: SendInfo::from_sys(&info),
            assoc_id: body.assoc_at(28),
            data: body.tail(32),
        })
    }

    fn send_failed_old(self, flags: u16) -> Result<SendFailed, NotificationError> {
        let body = self.fixed(48)?;
        let info = SendInfo::new(body.u16(12), u32::from_be(body.u32(20)))
            .with_flags(SendFlags::from_bits(body.u16(16)))
            .with_context(body.u32(24))
            .with_assoc_id(body.assoc_at(40));
        Ok(SendFailed {
            sent: flags & 1 != 0,
            error: body.u32(8),
            info,
            assoc_id: body.assoc_at(44),
            data: body.tail(48),
        })
    }

    fn partial_delivery(self) -> Result<PartialDelivery, NotificationError> {
        let body = self.fixed(16)?;
        let extended = body.bytes.len() >= 24;
        Ok(PartialDelivery {
            indication: body.u32(8),
            assoc_id: body.assoc_at(12),
            stream: extended.then(|| body.u32(16)),
            seq: extended.then(|| body.u32(20)),
        })
    }

    fn stream_reset(self, flags: u16) -> Result<StreamReset, NotificationError> {
        let body = self.fixed(12)?;
        let streams = body.bytes[12..]
            .chunks_exact(2)
            .map(|pair| u16::from_ne_bytes([pair[0], pair[1]]))
            .collect();
        Ok(StreamReset {
            flags,
            assoc_id: body.assoc_at(8),
            streams,
        })
    }
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

#[cfg(test)]
mod tests;
