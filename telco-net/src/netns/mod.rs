//! Network namespaces: create named ones the way iproute2 does, open them by name, path or pid,
//! make anonymous ones, run code inside one, list and delete them.
//!
//! A named namespace is a bind mount of a namespace file onto `/run/netns/NAME`, so `ip netns`
//! lists it and `ip netns exec NAME` enters it. An anonymous namespace lives as long as a
//! process is in it or a file descriptor refers to it, and [`Netns`] keeps such a descriptor.
//!
//! Code runs inside a namespace on a thread of its own ([`Netns::run`]): `setns` changes the
//! namespace of the calling thread only, so switching a thread that a runtime shares with other
//! tasks would move those tasks too. The thread ends when the closure returns.
//!
//! ```no_run
//! use telco_net::netns::Netns;
//!
//! # fn main() -> Result<(), telco_net::netns::NetnsError> {
//! let ns = Netns::create("blue")?; // like `ip netns add blue`
//! let forwarding = ns.run(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward"))?;
//! ns.delete()?; // like `ip netns del blue`
//! # let _ = forwarding;
//! # Ok(())
//! # }
//! ```
//!
//! Limitations: only network namespaces; the mount namespace stays the caller's, so
//! `/etc/netns/NAME` files are not bind-mounted as `ip netns exec` does.

mod error;
mod named;
mod netlink;

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

pub use error::NetnsError;
pub use named::{NETNS_RUN_DIR, delete_named, list_named};
pub(crate) use netlink::errno_of;
pub use netlink::{Netlink, SessionClosed};

/// The origin of a [`Netns`], used in messages and for deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// A bind mount under a namespace directory.
    Named { name: String, dir: PathBuf },
    /// A namespace file opened by path.
    Path(PathBuf),
    /// The namespace of a process.
    Pid(i32),
    /// The namespace of the calling thread when it was opened.
    Current,
    /// A namespace with no name, kept alive by the descriptor.
    Anonymous,
}

/// An open network namespace.
///
/// The descriptor keeps the namespace alive. A namespace made by [`Netns::create`] is also
/// deleted (unmounted and unlinked) when the value is dropped, unless [`Netns::persist`] was
/// called. Use [`Netns::delete`] to get the error of the deletion.
pub struct Netns {
    fd: OwnedFd,
    origin: Origin,
    delete_on_drop: bool,
}

impl Netns {
    /// Creates a named namespace under [`NETNS_RUN_DIR`], like `ip netns add NAME`.
    ///
    /// The namespace is deleted when the returned value is dropped unless [`Netns::persist`] is
    /// called.
    pub fn create(name: &str) -> Result<Netns, NetnsError> {
        Self::create_in(Path::new(NETNS_RUN_DIR), name)
    }

    /// Creates a named namespace as a bind mount at `dir/NAME`. `ip netns` lists it only when
    /// `dir` is [`NETNS_RUN_DIR`].
    pub fn create_in(dir: &Path, name: &str) -> Result<Netns, NetnsError> {
        let fd = named::create(dir, name)?;
        tracing::debug!(netns = name, "created network namespace");
        Ok(Netns {
            fd,
            origin: Origin::Named {
                name: name.to_owned(),
                dir: dir.to_owned(),
            },
            delete_on_drop: true,
        })
    }

    /// Opens the named namespace `NAME` under [`NETNS_RUN_DIR`], like the argument of
    /// `ip netns exec NAME`. Dropping the value does not delete the namespace.
    pub fn open(name: &str) -> Result<Netns, NetnsError> {
        Self::open_in(Path::new(NETNS_RUN_DIR), name)
    }

