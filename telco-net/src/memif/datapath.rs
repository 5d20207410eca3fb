//! Burst receive and transmit on one memif ring, for each role.
//!
//! The client owns `head` and the buffers, the server owns `tail`, whatever the direction
//! (libmemif's producer and consumer rules):
//!
//! - client to server: the client fills its own buffers and advances `head`; the server reads
//!   `[tail, head)` and advances `tail` to release them.
//! - server to client: the client posts empty buffers by advancing `head`; the server copies
//!   frames into `[tail, head)`, sets each `length`, and advances `tail`; the client reads up to
//!   `tail` and posts the buffers again.
//!
//! Each side keeps its own index locally and never reads it back from shared memory. Counts read
//! from the peer's index are clamped to what can be valid, and each descriptor the peer wrote is
//! bounds-checked before its buffer is touched.
//!
//! The client's transmit path and the server's receive path keep the peer's index as last read
//! and read it again only when that copy shows too few slots for the burst. A read of the peer's
//! index is a cache miss whenever the peer wrote it since, so a sender with room in the ring and
//! a receiver with a backlog each skip one miss per burst.
//!
//! For the same reason the server's receive path stores `tail` only once it has consumed
//! [`TAIL_BATCH`] slots (half the ring if that is smaller) since the last store, or when a call
//! delivers fewer frames than requested. Such a call has consumed every slot up to the `head` it
//! last read, or stopped at an unfinished chain. A client that waits for slots therefore gets
//! them all back, at the latest on the server's next call that finds no new frame.

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use super::shm::{Desc, Regions, RingView};
use super::wire::{DESC_FLAG_NEXT, RING_FLAG_MASK_INT};

/// Largest frame accepted or sent: a 9000-byte jumbo payload plus headers, rounded up.
pub const MAX_FRAME_LEN: usize = 9216;

/// Slots that the server's receive path consumes before it stores `tail`, on rings of at least
/// twice this size. The client reads `tail` on every burst (DPDK's `net_memif` does in
/// `eth_memif_tx`), and each store makes that read a cache miss.
const TAIL_BATCH: u16 = 64;

/// The location of a client ring's buffers: slot `j` uses `[base + j * size, base + (j + 1) * size)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotBuffers {
    pub(crate) region: u16,
    pub(crate) base: u32,
    pub(crate) size: u32,
}

impl SlotBuffers {
    fn offset(&self, slot: u16, mask: u16) -> u32 {
        self.base + u32::from(slot & mask) * self.size
    }
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemifStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Descriptors or indices from the peer that failed validation, and frames dropped because
    /// they were empty or longer than the largest frame.
    pub errors: u64,
}

/// One ring and the state this side keeps for it.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) ring: RingView,
    pub(crate) eventfd: OwnedFd,
    /// The index this side owns: `head` for the client, `tail` for the server.
    own: u16,
    /// Client receive rings: the `tail` up to which frames were consumed.
    last: u16,
    /// Client transmit rings: the server's `tail` as last read. Server receive rings: the
    /// client's `head` as last read and clamped to one ring, or `own` to read it on the next call.
    peer_seen: u16,
    /// Server receive rings: the `tail` last stored in shared memory, which trails `own` until
    /// the next store.
    published: u16,
    /// Client rings: the buffers this side owns.
    buffers: Option<SlotBuffers>,
    /// Reassembly buffer for chained frames.
    scratch: Vec<u8>,
}

impl Queue {
    /// Wraps a ring of the client, which formatted it and owns its buffers.
    pub(crate) fn client(ring: RingView, eventfd: OwnedFd, buffers: SlotBuffers) -> Self {
        Self {
            ring,
            eventfd,
            own: 0,
            last: 0,
            peer_seen: 0,
            published: 0,
            buffers: Some(buffers),
            scratch: Vec::new(),
        }
    }

