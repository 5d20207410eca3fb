//! [`CniKind`]: any CNI network configuration list, run through the CNI runtime.

use std::net::IpAddr;

use async_trait::async_trait;

use crate::addr::IpPrefix;
use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::cni::{CniRuntime, NetConfList, RuntimeConf};

/// Runs a CNI conflist for the attachment: ADD on attach, DEL on detach, with the pod's
/// namespace path as `CNI_NETNS`, the container ID and the interface name, through
/// [`CniRuntime`] (plugins from `CNI_PATH`, results cached in libcni's format). The plugins
/// run in the host namespace of the attach (that of
/// [`AttachContext::host_netlink`]).
///
/// The plugins configure the interface themselves, so the driver leaves it alone: give the
/// spec [`IpConfig::None`](crate::attach::IpConfig::None); its `default_route` only marks the
/// status entry, with the gateways of the result. MAC, MTU, addresses and DNS in the status
/// entry come from the result.
#[derive(Debug, Clone)]
pub struct CniKind {
    list: NetConfList,
    runtime: CniRuntime,
}

impl CniKind {
    /// Runs `list` with plugins from `CNI_PATH` (default `/usr/lib/cni`).
    pub fn new(list: NetConfList) -> CniKind {
        CniKind {
            list,
            runtime: CniRuntime::from_env(),
        }
    }

    /// Uses `runtime` (its plugin path and cache directory).
    pub fn runtime(mut self, runtime: CniRuntime) -> CniKind {
        self.runtime = runtime;
        self
    }

    fn runtime_conf(&self, cx: &AttachContext<'_>) -> RuntimeConf {
        RuntimeConf::new(
            cx.container_id(),
            Some(cx.netns().path()),
            cx.ifname().as_str(),
        )
    }
}

#[async_trait]
impl AttachKind for CniKind {
    fn kind(&self) -> &'static str {
        "cni"
    }

    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        let (runtime, list, conf) = (
            self.runtime.clone(),
            self.list.clone(),
            self.runtime_conf(cx),
        );
        let result = cx
            .host_netlink()
            .run_inside(move || runtime.add_network_list(&list, &conf).map_err(Box::new))??;
        let status = result.to_network_status(cx.network());
        let (_, ips) = result.container_interface();
        let prefixes: Vec<IpPrefix> = ips
            .iter()
            .filter_map(|ip| IpPrefix::new(ip.address.addr(), ip.address.prefix_len()))
            .collect();
        let gateways: Vec<IpAddr> = ips.iter().filter_map(|ip| ip.gateway).collect();
        let mut attached = Attached::default()
            .with_ips(prefixes, gateways)
            .with_dns(status.dns);
        attached.mac = status.mac;
        attached.mtu = status.mtu;
        Ok(attached)
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        let (runtime, list, conf) = (
            self.runtime.clone(),
            self.list.clone(),
            self.runtime_conf(cx),
        );
        cx.host_netlink()
            .run_inside(move || runtime.del_network_list(&list, &conf).map_err(Box::new))??;
        Ok(())
    }
}
