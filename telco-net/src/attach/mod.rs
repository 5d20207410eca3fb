//! Multi-network attach: give a pod namespace several interfaces, in order, and report them
//! as the Kubernetes network-status list.
//!
//! An [`Attacher`] takes the pod's namespace, its container ID and an ordered list of
//! [`AttachmentSpec`]s. Each spec names the network, the interface inside the pod, the
//! [`AttachKind`] that makes it (veth on a bridge, macvlan, ipvlan, VLAN, host-device, tap,
//! a CNI conflist, and the SR-IOV and memif kinds of their modules), and how it gets
//! addresses ([`IpConfig`]: static or a host-local store shared with the CNI plugin).
//!
//! [`Attacher::attach`] works through the list in order, as the multi-network spec requires
//! (section 7: attachments of a pod never run in parallel). When one fails, it removes what
//! that one and every earlier one made, in reverse, and returns the error.
//! [`Attacher::detach`] goes through the list in reverse, keeps going past failures, returns
//! them together, and succeeds when there is nothing left to remove.
//!
//! ```no_run
//! use telco_net::attach::kinds::{MacvlanKind, VethKind};
//! use telco_net::attach::{Attacher, AttachmentSpec, HostLocalIpam, IpConfig};
//! use telco_net::ipam::IpRange;
//! use telco_net::netns::Netns;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pod = Netns::create("pod1")?;
//! let ranges = vec![vec![IpRange::new("10.1.0.0/24".parse()?)]];
//! let specs = vec![
//!     AttachmentSpec::new("mgmt", "eth0".parse()?, VethKind::new().bridge("br-mgmt"))
//!         .ip(IpConfig::HostLocal(HostLocalIpam::new("mgmt", ranges)))
//!         .default_route(),
//!     AttachmentSpec::new("data", "net1".parse()?, MacvlanKind::new("eno1")),
//! ];
//! let attacher = Attacher::new(&pod, "pod1-sandbox")?;
//! let status = attacher.attach(&specs)?;
//! println!("{}", serde_json::to_string(&status)?);
//! attacher.detach(&specs)?;
//! # Ok(())
//! # }
//! ```

mod driver;
mod error;
mod kind;
pub mod kinds;
mod spec;

/// The attribute macro that implementations of [`AttachKind`] put on their `impl` block,
/// re-exported so integrators need no direct dependency on `async-trait`.
pub use async_trait::async_trait;
pub use driver::Attacher;
pub use error::{AttachError, DetachError, Step, StepError};
pub use kind::{AttachContext, AttachKind, KindError};
pub use spec::{Attached, AttachmentSpec, HostLocalIpam, IpConfig, StaticAddress};