    /// Wraps a ring of the server, in the client's memory.
    pub(crate) fn server(ring: RingView, eventfd: OwnedFd) -> Self {
        Self {
            ring,
            eventfd,
            own: 0,
            last: 0,
            peer_seen: 0,
            published: 0,
            buffers: None,
            scratch: Vec::new(),
        }
    }

    /// Writes the eventfd unless the reader masked interrupts.
    fn signal(&self) {
        if self.ring.flags().load(Ordering::Relaxed) & RING_FLAG_MASK_INT == 0 {
            // A full eventfd counter (EAGAIN) already wakes the reader.
            let _ = nix::unistd::write(&self.eventfd, &1u64.to_ne_bytes());
        }
    }

    /// Asks the peer to signal (or not) when it puts frames on this ring, which we read.
    pub(crate) fn set_interrupt(&self, enabled: bool) {
        let flags = if enabled { 0 } else { RING_FLAG_MASK_INT };
        self.ring.flags().store(flags, Ordering::Relaxed);
    }

    /// Server: sets head and tail to 0 on CONNECT, as libmemif and DPDK do.
    pub(crate) fn reset_indices(&self) {
        self.ring.head().store(0, Ordering::Relaxed);
        self.ring.tail().store(0, Ordering::Release);
    }

    /// Client: posts every free slot of a server-to-client ring as an empty buffer.
    pub(crate) fn client_refill(&mut self) {
        let buffers = self.buffers.expect("client ring");
        let target = self.last.wrapping_add(self.ring.size);
        let mut head = self.own;
        while head != target {
            let desc = Desc {
                flags: 0,
                region: buffers.region,
                length: buffers.size,
                offset: buffers.offset(head, self.ring.mask),
                metadata: 0,
            };
            self.ring.write_desc(head, desc);
            head = head.wrapping_add(1);
        }
        if head != self.own {
            self.own = head;
            self.ring.head().store(head, Ordering::Release);
        }
    }

    /// Client: copies frames into its buffers and publishes them; returns how many frames of
    /// `frames` were consumed (sent, or dropped as invalid and counted in `errors`).
    pub(crate) fn client_tx(
        &mut self,
        regions: &Regions,
        frames: &[&[u8]],
        stats: &mut MemifStats,
    ) -> usize {
        let buffers = self.buffers.expect("client ring");
        let buffer_size = buffers.size as usize;
        // One check for all slot buffers of this ring, so that each slot below only needs its
        // index, which is masked.
        let area_len = u32::from(self.ring.size)
            .checked_mul(buffers.size)
            .expect("the handshake sized the buffers to fit in 4 GiB");
        let area = regions
            .bytes(buffers.region, buffers.base, area_len)
            .expect("client buffers fit their region");
        let Some(mut free) = self.client_tx_free(frames.len(), stats) else {
            return 0;
        };
        let mut head = self.own;
        let mut consumed = 0;
        for frame in frames {
            if frame.is_empty() || frame.len() > MAX_FRAME_LEN {
                stats.errors += 1;
                consumed += 1;
                continue;
            }
            let needed = frame.len().div_ceil(buffer_size);
            if needed > free {
                // The cached tail may be old: count the slots the server released since then.
                let in_use = head.wrapping_sub(self.own);
                match self.client_tx_free(needed + usize::from(in_use), stats) {
                    Some(total) if total >= needed + usize::from(in_use) => {
                        free = total - usize::from(in_use);
                    }
                    _ => break,
                }
            }
            let mut rest: &[u8] = frame;
            while !rest.is_empty() {
                let chunk = rest.len().min(buffer_size);
                let index = usize::from(head & self.ring.mask);
                // SAFETY: `index < ring.size`, so the buffer lies inside `area`, which `bytes`
                // checked against the region, and `chunk <= buffer_size`. The slot is ours until
                // the server moves `tail` past it.
                unsafe {
                    let dst = area.as_ptr().add(index * buffer_size);
                    std::ptr::copy_nonoverlapping(rest.as_ptr(), dst, chunk);
                }
                rest = &rest[chunk..];
                let flags = if rest.is_empty() { 0 } else { DESC_FLAG_NEXT };
                self.ring.write_desc(
                    head,
                    Desc {
                        flags,
                        region: buffers.region,
                        length: u32::try_from(chunk).expect("chunk within a buffer"),
                        offset: buffers.offset(head, self.ring.mask),
                        metadata: 0,
                    },
                );
                head = head.wrapping_add(1);
            }
            free -= needed;
            consumed += 1;
            stats.tx_packets += 1;
            stats.tx_bytes += frame.len() as u64;
        }
        if head != self.own {
            self.own = head;
            self.ring.head().store(head, Ordering::Release);
            self.signal();
        }
        consumed
    }

