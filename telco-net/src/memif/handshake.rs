//! Connection setup for both roles, in libmemif's lock-step order:
//! HELLO, INIT/ACK, ADD_REGION/ACK per region, ADD_RING/ACK per ring, CONNECT/CONNECTED.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sys::eventfd::{EfdFlags, EventFd};

use super::control::Channel;
use super::datapath::{Queue, SlotBuffers};
use super::shm::{Regions, RingView, ring_bytes};
use super::wire::{
    ADD_RING_FLAG_C2S, COOKIE, MAX_INDEX, MAX_LOG2_RING_SIZE, Message, VERSION, pack_secret,
};
use super::{MemifConfig, MemifError};
use crate::ring::SharedMapping;

/// A connected interface: the channel, the mapped regions and the queues of each direction.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) channel: Channel,
    pub(crate) regions: Regions,
    pub(crate) tx: Vec<Queue>,
    pub(crate) rx: Vec<Queue>,
    pub(crate) peer_name: String,
}

fn protocol(reason: impl Into<String>) -> MemifError {
    MemifError::Protocol(reason.into())
}

/// Receives the next message, turning a DISCONNECT into an error.
fn expect(
    channel: &Channel,
    timeout: Duration,
    waiting_for: &'static str,
) -> Result<(Message, Option<OwnedFd>), MemifError> {
    let (message, fd) = channel.recv(timeout, waiting_for)?;
    if let Message::Disconnect { code, reason } = &message {
        return Err(MemifError::PeerDisconnected {
            code: *code,
            reason: String::from_utf8_lossy(reason).into_owned(),
        });
    }
    Ok((message, fd))
}

fn expect_ack(channel: &Channel, timeout: Duration, after: &'static str) -> Result<(), MemifError> {
    match expect(channel, timeout, after)?.0 {
        Message::Ack => Ok(()),
        other => Err(protocol(format!(
            "expected ACK after {after}, got {}",
            other.kind()
        ))),
    }
}

fn eventfd() -> Result<OwnedFd, MemifError> {
    EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
        .map(OwnedFd::from)
        .map_err(|source| MemifError::Eventfd { source })
}