    /// Opens the named namespace `dir/NAME`.
    pub fn open_in(dir: &Path, name: &str) -> Result<Netns, NetnsError> {
        named::check_name(name)?;
        let path = dir.join(name);
        let file = File::open(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                NetnsError::NotFound {
                    name: name.to_owned(),
                    dir: dir.to_owned(),
                }
            } else {
                NetnsError::syscall("open", name, source)
            }
        })?;
        Ok(Netns {
            fd: file.into(),
            origin: Origin::Named {
                name: name.to_owned(),
                dir: dir.to_owned(),
            },
            delete_on_drop: false,
        })
    }

    /// Opens a namespace file by path, such as `/proc/1234/ns/net` or `/run/netns/blue` (the
    /// form of `CNI_NETNS`).
    pub fn open_path(path: impl AsRef<Path>) -> Result<Netns, NetnsError> {
        let path = path.as_ref();
        let file = File::open(path)
            .map_err(|source| NetnsError::syscall("open", path.display().to_string(), source))?;
        Ok(Netns {
            fd: file.into(),
            origin: Origin::Path(path.to_owned()),
            delete_on_drop: false,
        })
    }

    /// Opens the namespace of process `pid` (`/proc/PID/ns/net`).
    pub fn from_pid(pid: i32) -> Result<Netns, NetnsError> {
        let path = format!("/proc/{pid}/ns/net");
        let file = File::open(&path).map_err(|source| {
            NetnsError::syscall("open /proc/PID/ns/net", format!("pid {pid}"), source)
        })?;
        Ok(Netns {
            fd: file.into(),
            origin: Origin::Pid(pid),
            delete_on_drop: false,
        })
    }

    /// Opens the namespace of the calling thread.
    pub fn current() -> Result<Netns, NetnsError> {
        let file = File::open("/proc/thread-self/ns/net").map_err(|source| {
            NetnsError::syscall("open /proc/thread-self/ns/net", "current", source)
        })?;
        Ok(Netns {
            fd: file.into(),
            origin: Origin::Current,
            delete_on_drop: false,
        })
    }

    /// Creates a namespace with no name. It lives while this value (or a process inside it)
    /// does.
    pub fn anonymous() -> Result<Netns, NetnsError> {
        let fd = on_new_thread("anonymous", || {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|errno| NetnsError::nix("unshare(CLONE_NEWNET)", "anonymous", errno))?;
            File::open("/proc/thread-self/ns/net")
                .map(OwnedFd::from)
                .map_err(|source| {
                    NetnsError::syscall("open /proc/thread-self/ns/net", "anonymous", source)
                })
        })??;
        Ok(Netns {
            fd,
            origin: Origin::Anonymous,
            delete_on_drop: false,
        })
    }

    /// Runs `f` inside this namespace on a new thread and returns its result. A panic in `f`
    /// is passed on to the caller.
    ///
    /// The thread enters the namespace with `setns(fd, CLONE_NEWNET)`, like `ip netns exec`
    /// does for a process. Sockets that `f` opens belong to this namespace and keep working
    /// on any thread afterwards.
    pub fn run<F, R>(&self, f: F) -> Result<R, NetnsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let label = self.to_string();
        on_new_thread(&label, || {
            self.enter_current_thread()?;
            Ok(f())
        })?
    }

    /// Moves the calling thread into this namespace.
    ///
    /// Only for threads the caller owns and that run nothing else, such as a thread made for
    /// one namespace; [`Netns::run`] does this for you.
    pub fn enter_current_thread(&self) -> Result<(), NetnsError> {
        nix::sched::setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|errno| NetnsError::nix("setns(CLONE_NEWNET)", self.to_string(), errno))
    }

    /// Deletes a namespace made by [`Netns::create`] or opened by name, like
    /// `ip netns del NAME`; for other namespaces it only closes the descriptor. The namespace
    /// itself goes away when no process and no descriptor refers to it.
    pub fn delete(mut self) -> Result<(), NetnsError> {
        self.delete_on_drop = false;
        match &self.origin {
            Origin::Named { name, dir } => named::delete(dir, name),
            _ => Ok(()),
        }
    }

    /// Keeps a namespace made by [`Netns::create`] after this value is dropped.
    pub fn persist(&mut self) {
        self.delete_on_drop = false;
    }

    /// Returns the name of a named namespace.
    pub fn name(&self) -> Option<&str> {
        match &self.origin {
            Origin::Named { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Returns a path that names this namespace to other processes (such as `CNI_NETNS`):
    /// `/run/netns/NAME`, the opened path, or `/proc/PID/ns/net`. Anonymous namespaces and
    /// the current one have `/proc/PID/fd/N` of this descriptor, valid while the value lives.
    pub fn path(&self) -> PathBuf {
        match &self.origin {
            Origin::Named { name, dir } => dir.join(name),
            Origin::Path(path) => path.clone(),
            Origin::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            Origin::Current | Origin::Anonymous => PathBuf::from(format!(
                "/proc/{}/fd/{}",
                std::process::id(),
                self.fd.as_raw_fd()
            )),
        }
    }

    /// Returns the namespace's identity: the device and inode of its namespace file, equal for two
    /// handles of one namespace (what `ip netns identify` compares).
    pub fn id(&self) -> Result<(u64, u64), NetnsError> {
        let file = File::from(
            self.fd
                .try_clone()
                .map_err(|source| NetnsError::syscall("dup", self.to_string(), source))?,
        );
        let meta = file
            .metadata()
            .map_err(|source| NetnsError::syscall("fstat", self.to_string(), source))?;
        Ok((meta.dev(), meta.ino()))
    }

    /// Opens a second handle to the same namespace that never deletes it.
    pub fn try_clone(&self) -> Result<Netns, NetnsError> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|source| NetnsError::syscall("dup", self.to_string(), source))?;
        Ok(Netns {
            fd,
            origin: self.origin.clone(),
            delete_on_drop: false,
        })
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Netns {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Named { name, .. } => f.write_str(name),
            Origin::Path(path) => write!(f, "{}", path.display()),
            Origin::Pid(pid) => write!(f, "pid {pid}"),
            Origin::Current => f.write_str("current"),
            Origin::Anonymous => write!(f, "anonymous (fd {})", self.fd.as_raw_fd()),
        }
    }
}

impl fmt::Debug for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netns")
            .field("netns", &self.to_string())
            .field("fd", &self.fd.as_raw_fd())
            .field("delete_on_drop", &self.delete_on_drop)
            .finish()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.delete_on_drop {
            return;
        }
        if let Origin::Named { name, dir } = &self.origin
            && let Err(error) = named::delete(dir, name)
        {
            tracing::warn!(netns = %name, %error, "deleting network namespace on drop failed");
        }
    }
}

/// Runs `f` on a new thread named after the namespace and waits for it; a panic in `f` is
/// resumed on the caller.
pub(crate) fn on_new_thread<F, R>(label: &str, f: F) -> Result<R, NetnsError>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("telco-netns".to_owned())
            .spawn_scoped(scope, f)
            .map_err(|source| NetnsError::SpawnThread {
                netns: label.to_owned(),
                source,
            })?;
        match handle.join() {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