    /// Client transmit: returns the free slots after `own`, from the cached `tail` if that shows
    /// at least `requested`, else from a fresh read. `None` when the server's `tail` is not
    /// within a ring of `head`.
    fn client_tx_free(&mut self, requested: usize, stats: &mut MemifStats) -> Option<usize> {
        let cached = self.ring.size - self.own.wrapping_sub(self.peer_seen);
        if usize::from(cached) >= requested {
            return Some(usize::from(cached));
        }
        let tail = self.ring.tail().load(Ordering::Acquire);
        let in_flight = self.own.wrapping_sub(tail);
        if in_flight > self.ring.size {
            stats.errors += 1;
            return None;
        }
        self.peer_seen = tail;
        Some(usize::from(self.ring.size - in_flight))
    }

    /// Client: passes up to `max` received frames to `deliver`, then posts the buffers again.
    pub(crate) fn client_rx(
        &mut self,
        regions: &Regions,
        max: usize,
        deliver: &mut impl FnMut(&[u8]),
        stats: &mut MemifStats,
    ) -> usize {
        let tail = self.ring.tail().load(Ordering::Acquire);
        let posted = self.own.wrapping_sub(self.last);
        let mut ready = tail.wrapping_sub(self.last);
        if ready > posted {
            stats.errors += 1;
            ready = posted;
        }
        let (next, received) = self.read_frames(regions, self.last, ready, max, deliver, stats);
        self.last = next;
        self.client_refill();
        received
    }

    /// Server: passes up to `max` frames the client put on the ring to `deliver`, then releases
    /// their slots.
    pub(crate) fn server_rx(
        &mut self,
        regions: &Regions,
        max: usize,
        deliver: &mut impl FnMut(&[u8]),
        stats: &mut MemifStats,
    ) -> usize {
        let mut ready = self.peer_seen.wrapping_sub(self.own);
        if usize::from(ready) < max {
            let head = self.ring.head().load(Ordering::Acquire);
            ready = head.wrapping_sub(self.own);
            if ready > self.ring.size {
                stats.errors += 1;
                ready = self.ring.size;
            }
            self.peer_seen = self.own.wrapping_add(ready);
        }
        let (next, received) = self.read_frames(regions, self.own, ready, max, deliver, stats);
        self.own = next;
        let unpublished = next.wrapping_sub(self.published);
        let batch = TAIL_BATCH.min(self.ring.size / 2).max(1);
        // Fewer frames than requested: the known slots are consumed, or end in an unfinished
        // chain whose sender may need more slots, so release them all.
        if unpublished >= batch || (received < max && unpublished > 0) {
            self.published = next;
            self.ring.tail().store(next, Ordering::Release);
        }
        if received < max {
            // The cached slots are used up or end in an unfinished chain: read `head` next time.
            self.peer_seen = self.own;
        }
        received
    }

