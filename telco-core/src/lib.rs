//! The vocabulary shared by the telco NFV SDK crates.
//!
//! `telco-core` holds the small types that every other crate of the SDK speaks, so that a CPU
//! set found by `telco-topo`, a NUMA hint from an SR-IOV pool in `telco-net` and the vCPU pinning
//! of `telco-vmm` mean the same thing:
//!
//! - [`CpuSet`]: logical CPU ids in the kernel's list (`0-3,8-11`) and hex mask
//!   (`00000000,0000ffff`) formats.
//! - [`NodeMask`], [`TopologyHint`] and the [`TopologyHintProvider`] trait: NUMA node sets and the
//!   placement hints a topology manager merges, in the kubelet's model.
//! - [`PciAddress`], [`MacAddr`] and [`InterfaceName`], parsed and validated at the edge.
//! - [`HostRoot`]: where `/sys`, `/proc`, `/run` and `/dev` are, so every reader runs on the live
//!   host or on a fixture tree.
//! - [`ParseError`] and [`FileError`]: errors that quote the rejected text and name the file.
//!
//! It has no system dependency and does no I/O beyond [`HostRoot`]'s file reads.
//!
//! # When not to use it
//!
//! On its own it discovers nothing and changes nothing on the host: use `telco-topo` for topology
//! and pinning, `telco-net` for networking. Pick it directly only when you write your own hint
//! provider or reader and want to share these types with the SDK.
//!
//! # Features
//!
//! - `serde`: `Serialize` and `Deserialize` for every type, as its text form (a `CpuSet` is
//!   `"0-3"`, a `MacAddr` is `"02:00:00:00:00:01"`).

mod bitset;
mod cpuset;
pub mod error;
mod host;
mod ifname;
mod mac;
mod numa;
mod pci;

pub use cpuset::{CpuSet, Iter as CpuIter};
pub use error::{FileError, ParseError};
pub use host::{HostRoot, read_trimmed};
pub use ifname::InterfaceName;
pub use mac::MacAddr;
pub use numa::{
    NodeIter, NodeMask, ResourceHints, ResourceRequest, TopologyHint, TopologyHintProvider,
};
pub use pci::PciAddress;

/// Implements `Serialize` and `Deserialize` through `Display` and `FromStr`.
#[cfg(feature = "serde")]
macro_rules! serde_as_text {
    ($type:ty, $expecting:literal) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct TextVisitor;

                impl serde::de::Visitor<'_> for TextVisitor {
                    type Value = $type;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$type, E> {
                        text.parse().map_err(E::custom)
                    }
                }

                deserializer.deserialize_str(TextVisitor)
            }
        }
    };
}
#[cfg(feature = "serde")]
pub(crate) use serde_as_text;

#[cfg(all(test, feature = "serde"))]
mod serde_tests {
    use super::*;

    #[test]
    fn types_serialize_as_text() {
        let cpus: CpuSet = "0-3,8".parse().unwrap();
        assert_eq!(serde_json::to_string(&cpus).unwrap(), "\"0-3,8\"");
        let back: CpuSet = serde_json::from_str("\"0-3,8\"").unwrap();
        assert_eq!(back, cpus);
        let pci: PciAddress = serde_json::from_str("\"3b:00.1\"").unwrap();
        assert_eq!(serde_json::to_string(&pci).unwrap(), "\"0000:3b:00.1\"");
        let error = serde_json::from_str::<MacAddr>("\"zz\"").unwrap_err();
        assert!(error.to_string().contains("\"zz\""), "{error}");
    }
}

#[cfg(test)]
mod send_sync {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<CpuSet>();
        assert_send_sync::<NodeMask>();
        assert_send_sync::<TopologyHint>();
        assert_send_sync::<PciAddress>();
        assert_send_sync::<MacAddr>();
        assert_send_sync::<InterfaceName>();
        assert_send_sync::<HostRoot>();
        assert_send_sync::<FileError>();
    }
}
