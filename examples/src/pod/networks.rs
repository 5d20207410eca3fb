//! From the spec's networks to `telco-net` attachments.

use std::path::PathBuf;

use telco_net::attach::kinds::{
    CniKind, HostDeviceKind, IpvlanKind, MacvlanKind, TapKind, VethKind, VlanKind,
};
use telco_net::attach::{AttachKind, AttachmentSpec, IpConfig, StaticAddress};
use telco_net::cni::NetConfList;
use telco_net::memif::MemifKind;

use telco_core::{HostRoot, PciAddress};
use telco_net::sriov::{
    AllocationStore, DEFAULT_ALLOCATION_DIR, DevicePluginConfig, PhysicalFunction, SriovKind,
    VfConfig, VirtualFunction,
};

use super::spec::{NetworkKind, NetworkSpec, PodSpec, SriovSpec};
use super::state::PodDir;

/// Returns the container ID under which the pod's attachments (IPAM leases, CNI results) are kept.
pub fn container_id(pod: &str) -> String {
    format!("vnf-pod-{pod}")
}

/// An error turning a network of the spec into an attachment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The CNI conflist could not be read.
    #[error("network {network:?}: invalid CNI conflist {origin}")]
    Conflist {
        /// The network.
        network: String,
        /// The file, or `inline`.
        origin: String,
        /// The cause.
        #[source]
        source: Box<telco_net::cni::PluginError>,
    },
    /// Finding a virtual function for an `sriov` network failed.
    #[error("network {network:?}: no SR-IOV VF from {source_name}")]
    Sriov {
        /// The network.
        network: String,
        /// The PF or pool asked for.
        source_name: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The use the attachments are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Attaching: every kind must be able to make its interface.
    Attach,
    /// Detaching: kinds that detach from saved state (SR-IOV) need not find their device.
    Detach,
}

/// Builds the attachments of every network of `spec`, in order.
pub fn attachment_specs(
    spec: &PodSpec,
    dir: &PodDir,
    purpose: Purpose,
) -> Result<Vec<AttachmentSpec>, NetworkError> {
    spec.networks
        .iter()
        .map(|network| attachment_spec(&spec.name, network, dir, purpose))
        .collect()
}

fn attachment_spec(
    pod: &str,
    network: &NetworkSpec,
    dir: &PodDir,
    purpose: Purpose,
) -> Result<AttachmentSpec, NetworkError> {
    let kind: Box<dyn AttachKind> = match &network.kind {
        NetworkKind::Veth(veth) => {
            let mut kind = VethKind::new();
            if let Some(bridge) = &veth.bridge {
                kind = kind.bridge(bridge.as_str());
            }
            Box::new(kind)
        }
        NetworkKind::Macvlan(macvlan) => {
            Box::new(MacvlanKind::new(macvlan.master.as_str()).mode(macvlan.mode))
        }
        NetworkKind::Ipvlan(ipvlan) => {
            Box::new(IpvlanKind::new(ipvlan.master.as_str()).mode(ipvlan.mode))
        }
        NetworkKind::Vlan(vlan) => Box::new(VlanKind::new(vlan.master.as_str(), vlan.id)),
        NetworkKind::HostDevice(device) => Box::new(HostDeviceKind::new(device.device.as_str())),
        NetworkKind::Tap(_) => Box::new(TapKind::new()),
        NetworkKind::Memif(memif) => {
            // The pod shares the host's mount namespace, so both sides use the same path. A
            // `slave` workload gets the kind's built-in echo responder as its peer.
            let socket = memif_socket(network, dir);
            Box::new(MemifKind::with_socket(&socket, &socket, memif.role).mode(memif.mode))
        }
        NetworkKind::Cni(cni) => Box::new(CniKind::new(load_conflist(network, &cni.conflist)?)),
        NetworkKind::Sriov(sriov) => match (sriov_kind(pod, network, sriov), purpose) {
            (Ok(kind), _) => Box::new(kind),
            // Detach reads the VF from the attachment saved at attach time, so any address
            // does when the VF cannot be found again (the PF is gone, say).
            (Err(_), Purpose::Detach) => Box::new(SriovKind::new(
                PciAddress::new(0, 0, 0, 0).expect("0000:00:00.0 is a valid address"),
            )),
            (Err(error), Purpose::Attach) => return Err(error),
        },
    };
    let mut attachment = AttachmentSpec::with_kind(&network.name, network.ifname.clone(), kind);
    let (ips, gateway) = network.kind.addressing();
    if !ips.is_empty() {
        let addresses = ips
            .iter()
            .map(|ip| {
                let gateway = gateway.filter(|gateway| ip.network().contains(*gateway));
                StaticAddress::new(*ip, gateway)
            })
            .collect();
        attachment = attachment.ip(IpConfig::Static(addresses));
    }
    if gateway.is_some() {
        attachment = attachment.default_route();
    }
    let (mac, mtu) = link_settings(&network.kind);
    if let Some(mac) = mac {
        attachment = attachment.mac(mac);
    }
    if let Some(mtu) = mtu {
        attachment = attachment.mtu(mtu);
    }
    Ok(attachment)
}