    /// Reads complete frames from `ready` slots starting at `start`; returns the slot after the
    /// last one consumed and the number of frames delivered. A chain that is not complete yet
    /// stays in the ring; a frame with an invalid descriptor is consumed, dropped and counted.
    #[inline]
    fn read_frames(
        &mut self,
        regions: &Regions,
        start: u16,
        ready: u16,
        max: usize,
        deliver: &mut impl FnMut(&[u8]),
        stats: &mut MemifStats,
    ) -> (u16, usize) {
        let end = start.wrapping_add(ready);
        let mut slot = start;
        let mut received = 0;
        while slot != end && received < max {
            let first = self.ring.read_desc(slot);
            if first.flags & DESC_FLAG_NEXT == 0 {
                slot = slot.wrapping_add(1);
                match frame_bytes(regions, &first) {
                    Some(frame) => {
                        deliver(frame);
                        received += 1;
                        stats.rx_packets += 1;
                        stats.rx_bytes += frame.len() as u64;
                    }
                    None => stats.errors += 1,
                }
                continue;
            }
            match self.gather_chain(regions, slot, end) {
                ChainRead::Incomplete => break,
                ChainRead::Invalid(after) => {
                    stats.errors += 1;
                    slot = after;
                }
                ChainRead::Frame(after) => {
                    slot = after;
                    deliver(&self.scratch);
                    received += 1;
                    stats.rx_packets += 1;
                    stats.rx_bytes += self.scratch.len() as u64;
                }
            }
        }
        (slot, received)
    }

    fn gather_chain(&mut self, regions: &Regions, start: u16, end: u16) -> ChainRead {
        self.scratch.clear();
        let mut slot = start;
        let mut valid = true;
        loop {
            if slot == end {
                return ChainRead::Incomplete;
            }
            let desc = self.ring.read_desc(slot);
            slot = slot.wrapping_add(1);
            match frame_bytes(regions, &desc) {
                Some(part) if valid && self.scratch.len() + part.len() <= MAX_FRAME_LEN => {
                    self.scratch.extend_from_slice(part);
                }
                _ => valid = false,
            }
            if desc.flags & DESC_FLAG_NEXT == 0 {
                return if valid {
                    ChainRead::Frame(slot)
                } else {
                    ChainRead::Invalid(slot)
                };
            }
        }
    }

    /// Server: copies frames into the buffers the client posted and publishes them; returns how
    /// many frames of `frames` were consumed (sent, or dropped as invalid and counted).
    pub(crate) fn server_tx(
        &mut self,
        regions: &Regions,
        frames: &[&[u8]],
        stats: &mut MemifStats,
    ) -> usize {
        let head = self.ring.head().load(Ordering::Acquire);
        let mut available = head.wrapping_sub(self.own);
        if available > self.ring.size {
            stats.errors += 1;
            available = self.ring.size;
        }
        let end = self.own.wrapping_add(available);
        let mut tail = self.own;
        let mut consumed = 0;
        for frame in frames {
            if frame.is_empty() || frame.len() > MAX_FRAME_LEN {
                stats.errors += 1;
                consumed += 1;
                continue;
            }
            match self.fill_posted(regions, tail, end, frame) {
                Fill::Done(after) => {
                    tail = after;
                    consumed += 1;
                    stats.tx_packets += 1;
                    stats.tx_bytes += frame.len() as u64;
                }
                Fill::NoRoom => break,
                Fill::Invalid => {
                    stats.errors += 1;
                    break;
                }
            }
        }
        if tail != self.own {
            self.own = tail;
            self.ring.tail().store(tail, Ordering::Release);
            self.signal();
        }
        consumed
    }

