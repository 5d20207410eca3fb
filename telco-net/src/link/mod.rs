//! Links: create veth pairs, bridges, macvlan, ipvlan, VLAN, dummy and tap links, change them
//! (up, down, MTU, MAC, name, altnames, bridge port, namespace) and delete them.
//!
//! Every request goes through a [`Netlink`] session, which fixes the namespace it acts in:
//!
//! ```no_run
//! use telco_net::link::{Bridge, Macvlan, MacvlanMode, Veth};
//! use telco_net::netns::{Netlink, Netns};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pod = Netns::create("pod1")?;
//! let host = Netlink::current()?;
//! let links = host.links();
//! links.add(Bridge::new("br-pods").up())?;                          // ip link add br-pods type bridge
//! links.add(Veth::new("veth-pod1", "eth0").peer_netns(&pod))?;     // ... type veth peer name eth0 netns pod1
//! links.set("veth-pod1").master("br-pods").up().apply()?;          // ip link set veth-pod1 master br-pods up
//! links.add(Macvlan::new("mv0", "br-pods").mode(MacvlanMode::Bridge).netns(&pod))?;
//! pod.netlink()?.links().set("eth0").mtu(1450).up().apply()?;      // ip -n pod1 link set eth0 mtu 1450 up
//! # Ok(())
//! # }
//! ```
//!
//! Kinds the build kernel lacks (dummy, VLAN, ipvlan) report
//! [`LinkError::KindNotSupported`] with the module to load.
//!
//! Tap devices are not made over netlink (the tun driver refuses `RTM_NEWLINK`): [`Tap`] opens
//! `/dev/net/tun` inside the session's namespace, as `ip tuntap add` does.

mod builder;
mod change;
mod error;
mod info;
mod kinds;
mod tap;

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

pub use builder::{LinkBuilder, LinkKind};
pub use change::LinkChange;
pub use error::LinkError;
pub use info::Link;
pub use kinds::{
    Bridge, Dummy, Ipvlan, IpvlanMode, Macvlan, MacvlanMode, Veth, Vlan, VlanTagProtocol,
};
pub use tap::Tap;

use crate::netns::{Netlink, errno_of};

impl Netlink {
    /// The link requests of this session (`ip link`).
    pub fn links(&self) -> Links<'_> {
        Links { netlink: self }
    }
}

/// The link requests of one [`Netlink`] session, like `ip [-n NS] link`.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    netlink: &'a Netlink,
}

impl<'a> Links<'a> {
    /// Creates a link, like `ip link add`. With an alias ([`LinkBuilder::alias`]) this takes
    /// a second request, because the kernel ignores the alias in `RTM_NEWLINK`.
    pub fn add<K: LinkKind>(&self, request: LinkBuilder<K>) -> Result<(), LinkError> {
        const REQUEST: &str = "RTM_NEWLINK";
        let netns_label = self.netlink.netns().to_owned();
        let name = request.name.clone();
        let mut request = request;
        let target = match request.netns.take() {
            None => None,
            Some(Ok(netns)) => Some(netns),
            Some(Err(source)) => {
                return Err(LinkError::Netns {
                    request: REQUEST,
                    link: name,
                    source,
                });
            }
        };
        if target.is_some() && (request.alias.is_some() || request.master.is_some()) {
            return Err(LinkError::Unsupported {
                request: REQUEST,
                link: name,
                reason: "alias and master apply only to links created in the session's own \
                         namespace, so set them with Links::set in the target namespace",
            });
        }
        let label = netns_label.clone();
        let result = self.call(REQUEST, &name, move |handle| async move {
            let parent = match request.kind.parent() {
                Some(parent) => Some(index_of(&handle, parent, &label).await?),
                None => None,
            };
            let master = match &request.master {
                Some(master) => Some(index_of(&handle, master, &label).await?),
                None => None,
            };
            let message = request.message(parent, master, target.as_ref());
            handle
                .link()
                .add(message)
                .execute()
                .await
                .map_err(|source| match errno_of(&source) {
                    Some(libc::EOPNOTSUPP) => LinkError::KindNotSupported {
                        kind: K::KIND,
                        module: K::MODULE,
                        link: request.name.clone(),
                        netns: label.clone(),
                    },
                    _ => LinkError::netlink(REQUEST, request.name.as_str(), &label, source),
                })?;
            match &request.alias {
                Some(alias) => set_alias_or_delete(&handle, &request.name, alias, &label).await,
                None => Ok(()),
            }
        })?;
        tracing::debug!(link = %name, kind = K::KIND, netns = %netns_label, "created link");
        result
    }

