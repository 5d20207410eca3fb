//! Fixed-capacity lock-free rings with DPDK `rte_ring` semantics.
//!
//! A ring moves `Copy` elements of any size from producers to consumers in FIFO order. Each side
//! is single-threaded ([`Single`], DPDK's `RING_F_SP_ENQ`/`RING_F_SC_DEQ`) or shared by several
//! threads ([`Multi`], DPDK's default; [`MultiRts`], relaxed tail sync; [`MultiHts`], head/tail
//! sync), chosen at creation as a type parameter of the handles, so a single-threaded side cannot
//! be shared by mistake. Calls come in the `rte_ring` flavours: one
//! element, bulk (all or nothing) and burst (as many as fit), plus two-phase zero-copy reservations
//! on single-threaded sides. Capacity is `count - 1` for a power-of-two `count`, or exactly
//! `count` with [`RingBuilder::exact_size`] (DPDK's `RING_F_EXACT_SZ`).
//!
//! ```
//! use telco_net::ring::{RingBuilder, Single};
//!
//! let (mut tx, mut rx) = RingBuilder::new(1024).build::<u64, Single, Single>().unwrap();
//! assert_eq!(tx.enqueue_burst(&[1, 2, 3]), 3);
//! let mut out = [0u64; 8];
//! assert_eq!(rx.dequeue_burst(&mut out), 3);
//! assert_eq!(&out[..3], &[1, 2, 3]);
//! ```
//!
//! The producer's head and tail share one 128-byte block and the consumer's another, as in
//! `rte_ring`. A ring may also live in a shared mapping (a memfd, or a file on tmpfs or
//! hugetlbfs) that another process attaches by fd or path: see [`SharedRing`]. Elements of shared
//! rings must implement [`Plain`], because a peer can write any bytes into them.
//!
//! # Limitations
//!
//! - In every multi-threaded mode, a thread preempted between reserving and publishing makes
//!   other threads of its side wait until it runs again. In [`Multi`] the threads that reserved
//!   after it wait, in [`MultiRts`] those that find the head-tail distance at its maximum, and
//!   in [`MultiHts`] all of them. RTS and HTS change who waits and for how long, not whether.
//! - RTS and HTS did not pay off in short runs (`bench-ring --oversubscribed-only`: 4 producer
//!   and 4 consumer threads on 2 CPUs, 4096 slots, 8-byte elements, a 2-vCPU VM shared with
//!   other jobs). Threads there yield when the ring is full or empty. In bulks of 8, MP/MC moved
//!   87 to 109 million elements/s, RTS 53 to 57 and HTS 58 to 61. In bulks of 32, MP/MC moved
//!   254 to 312 million, RTS 179 to 195 and HTS 196 to 282. With threads that spin instead,
//!   every mode fell to 2 to 31 million elements/s and varied more between runs than between
//!   modes. bench-ring no longer prints those spinning rows, because their run time has no bound.
//! - Those runs last well under a second. In longer runs MP/MC can fall into a convoy where
//!   preempted threads keep the rest of the side spinning: a debug build of the 4 by 4 stress
//!   test in `tests/ring_api.rs` with 750 000 elements per producer ran for over 10 minutes in
//!   MP/MC mode, while RTS and HTS finished. The test now passes 50 000 per producer, and a
//!   side that may be oversubscribed for long should prefer RTS or HTS.
//! - Zero-copy calls exist only on [`Single`] sides; DPDK also offers them on HTS sides.
//! - Elements need not be a multiple of 4 bytes (DPDK requires that); any `Copy` type works.
//! - No named registry like `rte_ring_lookup`: rings are shared by fd or path.

mod core;
mod handle;
mod layout;
pub(crate) mod mapping;
#[cfg(not(all(loom, test)))]
mod memory;
#[cfg(all(loom, test))]
mod memory_loom;
#[cfg(test)]
mod model_tests;
#[cfg(not(all(loom, test)))]
mod shared;
mod sync;
#[cfg(not(all(loom, test)))]
mod zero_copy;

use std::sync::Arc;

pub use handle::{Consumer, Multi, MultiHts, MultiRts, Producer, Single, SyncMode};

/// The two sides of a new ring.
pub type RingPair<T, P, C> = (Producer<T, P>, Consumer<T, C>);
pub use layout::{
    FLAG_EXACT_SZ, FLAG_MC_HTS_DEQ, FLAG_MC_RTS_DEQ, FLAG_MP_HTS_ENQ, FLAG_MP_RTS_ENQ, FLAG_SC_DEQ,
    FLAG_SP_ENQ, MAX_SLOTS, RING_MAGIC, RING_VERSION, SyncType,
};
pub use mapping::{MappingError, SharedMapping};
#[cfg(not(all(loom, test)))]
pub use shared::SharedRing;
#[cfg(not(all(loom, test)))]
pub use zero_copy::{DequeueZc, EnqueueZc};