    /// Copies one frame into posted buffers from slot `start`, chaining as needed. Checks first
    /// that the posted capacity suffices, so that a frame that does not fit leaves the posted
    /// lengths untouched.
    fn fill_posted(&self, regions: &Regions, start: u16, end: u16, frame: &[u8]) -> Fill {
        let mut slot = start;
        let mut capacity = 0usize;
        while capacity < frame.len() {
            if slot == end {
                return Fill::NoRoom;
            }
            let posted = self.ring.read_desc(slot).length as usize;
            if posted == 0 {
                return Fill::Invalid;
            }
            capacity += posted;
            slot = slot.wrapping_add(1);
        }
        let mut slot = start;
        let mut rest = frame;
        while !rest.is_empty() {
            if slot == end {
                return Fill::Invalid;
            }
            let posted = self.ring.read_desc(slot);
            let chunk = rest.len().min(posted.length as usize);
            let length = u32::try_from(chunk).expect("chunk within a frame");
            let Some(dst) = regions
                .bytes(posted.region, posted.offset, length)
                .filter(|_| chunk > 0)
            else {
                return Fill::Invalid;
            };
            // SAFETY: `bytes` checked the range against the region; the slot belongs to the
            // server between the client's head and our tail.
            unsafe { std::ptr::copy_nonoverlapping(rest.as_ptr(), dst.as_ptr(), chunk) };
            rest = &rest[chunk..];
            let flags = if rest.is_empty() { 0 } else { DESC_FLAG_NEXT };
            self.ring.write_desc(
                slot,
                Desc {
                    flags,
                    length,
                    ..posted
                },
            );
            slot = slot.wrapping_add(1);
        }
        Fill::Done(slot)
    }
}

enum ChainRead {
    Incomplete,
    Invalid(u16),
    Frame(u16),
}

enum Fill {
    Done(u16),
    NoRoom,
    Invalid,
}

