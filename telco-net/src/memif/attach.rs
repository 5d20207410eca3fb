//! [`MemifKind`]: a memif interface as an attachment of the multi-network API.
//!
//! A memif attachment makes no kernel interface. The kind gives the attachment a socket path in
//! a directory that is mounted in the pod too (a bind mount or an `emptyDir`), named as the
//! userspace CNI plugin names it (`memif-<first 12 characters of the container ID>-<ifname>.sock`),
//! or a fixed path ([`MemifKind::with_socket`]). The network-status entry carries the Network
//! Plumbing WG `device-info` of type `memif` with that path inside the pod, its role and mode.
//!
//! Whoever takes the server role creates the socket:
//!
//! - When the workload is the `master` (server), the workload creates it. The kind only prepares
//!   the directory, rejects a socket that a live server holds, and at detach removes the file
//!   once no server listens on it.
//! - When the workload is the `slave` (client), the kind is the host data plane. At attach it
//!   binds the server socket and serves it on a thread of its own, passing every frame to a
//!   [`FrameHandler`] (by default [`echo_handler`], which sends frames back with their MAC
//!   addresses swapped). At detach it stops the thread and removes the socket. With
//!   [`MemifKind::external_data_plane`] another process (VPP, a DPDK application) serves the
//!   socket instead, and the kind leaves the socket alone.
//!
//! The server threads belong to the kind value: [`AttachKind::detach`] on the same value, or
//! dropping it, stops them. A detach in a later process, or on another value built from the same
//! settings, finds no thread and only removes the socket file.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};

use super::host_server::{FrameHandler, HostServer, StartError, echo_handler};
use super::{MemifConfig, MemifError, Role, SocketPath};
use crate::attach::{AttachContext, AttachKind, Attached, KindError};
use crate::cni::{DeviceInfo, MemifDevice, MemifMode, MemifRole};

/// The maximum socket path length in bytes: `sun_path` of a unix socket address is 108 bytes
/// on Linux, one of which is the terminating NUL.
pub const MAX_SOCKET_PATH_LEN: usize = 107;

/// Errors of [`MemifKind`]'s attach and detach.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemifKindError {
    /// The socket directory could not be created.
    #[error("creating memif socket directory {} failed", dir.display())]
    CreateDirectory {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The socket path does not fit a unix socket address.
    #[error(
        "memif socket path {} is {length} bytes, longer than the {MAX_SOCKET_PATH_LEN} bytes a unix socket address holds; use a shorter directory",
        path.display()
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        length: usize,
    },
    /// A live server listens on the socket, or this kind already serves it.
    #[error(
        "memif socket {} is in use by a live server; detach the attachment that owns it or use another path",
        path.display()
    )]
    SocketInUse {
        /// The socket path on the host.
        path: PathBuf,
    },
    /// Something other than a socket sits at the socket path.
    #[error("{} exists and is not a socket; remove it or use another path", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Reading or removing the socket file failed.
    #[error("removing memif socket {} failed", path.display())]
    RemoveSocket {
        /// The socket path on the host.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The host data plane speaks Ethernet mode only.
    #[error(
        "memif mode {mode:?} is not supported by the host data plane, which speaks Ethernet only; use mode ethernet or an external data plane"
    )]
    UnsupportedMode {
        /// The requested mode.
        mode: MemifMode,
    },
    /// The host server could not bind or listen on the socket.
    #[error("starting the memif host server on {} failed", path.display())]
    Listen {
        /// The socket path on the host.
        path: PathBuf,
        /// Cause.
        #[source]
        source: MemifError,
    },
    /// The host server thread could not be created.
    #[error("creating the memif host server thread for {} failed", path.display())]
    SpawnThread {
        /// The socket path on the host.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The host server thread panicked (in the frame handler, most likely) before it was stopped.
    #[error("the memif host server thread for {} panicked", path.display())]
    ServerPanicked {
        /// The socket path on the host.
        path: PathBuf,
    },
}

/// The location of a kind's sockets.
#[derive(Debug, Clone)]
enum SocketLocation {
    /// One socket per attachment, named after the container ID and interface name.
    Directory { host_dir: PathBuf, pod_dir: PathBuf },
    /// One fixed socket.
    Fixed {
        host_path: PathBuf,
        pod_path: PathBuf,
    },
}

/// The server of a `slave` workload's socket.
#[derive(Clone)]
enum DataPlane {
    /// Another process; the kind leaves the socket alone.
    External,
    /// A server thread of the kind with this handler.
    Serve(FrameHandler),
}

