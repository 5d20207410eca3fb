//! Per-namespace network sysctls (`/proc/sys/net/...`), like `ip netns exec NS sysctl`.
//!
//! The kernel picks the namespace of a `/proc/sys/net` file when it is opened, from the
//! opening thread, so reads and writes run on the [`Netlink`] session's thread, which lives
//! inside the namespace.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pod = telco_net::netns::Netns::open("pod1")?.netlink()?;
//! pod.sysctl().set("net.ipv4.ip_forward", "1")?; // sysctl -w net.ipv4.ip_forward=1
//! assert_eq!(pod.sysctl().get("net.ipv4.ip_forward")?, "1");
//! # Ok(())
//! # }
//! ```

use std::io;
use std::path::PathBuf;

use crate::netns::Netlink;

/// An error from a sysctl read or write; it names the key and the namespace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysctlError {
    /// The key is not under `net.` or contains `..`.
    #[error("sysctl key {key:?} is not a network sysctl (net.*)")]
    InvalidKey {
        /// The key.
        key: String,
    },
    /// The kernel has no such sysctl (a module not loaded, or a link that does not exist).
    #[error("sysctl {key} does not exist in network namespace {netns}")]
    NotFound {
        /// The key.
        key: String,
        /// The namespace.
        netns: String,
    },
    /// The caller lacks the privilege to write it.
    #[error("write sysctl {key} in network namespace {netns}: CAP_NET_ADMIN required")]
    PermissionDenied {
        /// The key.
        key: String,
        /// The namespace.
        netns: String,
    },
    /// Reading or writing the file failed.
    #[error("{call} sysctl {key} in network namespace {netns} failed")]
    Io {
        /// `read` or `write`.
        call: &'static str,
        /// The key.
        key: String,
        /// The namespace.
        netns: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The netlink session thread is gone.
    #[error("sysctl {key} in network namespace {netns}: netlink session closed")]
    SessionClosed {
        /// The key.
        key: String,
        /// The namespace.
        netns: String,
    },
}

/// The path of a network sysctl key: `net.ipv4.conf.eth0.forwarding` or
/// `net/ipv4/conf/eth0/forwarding` becomes `/proc/sys/net/ipv4/conf/eth0/forwarding`.
/// Interface names with dots must use the slash form.
pub fn path_of(key: &str) -> Result<PathBuf, SysctlError> {
    let relative = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    let invalid = || SysctlError::InvalidKey {
        key: key.to_owned(),
    };
    if !relative.starts_with("net/")
        || relative
            .split('/')
            .any(|part| part.is_empty() || part == "..")
    {
        return Err(invalid());
    }
    Ok(PathBuf::from("/proc/sys").join(relative))
}

impl Netlink {
    /// The sysctls of this session's namespace.
    pub fn sysctl(&self) -> Sysctls<'_> {
        Sysctls { netlink: self }
    }
}

/// The network sysctls of one namespace.
#[derive(Debug, Clone, Copy)]
pub struct Sysctls<'a> {
    netlink: &'a Netlink,
}

impl Sysctls<'_> {
    /// Reads a sysctl, trimmed, like `sysctl -n KEY`.
    pub fn get(&self, key: &str) -> Result<String, SysctlError> {
        let path = path_of(key)?;
        let (key, netns) = (key.to_owned(), self.netlink.netns().to_owned());
        let closed = SysctlError::SessionClosed {
            key: key.clone(),
            netns: netns.clone(),
        };
        self.netlink
            .run_inside(move || {
                std::fs::read_to_string(&path)
                    .map(|text| text.trim().to_owned())
                    .map_err(|source| io_error("read", key, netns, source))
            })
            .map_err(|_| closed)?
    }

    /// Writes a sysctl, like `sysctl -w KEY=VALUE`.
    pub fn set(&self, key: &str, value: &str) -> Result<(), SysctlError> {
        let path = path_of(key)?;
        let (key, netns, value) = (
            key.to_owned(),
            self.netlink.netns().to_owned(),
            value.to_owned(),
        );
        let closed = SysctlError::SessionClosed {
            key: key.clone(),
            netns: netns.clone(),
        };
        self.netlink
            .run_inside(move || {
                std::fs::write(&path, value.as_bytes())
                    .map_err(|source| io_error("write", key, netns, source))
            })
            .map_err(|_| closed)?
    }
}

fn io_error(call: &'static str, key: String, netns: String, source: io::Error) -> SysctlError {
    match source.kind() {
        io::ErrorKind::NotFound => SysctlError::NotFound { key, netns },
        io::ErrorKind::PermissionDenied => SysctlError::PermissionDenied { key, netns },
        _ => SysctlError::Io {
            call,
            key,
            netns,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_and_slashed_keys_map_to_proc_sys_net() {
        assert_eq!(
            path_of("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path_of("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
    }

    #[test]
    fn keys_outside_net_are_refused() {
        assert!(path_of("kernel.hostname").is_err());
        assert!(path_of("net/../kernel/hostname").is_err());
        assert!(path_of("net..ipv4").is_err());
    }
}
