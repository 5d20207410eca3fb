//! cpuset cgroups: finding the hierarchy, and creating cgroups that confine a workload.

mod cpuset;
pub(crate) mod mounts;

pub use cpuset::CpusetCgroup;
pub use mounts::CgroupVersion;
