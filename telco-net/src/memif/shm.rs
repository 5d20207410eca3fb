//! Bounds-checked views of memif regions, rings and descriptors.
//!
//! All of this memory is shared with the peer, which can write any value at any time. Values are
//! read by copy (descriptors) or through atomics (head, tail, flags); every region index, offset
//! and length is checked in 64-bit arithmetic before a pointer is formed, and every slot index is
//! masked with our own copy of the ring size.

use std::ptr::NonNull;
use std::sync::atomic::AtomicU16;

use crate::ring::SharedMapping;

/// Bytes of the ring header before the descriptors (`memif_ring_t` with 64-byte cache lines).
pub const RING_HEADER_SIZE: usize = 128;
/// Bytes of one descriptor.
pub const DESC_SIZE: usize = 16;
const FLAGS_OFFSET: usize = 4;
const HEAD_OFFSET: usize = 6;
const TAIL_OFFSET: usize = 64;

/// Bytes of a ring of `2^log2` descriptors.
pub fn ring_bytes(log2: u8) -> usize {
    RING_HEADER_SIZE + DESC_SIZE * (1usize << log2)
}

/// The regions of one connection, indexed as announced in ADD_REGION.
#[derive(Debug, Default)]
pub(crate) struct Regions {
    maps: Vec<SharedMapping>,
}

impl Regions {
    pub(crate) fn push(&mut self, mapping: SharedMapping) {
        self.maps.push(mapping);
    }

    pub(crate) fn len(&self) -> usize {
        self.maps.len()
    }

    /// A pointer to `len` bytes at `offset` in region `region`, or `None` if any part lies outside.
    #[inline]
    pub(crate) fn bytes(&self, region: u16, offset: u32, len: u32) -> Option<NonNull<u8>> {
        let map = self.maps.get(usize::from(region))?;
        let end = u64::from(offset) + u64::from(len);
        if end > map.len() as u64 {
            return None;
        }
        // SAFETY: `offset + len <= map.len()`, so the pointer stays inside the mapping.
        Some(unsafe { map.base().add(offset as usize) })
    }
}

/// One memif descriptor (`memif_desc_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Desc {
    pub(crate) flags: u16,
    pub(crate) region: u16,
    pub(crate) length: u32,
    pub(crate) offset: u32,
    pub(crate) metadata: u32,
}

/// A ring inside a region, checked to fit when it was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingView {
    base: NonNull<u8>,
    pub(crate) size: u16,
    pub(crate) mask: u16,
}

// SAFETY: the view points into a mapping that the owning connection keeps alive; all accesses are
// atomics or volatile copies.
unsafe impl Send for RingView {}

impl RingView {
    /// A view of the ring at `offset` in `region`, or `None` if it does not fit, is misaligned
    /// for its fields, or has more than 2^14 descriptors.
    pub(crate) fn new(regions: &Regions, region: u16, offset: u32, log2: u8) -> Option<Self> {
        if log2 > super::wire::MAX_LOG2_RING_SIZE || !offset.is_multiple_of(8) {
            return None;
        }
        let len = u32::try_from(ring_bytes(log2)).ok()?;
        let base = regions.bytes(region, offset, len)?;
        let size = 1u16 << log2;
        Some(Self {
            base,
            size,
            mask: size - 1,
        })
    }

    fn atomic(&self, offset: usize) -> &AtomicU16 {
        // SAFETY: the offset is inside the 128-byte header, which `new` checked, and 2-aligned
        // because the ring start is 8-aligned in a page-aligned mapping.
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU16>() }
    }

    pub(crate) fn head(&self) -> &AtomicU16 {
        self.atomic(HEAD_OFFSET)
    }

    pub(crate) fn tail(&self) -> &AtomicU16 {
        self.atomic(TAIL_OFFSET)
    }

    pub(crate) fn flags(&self) -> &AtomicU16 {
        self.atomic(FLAGS_OFFSET)
    }

    pub(crate) fn cookie(&self) -> u32 {
        // SAFETY: offset 0 of the checked header; 4-aligned.
        unsafe { self.base.as_ptr().cast::<u32>().read_volatile() }
    }

    pub(crate) fn set_cookie(&self, cookie: u32) {
        // SAFETY: as in `cookie`.
        unsafe { self.base.as_ptr().cast::<u32>().write_volatile(cookie) }
    }

    fn desc_ptr(&self, slot: u16) -> *mut Desc {
        let index = usize::from(slot & self.mask);
        // SAFETY: the masked index is below `size`, and `new` checked that all descriptors fit.
        unsafe {
            self.base
                .as_ptr()
                .add(RING_HEADER_SIZE + index * DESC_SIZE)
                .cast()
        }
    }

    /// Copies the descriptor of (masked) slot `slot`.
    #[inline]
    pub(crate) fn read_desc(&self, slot: u16) -> Desc {
        // SAFETY: in bounds and 4-aligned; any bits are a valid `Desc`; the peer may write it.
        unsafe { self.desc_ptr(slot).read_volatile() }
    }

    /// Writes the descriptor of (masked) slot `slot`.
    #[inline]
    pub(crate) fn write_desc(&self, slot: u16, desc: Desc) {
        // SAFETY: as in `read_desc`.
        unsafe { self.desc_ptr(slot).write_volatile(desc) }
    }
}
