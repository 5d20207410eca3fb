//! [`Attacher`]: the attach driver.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use telco_core::MacAddr;

use super::{
    AttachContext, AttachError, Attached, AttachmentSpec, DetachError, IpConfig, KindError, Step,
    StepError,
};
use crate::addr::add_by_index;
use crate::cni::NetworkStatus;
use crate::ipam::{DEFAULT_DATA_DIR, HostLocal, Lease};
use crate::link::{Link, LinkError, link_message, set_up_by_index};
use crate::netns::{Netlink, Netns, on_new_thread};
use crate::route::{Route, add_with_oif};

/// Attaches and detaches the networks of one pod: its namespace and container ID, and netlink
/// sessions in the pod and in the caller's namespace (the host), opened once and shared by
/// every attachment.
#[derive(Debug)]
pub struct Attacher {
    netns: Netns,
    container_id: String,
    ipam_dir: PathBuf,
    host: Netlink,
    pod: Netlink,
}

impl Attacher {
    /// Prepares to attach networks to the pod namespace `netns` for the container
    /// `container_id` (the key of IPAM leases), from the caller's namespace.
    pub fn new(netns: &Netns, container_id: &str) -> Result<Attacher, AttachError> {
        let host = Netlink::current().map_err(AttachError::Session)?;
        Self::with_host_session(netns, host, container_id)
    }

    /// Like [`Attacher::new`], with `host` standing in for the host namespace: host-side
    /// links (veth ends, bridges, the parents of macvlan links) live there. Tests use a
    /// namespace of their own here so that they never touch the real host.
    pub fn with_host(
        netns: &Netns,
        host: &Netns,
        container_id: &str,
    ) -> Result<Attacher, AttachError> {
        let host = host.netlink().map_err(AttachError::Session)?;
        Self::with_host_session(netns, host, container_id)
    }

    fn with_host_session(
        netns: &Netns,
        host: Netlink,
        container_id: &str,
    ) -> Result<Attacher, AttachError> {
        let pod = netns.netlink().map_err(AttachError::Session)?;
        let netns = netns.try_clone().map_err(AttachError::Session)?;
        Ok(Attacher {
            netns,
            container_id: container_id.to_owned(),
            ipam_dir: PathBuf::from(DEFAULT_DATA_DIR),
            host,
            pod,
        })
    }

    /// Sets the data directory of host-local stores that name none
    /// (default [`DEFAULT_DATA_DIR`], the plugin's).
    pub fn ipam_data_dir(mut self, dir: impl Into<PathBuf>) -> Attacher {
        self.ipam_dir = dir.into();
        self
    }

    /// The netlink session inside the pod.
    pub fn pod_netlink(&self) -> &Netlink {
        &self.pod
    }

    /// Attaches `specs` in order and returns their network-status entries, in the same order.
    /// On failure everything made so far is removed, in reverse.
    ///
    /// Runs the kinds on a thread of its own with a current-thread runtime, so it can be
    /// called from any thread, also from inside an async runtime.
    pub fn attach(&self, specs: &[AttachmentSpec]) -> Result<Vec<NetworkStatus>, AttachError> {
        block_on_own_thread(self.attach_async(specs))
            .unwrap_or_else(|error| Err(AttachError::Session(error)))
    }

    /// Detaches `specs` in reverse order, going on past failures, which it returns together.
    /// Succeeds when nothing was left.
    pub fn detach(&self, specs: &[AttachmentSpec]) -> Result<(), DetachError> {
        block_on_own_thread(self.detach_async(specs))
            .unwrap_or_else(|error| Err(DetachError::Session(error)))
    }

