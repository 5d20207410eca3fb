//! Moving a VF netdev into a workload's namespace under a new name, and back.
//!
//! The move goes through a temporary namespace, as SR-IOV CNI does: host, then a fresh
//! anonymous namespace where the netdev is renamed (so the new name can never clash with a
//! host interface and the old name cannot clash inside the workload), then the target
//! namespace. If a step fails, the netdev is renamed back and returned to the host namespace.

use serde::{Deserialize, Serialize};
use telco_core::MacAddr;

use super::SriovError;
use crate::link::LinkError;
use crate::netns::{Netlink, Netns};

/// Host-side state of a VF netdev before it was moved, for the restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HostNetdev {
    /// Name in the host namespace.
    pub name: String,
    /// MTU in the host namespace.
    pub mtu: Option<u32>,
    /// Effective MAC address in the host namespace.
    pub mac: Option<MacAddr>,
}

/// Moves the VF netdev `netdev` from the namespace of `host` into `target` as `new_name`,
/// sets the effective MAC when `mac` is given, and brings the link up. Returns the host-side
/// state that [`restore_netdev`] needs.
///
/// Like `ip link set NETDEV netns TMP; ip -n TMP link set NETDEV name NEW; ip -n TMP link set
/// NEW netns TARGET; ip -n TARGET link set NEW address MAC up`.
pub fn move_netdev(
    host: &Netlink,
    netdev: &str,
    target: &Netns,
    new_name: &str,
    mac: Option<MacAddr>,
) -> Result<HostNetdev, SriovError> {
    let link_step = |step, netdev: &str| {
        let netdev = netdev.to_owned();
        move |source| SriovError::Link {
            step,
            netdev,
            source: Box::new(source),
        }
    };
    let link = host
        .links()
        .get(netdev)
        .map_err(link_step("read", netdev))?;
    let saved = HostNetdev {
        name: link.name.clone(),
        mtu: link.mtu,
        mac: link.mac,
    };
    let temporary = Netns::anonymous().map_err(|source| SriovError::Netns {
        step: "create the temporary namespace",
        source: Box::new(source),
    })?;
    host.links()
        .set(netdev)
        .down()
        .netns(&temporary)
        .apply()
        .map_err(link_step("move into the temporary namespace", netdev))?;
    let result = finish_move(&temporary, netdev, target, new_name, mac);
    if let Err(error) = &result {
        tracing::warn!(netdev, error = %super::device::error_chain(error), "moving VF netdev failed; returning it to the host");
        return_to_host(&temporary, netdev, new_name, host);
    }
    result.map(|()| saved)
}

/// Runs the steps inside the temporary namespace and the target.
fn finish_move(
    temporary: &Netns,
    netdev: &str,
    target: &Netns,
    new_name: &str,
    mac: Option<MacAddr>,
) -> Result<(), SriovError> {
    let session = Netlink::in_netns(temporary).map_err(|source| SriovError::Netns {
        step: "open a netlink session in the temporary namespace",
        source: Box::new(source),
    })?;
    let step = |step| {
        move |source| SriovError::Link {
            step,
            netdev: netdev.to_owned(),
            source: Box::new(source),
        }
    };
    if netdev != new_name {
        session
            .links()
            .set(netdev)
            .rename(new_name)
            .apply()
            .map_err(step("rename"))?;
        drop_altname(&session, new_name, netdev);
    }
    session
        .links()
        .set(new_name)
        .netns(target)
        .apply()
        .map_err(step("move into the target namespace"))?;
    let inside = Netlink::in_netns(target).map_err(|source| SriovError::Netns {
        step: "open a netlink session in the target namespace",
        source: Box::new(source),
    })?;
    let links = inside.links();
    let mut change = links.set(new_name).up();
    if let Some(mac) = mac {
        change = change.mac(mac);
    }
    change.apply().map_err(step("set MAC and up"))
}

/// Removes an altname equal to the old name, which some kernels and udev rules leave behind
/// and which would block the old name from being used again.
fn drop_altname(session: &Netlink, name: &str, altname: &str) {
    match session.links().get(name) {
        Ok(link) if link.altnames.iter().any(|alt| alt == altname) => {
            if let Err(error) = session.links().delete_altname(name, altname) {
                tracing::debug!(name, altname, %error, "could not remove altname");
            }
        }
        _ => {}
    }
}

/// Best effort after a failed move: find the netdev under either name in the temporary
/// namespace or the target, rename it back and return it to the host.
fn return_to_host(temporary: &Netns, netdev: &str, new_name: &str, host: &Netlink) {
    let Ok(session) = Netlink::in_netns(temporary) else {
        return;
    };
    let host_ns = match host.run_inside(Netns::current) {
        Ok(Ok(netns)) => netns,
        _ => return,
    };
    for name in [new_name, netdev] {
        if session.links().find(name).ok().flatten().is_some() {
            let links = session.links();
            let change = links.set(name).down().netns(&host_ns);
            let change = if name == netdev {
                change
            } else {
                change.rename(netdev)
            };
            if let Err(error) = change.apply() {
                tracing::warn!(netdev, %error, "could not return VF netdev to the host namespace");
            }
            return;
        }
    }
}

/// Moves the netdev `name` out of `target` back into the namespace of `host`, with its host
/// name, MTU and effective MAC restored; the link is left down.
///
/// Like `ip -n TARGET link set NAME down; ip -n TARGET link set NAME name HOSTNAME mtu MTU
/// address MAC; ip -n TARGET link set HOSTNAME netns HOST`.
pub fn restore_netdev(
    target: &Netns,
    name: &str,
    saved: &HostNetdev,
    host: &Netlink,
) -> Result<(), SriovError> {
    let inside = Netlink::in_netns(target).map_err(|source| SriovError::Netns {
        step: "open a netlink session in the workload namespace",
        source: Box::new(source),
    })?;
    restore_netdev_with(&inside, name, saved, host)
}

/// [`restore_netdev`] through an open session inside the workload namespace.
pub(crate) fn restore_netdev_with(
    inside: &Netlink,
    name: &str,
    saved: &HostNetdev,
    host: &Netlink,
) -> Result<(), SriovError> {
    let host_ns = host
        .run_inside(Netns::current)
        .map_err(|_| {
            SriovError::NetlinkSocket(std::io::Error::other("host netlink session closed"))
        })?
        .map_err(|source| SriovError::Netns {
            step: "open the host namespace",
            source: Box::new(source),
        })?;
    let step = |step| {
        move |source: LinkError| SriovError::Link {
            step,
            netdev: name.to_owned(),
            source: Box::new(source),
        }
    };
    let links = inside.links();
    let current = links.get(name).map_err(step("read"))?;
    // The kernel refuses to rename a link that is up (EBUSY) and applies the flags of a
    // request after the name, so the link goes down in a request of its own.
    if current.up {
        links.set(name).down().apply().map_err(step("set down"))?;
    }
    let mut change = links.set(name);
    if name != saved.name {
        change = change.rename(&saved.name);
    }
    // Unchanged values are left out: a MAC or MTU change makes some VF drivers reset the VF.
    if let Some(mtu) = saved.mtu.filter(|mtu| current.mtu != Some(*mtu)) {
        change = change.mtu(mtu);
    }
    if let Some(mac) = saved.mac.filter(|mac| current.mac != Some(*mac)) {
        change = change.mac(mac);
    }
    change.apply().map_err(step("rename and reset"))?;
    inside
        .links()
        .set(&saved.name)
        .netns(&host_ns)
        .apply()
        .map_err(step("move back to the host namespace"))
}
