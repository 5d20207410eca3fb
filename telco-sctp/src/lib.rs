//! SCTP sockets for Linux: the kernel's SCTP stack through the sockets API of RFC 6458, as the
//! kernel implements it, for S1AP, NGAP, Diameter and SIGTRAN.
//!
//! - One-to-one sockets ([`SctpListener`], [`SctpStream`]) and one-to-many sockets
//!   ([`OneToManySocket`]), IPv4 and IPv6, built on `socket2`.
//! - Multi-homing: bind several addresses and add or remove them later
//!   ([`SctpOptions::bindx_add`], [`SctpOptions::bindx_remove`]), connect to several peer
//!   addresses with `sctp_connectx`, set the primary path, list local and peer addresses.
//! - Peel an association off a one-to-many socket ([`OneToManySocket::peeloff`]).
//! - Per-message stream, PPID, flags and context ([`SendInfo`], `SCTP_SNDINFO`), and the
//!   receive side's [`RecvInfo`] (`SCTP_RCVINFO`) and [`NextInfo`] (`SCTP_NXTINFO`). Messages
//!   larger than one read come back whole from `recv` or in marked parts from `recv_part`.
//! - Notifications parsed into [`Notification`], subscribed one [`Event`] at a time with
//!   `SCTP_EVENT`.
//! - The association options of [`SctpOptions`]: INITMSG, RTOINFO, ASSOCINFO,
//!   PEER_ADDR_PARAMS, NODELAY, DEFAULT_SNDINFO, MAXSEG, STATUS, per-path info.
//! - With the `tokio` feature, the same sockets on tokio in [`tokio`](crate::tokio).
//!
//! It needs no libsctp: the lksctp-tools helpers are socket options, called directly.
//!
//! ```no_run
//! use telco_sctp::{Received, SctpListener, SendInfo};
//!
//! # fn main() -> Result<(), telco_sctp::SctpError> {
//! let listener = SctpListener::bind(&["0.0.0.0:36412".parse().unwrap()])?;
//! let (stream, _peer) = listener.accept()?;
//! while let Received::Message(message) = stream.recv()? {
//!     let reply = SendInfo::new(message.stream(), message.ppid());
//!     stream.send(&message.data, &reply)?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Kernel support
//!
//! A kernel without SCTP (no `CONFIG_IP_SCTP`, or the `sctp` module not loaded and not
//! loadable) fails every socket creation with [`SctpError::NoKernelSupport`]. [`probe`] reports it
//! beforehand without creating a socket, so it does not trigger a module load.
//!
//! # When not to use it
//!
//! This is kernel SCTP. For SCTP over UDP or DTLS in user space (WebRTC data channels), use a
//! user-space stack such as `sctp-proto`; running both on one host makes the kernel abort the
//! user-space stack's associations as out-of-the-blue packets.

mod addr;
mod cmsg;
mod error;
mod ext;
mod info;
pub mod notification;
mod one_to_many;
mod options;
mod probe;
mod raw;
mod recv;
mod socket;
mod stream;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use error::SctpError;
pub use ext::SctpOptions;
pub use info::{AssocId, NextInfo, RecvInfo, SendFlags, SendInfo};
pub use notification::{Event, Notification, NotificationError};
pub use one_to_many::OneToManySocket;
pub use options::{
    AssocParams, AssocState, InitMsg, PathState, PeerAddrInfo, PeerAddrParams, RtoInfo, SppFlags,
    Status,
};
pub use probe::{Support, probe, probe_in};
pub use recv::{DEFAULT_MAX_MESSAGE_SIZE, Message, Received, RecvPart};
pub use socket::SctpBuilder;
pub use stream::{SctpListener, SctpStream};

/// Well-known SCTP ports and payload protocol identifiers of telecom protocols.
pub mod ports {
    /// S1AP (eNB to MME), 3GPP TS 36.412: port.
    pub const S1AP_PORT: u16 = 36412;
    /// S1AP payload protocol identifier.
    pub const S1AP_PPID: u32 = 18;
    /// X2AP (eNB to eNB), 3GPP TS 36.422: port.
    pub const X2AP_PORT: u16 = 36422;
    /// X2AP payload protocol identifier.
    pub const X2AP_PPID: u32 = 27;
    /// NGAP (gNB to AMF), 3GPP TS 38.412: port.
    pub const NGAP_PORT: u16 = 38412;
    /// NGAP payload protocol identifier.
    pub const NGAP_PPID: u32 = 60;
    /// NGAP over DTLS payload protocol identifier (RFC 6083).
    pub const NGAP_DTLS_PPID: u32 = 66;
    /// Diameter, RFC 6733: port.
    pub const DIAMETER_PORT: u16 = 3868;
    /// Diameter payload protocol identifier.
    pub const DIAMETER_PPID: u32 = 46;
    /// M3UA (SIGTRAN), RFC 4666: port.
    pub const M3UA_PORT: u16 = 2905;
    /// M3UA payload protocol identifier.
    pub const M3UA_PPID: u32 = 3;
}

#[cfg(test)]
mod send_sync {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<SctpListener>();
        assert_send_sync::<SctpStream>();
        assert_send_sync::<OneToManySocket>();
        assert_send_sync::<SctpBuilder>();
        assert_send_sync::<SctpError>();
        assert_send_sync::<Notification>();
        assert_send_sync::<Received>();
        assert_send_sync::<Status>();
        assert_send_sync::<Support>();
    }
}
