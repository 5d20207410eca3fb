//! The built-in attachment kinds: veth (optionally on a bridge), macvlan, ipvlan, VLAN,
//! host-device, tap, and any CNI conflist ([`CniKind`]). Each of the first six mirrors the reference CNI plugin of the same name, without the
//! exec: the same link, made in process.

mod cni;
mod host_device;
mod tap;
mod veth;
mod virt;

pub use cni::CniKind;
pub use host_device::HostDeviceKind;
pub use tap::TapKind;
pub use veth::VethKind;
pub use virt::{IpvlanKind, MacvlanKind, VlanKind};

use super::KindError;
use crate::link::LinkError;

/// Treats "the link is gone" as success, for detach.
fn gone_is_ok(result: Result<(), LinkError>) -> Result<(), KindError> {
    match result {
        Err(error) if !error.is_not_found() => Err(error.into()),
        _ => Ok(()),
    }
}
