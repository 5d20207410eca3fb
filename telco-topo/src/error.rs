//! The error enums of `telco-topo`, one per subsystem.

use std::io;
use std::path::PathBuf;

use telco_core::{CpuSet, FileError, NodeMask};
use thiserror::Error;

/// Topology discovery failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// A sysfs or procfs file that discovery needs could not be read or parsed.
    #[error("topology discovery failed")]
    File(#[from] FileError),
    /// A directory that discovery lists could not be read.
    #[error("failed to list {}", path.display())]
    ListDir {
        /// Directory that was listed.
        path: PathBuf,
        /// Error from the listing.
        #[source]
        source: io::Error,
    },
    /// The root directory given to [`HostRoot::at`](telco_core::HostRoot::at) does not exist.
    #[error("root directory {} does not exist", path.display())]
    RootNotFound {
        /// The root directory.
        path: PathBuf,
    },
    /// The root directory has no `sys/` subdirectory, so it is not a copy of a Linux host's
    /// file systems.
    #[error("root directory {} has no sys/ subdirectory", path.display())]
    NoSysfs {
        /// The root directory.
        path: PathBuf,
    },
    /// The tree has no `sys/devices/system/cpu` with online CPUs: not a Linux sysfs.
    #[error("no online CPU found under {}: is this a Linux sysfs tree?", path.display())]
    NoOnlineCpu {
        /// Directory that was searched.
        path: PathBuf,
    },
    /// libhwloc could not build its topology (only with the `hwloc` feature).
    #[error("libhwloc failed to build the topology: {reason}")]
    Hwloc {
        /// Reason libhwloc gave.
        reason: String,
    },
}

/// The CPU manager refused an allocation or a configuration.
///
/// The variants carry the kubelet's error data, so a caller can tell the workload exactly what
/// to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CpuManagerError {
    /// More CPUs were requested than are free (the kubelet's
    /// `not enough cpus available to satisfy request`).
    #[error(
        "not enough cpus available to satisfy request: requested={requested}, available={available}"
    )]
    NotEnoughCpus {
        /// CPUs requested.
        requested: usize,
        /// CPUs free for exclusive use.
        available: usize,
    },
    /// With `full-pcpus-only`, the request is not a whole number of cores, or not enough whole
    /// cores are free (the kubelet's `SMTAlignmentError`).
    #[error("{}", smt_message(*requested, *cpus_per_core, *available_physical_cpus, *caused_by_physical_cpus))]
    SmtAlignment {
        /// CPUs requested.
        requested: usize,
        /// Hardware threads per core.
        cpus_per_core: usize,
        /// CPUs on fully free cores, when that was the cause.
        available_physical_cpus: Option<usize>,
        /// True when the request was a whole number of cores but too few whole cores were free.
        caused_by_physical_cpus: bool,
    },
    /// An option name the static policy does not know (the kubelet's
    /// `unknown CPU Manager Policy option`).
    #[error("unknown CPU Manager Policy option: {name:?}")]
    UnknownOption {
        /// Option name as given.
        name: String,
    },
    /// An option value that is not a boolean in Go's `strconv.ParseBool` syntax.
    #[error(
        "invalid value {value:?} for CPU Manager Policy option {name:?}: expected true or false"
    )]
    InvalidOptionValue {
        /// Option name.
        name: String,
        /// Value as given.
        value: String,
    },
    /// Two options that the kubelet refuses to combine.
    #[error("static policy options {first} and {second} are mutually exclusive")]
    IncompatibleOptions {
        /// One option.
        first: &'static str,
        /// The other option.
        second: &'static str,
    },
    /// `align-by-socket` on a machine with more sockets than NUMA nodes, or with the
    /// `single-numa-node` topology-manager policy.
    #[error("align-by-socket is not compatible with {reason}")]
    AlignBySocketUnsupported {
        /// Why: the topology-manager policy or the socket and NUMA counts.
        reason: String,
    },
    /// The static policy needs at least one reserved CPU.
    #[error("the static policy requires at least one reserved CPU")]
    NoReservedCpus,
    /// Reserved CPUs that the machine does not have.
    #[error("reserved CPUs {reserved} are not all online CPUs of the machine ({online})")]
    ReservedNotOnline {
        /// The reserved list.
        reserved: CpuSet,
        /// The online CPUs.
        online: CpuSet,
    },
    /// A CPU of the free list that the topology does not describe.
    #[error("CPU {cpu} is not in the topology")]
    UnknownCpu {
        /// CPU id.
        cpu: usize,
    },
    /// The workload has exclusive CPUs already.
    #[error("workload {workload:?} already holds CPUs {cpus}")]
    AlreadyAllocated {
        /// Workload id.
        workload: String,
        /// CPUs it holds.
        cpus: CpuSet,
    },
    /// The NUMA affinity names nodes that hold none of the machine's CPUs.
    #[error("NUMA affinity {affinity} holds no CPU of this machine")]
    EmptyAffinity {
        /// Affinity as given.
        affinity: NodeMask,
    },
}

