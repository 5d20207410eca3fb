//! [`AttachKind`]: the trait each kind of attachment implements.

use std::error::Error;
use std::fmt;

use async_trait::async_trait;
use telco_core::{InterfaceName, MacAddr};

use super::Attached;
use crate::netns::{Netlink, Netns};

/// The error an [`AttachKind`] returns: any error, boxed. The attach driver wraps it with the
/// network, interface, kind and step, so the kind's own error need not repeat them.
pub type KindError = Box<dyn Error + Send + Sync + 'static>;

/// A kind of network attachment: how one interface of a pod comes to be (a veth on a bridge,
/// a macvlan, an SR-IOV VF, a memif socket, a CNI conflist...).
///
/// The attach driver ([`Attacher`](super::Attacher)) calls [`AttachKind::attach`] once per
/// attachment, in list order. Then it does the work that every kind shares: it assigns the addresses
/// the attachment's [`IpConfig`](super::IpConfig) gives, adds routes, brings the interface
/// up and reads its MAC and MTU for the network-status entry. A kind therefore only makes
/// the interface, named [`AttachContext::ifname`], inside [`AttachContext::netns`].
///
/// The contract:
/// - `attach` leaves the interface in the pod namespace under its final name, or returns an
///   error. It need not undo its own partial work on error: the driver calls `detach` for the
///   failed attachment too, then for every earlier one in reverse.
/// - `detach` removes what `attach` made, using only the context (names are derived from
///   the container ID and interface name, see [`AttachContext::host_ifname`]), so it works
///   in a later process and after a partial `attach`. It must succeed when there is nothing
///   left to remove, and should remove as much as it can before returning an error.
/// - Both may call the blocking APIs of this crate ([`Netlink`] and friends): the driver runs
///   kinds on a thread of its own.
///
/// Object safe, so specs hold kinds as `Box<dyn AttachKind>` and integrators add their own.
///
/// ```
/// use async_trait::async_trait;
/// use telco_net::attach::{AttachContext, AttachKind, Attached, KindError};
///
/// /// A kind that gives the pod a second loopback-like dummy link.
/// #[derive(Debug)]
/// struct DummyKind;
///
/// #[async_trait]
/// impl AttachKind for DummyKind {
///     fn kind(&self) -> &'static str {
///         "dummy"
///     }
///
///     async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
///         let name = cx.ifname().as_str();
///         cx.pod_netlink().links().add(telco_net::link::Dummy::new(name))?;
///         Ok(Attached::kernel_interface())
///     }
///
///     async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
///         match cx.pod_netlink().links().delete(cx.ifname().as_str()) {
///             Err(error) if !error.is_not_found() => Err(error.into()),
///             _ => Ok(()),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait AttachKind: fmt::Debug + Send + Sync {
    /// A short name for logs, errors and the bench: `veth`, `macvlan`, `sriov`, `memif`.
    fn kind(&self) -> &'static str;

    /// Makes the interface [`AttachContext::ifname`] inside the pod namespace.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped future may leave part of the interface behind; call
    /// `detach` to remove it.
    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError>;

    /// Removes what `attach` made; succeeds when nothing is left.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe in the sense that calling it again finishes the work.
    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError>;

    /// Returns whether deleting the pod interface alone undoes `attach`, as for a veth pair
    /// (deleting one end deletes both) or a macvlan.
    ///
    /// Detach deletes the pod interfaces of all such attachments with one request
    /// ([`Links::delete_many`](crate::link::Links::delete_many)), so the kernel waits for RCU
    /// once rather than once per link. It calls [`AttachKind::detach`] only for an interface
    /// that request did not find, or for all of them when the request fails. The default,
    /// `false`, always calls `detach`.
    fn undone_by_deleting_pod_link(&self) -> bool {
        false
    }
}