impl fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataPlane::External => f.write_str("External"),
            DataPlane::Serve(_) => f.write_str("Serve(..)"),
        }
    }
}

/// A memif socket for the pod, in a shared directory, with the host data plane for a `slave`
/// workload.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use telco_net::cni::MemifRole;
/// use telco_net::memif::{MemifKind, swap_macs};
///
/// // The workload connects; the host side counts and echoes its frames.
/// let frames = Arc::new(AtomicU64::new(0));
/// let counter = Arc::clone(&frames);
/// let kind = MemifKind::new("/run/telco/memif", "/run/memif", MemifRole::Slave).handler(
///     move |frame: &mut Vec<u8>| {
///         counter.fetch_add(1, Ordering::Relaxed);
///         swap_macs(frame);
///         true
///     },
/// );
/// ```
#[derive(Debug)]
pub struct MemifKind {
    location: SocketLocation,
    role: MemifRole,
    mode: MemifMode,
    data_plane: DataPlane,
    /// The running host servers, by socket path on the host.
    servers: Mutex<HashMap<PathBuf, HostServer>>,
}

impl MemifKind {
    /// A memif attachment whose sockets live in `host_dir` on the host, which the pod sees at
    /// `pod_dir`; the workload takes `role`. A `Slave` workload is served by the built-in echo
    /// responder unless [`MemifKind::handler`] or [`MemifKind::external_data_plane`] replaces it.
    pub fn new(host_dir: impl Into<PathBuf>, pod_dir: impl Into<PathBuf>, role: MemifRole) -> Self {
        Self::at(
            SocketLocation::Directory {
                host_dir: host_dir.into(),
                pod_dir: pod_dir.into(),
            },
            role,
        )
    }

    /// Creates a memif attachment on one fixed socket: `host_path` on the host, mounted in the
    /// pod at `pod_path` (the same path when the pod shares the host's mount namespace).
    pub fn with_socket(
        host_path: impl Into<PathBuf>,
        pod_path: impl Into<PathBuf>,
        role: MemifRole,
    ) -> Self {
        Self::at(
            SocketLocation::Fixed {
                host_path: host_path.into(),
                pod_path: pod_path.into(),
            },
            role,
        )
    }