/// Client side: negotiates, creates and announces the regions and rings, and connects.
pub(crate) fn client(
    channel: Channel,
    config: &MemifConfig,
    timeout: Duration,
) -> Result<Connection, MemifError> {
    let (hello, _) = expect(&channel, timeout, "HELLO")?;
    let Message::Hello {
        name,
        min_version,
        max_version,
        max_region,
        max_s2c_ring,
        max_c2s_ring,
        max_log2_ring_size,
    } = hello
    else {
        return Err(protocol(format!("expected HELLO, got {}", hello.kind())));
    };
    if !(min_version..=max_version).contains(&VERSION) {
        return Err(MemifError::IncompatibleVersion {
            min: min_version,
            max: max_version,
        });
    }
    if max_region < 1 {
        return Err(protocol(
            "server accepts only one region, the client needs two",
        ));
    }
    let c2s = usize::from(config.tx_queues).min(usize::from(max_c2s_ring) + 1);
    let s2c = usize::from(config.rx_queues).min(usize::from(max_s2c_ring) + 1);
    let log2 = config
        .log2_ring_size
        .min(max_log2_ring_size)
        .min(MAX_LOG2_RING_SIZE);

    let secret = pack_secret(config.secret.as_deref()).ok_or(MemifError::InvalidConfig {
        reason: "secret longer than 24 bytes",
    })?;
    let init = Message::Init {
        version: VERSION,
        id: config.id,
        mode: Ok(config.mode),
        secret,
        name: config.name.as_bytes().to_vec(),
    };
    channel.send(&init, None)?;
    expect_ack(&channel, timeout, "INIT")?;

    // Region 0 holds the rings, client-to-server first; region 1 the buffers, in the same order.
    let ring_size = 1usize << log2;
    let rings = c2s + s2c;
    let ring_area = rings * ring_bytes(log2);
    let buffer_size = config.buffer_size as usize;
    let buffer_area = rings * ring_size * buffer_size;
    let mut regions = Regions::default();
    for (index, size) in [ring_area, buffer_area].into_iter().enumerate() {
        let mapping = SharedMapping::memfd(&format!("memif region {index}"), size)
            .map_err(|source| MemifError::Region { index, source })?;
        let message = Message::AddRegion {
            index: u16::try_from(index).unwrap_or(u16::MAX),
            size: size as u64,
        };
        channel.send(&message, Some(mapping.fd()))?;
        regions.push(mapping);
        expect_ack(&channel, timeout, "ADD_REGION")?;
    }

    let mut tx = Vec::with_capacity(c2s);
    let mut rx = Vec::with_capacity(s2c);
    for ring_number in 0..rings {
        let to_server = ring_number < c2s;
        let index = if to_server {
            ring_number
        } else {
            ring_number - c2s
        };
        let offset = u32::try_from(ring_number * ring_bytes(log2)).map_err(|_| {
            MemifError::InvalidConfig {
                reason: "rings exceed 4 GiB",
            }
        })?;
        let ring = RingView::new(&regions, 0, offset, log2)
            .expect("the client sized region 0 for its rings");
        ring.set_cookie(COOKIE);
        ring.flags().store(0, std::sync::atomic::Ordering::Relaxed);
        let buffers = SlotBuffers {
            region: 1,
            base: u32::try_from(ring_number * ring_size * buffer_size).map_err(|_| {
                MemifError::InvalidConfig {
                    reason: "buffers exceed 4 GiB",
                }
            })?,
            size: config.buffer_size,
        };
        let eventfd = eventfd()?;
        let message = Message::AddRing {
            flags: if to_server { ADD_RING_FLAG_C2S } else { 0 },
            index: u16::try_from(index).unwrap_or(u16::MAX),
            region: 0,
            offset,
            log2_ring_size: log2,
            private_hdr_size: 0,
        };
        channel.send(&message, Some(eventfd.as_fd()))?;
        expect_ack(&channel, timeout, "ADD_RING")?;
        let queue = Queue::client(ring, eventfd, buffers);
        if to_server {
            tx.push(queue)
        } else {
            rx.push(queue)
        }
    }
    for queue in &rx {
        queue.set_interrupt(false);
    }

    channel.send(
        &Message::Connect {
            if_name: config.name.as_bytes().to_vec(),
        },
        None,
    )?;
    let peer_name = match expect(&channel, timeout, "CONNECTED")?.0 {
        Message::Connected { if_name } => String::from_utf8_lossy(&if_name).into_owned(),
        other => {
            return Err(protocol(format!(
                "expected CONNECTED, got {}",
                other.kind()
            )));
        }
    };
    // The server resets head and tail when it receives CONNECT (libmemif, DPDK), so buffers are
    // posted only after CONNECTED.
    for queue in &mut rx {
        queue.client_refill();
    }
    tracing::debug!(server = %String::from_utf8_lossy(&name), peer_name, c2s, s2c, log2, "memif client connected");
    Ok(Connection {
        channel,
        regions,
        tx,
        rx,
        peer_name,
    })
}

/// Sends DISCONNECT with `reason` and returns the matching error.
fn refuse(channel: &Channel, reason: &'static str) -> MemifError {
    let _ = channel.send(
        &Message::Disconnect {
            code: 0,
            reason: reason.as_bytes().to_vec(),
        },
        None,
    );
    MemifError::Protocol(reason.to_owned())
}

