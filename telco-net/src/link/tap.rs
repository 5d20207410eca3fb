//! [`Tap`]: tap devices made through `/dev/net/tun`, as `ip tuntap add mode tap` does.
//!
//! This is the one place in the crate with hand-written system calls: the tun driver refuses
//! `RTM_NEWLINK`, and the `TUNSET*` ioctls have no maintained wrapper among our dependencies.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

use super::LinkError;
use crate::netns::Netlink;

/// `struct ifreq` as the `TUNSETIFF` ioctl reads it: the name, then the flags in the union.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _union_rest: [u8; 22],
}

/// A request for a tap device, like
/// `ip tuntap add dev NAME mode tap [user UID] [group GID] [multi_queue] [vnet_hdr]`.
///
/// A tap is what a VM in a pod plugs into: with [`Tap::vnet_hdr`] and [`Tap::multi_queue`] its
/// queue descriptors go straight to a virtio-net backend.
///
/// ```no_run
/// use telco_net::link::Tap;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let host = telco_net::netns::Netlink::current()?;
/// let queues = Tap::new("tap-vm0").owner(1000).multi_queue(2).vnet_hdr(true).create(&host)?;
/// assert_eq!(queues.len(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Tap {
    name: String,
    owner: Option<u32>,
    group: Option<u32>,
    queues: usize,
    multi_queue: bool,
    vnet_hdr: bool,
    persistent: bool,
}

impl Tap {
    /// Starts a request for the persistent tap `name` with one queue and no vnet header.
    pub fn new(name: &str) -> Tap {
        Tap {
            name: name.to_owned(),
            owner: None,
            group: None,
            queues: 1,
            multi_queue: false,
            vnet_hdr: false,
            persistent: true,
        }
    }

    /// Lets the user `uid` open the device without privileges (`user UID`).
    pub fn owner(mut self, uid: u32) -> Tap {
        self.owner = Some(uid);
        self
    }

    /// Lets the group `gid` open the device without privileges (`group GID`).
    pub fn group(mut self, gid: u32) -> Tap {
        self.group = Some(gid);
        self
    }

    /// Makes a multi-queue device (`multi_queue`) and opens `queues` queues (at least one).
    pub fn multi_queue(mut self, queues: usize) -> Tap {
        self.multi_queue = true;
        self.queues = queues.max(1);
        self
    }

    /// Prepends a `virtio_net_hdr` to every frame (`vnet_hdr`), which virtio-net backends want.
    pub fn vnet_hdr(mut self, on: bool) -> Tap {
        self.vnet_hdr = on;
        self
    }

    /// Keeps the device after the returned descriptors close (the default), like
    /// `ip tuntap add`; when false it goes away with the last descriptor.
    pub fn persistent(mut self, on: bool) -> Tap {
        self.persistent = on;
        self
    }

    /// Creates the device inside the session's namespace and returns one open descriptor per
    /// queue.
    pub fn create(self, netlink: &Netlink) -> Result<Vec<File>, LinkError> {
        let netns = netlink.netns().to_owned();
        let link = self.name.clone();
        netlink
            .run_inside(move || self.create_here(&netns))
            .map_err(|_| LinkError::SessionClosed {
                request: "TUNSETIFF",
                link,
                netns: netlink.netns().to_owned(),
            })?
    }

    /// Deletes a tap, like `ip link del NAME` (which, unlike `ip tuntap del`, also works
    /// while a process holds a queue open).
    pub fn delete(netlink: &Netlink, name: &str) -> Result<(), LinkError> {
        netlink.links().delete(name)
    }

    fn flags(&self) -> libc::c_int {
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
        if self.vnet_hdr {
            flags |= libc::IFF_VNET_HDR;
        }
        if self.multi_queue {
            flags |= libc::IFF_MULTI_QUEUE;
        }
        flags
    }

    fn create_here(&self, netns: &str) -> Result<Vec<File>, LinkError> {
        let flags = self.flags();
        let mut queues = Vec::with_capacity(self.queues);
        for _ in 0..self.queues {
            queues.push(self.open_queue(netns, flags)?);
        }
        let first = &queues[0];
        if let Some(uid) = self.owner {
            self.ioctl_int(
                first,
                libc::TUNSETOWNER,
                u64::from(uid),
                "ioctl(TUNSETOWNER)",
                netns,
            )?;
        }
        if let Some(gid) = self.group {
            self.ioctl_int(
                first,
                libc::TUNSETGROUP,
                u64::from(gid),
                "ioctl(TUNSETGROUP)",
                netns,
            )?;
        }
        if self.persistent {
            self.ioctl_int(first, libc::TUNSETPERSIST, 1, "ioctl(TUNSETPERSIST)", netns)?;
        }
        tracing::debug!(link = %self.name, netns, queues = self.queues, "created tap");
        Ok(queues)
    }

    /// Opens `/dev/net/tun` and attaches it to the device (creating it on first use).
    fn open_queue(&self, netns: &str, flags: libc::c_int) -> Result<File, LinkError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|source| self.error("open /dev/net/tun", netns, source))?;
        let mut request = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: libc::c_short::try_from(flags).unwrap_or(libc::c_short::MAX),
            _union_rest: [0; 22],
        };
        let bytes = self.name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
            return Err(self.error(
                "TUNSETIFF",
                netns,
                io::Error::from_raw_os_error(libc::EINVAL),
            ));
        }
        request.name[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`. `IfReq` has its layout (16-byte
        // name, flags at offset 16, 40 bytes in all) and outlives the call.
        let result = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) };
        if result < 0 {
            return Err(self.error("ioctl(TUNSETIFF)", netns, io::Error::last_os_error()));
        }
        Ok(file)
    }

    fn ioctl_int(
        &self,
        file: &File,
        request: libc::Ioctl,
        value: u64,
        call: &'static str,
        netns: &str,
    ) -> Result<(), LinkError> {
        let value = libc::c_ulong::try_from(value).unwrap_or(libc::c_ulong::MAX);
        // SAFETY: the TUNSETPERSIST, TUNSETOWNER and TUNSETGROUP ioctls take an integer
        // argument by value and touch no memory of ours.
        let result = unsafe { libc::ioctl(file.as_raw_fd(), request, value) };
        if result < 0 {
            return Err(self.error(call, netns, io::Error::last_os_error()));
        }
        Ok(())
    }

    fn error(&self, call: &'static str, netns: &str, source: io::Error) -> LinkError {
        if source.raw_os_error() == Some(libc::EPERM) {
            LinkError::PermissionDenied {
                request: call,
                link: self.name.clone(),
                netns: netns.to_owned(),
            }
        } else {
            LinkError::Tap {
                call,
                link: self.name.clone(),
                netns: netns.to_owned(),
                source,
            }
        }
    }
}