    fn at(location: SocketLocation, role: MemifRole) -> Self {
        Self {
            location,
            role,
            mode: MemifMode::Ethernet,
            data_plane: DataPlane::Serve(echo_handler()),
            servers: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the interface mode reported in `device-info` (Ethernet by default). The host data
    /// plane speaks Ethernet only, so other modes need a `Master` workload or an external data
    /// plane.
    pub fn mode(mut self, mode: MemifMode) -> Self {
        self.mode = mode;
        self
    }

    /// Serves a `Slave` workload with `handler`: it gets every received frame and returns true
    /// to send the (possibly changed) frame back, false to drop it. It runs on the server thread.
    pub fn handler(
        mut self,
        handler: impl Fn(&mut Vec<u8>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.data_plane = DataPlane::Serve(Arc::new(handler));
        self
    }

    /// Leaves serving a `Slave` workload to another process, as the userspace CNI plugin does
    /// with a vswitch: the kind then neither creates nor removes the socket.
    pub fn external_data_plane(mut self) -> Self {
        self.data_plane = DataPlane::External;
        self
    }

    /// The socket's file name for a container and interface.
    pub fn socket_name(container_id: &str, ifname: &str) -> String {
        let short: String = container_id.chars().take(12).collect();
        format!("memif-{short}-{ifname}.sock")
    }

    /// The socket path on the host for the attachment in `cx`.
    pub fn host_socket(&self, cx: &AttachContext<'_>) -> PathBuf {
        match &self.location {
            SocketLocation::Directory { host_dir, .. } => {
                host_dir.join(Self::socket_name(cx.container_id(), cx.ifname().as_str()))
            }
            SocketLocation::Fixed { host_path, .. } => host_path.clone(),
        }
    }

    /// Returns true while this kind runs a host server for the attachment in `cx`.
    pub fn is_serving(&self, cx: &AttachContext<'_>) -> bool {
        self.servers().contains_key(&self.host_socket(cx))
    }

    fn pod_socket(&self, cx: &AttachContext<'_>) -> PathBuf {
        match &self.location {
            SocketLocation::Directory { pod_dir, .. } => {
                pod_dir.join(Self::socket_name(cx.container_id(), cx.ifname().as_str()))
            }
            SocketLocation::Fixed { pod_path, .. } => pod_path.clone(),
        }
    }

    /// The handler when this kind serves the socket itself.
    fn served_by(&self) -> Option<&FrameHandler> {
        match (&self.data_plane, self.role) {
            (DataPlane::Serve(handler), MemifRole::Slave) => Some(handler),
            _ => None,
        }
    }

    /// Returns true when the kind creates or clears the socket file: always, except for a
    /// `Slave` workload with an external data plane.
    fn manages_socket(&self) -> bool {
        self.role == MemifRole::Master || self.served_by().is_some()
    }

    fn servers(&self) -> MutexGuard<'_, HashMap<PathBuf, HostServer>> {
        // A panic while the map was locked leaves it consistent: every entry is a whole server.
        self.servers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Binds the server socket and starts the thread that serves it.
    fn start_server(
        &self,
        cx: &AttachContext<'_>,
        host: &Path,
        handler: &FrameHandler,
    ) -> Result<(), MemifKindError> {
        let mut config = MemifConfig::new(Role::Server, SocketPath::Path(host.to_owned()));
        config.name = "telco-host".to_owned();
        let thread_name = format!("memif-{}", cx.ifname());
        let server = HostServer::start(config, Arc::clone(handler), thread_name).map_err(
            |error| match error {
                StartError::Listen(source) => MemifKindError::Listen {
                    path: host.to_owned(),
                    source,
                },
                StartError::Spawn(source) => MemifKindError::SpawnThread {
                    path: host.to_owned(),
                    source,
                },
            },
        )?;
        self.servers().insert(host.to_owned(), server);
        tracing::info!(socket = %host.display(), interface = %cx.ifname(), "memif host server listening");
        Ok(())
    }
}

/// Rejects a path that does not fit `sun_path`.
fn check_path_length(path: &Path) -> Result<(), MemifKindError> {
    let length = path.as_os_str().len();
    if length > MAX_SOCKET_PATH_LEN {
        return Err(MemifKindError::PathTooLong {
            path: path.to_owned(),
            length,
        });
    }
    Ok(())
}

/// The state of a socket path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketState {
    /// Nothing.
    Missing,
    /// A file that is not a socket.
    NotASocket,
    /// A socket that a server listens on.
    Live,
    /// A socket without a listener, left by a server that is gone.
    Stale,
}

fn socket_state(path: &Path) -> Result<SocketState, MemifKindError> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        // A path under a regular file (ENOTDIR) cannot hold a socket either.
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(SocketState::Missing);
        }
        Err(source) => {
            return Err(MemifKindError::RemoveSocket {
                path: path.to_owned(),
                source,
            });
        }
    };
    Ok(if !metadata.file_type().is_socket() {
        SocketState::NotASocket
    } else if has_live_server(path) {
        SocketState::Live
    } else {
        SocketState::Stale
    })
}

/// Removes a socket left at `path` by a server that is gone, before attach. Rejects a path
/// where a live server listens, or that is not a socket.
fn clear_stale_socket(path: &Path) -> Result<(), MemifKindError> {
    match socket_state(path)? {
        SocketState::Missing => Ok(()),
        SocketState::NotASocket => Err(MemifKindError::NotASocket {
            path: path.to_owned(),
        }),
        SocketState::Live => Err(MemifKindError::SocketInUse {
            path: path.to_owned(),
        }),
        SocketState::Stale => {
            tracing::debug!(socket = %path.display(), "removing stale memif socket");
            remove_socket(path)
        }
    }
}

/// Removes the socket at `path` at detach, unless it is not a socket or a live server still
/// listens on it. Such a server belongs to another attachment (when this attach failed because
/// the socket was in use) or is a workload still running, which removes its socket on close.
fn remove_detached_socket(path: &Path) -> Result<(), MemifKindError> {
    match socket_state(path)? {
        SocketState::Stale => remove_socket(path),
        SocketState::Live => {
            tracing::warn!(socket = %path.display(), "a live server still listens on the memif socket; leaving it in place");
            Ok(())
        }
        SocketState::Missing | SocketState::NotASocket => Ok(()),
    }
}

/// Returns true unless a connection attempt shows that no server listens on `path`. The
/// attempt does not block, so a server with a full backlog counts as live.
fn has_live_server(path: &Path) -> bool {
    let Ok(address) = UnixAddr::new(path) else {
        return false;
    };
    let Ok(probe) = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    ) else {
        return false;
    };
    !matches!(
        connect(probe.as_raw_fd(), &address),
        Err(Errno::ECONNREFUSED | Errno::ENOENT)
    )
}

