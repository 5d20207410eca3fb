//! [`CpusetCgroup`]: a cpuset cgroup that confines a workload's CPUs and memory nodes.

use std::io;
use std::path::{Path, PathBuf};

use telco_core::{CpuSet, FileError, HostRoot, NodeMask};

use super::mounts::{CgroupVersion, CpusetMount, find_cpuset_mount, mount_table_path};
use crate::error::CgroupError;

/// A cpuset cgroup this process created; removed on drop (errors are logged), or explicitly
/// with [`CpusetCgroup::remove`].
///
/// On cgroup v2 it is created under the hierarchy root, with `+cpuset` enabled in the root's
/// `cgroup.subtree_control`. On v1 it is created under the `cpuset` hierarchy's root, and
/// `cpuset.cpus` and `cpuset.mems` are written first because v1 rejects tasks until both are set.
#[derive(Debug)]
pub struct CpusetCgroup {
    version: CgroupVersion,
    directory: PathBuf,
    noprefix: bool,
    removed: bool,
}

impl CpusetCgroup {
    /// Creates cgroup `name` limited to `cpus` and `mems`, like
    /// `mkdir /sys/fs/cgroup/NAME; echo CPUS > .../cpuset.cpus; echo MEMS > .../cpuset.mems`.
    pub fn create(
        host: &HostRoot,
        name: &str,
        cpus: &CpuSet,
        mems: &NodeMask,
    ) -> Result<CpusetCgroup, CgroupError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(CgroupError::InvalidName {
                name: name.to_owned(),
            });
        }
        let mount = find_cpuset_mount(host)
            .map_err(CgroupError::MountTable)?
            .ok_or_else(|| CgroupError::NoCpusetController {
                mountinfo: mount_table_path(host),
            })?;
        if mount.version == CgroupVersion::V2 {
            enable_v2_controller(host, &mount)?;
        }
        let directory = host.path(&mount.mount_point).join(name);
        std::fs::create_dir(&directory).map_err(|source| create_error(&directory, source))?;
        let cgroup = CpusetCgroup {
            version: mount.version,
            noprefix: mount.noprefix,
            directory,
            removed: false,
        };
        cgroup.set_cpus(cpus)?;
        cgroup.set_mems(mems)?;
        tracing::debug!(cgroup = %cgroup.directory.display(), cpus = %cpus, mems = %mems, "created cpuset cgroup");
        Ok(cgroup)
    }

    /// Directory of the cgroup.
    pub fn path(&self) -> &Path {
        &self.directory
    }

    /// Interface of the hierarchy.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    fn file(&self, name: &str) -> PathBuf {
        let mount = CpusetMount {
            version: self.version,
            mount_point: PathBuf::new(),
            root: "/".to_owned(),
            noprefix: self.noprefix,
        };
        self.directory.join(mount.file(name))
    }

    fn write(&self, path: &Path, value: &str) -> Result<(), CgroupError> {
        std::fs::write(path, value).map_err(|source| write_error(path, value, source))
    }

    /// Writes `cpuset.cpus`.
    pub fn set_cpus(&self, cpus: &CpuSet) -> Result<(), CgroupError> {
        self.write(&self.file("cpus"), &cpus.to_string())
    }

    /// Writes `cpuset.mems`.
    pub fn set_mems(&self, mems: &NodeMask) -> Result<(), CgroupError> {
        self.write(&self.file("mems"), &mems.to_string())
    }

    /// Moves process `pid` (all its threads) into the cgroup (`cgroup.procs`).
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        self.write(&self.directory.join("cgroup.procs"), &pid.to_string())
    }

    /// CPUs the cgroup's tasks may use (`cpuset.cpus.effective`, or v1's
    /// `cpuset.effective_cpus`).
    pub fn effective_cpus(&self) -> Result<CpuSet, CgroupError> {
        let path = self.file("cpus.effective");
        let path = if path.exists() {
            path
        } else {
            self.file("cpus")
        };
        let text = telco_core::read_trimmed(&path)?;
        text.trim()
            .parse()
            .map_err(|error| CgroupError::File(FileError::parse(path, error)))
    }

    /// Makes the cgroup an isolated partition (v2 `cpuset.cpus.partition`, Linux 5.15): its
    /// CPUs leave the scheduler's load balancing, like `isolcpus=` at run time.
    pub fn set_isolated_partition(&self) -> Result<(), CgroupError> {
        let path = self.directory.join("cpuset.cpus.partition");
        if self.version == CgroupVersion::V1 || !path.exists() {
            return Err(CgroupError::PartitionRefused {
                path: self.directory.clone(),
            });
        }
        // Kernels without the `isolated` type reject the write with EINVAL.
        if let Err(source) = std::fs::write(&path, "isolated") {
            return Err(if source.raw_os_error() == Some(libc::EINVAL) {
                CgroupError::PartitionRefused {
                    path: self.directory.clone(),
                }
            } else {
                write_error(&path, "isolated", source)
            });
        }
        let state = telco_core::read_trimmed(&path)?;
        if state.trim() != "isolated" {
            return Err(CgroupError::PartitionRefused {
                path: self.directory.clone(),
            });
        }
        Ok(())
    }

    /// Removes the cgroup (`rmdir`); it must have no tasks left.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        std::fs::remove_dir(&self.directory).map_err(|source| CgroupError::Remove {
            path: self.directory.clone(),
            source,
        })
    }
}

