//! Networking for NFV workloads: network namespaces, links, addresses and routes, IP address
//! management, multi-network attach, the CNI runtime and plugin side, SR-IOV, DPDK-style
//! packet rings and memif.
//!
//! A VNF needs several interfaces (management, control plane, data plane), some of them kernel
//! interfaces in its network namespace and some userspace ones (an SR-IOV VF bound to
//! vfio-pci, a memif or vhost-user socket). This crate makes them, in process, and reports them
//! in the Kubernetes multi-network status format, so a runtime, a CNI plugin or a pod launcher
//! such as the `vnf-pod` example can be built on it.
//!
//! | module | what it does | like |
//! |---|---|---|
//! | [`netns`] | create, open, enter, list and delete network namespaces; [`netns::Netlink`] sessions bound to one | `ip netns` |
//! | [`link`] | veth, bridge, macvlan, ipvlan, VLAN, dummy and tap links; up/down, MTU, MAC, names, namespace moves | `ip link`, `ip tuntap` |
//! | [`addr`], [`route`], [`sysctl`] | addresses, routes and network sysctls of one namespace | `ip address`, `ip route`, `sysctl` |
//! | [`ipam`] | static addresses and an allocator sharing the host-local plugin's on-disk store | CNI `host-local`, `static` |
//! | [`attach`] | ordered multi-network attach with rollback, detach, the network-status list | Multus with the reference plugins |
//! | [`cni`] | CNI types, the plugin side (skel) and the runtime side (libcni) | `containernetworking/cni` |
//! | [`sriov`], [`memif`], [`ring`] | SR-IOV VFs, memif interfaces, DPDK-style rings | SR-IOV CNI, libmemif, `rte_ring` |
//!
//! Blocking APIs come first: netlink requests go through a [`netns::Netlink`] session, which
//! owns a thread with a current-thread tokio runtime driving `rtnetlink`, so callers need no
//! runtime of their own. Code that must run inside a namespace runs on a thread made for it;
//! no thread that async tasks share ever changes namespace. The extension points that
//! integrators implement, such as [`attach::AttachKind`], are async traits.
//!
//! ```no_run
//! use telco_net::attach::kinds::{MacvlanKind, VethKind};
//! use telco_net::attach::{Attacher, AttachmentSpec, IpConfig, StaticAddress};
//! use telco_net::netns::Netns;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pod = Netns::create("vnf1")?;
//! let specs = vec![
//!     AttachmentSpec::new("mgmt", "eth0".parse()?, VethKind::new().bridge("br-mgmt"))
//!         .ip(IpConfig::Static(vec![StaticAddress::new("10.1.0.5/24".parse()?, Some("10.1.0.1".parse()?))]))
//!         .default_route(),
//!     AttachmentSpec::new("data", "net1".parse()?, MacvlanKind::new("eno2")),
//! ];
//! let attacher = Attacher::new(&pod, "vnf1")?;
//! let status = attacher.attach(&specs)?;
//! println!("{}", serde_json::to_string_pretty(&status)?);
//! attacher.detach(&specs)?;
//! # Ok(())
//! # }
//! ```
//!
//! When not to use it: a plain single-network container needs no more than the runtime's own
//! CNI setup. To configure the host's own network permanently, use the distribution's network
//! manager. Everything here needs `CAP_NET_ADMIN` (and `CAP_SYS_ADMIN` for namespaces) and
//! Linux.

pub mod addr;
pub mod attach;
pub mod cni;
pub mod ipam;
pub mod link;
pub mod memif;
pub mod netns;
pub mod ring;
pub mod route;
pub mod sriov;
pub mod sysctl;
