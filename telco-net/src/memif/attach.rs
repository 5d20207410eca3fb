//! [`MemifKind`]: a memif interface as an attachment of the multi-network API.
//!
//! A memif attachment makes no kernel interface. The kind gives the attachment a socket path in
//! a directory that the pod sees (a bind mount or an `emptyDir`), named as the userspace CNI
//! plugin names it: `memif-<first 12 characters of the container ID>-<ifname>.sock`. The
//! network-status entry carries the Network Plumbing WG `device-info` of type `memif` with that
//! path as the workload sees it, its role and its mode. Whoever takes the server role creates
//! the socket: the workload when it is the master (server), the host's data plane otherwise.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::cni::{DeviceInfo, MemifDevice, MemifRole};

/// A memif socket for the pod, in a shared directory.
#[derive(Debug, Clone)]
pub struct MemifKind {
    host_dir: PathBuf,
    pod_dir: PathBuf,
    role: MemifRole,
}

impl MemifKind {
    /// A memif attachment whose sockets live in `host_dir` on the host, which the pod sees at
    /// `pod_dir`; the workload takes `role` (`Master` creates the socket).
    pub fn new(host_dir: impl Into<PathBuf>, pod_dir: impl Into<PathBuf>, role: MemifRole) -> Self {
        Self {
            host_dir: host_dir.into(),
            pod_dir: pod_dir.into(),
            role,
        }
    }

    /// The socket's file name for a container and interface.
    pub fn socket_name(container_id: &str, ifname: &str) -> String {
        let short: String = container_id.chars().take(12).collect();
        format!("memif-{short}-{ifname}.sock")
    }

    /// The socket path on the host for the attachment in `cx`.
    pub fn host_socket(&self, cx: &AttachContext<'_>) -> PathBuf {
        self.host_dir
            .join(Self::socket_name(cx.container_id(), cx.ifname().as_str()))
    }

    fn pod_socket(&self, cx: &AttachContext<'_>) -> PathBuf {
        self.pod_dir
            .join(Self::socket_name(cx.container_id(), cx.ifname().as_str()))
    }
}

/// Removes a socket file; a missing one is not an error.
fn remove_socket(path: &Path) -> Result<(), KindError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing memif socket {} failed: {error}", path.display()).into())
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl AttachKind for MemifKind {
    fn kind(&self) -> &'static str {
        "memif"
    }

    /// Creates the socket directory and removes a stale socket left by an earlier pod with the
    /// same names, so the server can bind.
    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        std::fs::create_dir_all(&self.host_dir).map_err(|error| {
            format!(
                "creating memif socket directory {} failed: {error}",
                self.host_dir.display()
            )
        })?;
        remove_socket(&self.host_socket(cx))?;
        let device = MemifDevice::new(self.role, self.pod_socket(cx));
        let mut attached = Attached::userspace(DeviceInfo::new(device.into()));
        attached.mac = cx.mac().map(|mac| mac.to_string());
        attached.mtu = cx.mtu();
        Ok(attached)
    }

    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        remove_socket(&self.host_socket(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::MemifKind;

    #[test]
    fn socket_name_follows_userspace_cni() {
        assert_eq!(
            MemifKind::socket_name("0123456789abcdef0123", "net1"),
            "memif-0123456789ab-net1.sock"
        );
        assert_eq!(
            MemifKind::socket_name("short", "eth1"),
            "memif-short-eth1.sock"
        );
    }
}