/// Server side: greets the client, validates everything it announces, maps its regions, and
/// confirms the connection.
pub(crate) fn server(
    channel: Channel,
    config: &MemifConfig,
    timeout: Duration,
) -> Result<Connection, MemifError> {
    let hello = Message::Hello {
        name: config.name.as_bytes().to_vec(),
        min_version: VERSION,
        max_version: VERSION,
        max_region: MAX_INDEX,
        max_s2c_ring: MAX_INDEX,
        max_c2s_ring: MAX_INDEX,
        max_log2_ring_size: MAX_LOG2_RING_SIZE,
    };
    channel.send(&hello, None)?;

    let (init, _) = expect(&channel, timeout, "INIT")?;
    let Message::Init {
        version,
        id,
        mode,
        secret,
        name,
    } = init
    else {
        return Err(refuse(&channel, "expected INIT"));
    };
    if version != VERSION {
        return Err(refuse(&channel, "unsupported version"));
    }
    if id != config.id {
        return Err(refuse(&channel, "unmatched interface id"));
    }
    if mode != Ok(config.mode) {
        return Err(refuse(&channel, "mode mismatch"));
    }
    let expected = pack_secret(config.secret.as_deref()).ok_or(MemifError::InvalidConfig {
        reason: "secret longer than 24 bytes",
    })?;
    if config.secret.is_some() && secret != expected {
        return Err(refuse(&channel, "incorrect secret"));
    }
    channel.send(&Message::Ack, None)?;

    let mut regions = Regions::default();
    let mut c2s: Vec<Queue> = Vec::new();
    let mut s2c: Vec<Queue> = Vec::new();
    let peer_if_name = loop {
        let (message, fd) = expect(&channel, timeout, "ADD_REGION, ADD_RING or CONNECT")?;
        match message {
            Message::AddRegion { index, size } => {
                let fd = fd.ok_or_else(|| refuse(&channel, "missing memory region fd"))?;
                if usize::from(index) != regions.len() || index > MAX_INDEX {
                    return Err(refuse(&channel, "region index out of sequence"));
                }
                regions.push(map_region(&channel, usize::from(index), fd, size)?);
            }
            Message::AddRing {
                flags,
                index,
                region,
                offset,
                log2_ring_size,
                private_hdr_size,
            } => {
                let eventfd = fd.ok_or_else(|| refuse(&channel, "missing ring interrupt fd"))?;
                if private_hdr_size != 0 {
                    return Err(refuse(&channel, "private headers are not supported"));
                }
                if flags & !ADD_RING_FLAG_C2S != 0 {
                    return Err(refuse(&channel, "unknown ring flags"));
                }
                let queues = if flags & ADD_RING_FLAG_C2S != 0 {
                    &mut c2s
                } else {
                    &mut s2c
                };
                if usize::from(index) != queues.len() || index > MAX_INDEX {
                    return Err(refuse(&channel, "ring index out of sequence"));
                }
                let Some(ring) = RingView::new(&regions, region, offset, log2_ring_size) else {
                    return Err(refuse(
                        &channel,
                        "ring outside its region or ring size too large",
                    ));
                };
                queues.push(Queue::server(ring, eventfd));
            }
            Message::Connect { if_name } => break if_name,
            other => {
                tracing::debug!(kind = other.kind(), "unexpected memif message during setup");
                return Err(refuse(&channel, "unexpected message"));
            }
        }
        channel.send(&Message::Ack, None)?;
    };

    if c2s.is_empty() || s2c.is_empty() {
        return Err(refuse(
            &channel,
            "at least one ring per direction is required",
        ));
    }
    if c2s
        .iter()
        .chain(&s2c)
        .any(|queue| queue.ring.cookie() != COOKIE)
    {
        return Err(refuse(&channel, "ring cookie mismatch"));
    }
    for queue in c2s.iter().chain(&s2c) {
        queue.reset_indices();
    }
    for queue in &c2s {
        queue.set_interrupt(false);
    }
    channel.send(
        &Message::Connected {
            if_name: config.name.as_bytes().to_vec(),
        },
        None,
    )?;
    let peer_name = String::from_utf8_lossy(&peer_if_name).into_owned();
    tracing::debug!(client = %String::from_utf8_lossy(&name), peer_name, c2s = c2s.len(), s2c = s2c.len(), "memif server connected");
    Ok(Connection {
        channel,
        regions,
        tx: s2c,
        rx: c2s,
        peer_name,
    })
}

/// Largest region we map: 4 GiB, the reach of a 32-bit descriptor offset.
const MAX_REGION_SIZE: u64 = 1 << 32;

/// Maps a region the client sent, after checking that the file really is as long as announced
/// (a mapping past the end of a file faults with `SIGBUS` on access).
fn map_region(
    channel: &Channel,
    index: usize,
    fd: OwnedFd,
    size: u64,
) -> Result<SharedMapping, MemifError> {
    if size == 0 || size > MAX_REGION_SIZE {
        return Err(refuse(channel, "region size out of range"));
    }
    let file_size = nix::sys::stat::fstat(&fd)
        .map(|stat| stat.st_size)
        .unwrap_or(0);
    if u64::try_from(file_size).unwrap_or(0) < size {
        return Err(refuse(channel, "region larger than its file"));
    }
    let len = usize::try_from(size).map_err(|_| refuse(channel, "region size out of range"))?;
    SharedMapping::map(fd, len).map_err(|source| MemifError::Region { index, source })
}
