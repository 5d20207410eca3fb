//! A vhost-user-net backend (the device side of the vhost-user protocol, QEMU's
//! `docs/interop/vhost-user.rst`) on `vhost-user-backend` and `virtio-queue`, for containers
//! whose DPDK application uses the `net_virtio_user` front end:
//!
//! ```text
//! dpdk-testpmd --no-huge --no-pci -m 512 --in-memory \
//!     --vdev=net_virtio_user0,path=/run/telco/vu0.sock,queues=1 -- -i
//! ```
//!
//! The backend listens on a Unix socket and serves one front end at a time; when the front end
//! disconnects it waits for the next, so a restarted container reconnects to a fresh device.
//! Frames the front end transmits go to the [`NetPeer`]: a tap, a loopback that returns them on
//! the receive queue, or a sink that counts and drops them.
//!
//! # Limitations
//! - One queue pair; the front end's `queues=` must be 1.
//! - No checksum or segmentation offload, no control queue, no event index, split rings only.
//! - The front end's memory table is accepted as is (virtio-user sends its own virtual
//!   addresses as guest addresses); at most 8 regions.

mod net;

pub use net::{NetPeer, NetStats, VhostUserError, VhostUserNet};