/// Pinning a thread or binding its memory failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PinError {
    /// `sched_setaffinity` failed.
    #[error("sched_setaffinity({tid}, {cpus}) failed")]
    SetAffinity {
        /// Thread id (0 for the calling thread).
        tid: i32,
        /// CPUs asked for.
        cpus: CpuSet,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `sched_getaffinity` failed.
    #[error("sched_getaffinity({tid}) failed")]
    GetAffinity {
        /// Thread id (0 for the calling thread).
        tid: i32,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// Listing the threads of a process in `/proc/PID/task` failed.
    #[error("failed to list threads of process {pid}")]
    ListThreads {
        /// Process id.
        pid: i32,
        /// Error from the listing.
        #[source]
        source: io::Error,
    },
    /// `set_mempolicy` failed.
    #[error("set_mempolicy({mode}, {nodes}) failed")]
    SetMempolicy {
        /// Policy name (`bind`, `preferred`, `default`).
        mode: &'static str,
        /// Nodes asked for.
        nodes: NodeMask,
        /// Error from the kernel.
        #[source]
        source: io::Error,
    },
    /// The preferred policy takes exactly one node on kernels before 5.15.
    #[error("the preferred memory policy takes one NUMA node, got {nodes}")]
    PreferredNeedsOneNode {
        /// Nodes asked for.
        nodes: NodeMask,
    },
    /// A CPU id beyond what the mask passed to the kernel holds.
    #[error("CPU set {cpus} is empty or too large for sched_setaffinity")]
    BadCpuSet {
        /// CPUs asked for.
        cpus: CpuSet,
    },
}

/// Creating, writing or removing a cpuset cgroup failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// No cgroup v2 hierarchy with the cpuset controller, and no v1 `cpuset` hierarchy, is
    /// mounted.
    #[error(
        "no cpuset cgroup controller is mounted (looked in {}); mount cgroup v2 with +cpuset in cgroup.subtree_control or a v1 cpuset hierarchy",
        mountinfo.display()
    )]
    NoCpusetController {
        /// Mount table that was read.
        mountinfo: PathBuf,
    },
    /// Reading the mount table failed.
    #[error("failed to read the mount table")]
    MountTable(#[source] FileError),
    /// A cgroup file could not be read or written.
    #[error("cpuset cgroup file access failed")]
    File(#[from] FileError),
    /// Creating the cgroup directory failed.
    #[error("failed to create cgroup {}", path.display())]
    Create {
        /// Directory that was created.
        path: PathBuf,
        /// Error from `mkdir`.
        #[source]
        source: io::Error,
    },
    /// Removing the cgroup directory failed (it still has tasks, or children).
    #[error("failed to remove cgroup {}", path.display())]
    Remove {
        /// Directory that was removed.
        path: PathBuf,
        /// Error from `rmdir`.
        #[source]
        source: io::Error,
    },
    /// Writing cgroup files needs root or a delegated subtree.
    #[error("permission denied on {}: run as root or in a delegated cgroup subtree", path.display())]
    PermissionDenied {
        /// File or directory refused.
        path: PathBuf,
    },
    /// The kernel refused the `isolated` partition type.
    #[error("the kernel refused partition type isolated for {} (needs Linux 5.15 or later and CPUs that no sibling cgroup uses)", path.display())]
    PartitionRefused {
        /// The cgroup.
        path: PathBuf,
    },
    /// A cgroup name with `/` or `..`.
    #[error("invalid cgroup name {name:?}: use one path component")]
    InvalidName {
        /// Name as given.
        name: String,
    },
}

/// Reserving hugepages on a NUMA node failed or fell short.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HugepageError {
    /// The node has no pool of this page size.
    #[error("NUMA node {node} has no {size_kib} KiB hugepage pool ({} does not exist)", path.display())]
    NoPool {
        /// Node id.
        node: usize,
        /// Page size in KiB.
        size_kib: u64,
        /// Pool directory that was looked for.
        path: PathBuf,
    },
    /// Writing or reading `nr_hugepages` failed.
    #[error("hugepage pool access failed")]
    File(#[from] FileError),
    /// The kernel gave fewer pages than asked for (memory too fragmented or too small).
    #[error(
        "NUMA node {node}: asked for {requested} hugepages of {size_kib} KiB, the kernel could give {obtained}"
    )]
    Short {
        /// Node id.
        node: usize,
        /// Page size in KiB.
        size_kib: u64,
        /// Pages asked for.
        requested: u64,
        /// Pages in the pool after the write.
        obtained: u64,
    },
}

/// The topology manager refused a workload, or was configured wrongly.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TopologyManagerError {
    /// No placement satisfies the policy (the kubelet's `TopologyAffinityError`).
    #[error(
        "topology affinity error: workload {workload:?} cannot be placed under policy {policy}"
    )]
    Affinity {
        /// Workload id.
        workload: String,
        /// Policy that refused it.
        policy: &'static str,
    },
    /// An unknown policy name.
    #[error("unknown topology manager policy {name:?}")]
    UnknownPolicy {
        /// Name as given.
        name: String,
    },
    /// An unknown scope name.
    #[error("unknown topology manager scope {name:?}")]
    UnknownScope {
        /// Name as given.
        name: String,
    },
    /// The machine has more NUMA nodes than this manager handles.
    #[error("{nodes} NUMA nodes exceed the limit of {limit}")]
    TooManyNodes {
        /// Nodes of the machine.
        nodes: usize,
        /// Largest count handled.
        limit: usize,
    },
}

/// Formats the kubelet's `SMTAlignmentError` text.
fn smt_message(
    requested: usize,
    per_core: usize,
    available: Option<usize>,
    physical: bool,
) -> String {
    match (physical, available) {
        (true, Some(available)) => format!(
            "SMT Alignment Error: not enough free physical CPUs: available physical CPUs = {available}, requested CPUs = {requested}, CPUs per core = {per_core}"
        ),
        _ => format!(
            "SMT Alignment Error: requested {requested} cpus not multiple cpus per core = {per_core}"
        ),
    }
}