use self::core::RingCore;
use layout::Geometry;
#[cfg(not(all(loom, test)))]
use memory::RingMemory;
#[cfg(all(loom, test))]
use memory_loom::RingMemory;

/// Errors of ring creation and attach.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// Without `exact_size`, the count is the slot count and must be a power of two.
    #[error("ring count {count} is not a power of two; use a power of two or exact_size")]
    CountNotPowerOfTwo {
        /// Requested count.
        count: u32,
    },
    /// The count is zero, too large, or leaves no usable capacity.
    #[error("ring count {count} is out of range (1..={max}, at least 2 without exact_size)")]
    InvalidCount {
        /// Requested count.
        count: u32,
        /// Largest count allowed.
        max: u32,
    },
    /// A shared ring's header failed validation.
    #[error("invalid shared ring header: {reason}")]
    InvalidHeader {
        /// The check that failed.
        reason: &'static str,
    },
    /// A shared ring's header has another layout version.
    #[error("shared ring header version {version} is not supported (expected {supported})")]
    UnsupportedVersion {
        /// Version in the header.
        version: u32,
        /// Version this code implements.
        supported: u32,
    },
    /// A shared ring's elements differ in size or alignment from the caller's type.
    #[error(
        "shared ring holds {found_size}-byte elements aligned to {found_align}, but the caller's \
         type is {expected_size} bytes aligned to {expected_align}"
    )]
    ElementMismatch {
        /// Element size in the header.
        found_size: u32,
        /// Element alignment in the header.
        found_align: u32,
        /// Size of the caller's type.
        expected_size: usize,
        /// Alignment of the caller's type.
        expected_align: usize,
    },
    /// The mapping is shorter than its header says the ring is.
    #[error("shared ring mapping is {len} bytes but the ring needs {needed}")]
    MappingTooSmall {
        /// Mapped length.
        len: usize,
        /// Length the header implies.
        needed: usize,
    },
    /// The caller requested a side in another mode than the ring was created with.
    #[error("ring {side} was created {ring} but requested {requested}")]
    ModeMismatch {
        /// `producer` or `consumer`.
        side: &'static str,
        /// The mode of the ring's side.
        ring: SyncType,
        /// The mode of the requested handle.
        requested: SyncType,
    },
    /// A maximum head-tail distance was set for a side that is not in RTS mode.
    #[error(
        "ring {side} is {mode}, but a maximum head-tail distance applies only to RTS sides; \
         drop the {side} htd_max setting or use MultiRts"
    )]
    HtdMaxWithoutRts {
        /// `producer` or `consumer`.
        side: &'static str,
        /// The side's mode.
        mode: SyncType,
    },
    /// Creating or mapping the shared memory failed.
    #[error("mapping shared ring memory {what} failed")]
    Map {
        /// The memfd name, the path or "fd".
        what: String,
        /// Cause.
        #[source]
        source: MappingError,
    },
}

/// Element types that are valid for every bit pattern and hold no pointers, so that a ring in
/// memory another process can write is safe to read.
///
/// # Safety
///
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid value, and the type must not
/// contain references, pointers that are dereferenced, or padding whose reading is undefined
/// (use `#[repr(C)]` structs of integers with explicit padding fields).
pub unsafe trait Plain: Copy + Send + 'static {}

macro_rules! impl_plain {
    ($($t:ty),*) => { $(
        // SAFETY: integers accept every bit pattern.
        unsafe impl Plain for $t {}
    )* };
}
impl_plain!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

// SAFETY: an array of plain values is plain.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// Creates rings: in process memory with [`build`](Self::build), or shared with
/// [`create_memfd`](Self::create_memfd) and [`create_file`](Self::create_file).
#[derive(Debug, Clone, Copy)]
pub struct RingBuilder {
    count: u32,
    exact_size: bool,
    prod_htd_max: Option<u32>,
    cons_htd_max: Option<u32>,
}

impl RingBuilder {
    /// Starts a ring of `count` slots (a power of two, capacity `count - 1`), like
    /// `rte_ring_create(name, count, socket, flags)`.
    pub fn new(count: u32) -> Self {
        Self {
            count,
            exact_size: false,
            prod_htd_max: None,
            cons_htd_max: None,
        }
    }

