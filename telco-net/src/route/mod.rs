//! Routes: add, delete and list, with a gateway, an output link, a table and a metric, like
//! `ip route`.
//!
//! ```no_run
//! use telco_net::route::Route;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pod = telco_net::netns::Netns::open("pod1")?.netlink()?;
//! // ip -n pod1 route add default via 10.1.0.1 dev eth0
//! pod.routes().add(&Route::default_via("10.1.0.1".parse()?).dev("eth0"))?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::RouteMessageBuilder;

use crate::addr::IpPrefix;
use crate::link::{Link, LinkError, index_of};
use crate::netns::{Netlink, errno_of};

/// The main routing table (`table main`).
pub const MAIN_TABLE: u32 = RouteHeader::RT_TABLE_MAIN as u32;

/// An error from a route request; it names the route, the namespace and the request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The caller lacks `CAP_NET_ADMIN` in the namespace.
    #[error("{request} {route} in network namespace {netns}: CAP_NET_ADMIN required")]
    PermissionDenied {
        /// The request.
        request: &'static str,
        /// The route, as `ip route` prints it.
        route: String,
        /// The namespace.
        netns: String,
    },
    /// The route exists already.
    #[error("route {route} already exists in network namespace {netns}")]
    AlreadyExists {
        /// The route.
        route: String,
        /// The namespace.
        netns: String,
    },
    /// The kernel refused the request.
    #[error("{request} {route} in network namespace {netns} failed")]
    Request {
        /// The request.
        request: &'static str,
        /// The route.
        route: String,
        /// The namespace.
        netns: String,
        /// The cause.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// The route's gateway and destination are of different families.
    #[error("route {route}: gateway and destination are of different IP families")]
    MixedFamilies {
        /// The route.
        route: String,
    },
    /// The output link could not be found.
    #[error("{request} {route}: link lookup failed")]
    Link {
        /// The request.
        request: &'static str,
        /// The route.
        route: String,
        /// The cause.
        #[source]
        source: Box<LinkError>,
    },
    /// The netlink session thread is gone.
    #[error("{request} {route} in network namespace {netns}: netlink session closed")]
    SessionClosed {
        /// The request.
        request: &'static str,
        /// The route.
        route: String,
        /// The namespace.
        netns: String,
    },
}

/// A unicast route: `ip route add DESTINATION [via GATEWAY] [dev LINK] [table T] [metric M]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Route {
    /// `dst`: the destination; `0.0.0.0/0` or `::/0` for the default route.
    pub destination: IpPrefix,
    /// `gw`: the next hop; none for a directly connected destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// `dev`: the output link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// `table`: the routing table; the main table when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// `metric`: the priority; lower wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
}

impl Route {
    /// A route to `destination`.
    pub fn to(destination: IpPrefix) -> Route {
        Route {
            destination,
            gateway: None,
            dev: None,
            table: None,
            metric: None,
        }
    }

    /// The default route through `gateway` (`default via GATEWAY`).
    pub fn default_via(gateway: IpAddr) -> Route {
        let any = match gateway {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        Route::to(IpPrefix::host(any).network_of_len(0)).via(gateway)
    }

    /// Sets the gateway (`via GATEWAY`).
    pub fn via(mut self, gateway: IpAddr) -> Route {
        self.gateway = Some(gateway);
        self
    }

    /// Sets the output link (`dev LINK`).
    pub fn dev(mut self, link: &str) -> Route {
        self.dev = Some(link.to_owned());
        self
    }

    /// Sets the table (`table T`).
    pub fn table(mut self, table: u32) -> Route {
        self.table = Some(table);
        self
    }

    /// Sets the metric (`metric M`).
    pub fn metric(mut self, metric: u32) -> Route {
        self.metric = Some(metric);
        self
    }

    /// Returns true for a default route.
    pub fn is_default(&self) -> bool {
        self.destination.is_empty()
    }

    fn message(&self, oif: Option<u32>) -> Result<RouteMessage, RouteError> {
        let mixed = || RouteError::MixedFamilies {
            route: self.to_string(),
        };
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(self.destination.address(), self.destination.len())
            .map_err(|_| mixed())?;
        if let Some(gateway) = self.gateway {
            if gateway.is_ipv4() != self.destination.is_ipv4() {
                return Err(mixed());
            }
            builder = builder.gateway(gateway).map_err(|_| mixed())?;
        }
        if let Some(oif) = oif {
            builder = builder.output_interface(oif);
        }
        if let Some(table) = self.table {
            builder = builder.table_id(table);
        }
        if let Some(metric) = self.metric {
            builder = builder.priority(metric);
        }
        let scope = if self.gateway.is_none() && self.dev.is_some() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        Ok(builder
            .scope(scope)
            .protocol(RouteProtocol::Boot)
            .kind(RouteType::Unicast)
            .build())
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_default() {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.destination)?;
        }
        if let Some(gateway) = self.gateway {
            write!(f, " via {gateway}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        if let Some(table) = self.table {
            write!(f, " table {table}")?;
        }
        if let Some(metric) = self.metric {
            write!(f, " metric {metric}")?;
        }
        Ok(())
    }
}

impl IpPrefix {
    /// The subnet of this address with another prefix length.
    fn network_of_len(self, len: u8) -> IpPrefix {
        IpPrefix::new(self.address(), len).unwrap_or(self).network()
    }
}

impl Netlink {
    /// The route requests of this session (`ip route`).
    pub fn routes(&self) -> Routes<'_> {
        Routes { netlink: self }
    }
}

