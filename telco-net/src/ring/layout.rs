//! The ring header, as it lies at the start of the ring's memory, and the size rules.
//!
//! The same layout serves rings in process memory and rings in a shared mapping: a 128-byte
//! block of metadata, then the producer's head and tail words in their own 128-byte block, then
//! the consumer's in another, then the slots. 128 bytes keep each pair off its neighbour's cache line
//! and off the adjacent line that x86 prefetches in pairs (DPDK adds `RTE_CACHE_GUARD` for the same
//! reason).

use super::RingError;
use super::sync::AtomicU64;

/// `"TELCORNG"` read as a little-endian `u64`; the first 8 bytes of every ring.
pub const RING_MAGIC: u64 = u64::from_le_bytes(*b"TELCORNG");

/// Version of the header layout; attach rejects any other. Version 2 widened the head and tail
/// to 64-bit words and added the RTS head-tail distances.
pub const RING_VERSION: u32 = 2;

/// Header flag: one producer (DPDK `RING_F_SP_ENQ`).
pub const FLAG_SP_ENQ: u32 = 0x1;
/// Header flag: one consumer (DPDK `RING_F_SC_DEQ`).
pub const FLAG_SC_DEQ: u32 = 0x2;
/// Header flag: capacity is exactly the requested count (DPDK `RING_F_EXACT_SZ`).
pub const FLAG_EXACT_SZ: u32 = 0x4;
/// Header flag: producers in relaxed tail sync mode (DPDK `RING_F_MP_RTS_ENQ`).
pub const FLAG_MP_RTS_ENQ: u32 = 0x8;
/// Header flag: consumers in relaxed tail sync mode (DPDK `RING_F_MC_RTS_DEQ`).
pub const FLAG_MC_RTS_DEQ: u32 = 0x10;
/// Header flag: producers in head/tail sync mode (DPDK `RING_F_MP_HTS_ENQ`).
pub const FLAG_MP_HTS_ENQ: u32 = 0x20;
/// Header flag: consumers in head/tail sync mode (DPDK `RING_F_MC_HTS_DEQ`).
pub const FLAG_MC_HTS_DEQ: u32 = 0x40;
const PROD_MODE_FLAGS: u32 = FLAG_SP_ENQ | FLAG_MP_RTS_ENQ | FLAG_MP_HTS_ENQ;
const CONS_MODE_FLAGS: u32 = FLAG_SC_DEQ | FLAG_MC_RTS_DEQ | FLAG_MC_HTS_DEQ;
const KNOWN_FLAGS: u32 = PROD_MODE_FLAGS | CONS_MODE_FLAGS | FLAG_EXACT_SZ;

/// Largest number of slots: indices are free-running `u32` values, so the distance between a
/// head and a tail must stay below 2^31 for the wrapping arithmetic to order them.
pub const MAX_SLOTS: u32 = 1 << 31;

/// Alignment of each block of the header, twice the x86 cache line.
pub const BLOCK_ALIGN: usize = 128;

/// Metadata block: written once at creation, read and validated by attach.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) flags: u32,
    pub(crate) elem_size: u32,
    pub(crate) elem_align: u32,
    pub(crate) slots: u32,
    pub(crate) capacity: u32,
    pub(crate) slots_offset: u64,
    /// Maximum head-tail distance of an RTS producer side, 0 for other modes.
    pub(crate) prod_htd_max: u32,
    /// Maximum head-tail distance of an RTS consumer side, 0 for other modes.
    pub(crate) cons_htd_max: u32,
}

/// The head and tail words of one side of the ring.
///
/// The low 32 bits of `tail` are the tail position in every mode, so the other side reads it
/// without knowing this side's mode. The other bits depend on the mode:
///
/// | mode          | `head` low / high       | `tail` high              |
/// |---------------|-------------------------|--------------------------|
/// | single, multi | head position / 0       | 0                        |
/// | RTS           | head position / counter | counter of finished ops  |
/// | HTS           | unused                  | head position            |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct HeadTail {
    pub(crate) head: AtomicU64,
    pub(crate) tail: AtomicU64,
}

impl HeadTail {
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
        }
    }
}