    /// Makes the capacity exactly `count`, which then need not be a power of two
    /// (`RING_F_EXACT_SZ`); the storage rounds up to the next power of two above `count`.
    pub fn exact_size(mut self, exact_size: bool) -> Self {
        self.exact_size = exact_size;
        self
    }

    /// Sets the maximum distance between the head and the tail of an RTS producer side
    /// (DPDK `rte_ring_set_prod_htd_max`); values above the capacity act as the capacity. The
    /// default is capacity / 8, as in DPDK. Building a ring whose producer is not
    /// [`MultiRts`] with this set fails.
    pub fn prod_htd_max(mut self, htd_max: u32) -> Self {
        self.prod_htd_max = Some(htd_max);
        self
    }

    /// Sets the maximum head-tail distance of an RTS consumer side (DPDK
    /// `rte_ring_set_cons_htd_max`), as [`prod_htd_max`](Self::prod_htd_max) does for producers.
    pub fn cons_htd_max(mut self, htd_max: u32) -> Self {
        self.cons_htd_max = Some(htd_max);
        self
    }

    fn geometry<T>(&self) -> Result<Geometry, RingError> {
        Geometry::new::<T>(self.count, self.exact_size)
    }

    fn flags<P: SyncMode, C: SyncMode>(&self) -> u32 {
        let mut flags = P::SYNC_TYPE.producer_flags() | C::SYNC_TYPE.consumer_flags();
        if self.exact_size {
            flags |= FLAG_EXACT_SZ;
        }
        flags
    }

    /// Returns the producer's and consumer's maximum head-tail distances (0 outside RTS mode).
    fn htd_max<P: SyncMode, C: SyncMode>(
        &self,
        geometry: &Geometry,
    ) -> Result<[u32; 2], RingError> {
        let side_htd_max = |side, mode, requested: Option<u32>| match (mode, requested) {
            (SyncType::MultiRts, Some(htd_max)) => Ok(htd_max.min(geometry.capacity)),
            (SyncType::MultiRts, None) => Ok(geometry.capacity / 8),
            (_, None) => Ok(0),
            (mode, Some(_)) => Err(RingError::HtdMaxWithoutRts { side, mode }),
        };
        Ok([
            side_htd_max("producer", P::SYNC_TYPE, self.prod_htd_max)?,
            side_htd_max("consumer", C::SYNC_TYPE, self.cons_htd_max)?,
        ])
    }

    /// Creates a ring in process memory and returns its two sides.
    pub fn build<T: Copy + Send, P: SyncMode, C: SyncMode>(
        self,
    ) -> Result<RingPair<T, P, C>, RingError> {
        let geometry = self.geometry::<T>()?;
        let flags = self.flags::<P, C>();
        let htd_max = self.htd_max::<P, C>(&geometry)?;
        let memory = RingMemory::allocate(&geometry, geometry.meta::<T>(flags, htd_max));
        let core = Arc::new(RingCore {
            memory,
            geometry,
            flags,
            htd_max,
        });
        Ok((Producer::new(Arc::clone(&core)), Consumer::new(core)))
    }

    /// Creates a ring in a new memfd named `name`, to share by passing [`SharedRing::fd`]. The
    /// header records each side's mode, and attach rejects handles of another mode.
    #[cfg(not(all(loom, test)))]
    pub fn create_memfd<T: Plain, P: SyncMode, C: SyncMode>(
        self,
        name: &str,
    ) -> Result<SharedRing<T>, RingError> {
        let geometry = self.geometry::<T>()?;
        let htd_max = self.htd_max::<P, C>(&geometry)?;
        let mapping =
            SharedMapping::memfd(name, geometry.total_len).map_err(|source| RingError::Map {
                what: name.to_owned(),
                source,
            })?;
        Ok(SharedRing::create(
            mapping,
            geometry,
            self.flags::<P, C>(),
            htd_max,
        ))
    }

    /// Creates a ring in the file at `path` (replacing its contents), which another process
    /// attaches with [`SharedRing::attach_path`]. On hugetlbfs the file is rounded up to whole
    /// huge pages.
    #[cfg(not(all(loom, test)))]
    pub fn create_file<T: Plain, P: SyncMode, C: SyncMode>(
        self,
        path: &std::path::Path,
    ) -> Result<SharedRing<T>, RingError> {
        let geometry = self.geometry::<T>()?;
        let htd_max = self.htd_max::<P, C>(&geometry)?;
        let mapping = SharedMapping::create_file(path, geometry.total_len).map_err(|source| {
            RingError::Map {
                what: path.display().to_string(),
                source,
            }
        })?;
        Ok(SharedRing::create(
            mapping,
            geometry,
            self.flags::<P, C>(),
            htd_max,
        ))
    }
}