/// The route requests of one [`Netlink`] session, like `ip [-n NS] route`.
#[derive(Debug, Clone, Copy)]
pub struct Routes<'a> {
    netlink: &'a Netlink,
}

impl Routes<'_> {
    /// Adds a route, like `ip route add ROUTE`.
    pub fn add(&self, route: &Route) -> Result<(), RouteError> {
        self.send("RTM_NEWROUTE", route, true)
    }

    /// Deletes a route, like `ip route del ROUTE`.
    pub fn delete(&self, route: &Route) -> Result<(), RouteError> {
        self.send("RTM_DELROUTE", route, false)
    }

    /// Lists the unicast routes of one family in a table (all tables when `None`), like
    /// `ip [-6] route show table T`. Routes without a destination attribute are default
    /// routes.
    pub fn list(&self, ipv6: bool, table: Option<u32>) -> Result<Vec<Route>, RouteError> {
        const REQUEST: &str = "RTM_GETROUTE dump";
        let label = self.netlink.netns().to_owned();
        let family = if ipv6 {
            netlink_packet_route::AddressFamily::Inet6
        } else {
            netlink_packet_route::AddressFamily::Inet
        };
        let (messages, names) = self
            .netlink
            .call(move |handle| async move {
                let mut request = RouteMessageBuilder::<IpAddr>::new().build();
                request.header.address_family = family;
                let routes = handle
                    .route()
                    .get(request)
                    .execute()
                    .try_collect::<Vec<_>>()
                    .await?;
                let links = handle
                    .link()
                    .get()
                    .execute()
                    .try_collect::<Vec<_>>()
                    .await?;
                let names: HashMap<u32, String> = links
                    .iter()
                    .map(|message| (message.header.index, Link::from_message(message).name))
                    .collect();
                Ok::<_, rtnetlink::Error>((routes, names))
            })
            .map_err(|_| RouteError::SessionClosed {
                request: REQUEST,
                route: "*".to_owned(),
                netns: label.clone(),
            })?
            .map_err(|source| RouteError::Request {
                request: REQUEST,
                route: "*".to_owned(),
                netns: label,
                source: Box::new(source),
            })?;
        Ok(messages
            .iter()
            .filter(|message| message.header.kind == RouteType::Unicast)
            .filter_map(|message| route_of(message, ipv6, &names))
            .filter(|route| table.is_none_or(|table| route.table == Some(table)))
            .collect())
    }

    fn send(&self, request: &'static str, route: &Route, add: bool) -> Result<(), RouteError> {
        let netns = self.netlink.netns().to_owned();
        let route = route.clone();
        let text = route.to_string();
        let closed = RouteError::SessionClosed {
            request,
            route: text.clone(),
            netns: netns.clone(),
        };
        self.netlink
            .call(move |handle| async move {
                let oif = match &route.dev {
                    Some(dev) => Some(index_of(&handle, dev, &netns).await.map_err(|source| {
                        RouteError::Link {
                            request,
                            route: text.clone(),
                            source: Box::new(source),
                        }
                    })?),
                    None => None,
                };
                send_message(&handle, request, &route, oif, add, &netns).await
            })
            .map_err(|_| closed)?
    }
}

/// Adds `route` with the output link `oif` (an index the caller looked up, in place of
/// [`Route::dev`]) with one `RTM_NEWROUTE`, for callers that run on the session thread of
/// the namespace `netns`.
pub(crate) async fn add_with_oif(
    handle: &rtnetlink::Handle,
    route: &Route,
    oif: u32,
    netns: &str,
) -> Result<(), RouteError> {
    send_message(handle, "RTM_NEWROUTE", route, Some(oif), true, netns).await
}

async fn send_message(
    handle: &rtnetlink::Handle,
    request: &'static str,
    route: &Route,
    oif: Option<u32>,
    add: bool,
    netns: &str,
) -> Result<(), RouteError> {
    let text = route.to_string();
    let message = route.message(oif)?;
    let result = if add {
        handle.route().add(message).execute().await
    } else {
        handle.route().del(message).execute().await
    };
    result.map_err(|source| match errno_of(&source) {
        Some(libc::EPERM) => RouteError::PermissionDenied {
            request,
            route: text,
            netns: netns.to_owned(),
        },
        Some(libc::EEXIST) => RouteError::AlreadyExists {
            route: text,
            netns: netns.to_owned(),
        },
        _ => RouteError::Request {
            request,
            route: text,
            netns: netns.to_owned(),
            source: Box::new(source),
        },
    })
}

/// Reads a [`Route`] out of an `RTM_NEWROUTE` message, naming the output link from `names`
/// (its index as text when the link is unknown).
fn route_of(message: &RouteMessage, ipv6: bool, names: &HashMap<u32, String>) -> Option<Route> {
    let any = if ipv6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let mut destination = any;
    let mut route = Route::to(IpPrefix::new(any, 0)?);
    route.table = Some(u32::from(message.header.table));
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(address) => destination = ip_of(address)?,
            RouteAttribute::Gateway(address) => route.gateway = ip_of(address),
            RouteAttribute::Oif(index) => {
                route.dev = Some(
                    names
                        .get(index)
                        .cloned()
                        .unwrap_or_else(|| index.to_string()),
                );
            }
            RouteAttribute::Table(table) => route.table = Some(*table),
            RouteAttribute::Priority(metric) => route.metric = Some(*metric),
            _ => {}
        }
    }
    route.destination = IpPrefix::new(destination, message.header.destination_prefix_length)?;
    Some(route)
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}
