//! Producer and consumer handles, typed by their synchronisation mode.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::core::{Behavior, Cursor, RingCore, Side};
use super::layout::SyncType;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Single {}
    impl Sealed for super::Multi {}
    impl Sealed for super::MultiRts {}
    impl Sealed for super::MultiHts {}
}

/// How many threads share one side of a ring and how they synchronise, fixed when the ring is
/// made.
pub trait SyncMode: sealed::Sealed + Send + Sync + fmt::Debug + 'static {
    /// Whether several threads share the side (CAS on the head).
    const MULTI: bool;
    /// The synchronisation mode.
    const SYNC_TYPE: SyncType;
}

/// One thread owns the side (DPDK `RING_F_SP_ENQ` / `RING_F_SC_DEQ`): its handle cannot be
/// cloned, and it offers the two-phase zero-copy calls.
#[derive(Debug)]
pub enum Single {}

/// Several threads share the side (DPDK's default MP/MC): clone the handle for each thread.
///
/// Each thread publishes after all earlier reservations of the side have published, so a thread
/// preempted between its reservation and its publish stalls the later ones.
#[derive(Debug)]
pub enum Multi {}

/// Several threads share the side in relaxed tail sync mode (DPDK `RING_F_MP_RTS_ENQ` /
/// `RING_F_MC_RTS_DEQ`): clone the handle for each thread.
///
/// A finishing thread does not wait for earlier ones: the last of the operations in flight
/// publishes them all. New reservations wait while the head is more than the maximum head-tail
/// distance ahead of the tail (by default capacity / 8, set with
/// [`RingBuilder::prod_htd_max`](super::RingBuilder::prod_htd_max) and
/// [`cons_htd_max`](super::RingBuilder::cons_htd_max)).
#[derive(Debug)]
pub enum MultiRts {}

/// Several threads share the side in head/tail sync mode (DPDK `RING_F_MP_HTS_ENQ` /
/// `RING_F_MC_HTS_DEQ`): clone the handle for each thread.
///
/// One operation of the side runs at a time: a thread reserves only when the previous operation
/// has published.
#[derive(Debug)]
pub enum MultiHts {}

impl SyncMode for Single {
    const MULTI: bool = false;
    const SYNC_TYPE: SyncType = SyncType::Single;
}

impl SyncMode for Multi {
    const MULTI: bool = true;
    const SYNC_TYPE: SyncType = SyncType::Multi;
}

impl SyncMode for MultiRts {
    const MULTI: bool = true;
    const SYNC_TYPE: SyncType = SyncType::MultiRts;
}

impl SyncMode for MultiHts {
    const MULTI: bool = true;
    const SYNC_TYPE: SyncType = SyncType::MultiHts;
}

/// The enqueue side of a ring.
pub struct Producer<T, M: SyncMode> {
    pub(crate) core: Arc<RingCore<T>>,
    pub(crate) cursor: Cursor,
    _mode: PhantomData<M>,
}

/// The dequeue side of a ring.
pub struct Consumer<T, M: SyncMode> {
    pub(crate) core: Arc<RingCore<T>>,
    pub(crate) cursor: Cursor,
    _mode: PhantomData<M>,
}

macro_rules! common_queries {
    () => {
        /// Elements in the ring now (DPDK `rte_ring_count`).
        pub fn count(&self) -> usize {
            self.core.count()
        }

        /// Elements that can be enqueued now (DPDK `rte_ring_free_count`).
        pub fn free_count(&self) -> usize {
            self.capacity() - self.core.count()
        }

        /// Elements the ring holds when full (DPDK `rte_ring_get_capacity`).
        pub fn capacity(&self) -> usize {
            self.core.geometry.capacity as usize
        }

        /// Slots in the ring's storage, a power of two (DPDK `rte_ring_get_size`).
        pub fn size(&self) -> usize {
            self.core.geometry.slots as usize
        }

        /// Whether the ring holds no element.
        pub fn is_empty(&self) -> bool {
            self.core.count() == 0
        }

        /// Whether the ring is full.
        pub fn is_full(&self) -> bool {
            self.core.count() == self.capacity()
        }
    };
}