    /// The async form of [`Attacher::attach`]. The built-in kinds make blocking netlink
    /// calls, so on a multi-thread runtime this occupies one worker while it runs.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped future leaves the attachments made so far; call
    /// [`Attacher::detach`] with the same specs to remove them.
    pub async fn attach_async(
        &self,
        specs: &[AttachmentSpec],
    ) -> Result<Vec<NetworkStatus>, AttachError> {
        check(specs)?;
        let mut statuses = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            match self.attach_one(index, spec).await {
                Ok(status) => statuses.push(status),
                Err(error) => {
                    tracing::warn!(index, network = %spec.network, %error, "attach failed, rolling back");
                    let rollback = self.detach_all(&specs[..=index]).await;
                    return Err(AttachError::Attachment {
                        index,
                        error,
                        rollback,
                    });
                }
            }
        }
        Ok(statuses)
    }

    /// The async form of [`Attacher::detach`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe in the sense that calling it again finishes the work.
    pub async fn detach_async(&self, specs: &[AttachmentSpec]) -> Result<(), DetachError> {
        let failures = self.detach_all(specs).await;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(DetachError::Failures { failures })
        }
    }

    fn context<'a>(&'a self, index: usize, spec: &'a AttachmentSpec) -> AttachContext<'a> {
        AttachContext {
            netns: &self.netns,
            pod: &self.pod,
            host: &self.host,
            container_id: &self.container_id,
            network: &spec.network,
            ifname: &spec.interface,
            index,
            mac: spec.mac,
            mtu: spec.mtu,
        }
    }

    async fn attach_one(
        &self,
        index: usize,
        spec: &AttachmentSpec,
    ) -> Result<NetworkStatus, StepError> {
        let cx = self.context(index, spec);
        let fail = |step: Step| {
            move |source: KindError| StepError {
                network: spec.network.clone(),
                interface: spec.interface.to_string(),
                kind: spec.kind.kind(),
                step,
                source,
            }
        };
        let attached = spec.kind.attach(&cx).await.map_err(fail(Step::Kind))?;
        let leases = self.leases(spec).map_err(fail(Step::Ipam))?;

        let ifname = spec.interface.as_str();
        let mut gateways: Vec<IpAddr> = Vec::new();
        if spec.default_route {
            gateways = default_gateways(&leases, &attached);
        }

        let (mut mac, mut mtu) = (attached.mac.clone(), attached.mtu);
        if attached.kernel_interface {
            let (link_mac, link_mtu) = self
                .configure_interface(spec, &leases, &gateways)
                .map_err(|(step, source)| fail(step)(source))?;
            mac = link_mac.map(|mac| mac.to_string()).or(mac);
            mtu = link_mtu.or(mtu);
        }

        let mut ips: Vec<IpAddr> = leases.iter().map(|lease| lease.address.address()).collect();
        ips.extend(attached.ips.iter().map(|prefix| prefix.address()));
        let dns = if spec.dns.is_empty() {
            attached.dns.clone()
        } else {
            spec.dns.clone()
        };
        tracing::info!(index, network = %spec.network, interface = ifname, kind = spec.kind.kind(), ?ips, "attached network");
        let mut status = NetworkStatus::new(spec.network.clone());
        status.interface = Some(ifname.to_owned());
        status.ips = ips;
        status.mac = mac;
        status.mtu = mtu;
        status.default = spec.default_route;
        status.dns = dns;
        status.device_info = attached.device_info;
        status.gateway = gateways;
        Ok(status)
    }

    /// Reads the pod interface, adds the leased addresses, brings it up and adds its routes.
    /// Returns the interface's MAC and MTU for the status entry. All of it runs as one job on
    /// the pod session, so the requests share one index lookup and one trip to the session
    /// thread.
    fn configure_interface(
        &self,
        spec: &AttachmentSpec,
        leases: &[Lease],
        gateways: &[IpAddr],
    ) -> Result<(Option<MacAddr>, Option<u32>), (Step, KindError)> {
        let ifname = spec.interface.as_str().to_owned();
        let prefixes: Vec<_> = leases.iter().map(|lease| lease.address).collect();
        let routes = self.routes(spec, gateways);
        let netns = self.pod.netns().to_owned();
        let configured = self.pod.call(move |handle| async move {
            let link_error = |error: LinkError| (Step::Link, KindError::from(error));
            let message = link_message(&handle, &ifname, &netns)
                .await
                .map_err(link_error)?;
            let index = message.header.index;
            for prefix in prefixes {
                add_by_index(&handle, &netns, &ifname, index, prefix)
                    .await
                    .map_err(|error| (Step::Address, error.into()))?;
            }
            set_up_by_index(&handle, index, &ifname, &netns)
                .await
                .map_err(link_error)?;
            for route in &routes {
                add_with_oif(&handle, route, index, &netns)
                    .await
                    .map_err(|error| (Step::Route, error.into()))?;
            }
            // Neither a new address nor the up flag changes the MAC or MTU read above.
            let link = Link::from_message(&message);
            Ok((link.mac, link.mtu))
        });
        configured.map_err(|closed| (Step::Link, closed.into()))?
    }

    /// Removes the attachments `specs`, the first `specs.len()` of the list, in reverse order:
    /// gives back their addresses, then removes their interfaces. The pod interfaces of kinds
    /// that deleting them undoes go in one request (see
    /// [`AttachKind::undone_by_deleting_pod_link`](super::AttachKind::undone_by_deleting_pod_link));
    /// the other kinds, and any interface that request did not find, go through the kind's
    /// `detach`. Returns every failure, the last attachment's first.
    async fn detach_all(&self, specs: &[AttachmentSpec]) -> Vec<StepError> {
        let fail = |spec: &AttachmentSpec, step: Step, source: KindError| StepError {
            network: spec.network.clone(),
            interface: spec.interface.to_string(),
            kind: spec.kind.kind(),
            step,
            source,
        };
        let mut failures: Vec<Vec<StepError>> = specs.iter().map(|_| Vec::new()).collect();
        for (index, spec) in specs.iter().enumerate().rev() {
            if let IpConfig::HostLocal(ipam) = &spec.ip {
                let store =
                    HostLocal::open(self.store_dir(ipam.data_dir.as_deref()), &ipam.network);
                if let Err(error) = store
                    .and_then(|store| store.release(&self.container_id, spec.interface.as_str()))
                {
                    failures[index].push(fail(spec, Step::Ipam, error.into()));
                }
            }
        }

        let (batched, mut by_kind): (Vec<usize>, Vec<usize>) =
            (0..specs.len()).partition(|&index| specs[index].kind.undone_by_deleting_pod_link());
        if !batched.is_empty() {
            let names: Vec<&str> = batched
                .iter()
                .map(|&index| specs[index].interface.as_str())
                .collect();
            match self.pod.links().delete_many(&names) {
                Ok(missing) => by_kind.extend(batched.iter().filter(|&&index| {
                    missing
                        .iter()
                        .any(|name| name == specs[index].interface.as_str())
                })),
                Err(error) => {
                    tracing::debug!(%error, "deleting the pod links together failed, deleting them one by one");
                    by_kind.extend(&batched);
                }
            }
        }
        by_kind.sort_unstable_by(|a, b| b.cmp(a));
        for index in by_kind {
            let spec = &specs[index];
            if let Err(error) = spec.kind.detach(&self.context(index, spec)).await {
                failures[index].push(fail(spec, Step::Kind, error));
            }
        }

        for (index, spec) in specs.iter().enumerate().rev() {
            if failures[index].is_empty() {
                tracing::info!(index, network = %spec.network, interface = %spec.interface, "detached network");
            }
        }
        failures.into_iter().rev().flatten().collect()
    }

    fn store_dir<'a>(&'a self, dir: Option<&'a Path>) -> &'a Path {
        dir.unwrap_or(&self.ipam_dir)
    }

    fn leases(&self, spec: &AttachmentSpec) -> Result<Vec<Lease>, KindError> {
        match &spec.ip {
            IpConfig::None => Ok(Vec::new()),
            IpConfig::Static(addresses) => Ok(addresses
                .iter()
                .map(|address| Lease::new(address.address, address.gateway))
                .collect()),
            IpConfig::HostLocal(ipam) => {
                let store =
                    HostLocal::open(self.store_dir(ipam.data_dir.as_deref()), &ipam.network)?;
                Ok(store.allocate(&self.container_id, spec.interface.as_str(), &ipam.ranges)?)
            }
        }
    }

    /// The routes to add: the default routes through `gateways`, then the spec's own.
    fn routes(&self, spec: &AttachmentSpec, gateways: &[IpAddr]) -> Vec<Route> {
        let ifname = spec.interface.as_str();
        let defaults = gateways
            .iter()
            .map(|gateway| Route::default_via(*gateway).dev(ifname));
        let extra = spec.routes.iter().map(|route| {
            let mut route = route.clone();
            route.dev = Some(ifname.to_owned());
            route
        });
        defaults.chain(extra).collect()
    }
}

