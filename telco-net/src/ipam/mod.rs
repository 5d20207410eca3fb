//! IP address management: static addresses and a host-local-compatible allocator.
//!
//! [`HostLocal`] keeps its leases in the on-disk layout of the host-local CNI plugin
//! (`/var/lib/cni/networks/<network>/`), so a network can be served by this crate and by
//! the plugin at the same time without handing out an address twice. Its data directory is
//! a parameter, so tests use a temporary one.
//!
//! ```no_run
//! use telco_net::ipam::{DEFAULT_DATA_DIR, HostLocal, IpRange};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = HostLocal::open(DEFAULT_DATA_DIR.as_ref(), "data-net")?;
//! let leases = store.allocate("c0ffee", "net1", &[vec![IpRange::new("10.1.0.0/24".parse()?)]])?;
//! assert_eq!(leases[0].address.to_string(), "10.1.0.2/24"); // .1 is the gateway
//! store.release("c0ffee", "net1")?;
//! # Ok(())
//! # }
//! ```
//!
//! Limitations: no `dhcp`; host-local's requests for a given address (`runtimeConfig.ips`,
//! `CNI_ARGS IP=`) and its per-pod reservation files are not supported.

mod host_local;
mod range;

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use host_local::{DEFAULT_DATA_DIR, HostLocal};
pub use range::{IpRange, RangeSet};

use crate::addr::IpPrefix;

/// An address given to an interface, with the gateway of its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Lease {
    /// The address with the subnet's prefix length.
    pub address: IpPrefix,
    /// The subnet's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

impl Lease {
    /// A lease of `address`, with an optional gateway.
    pub fn new(address: IpPrefix, gateway: Option<IpAddr>) -> Lease {
        Lease { address, gateway }
    }
}

/// An error from address management.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpamError {
    /// A range is malformed.
    #[error("invalid range {range}: {reason}")]
    InvalidRange {
        /// The range's subnet or position.
        range: String,
        /// What is wrong.
        reason: String,
    },
    /// The network name cannot be a directory name.
    #[error("invalid network name {network:?} for an address store")]
    InvalidNetwork {
        /// The name.
        network: String,
    },
    /// Every address of a range set is leased.
    #[error("no free address in range set {set} of network {network}")]
    Exhausted {
        /// The network.
        network: String,
        /// The index of the range set.
        set: usize,
    },
    /// The interface holds an address from this range set already.
    #[error("{address} is already leased to container {container_id} interface {ifname}")]
    DuplicateAllocation {
        /// The address held.
        address: IpAddr,
        /// The container.
        container_id: String,
        /// The interface.
        ifname: String,
    },
    /// A file of the store could not be read or written.
    #[error("{call} {} failed", path.display())]
    Store {
        /// The call: `open`, `flock`, `create`, `write`, `unlink`...
        call: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
