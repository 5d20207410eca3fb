//! [`LinkError`]: what can go wrong with a link request.

use std::io;

use crate::netns::{NetnsError, errno_of};

/// An error from a link request. Each variant names the link, the namespace (its name, path or
/// `current`) and the request, written the way `ip link` would (`RTM_NEWLINK macvlan`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The caller lacks `CAP_NET_ADMIN` in the namespace.
    #[error("{request} for link {link} in network namespace {netns}: CAP_NET_ADMIN required")]
    PermissionDenied {
        /// The request.
        request: &'static str,
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
    },
    /// The kernel refused to create the link with `EOPNOTSUPP`: it lacks the link kind, or
    /// an option of the request (such as bridge VLAN filtering).
    #[error(
        "kernel lacks {kind} link support or an option of the request (creating {link} in network namespace {netns}); load the {module} module or drop the option"
    )]
    KindNotSupported {
        /// The kind, as `ip link add ... type KIND` spells it.
        kind: &'static str,
        /// The module that provides it.
        module: &'static str,
        /// The link that was to be made.
        link: String,
        /// The namespace.
        netns: String,
    },
    /// No link has this name (or index).
    #[error("link {link} not found in network namespace {netns}")]
    NotFound {
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
    },
    /// A link with this name exists already.
    #[error("link {link} already exists in network namespace {netns}")]
    AlreadyExists {
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
    },
    /// The kernel refused the request, or the netlink socket failed.
    #[error("{request} for link {link} in network namespace {netns} failed")]
    Request {
        /// The request.
        request: &'static str,
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
        /// The cause.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// A tap device call (`/dev/net/tun` ioctl) failed.
    #[error("{call} for tap {link} in network namespace {netns} failed")]
    Tap {
        /// The call, such as `ioctl(TUNSETIFF)`.
        call: &'static str,
        /// The tap.
        link: String,
        /// The namespace.
        netns: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A name is not a valid interface name.
    #[error("invalid interface name for {request}")]
    InvalidName {
        /// The request.
        request: &'static str,
        /// The reason for the rejection.
        #[source]
        source: telco_core::ParseError,
    },
    /// A namespace given to the request could not be used.
    #[error("{request} for link {link}: namespace unusable")]
    Netns {
        /// The request.
        request: &'static str,
        /// The link.
        link: String,
        /// The cause.
        #[source]
        source: NetnsError,
    },
    /// The request combines options that this crate cannot send together.
    #[error("{request} for link {link}: {reason}")]
    Unsupported {
        /// The request.
        request: &'static str,
        /// The link.
        link: String,
        /// The combination and what to do instead.
        reason: &'static str,
    },
    /// The netlink session thread is gone.
    #[error("{request} for link {link} in network namespace {netns}: netlink session closed")]
    SessionClosed {
        /// The request.
        request: &'static str,
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
    },
}

impl LinkError {
    /// Maps a netlink error to the variant its errno calls for.
    pub(crate) fn netlink(
        request: &'static str,
        link: impl Into<String>,
        netns: &str,
        source: rtnetlink::Error,
    ) -> Self {
        let link = link.into();
        let netns = netns.to_owned();
        match errno_of(&source) {
            Some(libc::EPERM) => LinkError::PermissionDenied {
                request,
                link,
                netns,
            },
            Some(libc::ENODEV) => LinkError::NotFound { link, netns },
            Some(libc::EEXIST) => LinkError::AlreadyExists { link, netns },
            _ => LinkError::Request {
                request,
                link,
                netns,
                source: Box::new(source),
            },
        }
    }

    /// Returns true when the link does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, LinkError::NotFound { .. })
    }
}