/// The synchronisation mode of one side of a ring, as DPDK's `rte_ring_sync_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyncType {
    /// One thread (DPDK `RTE_RING_SYNC_ST`).
    Single,
    /// Several threads, each publishing in reservation order (DPDK `RTE_RING_SYNC_MT`).
    Multi,
    /// Several threads, the last to finish publishing for all (DPDK `RTE_RING_SYNC_MT_RTS`).
    MultiRts,
    /// Several threads, one operation at a time (DPDK `RTE_RING_SYNC_MT_HTS`).
    MultiHts,
}

impl SyncType {
    /// Returns the header flags that record this mode for the producer side.
    pub(crate) fn producer_flags(self) -> u32 {
        match self {
            Self::Single => FLAG_SP_ENQ,
            Self::Multi => 0,
            Self::MultiRts => FLAG_MP_RTS_ENQ,
            Self::MultiHts => FLAG_MP_HTS_ENQ,
        }
    }

    /// Returns the header flags that record this mode for the consumer side.
    pub(crate) fn consumer_flags(self) -> u32 {
        match self {
            Self::Single => FLAG_SC_DEQ,
            Self::Multi => 0,
            Self::MultiRts => FLAG_MC_RTS_DEQ,
            Self::MultiHts => FLAG_MC_HTS_DEQ,
        }
    }

    /// Returns the producer's mode recorded in `flags`, or `None` if several mode flags are set.
    pub(crate) fn of_producer(flags: u32) -> Option<Self> {
        Self::from_side_flags(flags & PROD_MODE_FLAGS, Self::producer_flags)
    }

    /// Returns the consumer's mode recorded in `flags`, or `None` if several mode flags are set.
    pub(crate) fn of_consumer(flags: u32) -> Option<Self> {
        Self::from_side_flags(flags & CONS_MODE_FLAGS, Self::consumer_flags)
    }

    fn from_side_flags(side_flags: u32, encode: fn(Self) -> u32) -> Option<Self> {
        [Self::Single, Self::Multi, Self::MultiRts, Self::MultiHts]
            .into_iter()
            .find(|mode| encode(*mode) == side_flags)
    }
}

impl std::fmt::Display for SyncType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single => "single-threaded",
            Self::Multi => "multi-threaded",
            Self::MultiRts => "multi-threaded RTS",
            Self::MultiHts => "multi-threaded HTS",
        })
    }
}

/// The ring header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) meta: Meta,
    pub(crate) prod: HeadTail,
    pub(crate) cons: HeadTail,
}

/// Sizes derived from a requested count, checked once and then trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Number of slots, a power of two.
    pub(crate) slots: u32,
    /// Number of elements the ring holds when full.
    pub(crate) capacity: u32,
    /// `slots - 1`.
    pub(crate) mask: u32,
    /// Byte offset of slot 0 from the start of the header.
    pub(crate) slots_offset: usize,
    /// Bytes of header plus slots.
    pub(crate) total_len: usize,
}

impl Geometry {
    /// Computes the geometry of a ring of `count` elements of `T`, as `rte_ring_create` does:
    /// `count` must be a power of two and the capacity is `count - 1`, unless `exact` is set, in
    /// which case the slots are the next power of two above `count` and the capacity is `count`.
    pub(crate) fn new<T>(count: u32, exact: bool) -> Result<Self, RingError> {
        let slots = if exact {
            count
                .checked_add(1)
                .and_then(u32::checked_next_power_of_two)
        } else if count.is_power_of_two() {
            Some(count)
        } else {
            return Err(RingError::CountNotPowerOfTwo { count });
        };
        let slots = match slots {
            Some(slots) if count > 0 && slots <= MAX_SLOTS && (exact || slots >= 2) => slots,
            _ => {
                return Err(RingError::InvalidCount {
                    count,
                    max: MAX_SLOTS - 1,
                });
            }
        };
        let capacity = if exact { count } else { slots - 1 };
        Self::from_parts::<T>(slots, capacity).ok_or(RingError::InvalidCount {
            count,
            max: MAX_SLOTS - 1,
        })
    }