/// The gateways for the default route: the first IPv4 and the first IPv6 gateway among the
/// leases, else among the kind's own.
fn default_gateways(leases: &[Lease], attached: &Attached) -> Vec<IpAddr> {
    let candidates: Vec<IpAddr> = leases
        .iter()
        .filter_map(|lease| lease.gateway)
        .chain(attached.gateways.iter().copied())
        .collect();
    let v4 = candidates.iter().find(|gateway| gateway.is_ipv4());
    let v6 = candidates.iter().find(|gateway| gateway.is_ipv6());
    v4.into_iter().chain(v6).copied().collect()
}

/// Rejects lists with two attachments of one interface name or two default routes.
fn check(specs: &[AttachmentSpec]) -> Result<(), AttachError> {
    let mut names = HashSet::new();
    for spec in specs {
        if !names.insert(spec.interface.as_str()) {
            return Err(AttachError::InvalidSpec {
                reason: format!("interface {} appears twice", spec.interface),
            });
        }
    }
    if specs.iter().filter(|spec| spec.default_route).count() > 1 {
        return Err(AttachError::InvalidSpec {
            reason: "more than one attachment holds the default route".to_owned(),
        });
    }
    Ok(())
}

/// Runs a future to completion on a new thread with a current-thread runtime.
fn block_on_own_thread<F>(future: F) -> Result<F::Output, crate::netns::NetnsError>
where
    F: Future + Send,
    F::Output: Send,
{
    on_new_thread("attach", move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| crate::netns::NetnsError::SpawnThread {
                netns: "attach".to_owned(),
                source,
            })?;
        Ok(runtime.block_on(future))
    })?
}