    /// Looks a link up by name, like `ip link show NAME`.
    pub fn get(&self, name: &str) -> Result<Link, LinkError> {
        let label = self.netlink.netns().to_owned();
        let owned = name.to_owned();
        self.call("RTM_GETLINK", name, move |handle| async move {
            let message = link_message(&handle, &owned, &label).await?;
            Ok(Link::from_message(&message))
        })?
    }

    /// Looks a link up by name; `None` when there is none.
    pub fn find(&self, name: &str) -> Result<Option<Link>, LinkError> {
        match self.get(name) {
            Ok(link) => Ok(Some(link)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Lists every link, like `ip link show`.
    pub fn list(&self) -> Result<Vec<Link>, LinkError> {
        let label = self.netlink.netns().to_owned();
        self.call("RTM_GETLINK dump", "*", move |handle| async move {
            let messages: Vec<_> = handle
                .link()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|source| LinkError::netlink("RTM_GETLINK dump", "*", &label, source))?;
            Ok(messages.iter().map(Link::from_message).collect())
        })?
    }

    /// Deletes a link, like `ip link del NAME`. Deleting one end of a veth pair deletes both.
    pub fn delete(&self, name: &str) -> Result<(), LinkError> {
        const REQUEST: &str = "RTM_DELLINK";
        let label = self.netlink.netns().to_owned();
        let owned = name.to_owned();
        self.call(REQUEST, name, move |handle| async move {
            let index = index_of(&handle, &owned, &label).await?;
            handle
                .link()
                .del(index)
                .execute()
                .await
                .map_err(|source| LinkError::netlink(REQUEST, owned.as_str(), &label, source))
        })??;
        tracing::debug!(link = name, netns = self.netlink.netns(), "deleted link");
        Ok(())
    }

    /// Deletes the links `names` together, with one kernel batch, and returns the names it did
    /// not find. Either every link found is deleted or none is.
    ///
    /// The kernel waits for an RCU grace period (`rcu_barrier()`) after each batch of deleted
    /// links (12 to 20 ms measured on a 2-vCPU VM), so deleting three links one by one costs three such
    /// waits. This moves the links into a link group no other link in the namespace uses and
    /// deletes that group with a single `RTM_DELLINK` (`ip link del group G`), which costs one.
    /// If the kernel rejects the batch (it does when one of the links, like `lo`, has no netlink
    /// delete), the links get their old group back and the error names the rejected request.
    pub fn delete_many(&self, names: &[&str]) -> Result<Vec<String>, LinkError> {
        if let [name] = names {
            return match self.delete(name) {
                Err(error) if error.is_not_found() => Ok(vec![(*name).to_owned()]),
                result => result.map(|()| Vec::new()),
            };
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let label = self.netlink.netns().to_owned();
        let requested: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let joined = requested.join(",");
        let missing = self.call(GROUP_DELETE, &joined, move |handle| async move {
            delete_as_group(&handle, &requested, &label).await
        })??;
        tracing::debug!(links = %names.join(","), netns = self.netlink.netns(), ?missing, "deleted links together");
        Ok(missing)
    }

    /// Starts a change of the link `name`, like `ip link set NAME ...`; send it with
    /// [`LinkChange::apply`].
    pub fn set(&self, name: &str) -> LinkChange<'a> {
        LinkChange::new(self.netlink, name)
    }

    /// Adds an alternative name, like `ip link property add dev NAME altname ALT`.
    pub fn add_altname(&self, name: &str, altname: &str) -> Result<(), LinkError> {
        const REQUEST: &str = "RTM_NEWLINKPROP altname";
        let label = self.netlink.netns().to_owned();
        let (owned, alt) = (name.to_owned(), altname.to_owned());
        self.call(REQUEST, name, move |handle| async move {
            let index = index_of(&handle, &owned, &label).await?;
            handle
                .link()
                .property_add(index)
                .alt_ifname(&[alt.as_str()])
                .execute()
                .await
                .map_err(|source| LinkError::netlink(REQUEST, owned.as_str(), &label, source))
        })?
    }

    /// Removes an alternative name, like `ip link property del dev NAME altname ALT`.
    pub fn delete_altname(&self, name: &str, altname: &str) -> Result<(), LinkError> {
        const REQUEST: &str = "RTM_DELLINKPROP altname";
        let label = self.netlink.netns().to_owned();
        let (owned, alt) = (name.to_owned(), altname.to_owned());
        self.call(REQUEST, name, move |handle| async move {
            let index = index_of(&handle, &owned, &label).await?;
            handle
                .link()
                .property_del(index)
                .alt_ifname(&[alt.as_str()])
                .execute()
                .await
                .map_err(|source| LinkError::netlink(REQUEST, owned.as_str(), &label, source))
        })?
    }

    /// Runs a request on the session thread, mapping a closed session to an error.
    fn call<R, F, Fut>(&self, request: &'static str, link: &str, f: F) -> Result<R, LinkError>
    where
        R: Send + 'static,
        F: FnOnce(rtnetlink::Handle) -> Fut + Send + 'static,
        Fut: Future<Output = R>,
    {
        self.netlink.call(f).map_err(|_| LinkError::SessionClosed {
            request,
            link: link.to_owned(),
            netns: self.netlink.netns().to_owned(),
        })
    }

    /// The session these requests go through.
    pub fn netlink(&self) -> &'a Netlink {
        self.netlink
    }
}

/// Fetches the `RTM_NEWLINK` message of the link `name`, which may be an altname.
pub(crate) async fn link_message(
    handle: &rtnetlink::Handle,
    name: &str,
    netns: &str,
) -> Result<netlink_packet_route::link::LinkMessage, LinkError> {
    if name.len() > telco_core::InterfaceName::MAX_LEN {
        // Only an altname can be this long, and IFLA_IFNAME would be refused with ERANGE.
        let messages: Vec<_> = handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| LinkError::netlink("RTM_GETLINK dump", name, netns, source))?;
        return messages
            .into_iter()
            .find(|message| {
                Link::from_message(message)
                    .altnames
                    .iter()
                    .any(|alt| alt == name)
            })
            .ok_or_else(|| LinkError::NotFound {
                link: name.to_owned(),
                netns: netns.to_owned(),
            });
    }
    let mut messages = handle.link().get().match_name(name).execute();
    match messages.try_next().await {
        Ok(Some(message)) => Ok(message),
        Ok(None) => Err(LinkError::NotFound {
            link: name.to_owned(),
            netns: netns.to_owned(),
        }),
        Err(source) => Err(LinkError::netlink("RTM_GETLINK", name, netns, source)),
    }
}

/// The first link group [`Links::delete_many`] tries; any unused nonzero group would do.
const FIRST_BATCH_GROUP: u32 = 0x7465_6c00;

/// The request [`Links::delete_many`] names in its errors.
const GROUP_DELETE: &str = "RTM_DELLINK group";

/// Moves the links `names` into an unused group and deletes the group, as
/// [`Links::delete_many`] describes. Returns the names not found.
async fn delete_as_group(
    handle: &rtnetlink::Handle,
    names: &[String],
    netns: &str,
) -> Result<Vec<String>, LinkError> {
    let joined = names.join(",");
    let messages: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|source| LinkError::netlink("RTM_GETLINK dump", &joined, netns, source))?;
    let group_of = |message: &LinkMessage| {
        message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                LinkAttribute::Group(group) => Some(*group),
                _ => None,
            })
    };
    let used: std::collections::HashSet<u32> = messages.iter().filter_map(group_of).collect();
    let group = (FIRST_BATCH_GROUP..=u32::MAX)
        .find(|group| !used.contains(group))
        .expect("a namespace has fewer links than there are link groups");

    // The name of each link, read from its message once.
    let present: Vec<(u32, String, u32)> = messages
        .iter()
        .map(|message| {
            let name = Link::from_message(message).name;
            (message.header.index, name, group_of(message).unwrap_or(0))
        })
        .collect();
    // (index, name, old group) of each link found.
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match present.iter().find(|(_, present, _)| present == name) {
            Some(&(index, _, old)) => found.push((index, name.as_str(), old)),
            None => missing.push(name.clone()),
        }
    }
    let mut grouped = Vec::with_capacity(found.len());
    let mut outcome = Ok(());
    for &(index, name, old) in &found {
        match set_group(handle, index, group).await {
            Ok(()) => grouped.push((index, old)),
            // Gone since the dump, as when it was the peer of a veth deleted meanwhile.
            Err(source) if errno_of(&source) == Some(libc::ENODEV) => missing.push(name.to_owned()),
            Err(source) => {
                outcome = Err(LinkError::netlink("RTM_SETLINK group", name, netns, source));
                break;
            }
        }
    }
    if outcome.is_ok() && !grouped.is_empty() {
        let mut request = handle.link().del(0);
        request
            .message_mut()
            .attributes
            .push(LinkAttribute::Group(group));
        outcome = request
            .execute()
            .await
            .map_err(|source| LinkError::netlink(GROUP_DELETE, &joined, netns, source));
    }
    if outcome.is_err() {
        for (index, old) in grouped {
            if let Err(error) = set_group(handle, index, old).await {
                tracing::warn!(index, netns, %error, "failed to give a link its old group back");
            }
        }
    }
    outcome.map(|()| missing)
}