    /// Computes offsets for `slots` and `capacity` already checked by the caller, or `None` if the
    /// ring would not fit in the address space.
    pub(crate) fn from_parts<T>(slots: u32, capacity: u32) -> Option<Self> {
        let align = std::mem::align_of::<T>().max(BLOCK_ALIGN);
        let slots_offset = std::mem::size_of::<Header>().next_multiple_of(align);
        let total_len = std::mem::size_of::<T>()
            .checked_mul(usize::try_from(slots).ok()?)?
            .checked_add(slots_offset)?;
        if total_len > isize::MAX as usize {
            return None;
        }
        Some(Self {
            slots,
            capacity,
            mask: slots - 1,
            slots_offset,
            total_len,
        })
    }

    /// Metadata describing this geometry, with the given mode flags and RTS head-tail distances.
    pub(crate) fn meta<T>(&self, flags: u32, htd_max: [u32; 2]) -> Meta {
        Meta {
            magic: RING_MAGIC,
            version: RING_VERSION,
            flags,
            elem_size: size_u32(std::mem::size_of::<T>()),
            elem_align: size_u32(std::mem::align_of::<T>()),
            slots: self.slots,
            capacity: self.capacity,
            slots_offset: self.slots_offset as u64,
            prod_htd_max: htd_max[0],
            cons_htd_max: htd_max[1],
        }
    }

    /// Validates metadata read from a shared mapping of `mapped_len` bytes against the element
    /// type `T`, and returns the geometry recomputed from it, the flags and the producer's and
    /// consumer's RTS head-tail distances.
    pub(crate) fn validate<T>(
        meta: &Meta,
        mapped_len: usize,
    ) -> Result<(Self, u32, [u32; 2]), RingError> {
        let invalid = |reason: &'static str| Err(RingError::InvalidHeader { reason });
        if meta.magic != RING_MAGIC {
            return invalid("bad magic");
        }
        if meta.version != RING_VERSION {
            return Err(RingError::UnsupportedVersion {
                version: meta.version,
                supported: RING_VERSION,
            });
        }
        if meta.flags & !KNOWN_FLAGS != 0 {
            return invalid("unknown flags");
        }
        let (Some(prod_mode), Some(cons_mode)) = (
            SyncType::of_producer(meta.flags),
            SyncType::of_consumer(meta.flags),
        ) else {
            return invalid("more than one mode flag for one side");
        };
        if meta.elem_size as usize != std::mem::size_of::<T>()
            || meta.elem_align as usize != std::mem::align_of::<T>()
        {
            return Err(RingError::ElementMismatch {
                found_size: meta.elem_size,
                found_align: meta.elem_align,
                expected_size: std::mem::size_of::<T>(),
                expected_align: std::mem::align_of::<T>(),
            });
        }
        let slots = meta.slots;
        if !slots.is_power_of_two() || slots > MAX_SLOTS {
            return invalid("slot count is not a power of two within the limit");
        }
        let exact = meta.flags & FLAG_EXACT_SZ != 0;
        let capacity_ok = if exact {
            meta.capacity > 0
                && meta.capacity < slots
                && meta
                    .capacity
                    .checked_add(1)
                    .and_then(u32::checked_next_power_of_two)
                    == Some(slots)
        } else {
            slots >= 2 && meta.capacity == slots - 1
        };
        if !capacity_ok {
            return invalid("capacity does not match the slot count");
        }
        let Some(geometry) = Self::from_parts::<T>(slots, meta.capacity) else {
            return invalid("ring size overflows");
        };
        if meta.slots_offset != geometry.slots_offset as u64 {
            return invalid("slot offset does not match the element type");
        }
        for (mode, htd_max) in [
            (prod_mode, meta.prod_htd_max),
            (cons_mode, meta.cons_htd_max),
        ] {
            let htd_ok = match mode {
                SyncType::MultiRts => htd_max <= meta.capacity,
                _ => htd_max == 0,
            };
            if !htd_ok {
                return invalid("head-tail distance out of range for the side's mode");
            }
        }
        if geometry.total_len > mapped_len {
            return Err(RingError::MappingTooSmall {
                len: mapped_len,
                needed: geometry.total_len,
            });
        }
        Ok((geometry, meta.flags, [meta.prod_htd_max, meta.cons_htd_max]))
    }
}

/// Converts a type size or alignment to `u32`; Rust types used as ring elements stay far below 4 GiB.
fn size_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
