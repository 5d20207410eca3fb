//! Topology discovery, the kubelet's CPU and topology managers, CPU pinning, memory binding,
//! cpuset cgroups and hugepages, for NFV workloads that need a data-plane thread on its own
//! core and on its NIC's NUMA node.
//!
//! # Entry points
//!
//! | step | call |
//! |---|---|
//! | read the machine | [`Topology::discover`]`(&HostRoot)`, or [`Topology::discover_with`] and [`DiscoverOptions::with_cgroup`] for the process's cpuset limits |
//! | give the CPU manager the machine | [`CpuTopology::from_topology`] |
//! | keep exclusive CPUs per workload | [`CpuManager::new`], [`CpuManager::allocate`]`(workload, n, Some(&affinity))`, [`CpuManager::release`] |
//! | hints for CPUs and hugepages | [`CpuManager`] and [`HugepageProvider`] implement [`TopologyHintProvider`](telco_core::TopologyHintProvider) |
//! | merge hints under a policy | [`TopologyManager::admit`] (providers added with [`TopologyManager::add_provider`]), or [`merge_hints`] alone |
//! | pin and bind | [`pin::pin_current_thread`], [`pin::pin_thread`], [`pin::pin_process`], [`pin::set_memory_policy`] |
//! | confine a process | [`cgroup::CpusetCgroup::create`], [`cgroup::CpusetCgroup::add_process`] |
//! | hugepages per node | [`hugepages::reserve_hugepages`] |
//!
//! ```no_run
//! use telco_core::{HostRoot, ResourceRequest};
//! use telco_topo::topomanager::TopologyManagerOptions;
//! use telco_topo::{
//!     CpuManager, CpuTopology, HugepageProvider, Policy, Reserved, Scope, StaticPolicyOptions,
//!     Topology, TopologyManager,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let topology = Topology::discover(&HostRoot::system())?;
//! let mut cpus = CpuManager::new(
//!     CpuTopology::from_topology(&topology),
//!     Reserved::Count(1),
//!     StaticPolicyOptions::parse("full-pcpus-only")?,
//! )?;
//! let pages = HugepageProvider::from_topology(&topology);
//!
//! let request = ResourceRequest::new("vnf-1").with("cpu", 4).with("hugepages-2Mi", 1 << 30);
//! let hint = {
//!     let mut manager = TopologyManager::new(
//!         Policy::SingleNumaNode,
//!         Scope::Container,
//!         topology.node_ids(),
//!         None,
//!         &TopologyManagerOptions::default(),
//!     )?;
//!     manager.add_provider(&cpus);
//!     manager.add_provider(&pages);
//!     manager.admit(&request)?
//! };
//! let exclusive = cpus.allocate("vnf-1", 4, Some(&hint.affinity))?;
//! telco_topo::pin::pin_current_thread(&exclusive)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Where the data comes from
//!
//! Discovery reads sysfs and procfs through [`HostRoot`](telco_core::HostRoot), so it runs
//! unchanged on hwloc's fixture trees: `sys/devices/system/cpu` (online, possible, present,
//! `topology/`, `cache/indexK/`), `sys/devices/system/node` (`cpumap`, `meminfo`,
//! `distance`, `hugepages/`), `sys/bus/pci/devices`, `sys/kernel/mm/hugepages`,
//! `cpu/isolated`, `cpu/nohz_full`, and for the cgroup `/proc/self/mountinfo` and
//! `/proc/self/cgroup`. The [`discover`] module lists the fallbacks for missing files. With
//! the `hwloc` feature, [`hwloc::discover_with_hwloc`] builds the same type through
//! libhwloc as a cross-check.
//!
//! # When not to use it
//!
//! It does not schedule pods over several machines, keep the kubelet's checkpoint files, or
//! manage memory other than hugepages (the kubelet's memory manager for regular memory is not
//! implemented). For binding other than Linux's, use hwloc.
//!
//! # Features
//!
//! - `hwloc`: the libhwloc cross-check (needs Debian's `libhwloc-dev`).

pub mod cgroup;
pub mod cpumanager;
pub mod discover;
pub mod error;
pub mod hugepages;
#[cfg(feature = "hwloc")]
pub mod hwloc;
pub mod pin;
pub mod topomanager;

pub use cpumanager::{CpuManager, CpuTopology, Reserved, StaticPolicyOptions};
pub use discover::{DiscoverOptions, Topology};
pub use error::{
    CgroupError, CpuManagerError, DiscoverError, HugepageError, PinError, TopologyManagerError,
};
pub use topomanager::{HugepageProvider, Policy, Scope, TopologyManager, merge_hints};

#[cfg(test)]
mod send_sync {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<Topology>();
        assert_send_sync::<CpuManager>();
        assert_send_sync::<CpuTopology>();
        assert_send_sync::<HugepageProvider>();
        assert_send_sync::<DiscoverError>();
        assert_send_sync::<CpuManagerError>();
        assert_send_sync::<cgroup::CpusetCgroup>();
    }
}
