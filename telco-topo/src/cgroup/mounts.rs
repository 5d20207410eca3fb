//! Finding the cpuset cgroup hierarchy and the calling process's place in it.
//!
//! The mount table is `/proc/self/mountinfo`, or `/proc/mounts` where that is missing (as in
//! hwloc's fixture trees). The process's cgroup is `/proc/self/cgroup`, or `/proc/self/cpuset`
//! on old kernels and in fixtures.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use telco_core::{FileError, HostRoot};

/// Cgroup interface that carries the cpuset controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// cgroup v1 `cpuset` hierarchy, or the older `cpuset` filesystem.
    V1,
    /// cgroup v2 unified hierarchy.
    V2,
}

/// A mounted hierarchy that carries the cpuset controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CpusetMount {
    pub version: CgroupVersion,
    /// Mount point as a host path (`/sys/fs/cgroup/cpuset`).
    pub mount_point: PathBuf,
    /// Path of the hierarchy that is mounted there (`/` unless a container bind-mounts a
    /// subtree).
    pub root: String,
    /// True for v1 files without the `cpuset.` prefix (`noprefix`, or the cpuset filesystem).
    pub noprefix: bool,
}

impl CpusetMount {
    /// File name of a cpuset file (`cpus`, `mems`, `cpus.effective`) in this hierarchy.
    pub fn file(&self, name: &str) -> String {
        match self.version {
            CgroupVersion::V2 => format!("cpuset.{name}"),
            CgroupVersion::V1 => {
                let v1 = match name {
                    "cpus.effective" => "effective_cpus",
                    "mems.effective" => "effective_mems",
                    other => other,
                };
                if self.noprefix {
                    v1.to_owned()
                } else {
                    format!("cpuset.{v1}")
                }
            }
        }
    }

    /// Directory of cgroup `path` (as `/proc/self/cgroup` gives it) under this mount.
    pub fn directory(&self, path: &str) -> PathBuf {
        let relative = path
            .strip_prefix(self.root.trim_end_matches('/'))
            .unwrap_or(path)
            .trim_start_matches('/');
        if relative.is_empty() {
            self.mount_point.clone()
        } else {
            self.mount_point.join(relative)
        }
    }
}

/// One line of the mount table.
struct MountEntry {
    root: String,
    mount_point: String,
    fs_type: String,
    options: String,
}

/// Finds the hierarchy with the cpuset controller: a v1 `cpuset` hierarchy (or the `cpuset`
/// filesystem) when one is mounted, else the v2 hierarchy when its root lists `cpuset` in
/// `cgroup.controllers`.
pub(crate) fn find_cpuset_mount(host: &HostRoot) -> Result<Option<CpusetMount>, FileError> {
    let entries = read_mount_table(host)?;
    for entry in &entries {
        let v1_cpuset =
            entry.fs_type == "cgroup" && entry.options.split(',').any(|option| option == "cpuset");
        if v1_cpuset || entry.fs_type == "cpuset" {
            return Ok(Some(CpusetMount {
                version: CgroupVersion::V1,
                mount_point: PathBuf::from(&entry.mount_point),
                root: entry.root.clone(),
                noprefix: entry.fs_type == "cpuset"
                    || entry.options.split(',').any(|option| option == "noprefix"),
            }));
        }
    }
    for entry in entries.iter().filter(|entry| entry.fs_type == "cgroup2") {
        let controllers = host
            .read_optional(format!("{}/cgroup.controllers", entry.mount_point))?
            .unwrap_or_default();
        let has_cpuset = controllers.split_whitespace().any(|name| name == "cpuset")
            || host
                .path(format!("{}/cpuset.cpus.effective", entry.mount_point))
                .exists();
        if has_cpuset {
            return Ok(Some(CpusetMount {
                version: CgroupVersion::V2,
                mount_point: PathBuf::from(&entry.mount_point),
                root: entry.root.clone(),
                noprefix: false,
            }));
        }
    }
    Ok(None)
}

/// Path of the calling process's cgroup in the hierarchy of `version`.
pub(crate) fn own_cgroup_path(
    host: &HostRoot,
    version: CgroupVersion,
) -> Result<Option<String>, FileError> {
    if let Some(text) = host.read_optional("/proc/self/cgroup")? {
        for line in text.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(hierarchy), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let matches = match version {
                CgroupVersion::V2 => hierarchy == "0" && controllers.is_empty(),
                CgroupVersion::V1 => controllers.split(',').any(|name| name == "cpuset"),
            };
            if matches {
                return Ok(Some(path.to_owned()));
            }
        }
    }
    Ok(host
        .read_optional("/proc/self/cpuset")?
        .map(|path| path.trim().to_owned()))
}

/// Mount table path used for error messages.
pub(crate) fn mount_table_path(host: &HostRoot) -> PathBuf {
    let mountinfo = host.path("/proc/self/mountinfo");
    if mountinfo.exists() {
        mountinfo
    } else {
        host.path("/proc/mounts")
    }
}

fn read_mount_table(host: &HostRoot) -> Result<Vec<MountEntry>, FileError> {
    if let Some(text) = host.read_optional("/proc/self/mountinfo")? {
        return Ok(text.lines().filter_map(parse_mountinfo_line).collect());
    }
    let text = host.read_optional("/proc/mounts")?.unwrap_or_default();
    Ok(text.lines().filter_map(parse_mounts_line).collect())
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let mut tail = after.split(' ');
    let fs_type = tail.next()?.to_owned();
    let _source = tail.next()?;
    let super_options = tail.next().unwrap_or("");
    Some(MountEntry {
        root: unescape(fields.get(3)?),
        mount_point: unescape(fields.get(4)?),
        fs_type,
        options: format!("{},{super_options}", fields.get(5)?),
    })
}

/// `none /dev/cpuset cpuset rw 0 0`
fn parse_mounts_line(line: &str) -> Option<MountEntry> {
    let mut fields = line.split_whitespace();
    let _source = fields.next()?;
    let mount_point = unescape(fields.next()?);
    let fs_type = fields.next()?.to_owned();
    let options = fields.next().unwrap_or("").to_owned();
    Some(MountEntry {
        root: "/".to_owned(),
        mount_point,
        fs_type,
        options,
    })
}

/// Decodes the kernel's octal escapes (`\040` for a space) in mount table fields.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' && index + 3 < bytes.len() {
            let digits = &field[index + 1..index + 4];
            if let Ok(value) = u8::from_str_radix(digits, 8) {
                out.push(value);
                index += 4;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_line_gives_cgroup_v1_cpuset() {
        let entry = parse_mountinfo_line(
            "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset",
        )
        .unwrap();
        assert_eq!(entry.mount_point, "/sys/fs/cgroup/cpuset");
        assert_eq!(entry.fs_type, "cgroup");
        assert!(entry.options.split(',').any(|option| option == "cpuset"));
    }

    #[test]
    fn mount_fields_decode_octal_escapes() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\"), "/end\\");
    }

    #[test]
    fn v1_file_names_follow_noprefix() {
        let mut mount = CpusetMount {
            version: CgroupVersion::V1,
            mount_point: PathBuf::from("/dev/cpuset"),
            root: "/".to_owned(),
            noprefix: true,
        };
        assert_eq!(mount.file("cpus"), "cpus");
        mount.noprefix = false;
        assert_eq!(mount.file("cpus.effective"), "cpuset.effective_cpus");
        mount.version = CgroupVersion::V2;
        assert_eq!(mount.file("mems.effective"), "cpuset.mems.effective");
        assert_eq!(mount.directory("/a/b"), PathBuf::from("/dev/cpuset/a/b"));
    }
}
