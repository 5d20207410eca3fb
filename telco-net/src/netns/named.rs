//! Named namespaces: bind mounts under a directory, the iproute2 layout.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::{NetnsError, on_new_thread};

/// The directory of iproute2's named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Rejects names that are not a single path component.
pub(super) fn check_name(name: &str) -> Result<(), NetnsError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name == "." || name == ".." {
        Some("\".\" and \"..\" are not names")
    } else if name.contains('/') || name.contains('\0') {
        Some("contains '/' or NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetnsError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Makes `dir` exist and be a shared mount point, so that bind mounts made below it show up in
/// other mount namespaces (what `ip netns add` does before its first namespace).
fn prepare_dir(dir: &Path, name: &str) -> Result<(), NetnsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| NetnsError::syscall("mkdir netns directory", name, source))?;
    let make_shared = || {
        nix::mount::mount(
            None::<&str>,
            dir,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it onto itself, then retry.
        Err(nix::Error::EINVAL) => {
            nix::mount::mount(
                Some(dir),
                dir,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|errno| NetnsError::nix("mount --bind netns directory", name, errno))?;
            make_shared().map_err(|errno| {
                NetnsError::nix("mount --make-rshared netns directory", name, errno)
            })
        }
        Err(errno) => Err(NetnsError::nix(
            "mount --make-rshared netns directory",
            name,
            errno,
        )),
    }
}

/// Creates `dir/name` and bind-mounts a new network namespace onto it.
pub(super) fn create(dir: &Path, name: &str) -> Result<OwnedFd, NetnsError> {
    check_name(name)?;
    prepare_dir(dir, name)?;
    let path = dir.join(name);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => NetnsError::AlreadyExists {
                name: name.to_owned(),
                dir: dir.to_owned(),
            },
            _ => NetnsError::syscall("create netns file", name, source),
        })?;
    let mounted = on_new_thread(name, || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|errno| NetnsError::nix("unshare(CLONE_NEWNET)", name, errno))?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &path,
            Some("none"),
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| NetnsError::nix("mount --bind /proc/thread-self/ns/net", name, errno))
    })
    .and_then(|result| result);
    if let Err(error) = mounted {
        let _ = fs::remove_file(&path);
        return Err(error);
    }
    fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|source| NetnsError::syscall("open netns file", name, source))
}

/// Unmounts and removes `dir/name`, like `ip netns del`.
pub(super) fn delete(dir: &Path, name: &str) -> Result<(), NetnsError> {
    check_name(name)?;
    let path = dir.join(name);
    if !path.exists() {
        return Err(NetnsError::NotFound {
            name: name.to_owned(),
            dir: dir.to_owned(),
        });
    }
    match nix::mount::umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a file left by a failed create); remove it anyway.
        Ok(()) | Err(nix::Error::EINVAL) => {}
        Err(errno) => return Err(NetnsError::nix("umount2(MNT_DETACH)", name, errno)),
    }
    fs::remove_file(&path)
        .map_err(|source| NetnsError::syscall("unlink netns file", name, source))?;
    tracing::debug!(netns = name, "deleted network namespace");
    Ok(())
}

/// Deletes the named namespace `NAME` under [`NETNS_RUN_DIR`], like `ip netns del NAME`.
pub fn delete_named(name: &str) -> Result<(), NetnsError> {
    delete(Path::new(NETNS_RUN_DIR), name)
}

/// Lists the named namespaces under [`NETNS_RUN_DIR`], sorted, like `ip netns list`. A missing
/// directory means none.
pub fn list_named() -> Result<Vec<String>, NetnsError> {
    let entries = match fs::read_dir(NETNS_RUN_DIR) {
        Ok(entries) => entries,
        Err(source) if source.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NetnsError::syscall(
                "read netns directory",
                NETNS_RUN_DIR,
                source,
            ));
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}