/// The view of the pod and of the attachment that a kind gets.
#[derive(Debug)]
pub struct AttachContext<'a> {
    pub(super) netns: &'a Netns,
    pub(super) pod: &'a Netlink,
    pub(super) host: &'a Netlink,
    pub(super) container_id: &'a str,
    pub(super) network: &'a str,
    pub(super) ifname: &'a InterfaceName,
    pub(super) index: usize,
    pub(super) mac: Option<MacAddr>,
    pub(super) mtu: Option<u32>,
}

impl AttachContext<'_> {
    /// The pod's network namespace.
    pub fn netns(&self) -> &Netns {
        self.netns
    }

    /// A netlink session inside the pod's namespace.
    pub fn pod_netlink(&self) -> &Netlink {
        self.pod
    }

    /// A netlink session in the namespace the attach was called from (the host).
    pub fn host_netlink(&self) -> &Netlink {
        self.host
    }

    /// The container (sandbox) ID, the key of IPAM leases and CNI state.
    pub fn container_id(&self) -> &str {
        self.container_id
    }

    /// The network's name, as the network-status entry reports it.
    pub fn network(&self) -> &str {
        self.network
    }

    /// The interface name inside the pod.
    pub fn ifname(&self) -> &InterfaceName {
        self.ifname
    }

    /// The attachment's position in the list, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The MAC address requested by the spec, if any.
    pub fn mac(&self) -> Option<MacAddr> {
        self.mac
    }

    /// The MTU requested by the spec, if any.
    pub fn mtu(&self) -> Option<u32> {
        self.mtu
    }

    /// A host-side interface name for this attachment: `prefix` followed by eight hex digits
    /// of a hash of the container ID and interface name, so `attach` and a later `detach`
    /// derive the same name. `prefix` is cut to 7 bytes to fit `IFNAMSIZ`.
    pub fn host_ifname(&self, prefix: &str) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self
            .container_id
            .bytes()
            .chain([0])
            .chain(self.ifname.as_str().bytes())
        {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        let prefix: String = prefix.chars().take(7).collect();
        format!("{prefix}{hash:08x}")
    }

    /// Returns the alias (`IFLA_IFALIAS`, shown by `ip link show`) for host-side links of this
    /// attachment: `telco: container ID IFNAME`, so an operator can tell which pod a
    /// [`host_ifname`](AttachContext::host_ifname) link belongs to. A container ID too long
    /// for the kernel's 255-byte limit is cut, so the alias always fits.
    pub fn host_alias(&self) -> String {
        host_alias(self.container_id, self.ifname.as_str())
    }
}

/// The maximum alias length the kernel accepts, in bytes (`IFALIASZ` - 1).
const MAX_ALIAS_LEN: usize = 255;

/// Builds `telco: container ID IFNAME`, cutting `container_id` to fit [`MAX_ALIAS_LEN`].
fn host_alias(container_id: &str, ifname: &str) -> String {
    let room = MAX_ALIAS_LEN - "telco: container  ".len() - ifname.len();
    let mut id_end = container_id.len().min(room);
    while !container_id.is_char_boundary(id_end) {
        id_end -= 1;
    }
    format!("telco: container {} {ifname}", &container_id[..id_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_alias_names_container_and_interface() {
        assert_eq!(host_alias("3f2a9c", "eth0"), "telco: container 3f2a9c eth0");
    }

    #[test]
    fn host_alias_cuts_long_container_id() {
        let id = "a".repeat(400);
        let alias = host_alias(&id, "net1");
        assert_eq!(alias.len(), MAX_ALIAS_LEN);
        assert!(alias.starts_with("telco: container aaa"));
        assert!(alias.ends_with(" net1"));
    }

    #[test]
    fn host_alias_cuts_on_char_boundary() {
        let id = "é".repeat(200);
        let alias = host_alias(&id, "eth0");
        assert!(alias.len() <= MAX_ALIAS_LEN);
        assert!(alias.ends_with("é eth0"));
    }
}