impl Drop for CpusetCgroup {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Err(error) = std::fs::remove_dir(&self.directory) {
            tracing::warn!(cgroup = %self.directory.display(), %error, "failed to remove cpuset cgroup");
        }
    }
}

fn write_error(path: &Path, value: &str, source: io::Error) -> CgroupError {
    if source.kind() == io::ErrorKind::PermissionDenied {
        CgroupError::PermissionDenied {
            path: path.to_owned(),
        }
    } else {
        CgroupError::File(FileError::write(path, value, source))
    }
}

fn create_error(path: &Path, source: io::Error) -> CgroupError {
    if source.kind() == io::ErrorKind::PermissionDenied {
        CgroupError::PermissionDenied {
            path: path.to_owned(),
        }
    } else {
        CgroupError::Create {
            path: path.to_owned(),
            source,
        }
    }
}

/// Adds `+cpuset` to the v2 root's `cgroup.subtree_control` when it is not there yet.
fn enable_v2_controller(host: &HostRoot, mount: &CpusetMount) -> Result<(), CgroupError> {
    let control = host.path(&mount.mount_point).join("cgroup.subtree_control");
    let enabled = telco_core::read_trimmed(&control)?;
    if enabled.split_whitespace().any(|name| name == "cpuset") {
        return Ok(());
    }
    std::fs::write(&control, "+cpuset").map_err(|source| {
        if source.kind() == io::ErrorKind::PermissionDenied {
            CgroupError::PermissionDenied {
                path: control.clone(),
            }
        } else {
            CgroupError::File(FileError::write(&control, "+cpuset", source))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_are_rejected() {
        let error = CpusetCgroup::create(
            &HostRoot::system(),
            "../escape",
            &CpuSet::new(),
            &NodeMask::new(),
        )
        .unwrap_err();
        assert!(matches!(error, CgroupError::InvalidName { .. }));
    }

    #[test]
    fn missing_cpuset_mount_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(
            dir.path().join("proc/self/mountinfo"),
            "22 1 0:21 / /proc rw - proc proc rw\n",
        )
        .unwrap();
        let error = CpusetCgroup::create(
            &HostRoot::at(dir.path()),
            "x",
            &CpuSet::new(),
            &NodeMask::new(),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("no cpuset cgroup controller"),
            "{error}"
        );
    }

    #[test]
    fn v1_cgroup_in_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::create_dir_all(dir.path().join("sys/fs/cgroup/cpuset")).unwrap();
        std::fs::write(
            dir.path().join("proc/self/mountinfo"),
            "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n",
        )
        .unwrap();
        let host = HostRoot::at(dir.path());
        let cgroup =
            CpusetCgroup::create(&host, "w1", &"2-3".parse().unwrap(), &"0".parse().unwrap())
                .unwrap();
        assert_eq!(cgroup.version(), CgroupVersion::V1);
        let written = std::fs::read_to_string(cgroup.path().join("cpuset.cpus")).unwrap();
        assert_eq!(written, "2-3");
        assert_eq!(cgroup.effective_cpus().unwrap().to_string(), "2-3");
        // A real cgroupfs directory is empty to rmdir; here the files must go first.
        for name in ["cpuset.cpus", "cpuset.mems"] {
            std::fs::remove_file(cgroup.path().join(name)).unwrap();
        }
        cgroup.remove().unwrap();
    }
}