impl<T: Copy, M: SyncMode> Producer<T, M> {
    pub(crate) fn new(core: Arc<RingCore<T>>) -> Self {
        let cursor = core.cursor(Side::Producer);
        Self {
            core,
            cursor,
            _mode: PhantomData,
        }
    }

    /// Enqueues one element, or gives it back if the ring is full.
    #[inline]
    pub fn enqueue(&mut self, value: T) -> Result<(), T> {
        match self.core.enqueue(
            M::SYNC_TYPE,
            &mut self.cursor,
            std::slice::from_ref(&value),
            Behavior::Bulk,
        ) {
            1 => Ok(()),
            _ => Err(value),
        }
    }

    /// Enqueues all of `values` or none of them; returns `values.len()` or 0.
    #[inline]
    pub fn enqueue_bulk(&mut self, values: &[T]) -> usize {
        self.core
            .enqueue(M::SYNC_TYPE, &mut self.cursor, values, Behavior::Bulk)
    }

    /// Enqueues as many of `values`, from the front, as fit; returns how many.
    #[inline]
    pub fn enqueue_burst(&mut self, values: &[T]) -> usize {
        self.core
            .enqueue(M::SYNC_TYPE, &mut self.cursor, values, Behavior::Burst)
    }

    common_queries!();
}

impl<T: Copy, M: SyncMode> Consumer<T, M> {
    pub(crate) fn new(core: Arc<RingCore<T>>) -> Self {
        let cursor = core.cursor(Side::Consumer);
        Self {
            core,
            cursor,
            _mode: PhantomData,
        }
    }

    /// Dequeues one element, or `None` if the ring is empty.
    #[inline]
    pub fn dequeue(&mut self) -> Option<T> {
        let mut slot = std::mem::MaybeUninit::<T>::uninit();
        match self.core.dequeue_raw(
            M::SYNC_TYPE,
            &mut self.cursor,
            slot.as_mut_ptr(),
            1,
            Behavior::Bulk,
        ) {
            // SAFETY: the ring wrote the element.
            1 => Some(unsafe { slot.assume_init() }),
            _ => None,
        }
    }

    /// Dequeues exactly `out.len()` elements or none; returns `out.len()` or 0.
    #[inline]
    pub fn dequeue_bulk(&mut self, out: &mut [T]) -> usize {
        self.core.dequeue_raw(
            M::SYNC_TYPE,
            &mut self.cursor,
            out.as_mut_ptr(),
            out.len(),
            Behavior::Bulk,
        )
    }

    /// Dequeues up to `out.len()` elements into the front of `out`; returns how many.
    #[inline]
    pub fn dequeue_burst(&mut self, out: &mut [T]) -> usize {
        self.core.dequeue_raw(
            M::SYNC_TYPE,
            &mut self.cursor,
            out.as_mut_ptr(),
            out.len(),
            Behavior::Burst,
        )
    }

    common_queries!();
}

macro_rules! impl_clone {
    ($($mode:ty),*) => { $(
        impl<T> Clone for Producer<T, $mode> {
            fn clone(&self) -> Self {
                Self {
                    core: Arc::clone(&self.core),
                    cursor: self.cursor,
                    _mode: PhantomData,
                }
            }
        }

        impl<T> Clone for Consumer<T, $mode> {
            fn clone(&self) -> Self {
                Self {
                    core: Arc::clone(&self.core),
                    cursor: self.cursor,
                    _mode: PhantomData,
                }
            }
        }
    )* };
}
impl_clone!(Multi, MultiRts, MultiHts);

impl<T, M: SyncMode> fmt::Debug for Producer<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("sync", &M::SYNC_TYPE)
            .field("slots", &self.core.geometry.slots)
            .field("capacity", &self.core.geometry.capacity)
            .finish_non_exhaustive()
    }
}

impl<T, M: SyncMode> fmt::Debug for Consumer<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("sync", &M::SYNC_TYPE)
            .field("slots", &self.core.geometry.slots)
            .field("capacity", &self.core.geometry.capacity)
            .finish_non_exhaustive()
    }
}
