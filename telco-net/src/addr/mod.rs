//! IPv4 and IPv6 addresses on links: add, delete, list and flush, like `ip address`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pod = telco_net::netns::Netns::open("pod1")?.netlink()?;
//! // ip -n pod1 address add 10.1.0.5/24 dev eth0
//! pod.addresses().add("eth0", "10.1.0.5/24".parse()?)?;
//! assert_eq!(pod.addresses().list(Some("eth0"))?.len(), 1);
//! # Ok(())
//! # }
//! ```

mod prefix;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};

pub use prefix::IpPrefix;
pub(crate) use prefix::{from_bits, to_bits};

use crate::link::{LinkError, index_of};
use crate::netns::{Netlink, errno_of};

/// An error from an address request; it names the link, the namespace and the request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// The caller lacks `CAP_NET_ADMIN` in the namespace.
    #[error(
        "{request} {address} on link {link} in network namespace {netns}: CAP_NET_ADMIN required"
    )]
    PermissionDenied {
        /// The request.
        request: &'static str,
        /// The address.
        address: String,
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
    },
    /// The address is on the link already.
    #[error("address {address} already on link {link} in network namespace {netns}")]
    AlreadyExists {
        /// The address.
        address: String,
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
    },
    /// The kernel refused the request.
    #[error("{request} {address} on link {link} in network namespace {netns} failed")]
    Request {
        /// The request.
        request: &'static str,
        /// The address, or `*` for a dump.
        address: String,
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
        /// The cause.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// The link could not be found.
    #[error("{request} {address}: link lookup failed")]
    Link {
        /// The request.
        request: &'static str,
        /// The address.
        address: String,
        /// The cause.
        #[source]
        source: Box<LinkError>,
    },
    /// The netlink session thread is gone.
    #[error("{request} on link {link} in network namespace {netns}: netlink session closed")]
    SessionClosed {
        /// The request.
        request: &'static str,
        /// The link.
        link: String,
        /// The namespace.
        netns: String,
    },
}

/// An address on a link, as `RTM_GETADDR` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Address {
    /// The index of the link that carries it.
    pub link_index: u32,
    /// The address and its prefix length.
    pub prefix: IpPrefix,
}

impl Netlink {
    /// The address requests of this session (`ip address`).
    pub fn addresses(&self) -> Addresses<'_> {
        Addresses { netlink: self }
    }
}

/// The address requests of one [`Netlink`] session, like `ip [-n NS] address`.
#[derive(Debug, Clone, Copy)]
pub struct Addresses<'a> {
    netlink: &'a Netlink,
}

impl Addresses<'_> {
    /// Adds an address to a link, like `ip address add PREFIX dev LINK`.
    pub fn add(&self, link: &str, prefix: IpPrefix) -> Result<(), AddrError> {
        const REQUEST: &str = "RTM_NEWADDR";
        let context = Context::new(self.netlink, REQUEST, link, prefix.to_string());
        self.run(context, move |handle, context| async move {
            let index = context.index(&handle).await?;
            send_add(&handle, &context, index, prefix).await
        })
    }

    /// Removes an address from a link, like `ip address del PREFIX dev LINK`.
    pub fn delete(&self, link: &str, prefix: IpPrefix) -> Result<(), AddrError> {
        const REQUEST: &str = "RTM_DELADDR";
        let context = Context::new(self.netlink, REQUEST, link, prefix.to_string());
        self.run(context, move |handle, context| async move {
            let index = context.index(&handle).await?;
            let mut message = AddressMessage::default();
            message.header.family = if prefix.is_ipv4() {
                netlink_packet_route::AddressFamily::Inet
            } else {
                netlink_packet_route::AddressFamily::Inet6
            };
            message.header.index = index;
            message.header.prefix_len = prefix.len();
            message
                .attributes
                .push(AddressAttribute::Local(prefix.address()));
            message
                .attributes
                .push(AddressAttribute::Address(prefix.address()));
            handle
                .address()
                .del(message)
                .execute()
                .await
                .map_err(|source| context.error(source))
        })
    }

    /// Lists addresses, of one link or of all, like `ip address show [dev LINK]`.
    pub fn list(&self, link: Option<&str>) -> Result<Vec<Address>, AddrError> {
        const REQUEST: &str = "RTM_GETADDR dump";
        let context = Context::new(self.netlink, REQUEST, link.unwrap_or("*"), "*".to_owned());
        let filter = link.is_some();
        self.run(context, move |handle, context| async move {
            let mut request = handle.address().get();
            if filter {
                request = request.set_link_index_filter(context.index(&handle).await?);
            }
            let messages: Vec<AddressMessage> = request
                .execute()
                .try_collect()
                .await
                .map_err(|source| context.error(source))?;
            Ok(messages.iter().filter_map(address_of).collect())
        })
    }

    /// Removes every address of a link, like `ip address flush dev LINK`.
    pub fn flush(&self, link: &str) -> Result<(), AddrError> {
        for address in self.list(Some(link))? {
            self.delete(link, address.prefix)?;
        }
        Ok(())
    }

    fn run<R, F, Fut>(&self, context: Context, f: F) -> Result<R, AddrError>
    where
        R: Send + 'static,
        F: FnOnce(rtnetlink::Handle, Context) -> Fut + Send + 'static,
        Fut: Future<Output = Result<R, AddrError>>,
    {
        let closed = AddrError::SessionClosed {
            request: context.request,
            link: context.link.clone(),
            netns: context.netns.clone(),
        };
        self.netlink
            .call(move |handle| f(handle, context))
            .map_err(|_| closed)?
    }
}