/// Returns the bytes a descriptor points at, if they lie inside a region and fit a frame.
#[inline]
fn frame_bytes<'a>(regions: &'a Regions, desc: &Desc) -> Option<&'a [u8]> {
    let length = desc.length as usize;
    if length > MAX_FRAME_LEN {
        return None;
    }
    let ptr = regions.bytes(desc.region, desc.offset, desc.length)?;
    // SAFETY: `bytes` checked the range. The peer may write these bytes while we read them, which
    // can only change the frame's content.
    Some(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), length) })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::memif::shm::ring_bytes;
    use crate::ring::SharedMapping;

    const LOG2: u8 = 4;
    const BUFFERS: u32 = 4096;
    /// Bytes of each slot buffer of [`client_queue`].
    const SLOT_BUFFER: u32 = 256;

    /// One region: a ring of 16 descriptors at offset 0, then 4096 bytes of buffers.
    fn setup() -> (Regions, RingView) {
        setup_ring(LOG2)
    }

    /// Makes one region: a ring of `2^log2` descriptors at offset 0, then a 256-byte buffer per
    /// slot (at least [`BUFFERS`] bytes).
    fn setup_ring(log2: u8) -> (Regions, RingView) {
        let ring_len = ring_bytes(log2);
        let buffers = (SLOT_BUFFER << log2).max(BUFFERS) as usize;
        let mut regions = Regions::default();
        regions.push(SharedMapping::memfd("memif test", ring_len + buffers).unwrap());
        let ring = RingView::new(&regions, 0, 0, log2).unwrap();
        (regions, ring)
    }

    fn eventfd() -> OwnedFd {
        nix::sys::eventfd::EventFd::new().unwrap().into()
    }

    /// A client queue on `ring` whose 256-byte slot buffers follow the ring.
    fn client_queue(ring: RingView) -> Queue {
        let buffers = SlotBuffers {
            region: 0,
            base: u32::try_from(ring_bytes(ring_log2(&ring))).unwrap(),
            size: SLOT_BUFFER,
        };
        Queue::client(ring, eventfd(), buffers)
    }

    fn ring_log2(ring: &RingView) -> u8 {
        u8::try_from(ring.size.trailing_zeros()).unwrap()
    }

    fn buffer_offset() -> u32 {
        u32::try_from(ring_bytes(LOG2)).unwrap()
    }

    /// Writes `count` single-slot 60-byte frames from slot `first`, as a client would, and
    /// publishes them with `head`.
    fn put_frames(ring: &RingView, first: u16, count: u16) {
        let base = u32::try_from(ring_bytes(ring_log2(ring))).unwrap();
        for slot in first..first + count {
            let desc = Desc {
                length: 60,
                offset: base + u32::from(slot & ring.mask) * SLOT_BUFFER,
                ..Desc::default()
            };
            ring.write_desc(slot, desc);
        }
        ring.head().store(first + count, Ordering::Release);
    }

    #[test]
    fn server_rx_drops_descriptors_outside_the_region() {
        let (regions, ring) = setup();
        let base = buffer_offset();
        let region_len = base + BUFFERS;
        let hostile = [
            Desc {
                region: 1,
                length: 64,
                offset: base,
                ..Desc::default()
            },
            Desc {
                length: 64,
                offset: region_len - 63,
                ..Desc::default()
            },
            Desc {
                length: u32::MAX,
                offset: 1,
                ..Desc::default()
            },
            Desc {
                length: 2,
                offset: u32::MAX,
                ..Desc::default()
            },
            Desc {
                length: 64,
                offset: base,
                ..Desc::default()
            },
        ];
        for (slot, desc) in hostile.iter().enumerate() {
            ring.write_desc(u16::try_from(slot).unwrap(), *desc);
        }
        ring.head().store(5, Ordering::Release);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        let mut lengths = Vec::new();
        let received = queue.server_rx(
            &regions,
            64,
            &mut |frame| lengths.push(frame.len()),
            &mut stats,
        );
        assert_eq!(received, 1);
        assert_eq!(lengths, [64]);
        assert_eq!(stats.errors, 4);
        assert_eq!(
            ring.tail().load(Ordering::Acquire),
            5,
            "bad slots are released too"
        );
    }

    #[test]
    fn server_rx_clamps_a_head_beyond_the_ring() {
        let (regions, ring) = setup();
        for slot in 0..16 {
            ring.write_desc(
                slot,
                Desc {
                    length: 60,
                    offset: buffer_offset(),
                    ..Desc::default()
                },
            );
        }
        ring.head().store(0x8000, Ordering::Release);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        let received = queue.server_rx(&regions, 1000, &mut |_| {}, &mut stats);
        assert_eq!(received, 16, "at most one ring's worth");
        assert_eq!(stats.errors, 1);
    }

    #[test]
    fn server_rx_leaves_an_unfinished_chain_in_the_ring() {
        let (regions, ring) = setup();
        ring.write_desc(
            0,
            Desc {
                flags: DESC_FLAG_NEXT,
                length: 10,
                offset: buffer_offset(),
                ..Desc::default()
            },
        );
        ring.head().store(1, Ordering::Release);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        assert_eq!(queue.server_rx(&regions, 8, &mut |_| {}, &mut stats), 0);
        assert_eq!(ring.tail().load(Ordering::Acquire), 0);
        ring.write_desc(
            1,
            Desc {
                length: 5,
                offset: buffer_offset() + 100,
                ..Desc::default()
            },
        );
        ring.head().store(2, Ordering::Release);
        let mut lengths = Vec::new();
        assert_eq!(
            queue.server_rx(
                &regions,
                8,
                &mut |frame| lengths.push(frame.len()),
                &mut stats
            ),
            1
        );
        assert_eq!(lengths, [15]);
    }

    #[test]
    fn server_tx_refuses_posted_buffers_outside_the_region() {
        let (regions, ring) = setup();
        ring.write_desc(
            0,
            Desc {
                length: 2048,
                offset: buffer_offset() + BUFFERS - 100,
                ..Desc::default()
            },
        );
        ring.head().store(1, Ordering::Release);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        let frame = [7u8; 200];
        assert_eq!(queue.server_tx(&regions, &[&frame], &mut stats), 0);
        assert_eq!(stats.errors, 1);
        assert_eq!(ring.tail().load(Ordering::Acquire), 0, "nothing published");
    }

    #[test]
    fn client_rx_ignores_a_tail_beyond_the_posted_buffers() {
        let (regions, ring) = setup();
        let mut queue = client_queue(ring);
        queue.client_refill();
        assert_eq!(ring.head().load(Ordering::Acquire), 16);
        ring.tail().store(40, Ordering::Release);
        let mut stats = MemifStats::default();
        let received = queue.client_rx(&regions, 1000, &mut |_| {}, &mut stats);
        assert_eq!(received, 16);
        assert_eq!(stats.errors, 1);
    }

    #[test]
    fn client_tx_stops_when_the_server_moves_tail_past_head() {
        let (regions, ring) = setup();
        let mut queue = client_queue(ring);
        let mut stats = MemifStats::default();
        let frames = [&[1u8; 64][..]; 16];
        assert_eq!(queue.client_tx(&regions, &frames, &mut stats), 16);
        // The ring is full, so the next burst has to read `tail`.
        ring.tail().store(100, Ordering::Release);
        assert_eq!(queue.client_tx(&regions, &frames[..1], &mut stats), 0);
        assert_eq!(stats.errors, 1);
        assert_eq!(ring.head().load(Ordering::Acquire), 16);
    }

    #[test]
    fn client_tx_rereads_tail_when_full() {
        let (regions, ring) = setup();
        let mut queue = client_queue(ring);
        let mut stats = MemifStats::default();
        let frames = [&[1u8; 64][..]; 12];
        assert_eq!(queue.client_tx(&regions, &frames, &mut stats), 12);
        assert_eq!(
            queue.client_tx(&regions, &frames, &mut stats),
            4,
            "4 slots left"
        );
        ring.tail().store(10, Ordering::Release);
        assert_eq!(queue.client_tx(&regions, &frames, &mut stats), 10);
        assert_eq!(ring.head().load(Ordering::Acquire), 26);
        assert_eq!(stats.errors, 0);
    }

    #[test]
    fn client_tx_chains_after_rereading_tail() {
        let (regions, ring) = setup();
        let mut queue = client_queue(ring);
        let mut stats = MemifStats::default();
        assert_eq!(
            queue.client_tx(&regions, &[&[1u8; 64][..]; 15], &mut stats),
            15
        );
        ring.tail().store(15, Ordering::Release);
        // One small frame fits the cached free slot; the 600-byte frame needs three slots.
        let frames = [&[2u8; 64][..], &[3u8; 600][..]];
        assert_eq!(queue.client_tx(&regions, &frames, &mut stats), 2);
        assert_eq!(ring.head().load(Ordering::Acquire), 19);
        let chain: Vec<_> = (16..19).map(|slot| ring.read_desc(slot)).collect();
        assert_eq!(chain[0].flags, DESC_FLAG_NEXT);
        assert_eq!(chain[1].flags, DESC_FLAG_NEXT);
        assert_eq!(chain[2].flags, 0);
        assert_eq!(chain[2].length, 600 - 2 * 256);
    }

    #[test]
    fn server_rx_rereads_head_after_partial_chain() {
        let (regions, ring) = setup();
        let chain_part = |flags, offset| Desc {
            flags,
            length: 10,
            offset: buffer_offset() + offset,
            ..Desc::default()
        };
        ring.write_desc(0, chain_part(DESC_FLAG_NEXT, 0));
        ring.write_desc(1, chain_part(DESC_FLAG_NEXT, 10));
        ring.head().store(2, Ordering::Release);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        assert_eq!(queue.server_rx(&regions, 1, &mut |_| {}, &mut stats), 0);
        ring.write_desc(2, chain_part(0, 20));
        ring.head().store(3, Ordering::Release);
        let mut lengths = Vec::new();
        let mut deliver = |frame: &[u8]| lengths.push(frame.len());
        assert_eq!(queue.server_rx(&regions, 1, &mut deliver, &mut stats), 1);
        assert_eq!(lengths, [30]);
        // A full burst keeps `tail` back, and the next call, which finds no frame, stores it.
        assert_eq!(queue.server_rx(&regions, 1, &mut |_| {}, &mut stats), 0);
        assert_eq!(ring.tail().load(Ordering::Acquire), 3);
    }

    #[test]
    fn server_rx_stores_tail_in_batches() {
        let (regions, ring) = setup_ring(7);
        put_frames(&ring, 0, 128);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        // (frames delivered, `tail` after the call) for bursts of 20 from 128 frames.
        let expected = [
            (20, 0),
            (20, 0),
            (20, 0),
            (20, 80),
            (20, 80),
            (20, 80),
            (8, 128),
        ];
        for (call, (frames, tail)) in expected.into_iter().enumerate() {
            let received = queue.server_rx(&regions, 20, &mut |_| {}, &mut stats);
            assert_eq!(received, frames, "frames of call {call}");
            assert_eq!(
                ring.tail().load(Ordering::Acquire),
                tail,
                "tail after call {call}"
            );
        }
        assert_eq!(stats.rx_packets, 128);
        assert_eq!(stats.errors, 0);
    }

    #[test]
    fn server_rx_releases_a_short_burst_at_once() {
        let (regions, ring) = setup_ring(7);
        put_frames(&ring, 0, 3);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        assert_eq!(queue.server_rx(&regions, 32, &mut |_| {}, &mut stats), 3);
        assert_eq!(ring.tail().load(Ordering::Acquire), 3);
    }

    #[test]
    fn server_rx_releases_a_full_burst_when_idle() {
        let (regions, ring) = setup_ring(7);
        put_frames(&ring, 0, 32);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        assert_eq!(queue.server_rx(&regions, 32, &mut |_| {}, &mut stats), 32);
        assert_eq!(
            ring.tail().load(Ordering::Acquire),
            0,
            "held back below the batch"
        );
        assert_eq!(queue.server_rx(&regions, 32, &mut |_| {}, &mut stats), 0);
        assert_eq!(ring.tail().load(Ordering::Acquire), 32);
    }

    #[test]
    fn server_rx_batches_half_a_small_ring() {
        let (regions, ring) = setup();
        put_frames(&ring, 0, 16);
        let mut queue = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        // Half of 16 slots is the batch: (frames delivered, `tail` after the call).
        let expected = [(5, 0), (5, 10), (5, 10), (1, 16)];
        for (call, (frames, tail)) in expected.into_iter().enumerate() {
            let received = queue.server_rx(&regions, 5, &mut |_| {}, &mut stats);
            assert_eq!(received, frames, "frames of call {call}");
            assert_eq!(
                ring.tail().load(Ordering::Acquire),
                tail,
                "tail after call {call}"
            );
        }
    }

    #[test]
    fn client_tx_fills_small_ring_again() {
        let (regions, ring) = setup();
        let mut client = client_queue(ring);
        let mut server = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        let frames = [&[5u8; 64][..]; 16];
        assert_eq!(client.client_tx(&regions, &frames, &mut stats), 16);
        assert_eq!(client.client_tx(&regions, &frames, &mut stats), 0, "full");
        // The server drains the whole ring in one full burst.
        assert_eq!(server.server_rx(&regions, 16, &mut |_| {}, &mut stats), 16);
        assert_eq!(client.client_tx(&regions, &frames, &mut stats), 16);
        assert_eq!(stats.errors, 0);
    }

    #[test]
    fn client_tx_reuses_slots_after_short_burst() {
        let (regions, ring) = setup_ring(7);
        let mut client = client_queue(ring);
        let mut server = Queue::server(ring, eventfd());
        let mut stats = MemifStats::default();
        let frames = [&[6u8; 64][..]; 128];
        assert_eq!(client.client_tx(&regions, &frames[..3], &mut stats), 3);
        let mut received = 0;
        while server.server_rx(&regions, 32, &mut |_| received += 1, &mut stats) > 0 {}
        assert_eq!(received, 3);
        // Every slot is free again, so a whole ring's worth fits.
        assert_eq!(client.client_tx(&regions, &frames, &mut stats), 128);
        assert_eq!(stats.errors, 0);
    }
}