/// Removes a socket file; a missing one is not an error.
fn remove_socket(path: &Path) -> Result<(), MemifKindError> {
    match std::fs::remove_file(path) {
        Err(source) if source.kind() != io::ErrorKind::NotFound => {
            Err(MemifKindError::RemoveSocket {
                path: path.to_owned(),
                source,
            })
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl AttachKind for MemifKind {
    fn kind(&self) -> &'static str {
        "memif"
    }

    /// Checks the socket paths, creates the socket directory, removes a stale socket left by an
    /// earlier pod with the same names, and for a served `Slave` workload starts the host server.
    async fn attach(&self, cx: &AttachContext<'_>) -> Result<Attached, KindError> {
        let host = self.host_socket(cx);
        let pod = self.pod_socket(cx);
        check_path_length(&host)?;
        check_path_length(&pod)?;
        if self.served_by().is_some() && self.mode != MemifMode::Ethernet {
            return Err(MemifKindError::UnsupportedMode { mode: self.mode }.into());
        }
        if let Some(dir) = host.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| MemifKindError::CreateDirectory {
                dir: dir.to_owned(),
                source,
            })?;
        }
        if self.manages_socket() {
            if self.servers().contains_key(&host) {
                return Err(MemifKindError::SocketInUse { path: host }.into());
            }
            clear_stale_socket(&host)?;
        }
        if let Some(handler) = self.served_by() {
            self.start_server(cx, &host, handler)?;
        }

        let mut device = MemifDevice::new(self.role, pod);
        device.mode = self.mode;
        let mut attached = Attached::userspace(DeviceInfo::new(device.into()));
        attached.mac = cx.mac().map(|mac| mac.to_string());
        attached.mtu = cx.mtu();
        Ok(attached)
    }

    /// Stops the host server of this attachment, if this kind runs one, and removes the socket
    /// file unless an external data plane owns it or a live server still listens on it.
    async fn detach(&self, cx: &AttachContext<'_>) -> Result<(), KindError> {
        let host = self.host_socket(cx);
        let server = self.servers().remove(&host);
        let panicked = match server {
            Some(mut server) => !server.stop(),
            None => false,
        };
        if self.manages_socket() {
            remove_detached_socket(&host)?;
        }
        if panicked {
            return Err(MemifKindError::ServerPanicked { path: host }.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn path_length_limit_is_sun_path_minus_nul() {
        let fits = PathBuf::from(format!("/{}", "a".repeat(MAX_SOCKET_PATH_LEN - 1)));
        assert!(check_path_length(&fits).is_ok());
        let long = PathBuf::from(format!("/{}", "a".repeat(MAX_SOCKET_PATH_LEN)));
        let error = check_path_length(&long).unwrap_err();
        assert!(
            matches!(error, MemifKindError::PathTooLong { length: 108, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("107 bytes"), "{error}");
    }

    #[test]
    fn stale_socket_is_removed_and_live_one_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let config = MemifConfig::new(Role::Server, SocketPath::Path(path.clone()));
        let live = super::super::Memif::new(config).unwrap();
        let error = clear_stale_socket(&path).unwrap_err();
        assert!(
            matches!(error, MemifKindError::SocketInUse { .. }),
            "{error:?}"
        );

        // A socket file whose listener is gone is stale.
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("t.sock")).unwrap();
        drop(listener);
        clear_stale_socket(&dir.path().join("t.sock")).unwrap();
        assert!(!dir.path().join("t.sock").exists());
        drop(live);
    }

    #[test]
    fn regular_file_at_socket_path_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"data").unwrap();
        let error = clear_stale_socket(&path).unwrap_err();
        assert!(
            matches!(error, MemifKindError::NotASocket { .. }),
            "{error:?}"
        );
        assert!(path.exists(), "a regular file must not be removed");
    }

    #[test]
    fn only_served_slaves_and_masters_manage_the_socket() {
        let master = MemifKind::new("/h", "/p", MemifRole::Master);
        assert!(master.manages_socket());
        assert!(master.served_by().is_none());
        let slave = MemifKind::new("/h", "/p", MemifRole::Slave);
        assert!(slave.manages_socket());
        assert!(slave.served_by().is_some());
        let external = MemifKind::new("/h", "/p", MemifRole::Slave).external_data_plane();
        assert!(!external.manages_socket());
        assert!(external.served_by().is_none());
    }
}
