//! [`NetnsError`]: what can go wrong with a network namespace.

use std::io;
use std::path::PathBuf;

/// An error from a network namespace operation. Each variant names the call that failed and the
/// namespace it was about, written as its name, its path or `pid N`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// The caller lacks the capability that the call needs.
    #[error("{call} on network namespace {netns}: CAP_SYS_ADMIN required (run as root)")]
    PermissionDenied {
        /// The system call or step, such as `setns` or `mount --bind`.
        call: &'static str,
        /// The namespace.
        netns: String,
    },
    /// A named namespace with this name exists already.
    #[error("network namespace {name} already exists in {}", dir.display())]
    AlreadyExists {
        /// The name.
        name: String,
        /// The directory of named namespaces.
        dir: PathBuf,
    },
    /// No named namespace with this name exists.
    #[error("network namespace {name} not found in {}", dir.display())]
    NotFound {
        /// The name.
        name: String,
        /// The directory of named namespaces.
        dir: PathBuf,
    },
    /// The name cannot be a file name under the namespace directory.
    #[error("invalid network namespace name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// The reason for the rejection.
        reason: &'static str,
    },
    /// A system call failed.
    #[error("{call} on network namespace {netns} failed")]
    Syscall {
        /// The system call or step, such as `unshare(CLONE_NEWNET)` or `open /proc/PID/ns/net`.
        call: &'static str,
        /// The namespace.
        netns: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The helper thread that enters the namespace could not be started.
    #[error("spawn thread for network namespace {netns} failed")]
    SpawnThread {
        /// The namespace.
        netns: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl NetnsError {
    /// Builds the error for a failed call, mapping `EPERM` to [`NetnsError::PermissionDenied`].
    pub(crate) fn syscall(call: &'static str, netns: impl Into<String>, source: io::Error) -> Self {
        let netns = netns.into();
        if source.raw_os_error() == Some(libc::EPERM) {
            NetnsError::PermissionDenied { call, netns }
        } else {
            NetnsError::Syscall {
                call,
                netns,
                source,
            }
        }
    }

    /// Builds the error for a failed `nix` call.
    pub(crate) fn nix(call: &'static str, netns: impl Into<String>, errno: nix::Error) -> Self {
        Self::syscall(call, netns, io::Error::from(errno))
    }
}
