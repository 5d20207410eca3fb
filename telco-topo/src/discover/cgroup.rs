//! The calling process's cpuset cgroup: the CPUs and memory nodes it may use.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use telco_core::{CpuSet, HostRoot, NodeMask};

use super::{parse_text, read_text};
use crate::cgroup::mounts::{CpusetMount, find_cpuset_mount, own_cgroup_path};
use crate::error::DiscoverError;

pub use crate::cgroup::mounts::CgroupVersion;

/// The cpuset limits of the calling process (v2 `cpuset.cpus.effective` and
/// `cpuset.mems.effective`, v1 `cpuset.effective_cpus` or `cpuset.cpus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CgroupCpuset {
    /// Interface the controller is mounted with.
    pub version: CgroupVersion,
    /// Cgroup path as `/proc/self/cgroup` gives it.
    pub path: String,
    /// Directory the limits were read from, inside the host root.
    pub directory: PathBuf,
    /// CPUs the process may run on.
    pub cpus: CpuSet,
    /// NUMA nodes the process may allocate from.
    pub mems: NodeMask,
}

/// Reads the limits; `None` when no cpuset controller is mounted or the process's cgroup is
/// unknown. Where the process's own directory lacks the files (v2 without the controller
/// enabled there), the nearest ancestor that has them decides.
pub(super) fn read_cgroup_cpuset(host: &HostRoot) -> Result<Option<CgroupCpuset>, DiscoverError> {
    let Some(mount) = find_cpuset_mount(host)? else {
        return Ok(None);
    };
    let Some(path) = own_cgroup_path(host, mount.version)? else {
        return Ok(None);
    };
    let mut directory = mount.directory(&path);
    loop {
        if let Some((cpus, mems)) = read_limits(host, &mount, &directory)? {
            return Ok(Some(CgroupCpuset {
                version: mount.version,
                path,
                directory: host.path(&directory),
                cpus,
                mems,
            }));
        }
        if directory == mount.mount_point || !directory.pop() {
            return Ok(None);
        }
    }
}

fn read_limits(
    host: &HostRoot,
    mount: &CpusetMount,
    directory: &std::path::Path,
) -> Result<Option<(CpuSet, NodeMask)>, DiscoverError> {
    // The path and text of the first of `names` that exists.
    let first = |names: [&str; 2]| -> Result<Option<(String, String)>, DiscoverError> {
        for name in names {
            let path = directory
                .join(mount.file(name))
                .to_string_lossy()
                .into_owned();
            if let Some(text) = read_text(host, &path)? {
                return Ok(Some((path, text)));
            }
        }
        Ok(None)
    };
    // v2 publishes what applies in `.effective`; for v1, hwloc reads the configured `cpus`
    // and `mems`, and so does this reader, falling back to `effective_*`.
    let order = |kind: &'static str| match mount.version {
        CgroupVersion::V2 => [effective(kind), kind],
        CgroupVersion::V1 => [kind, effective(kind)],
    };
    let (Some((cpus_path, cpus_text)), Some((mems_path, mems_text))) =
        (first(order("cpus"))?, first(order("mems"))?)
    else {
        return Ok(None);
    };
    let cpus = parse_text::<CpuSet>(host, &cpus_path, &cpus_text)?;
    let mems = parse_text::<NodeMask>(host, &mems_path, &mems_text)?;
    Ok(Some((cpus, mems)))
}

fn effective(kind: &'static str) -> &'static str {
    if kind == "cpus" {
        "cpus.effective"
    } else {
        "mems.effective"
    }
}