/// Adds `prefix` to the link `index` (named `link`, for errors) with one `RTM_NEWADDR`, for
/// callers that already hold the index and run on the session thread of the namespace
/// `netns`.
pub(crate) async fn add_by_index(
    handle: &rtnetlink::Handle,
    netns: &str,
    link: &str,
    index: u32,
    prefix: IpPrefix,
) -> Result<(), AddrError> {
    let context = Context {
        request: "RTM_NEWADDR",
        link: link.to_owned(),
        address: prefix.to_string(),
        netns: netns.to_owned(),
    };
    send_add(handle, &context, index, prefix).await
}

async fn send_add(
    handle: &rtnetlink::Handle,
    context: &Context,
    index: u32,
    prefix: IpPrefix,
) -> Result<(), AddrError> {
    handle
        .address()
        .add(index, prefix.address(), prefix.len())
        .execute()
        .await
        .map_err(|source| context.error(source))
}

/// Reads the address out of an `RTM_NEWADDR` message (the local address for IPv4 point to
/// point links, else the address).
fn address_of(message: &AddressMessage) -> Option<Address> {
    let local = message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            AddressAttribute::Local(address) => Some(*address),
            _ => None,
        });
    let address = local.or_else(|| {
        message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                AddressAttribute::Address(address) => Some(*address),
                _ => None,
            })
    })?;
    Some(Address {
        link_index: message.header.index,
        prefix: IpPrefix::new(address, message.header.prefix_len)?,
    })
}

/// The subject of an address request, for its errors.
struct Context {
    request: &'static str,
    link: String,
    address: String,
    netns: String,
}

impl Context {
    fn new(netlink: &Netlink, request: &'static str, link: &str, address: String) -> Context {
        Context {
            request,
            link: link.to_owned(),
            address,
            netns: netlink.netns().to_owned(),
        }
    }

    async fn index(&self, handle: &rtnetlink::Handle) -> Result<u32, AddrError> {
        index_of(handle, &self.link, &self.netns)
            .await
            .map_err(|source| AddrError::Link {
                request: self.request,
                address: self.address.clone(),
                source: Box::new(source),
            })
    }

    fn error(&self, source: rtnetlink::Error) -> AddrError {
        let (request, address, link, netns) = (
            self.request,
            self.address.clone(),
            self.link.clone(),
            self.netns.clone(),
        );
        match errno_of(&source) {
            Some(libc::EPERM) => AddrError::PermissionDenied {
                request,
                address,
                link,
                netns,
            },
            Some(libc::EEXIST) => AddrError::AlreadyExists {
                address,
                link,
                netns,
            },
            _ => AddrError::Request {
                request,
                address,
                link,
                netns,
                source: Box::new(source),
            },
        }
    }
}