/// Puts the link `index` into link group `group` with one `RTM_SETLINK`.
async fn set_group(
    handle: &rtnetlink::Handle,
    index: u32,
    group: u32,
) -> Result<(), rtnetlink::Error> {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.attributes.push(LinkAttribute::Group(group));
    handle.link().set(message).execute().await
}

/// The index of the link `name`.
pub(crate) async fn index_of(
    handle: &rtnetlink::Handle,
    name: &str,
    netns: &str,
) -> Result<u32, LinkError> {
    Ok(link_message(handle, name, netns).await?.header.index)
}

/// Sets the alias of the link `name`, which was just created. Deletes the link when that
/// fails, so a failed [`Links::add`] leaves nothing behind.
async fn set_alias_or_delete(
    handle: &rtnetlink::Handle,
    name: &str,
    alias: &str,
    netns: &str,
) -> Result<(), LinkError> {
    const REQUEST: &str = "RTM_SETLINK alias";
    let index = index_of(handle, name, netns).await?;
    let mut message = LinkMessage::default();
    message.header.index = index;
    message
        .attributes
        .push(LinkAttribute::IfAlias(alias.to_owned()));
    let Err(source) = handle.link().set(message).execute().await else {
        return Ok(());
    };
    if let Err(error) = handle.link().del(index).execute().await {
        tracing::warn!(link = name, netns, %error, "failed to delete link after setting its alias failed");
    }
    Err(LinkError::netlink(REQUEST, name, netns, source))
}

/// Brings up the link `index` (named `name`, for errors) with one `RTM_SETLINK`, for callers
/// that already hold the index and run on the session thread.
pub(crate) async fn set_up_by_index(
    handle: &rtnetlink::Handle,
    index: u32,
    name: &str,
    netns: &str,
) -> Result<(), LinkError> {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags |= LinkFlags::Up;
    message.header.change_mask |= LinkFlags::Up;
    handle
        .link()
        .set(message)
        .execute()
        .await
        .map_err(|source| LinkError::netlink("RTM_SETLINK", name, netns, source))
}
