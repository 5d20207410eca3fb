//! Networking for NFV workloads: namespaces, links, CNI, multi-network attach, SR-IOV, packet
//! rings and memif.

pub mod addr;
pub mod attach;
pub mod cni;
pub mod link;
pub mod memif;
pub mod netns;
pub mod ring;
pub mod route;
pub mod sriov;
pub mod sysctl;