/// Returns the memif socket of `network`: the spec's `socket`, else `memif-<ifname>.sock` in
/// the pod's directory.
pub fn memif_socket(network: &NetworkSpec, dir: &PodDir) -> PathBuf {
    match &network.kind {
        NetworkKind::Memif(memif) => memif.socket.clone(),
        _ => None,
    }
    .unwrap_or_else(|| {
        dir.path()
            .join(format!("memif-{}.sock", network.ifname.as_str()))
    })
}

/// The SR-IOV network device plugin's resource config, where `pool` names are looked up.
pub const DEVICE_PLUGIN_CONFIG: &str = "/etc/pcidp/config.json";

/// Builds the kind for an `sriov` network: the first VF of the PF or pool that no other
/// attachment owns, with the spec's PF-side settings. A VF this pod owns counts as free, so
/// the teardown finds the same VF again.
fn sriov_kind(
    pod: &str,
    network: &NetworkSpec,
    spec: &SriovSpec,
) -> Result<SriovKind, NetworkError> {
    let host = HostRoot::system();
    let source_name = spec
        .pf
        .as_ref()
        .map(|pf| format!("PF {}", pf.as_str()))
        .or_else(|| spec.pool.as_ref().map(|pool| format!("pool {pool}")))
        .unwrap_or_default();
    let error = |source: Box<dyn std::error::Error + Send + Sync>| NetworkError::Sriov {
        network: network.name.clone(),
        source_name: source_name.clone(),
        source,
    };
    let candidates = match (&spec.pf, &spec.pool) {
        (Some(pf), _) => PhysicalFunction::from_netdev(&host, pf.as_str())
            .and_then(|pf| pf.virtual_functions(&host))
            .map_err(|source| error(source.into()))?,
        (None, Some(pool)) => pool_devices(&host, pool).map_err(error)?,
        (None, None) => Vec::new(),
    };

    let store = AllocationStore::new(DEFAULT_ALLOCATION_DIR);
    let owner = format!("{}/{}", container_id(pod), network.ifname.as_str());
    let mut chosen = None;
    for vf in candidates {
        match store.owner(vf.pci).map_err(|source| error(source.into()))? {
            None => {
                chosen = chosen.or(Some(vf.pci));
            }
            Some(holder) if holder == owner => {
                chosen = Some(vf.pci);
                break;
            }
            Some(_) => {}
        }
    }
    let pci = chosen.ok_or_else(|| error("every VF is taken".into()))?;

    let mut config = VfConfig::default();
    config.mac = spec.mac;
    config.vlan = spec.vlan;
    config.vlan_qos = spec.vlan_qos;
    config.spoof_check = spec.spoofchk;
    config.trust = spec.trust;
    config.min_tx_rate = spec.min_tx_rate;
    config.max_tx_rate = spec.max_tx_rate;
    Ok(SriovKind::new(pci).config(config))
}

fn pool_devices(
    host: &HostRoot,
    pool: &str,
) -> Result<Vec<VirtualFunction>, Box<dyn std::error::Error + Send + Sync>> {
    let text = std::fs::read_to_string(DEVICE_PLUGIN_CONFIG)
        .map_err(|error| format!("cannot read {DEVICE_PLUGIN_CONFIG}: {error}"))?;
    let config = DevicePluginConfig::from_json(&text)?;
    let pools = config.build_pools(host)?;
    let found = pools
        .iter()
        .find(|candidate| {
            candidate.name() == pool || candidate.name().ends_with(&format!("/{pool}"))
        })
        .ok_or_else(|| format!("{DEVICE_PLUGIN_CONFIG} defines no pool {pool:?}"))?;
    Ok(found.devices().to_vec())
}

fn link_settings(kind: &NetworkKind) -> (Option<telco_core::MacAddr>, Option<u32>) {
    match kind {
        NetworkKind::Veth(veth) => (veth.mac, veth.mtu),
        NetworkKind::Macvlan(macvlan) => (macvlan.mac, macvlan.mtu),
        NetworkKind::Ipvlan(ipvlan) => (None, ipvlan.mtu),
        NetworkKind::Vlan(vlan) => (None, vlan.mtu),
        NetworkKind::Tap(tap) => (tap.mac, tap.mtu),
        _ => (None, None),
    }
}

fn load_conflist(
    network: &NetworkSpec,
    conflist: &serde_json::Value,
) -> Result<NetConfList, NetworkError> {
    let (origin, loaded) = match conflist {
        serde_json::Value::String(path) => (path.clone(), NetConfList::load_file(path.as_ref())),
        inline => (
            "inline".to_owned(),
            NetConfList::from_slice(&serde_json::to_vec(inline).expect("JSON values serialise")),
        ),
    };
    loaded.map_err(|source| NetworkError::Conflist {
        network: network.name.clone(),
        origin,
        source: Box::new(source),
    })
}
