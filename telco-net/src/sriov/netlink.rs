//! Helpers shared by the module's netlink requests.

use super::SriovError;
use crate::netns::Netlink;

/// Maps a closed [`Netlink`] session to an error.
pub(crate) fn session_closed(netlink: &Netlink, interface: &str) -> SriovError {
    SriovError::NetlinkSocket(std::io::Error::other(format!(
        "netlink session in network namespace {} closed before the request on {interface} ran",
        netlink.netns()
    )))
}

/// Returns the errno of a netlink error reply, as a positive number.
pub(crate) fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|code| code.get().abs()),
        _ => None,
    }
}

/// Creates a [`SriovError::Netlink`], or [`SriovError::PermissionDenied`] for `EPERM`.
pub(crate) fn error(request: &str, interface: &str, source: rtnetlink::Error) -> SriovError {
    if errno(&source) == Some(libc::EPERM) {
        return SriovError::PermissionDenied {
            operation: format!("netlink {request} on {interface}"),
        };
    }
    SriovError::Netlink {
        request: request.to_owned(),
        interface: interface.to_owned(),
        source: Box::new(source),
    }
}
