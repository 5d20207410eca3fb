//! [`probe`]: whether the kernel has SCTP, found from `/proc` and `/lib/modules` without creating
//! a socket (which could load the module as a side effect).

use std::path::PathBuf;

use telco_core::HostRoot;

/// SCTP support of a kernel, as [`probe`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Support {
    /// The SCTP stack is running: `/proc/net/sctp` exists.
    Available,
    /// SCTP is a module that is not loaded; `modprobe sctp` (as root) loads it.
    ModuleNotLoaded {
        /// The module file found under `/lib/modules/<release>/`.
        module: PathBuf,
    },
    /// Neither running nor found as a module: the kernel was built without `CONFIG_IP_SCTP`,
    /// or its modules are not installed.
    Missing,
}

impl Support {
    /// Returns true if SCTP sockets can be created now.
    pub fn is_available(&self) -> bool {
        matches!(self, Support::Available)
    }
}

/// Reports whether this host's kernel has SCTP, without side effects.
pub fn probe() -> Support {
    probe_in(&HostRoot::system())
}

/// Reports whether the kernel of the host at `root` has SCTP.
pub fn probe_in(root: &HostRoot) -> Support {
    if root.proc().join("net/sctp").exists() {
        return Support::Available;
    }
    let Ok(Some(release)) = root.read_optional("/proc/sys/kernel/osrelease") else {
        return Support::Missing;
    };
    let dir = root.path(format!("/lib/modules/{}/kernel/net/sctp", release.trim()));
    let module = ["sctp.ko", "sctp.ko.xz", "sctp.ko.zst", "sctp.ko.gz"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.exists());
    match module {
        Some(module) => Support::ModuleNotLoaded { module },
        None => Support::Missing,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn fixture() -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("proc/sys/kernel")).unwrap();
        fs::write(dir.path().join("proc/sys/kernel/osrelease"), "6.1.0-test\n").unwrap();
        let root = HostRoot::at(dir.path());
        (dir, root)
    }

    #[test]
    fn proc_net_sctp_means_available() {
        let (dir, root) = fixture();
        fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        fs::write(dir.path().join("proc/net/sctp"), "").unwrap();
        assert_eq!(probe_in(&root), Support::Available);
    }

    #[test]
    fn module_file_means_not_loaded() {
        let (dir, root) = fixture();
        let module_dir = dir.path().join("lib/modules/6.1.0-test/kernel/net/sctp");
        fs::create_dir_all(&module_dir).unwrap();
        fs::write(module_dir.join("sctp.ko.xz"), "").unwrap();
        assert_eq!(
            probe_in(&root),
            Support::ModuleNotLoaded {
                module: module_dir.join("sctp.ko.xz")
            }
        );
    }

    #[test]
    fn nothing_means_missing() {
        let (_dir, root) = fixture();
        assert_eq!(probe_in(&root), Support::Missing);
        assert!(!Support::Missing.is_available());
    }
}
