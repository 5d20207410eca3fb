//! Two-phase zero-copy enqueue and dequeue for single-threaded sides, like DPDK's
//! `rte_ring_enqueue_zc_*_start` / `_finish` (`rte_ring_peek_zc.h`).
//!
//! A start call reserves slots and lends them as up to two slices, the second non-empty only when
//! the reservation wraps past the end of the storage. Nothing is visible to the other side until
//! `finish(n)` publishes the first `n`; dropping the reservation publishes nothing. Dequeuing with
//! `finish(0)` is a peek: the elements stay in the ring.

use std::fmt;
use std::mem::MaybeUninit;

use super::core::{Behavior, Side};
use super::handle::{Consumer, Producer, Single};
use super::memory::split_at_wrap;

/// Slots reserved by [`Producer::enqueue_zc_burst`] or [`Producer::enqueue_zc_bulk`].
pub struct EnqueueZc<'a, T: Copy> {
    producer: &'a mut Producer<T, Single>,
    reserved: u32,
}

/// Elements lent by [`Consumer::dequeue_zc_burst`] or [`Consumer::dequeue_zc_bulk`].
pub struct DequeueZc<'a, T: Copy> {
    consumer: &'a mut Consumer<T, Single>,
    reserved: u32,
}

impl<T: Copy> Producer<T, Single> {
    /// Reserves up to `n` slots to write in place; the reservation may be empty.
    pub fn enqueue_zc_burst(&mut self, n: usize) -> EnqueueZc<'_, T> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let reserved =
            self.core
                .reserve_single(Side::Producer, &mut self.cursor, n, Behavior::Burst);
        EnqueueZc {
            producer: self,
            reserved,
        }
    }

    /// Reserves exactly `n` slots to write in place, or returns `None` if they are not free.
    pub fn enqueue_zc_bulk(&mut self, n: usize) -> Option<EnqueueZc<'_, T>> {
        let n = u32::try_from(n).ok()?;
        let reserved =
            self.core
                .reserve_single(Side::Producer, &mut self.cursor, n, Behavior::Bulk);
        (reserved == n && n > 0).then_some(EnqueueZc {
            producer: self,
            reserved,
        })
    }
}

impl<T: Copy> Consumer<T, Single> {
    /// Lends up to `n` elements from the front of the ring; the loan may be empty.
    pub fn dequeue_zc_burst(&mut self, n: usize) -> DequeueZc<'_, T> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let reserved =
            self.core
                .reserve_single(Side::Consumer, &mut self.cursor, n, Behavior::Burst);
        DequeueZc {
            consumer: self,
            reserved,
        }
    }

    /// Lends exactly `n` elements from the front of the ring, or returns `None`.
    pub fn dequeue_zc_bulk(&mut self, n: usize) -> Option<DequeueZc<'_, T>> {
        let n = u32::try_from(n).ok()?;
        let reserved =
            self.core
                .reserve_single(Side::Consumer, &mut self.cursor, n, Behavior::Bulk);
        (reserved == n && n > 0).then_some(DequeueZc {
            consumer: self,
            reserved,
        })
    }
}

impl<T: Copy> EnqueueZc<'_, T> {
    /// Number of reserved slots.
    pub fn len(&self) -> usize {
        self.reserved as usize
    }

    /// Whether no slot was reserved.
    pub fn is_empty(&self) -> bool {
        self.reserved == 0
    }

    /// The reserved slots, in order: the second slice is non-empty when they wrap.
    pub fn slots(&mut self) -> (&mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) {
        let core = &self.producer.core;
        let start = self.producer.cursor.head & core.geometry.mask;
        let (first, rest) = split_at_wrap(start, core.geometry.slots, self.reserved as usize);
        // SAFETY: the slots `[start, start + first)` and `[0, rest)` are inside the storage and
        // reserved for this producer, which `self` borrows mutably, so nothing else touches them.
        unsafe {
            (
                std::slice::from_raw_parts_mut(core.memory.slot_ptr(start).cast(), first),
                std::slice::from_raw_parts_mut(core.memory.slot_ptr(0).cast(), rest),
            )
        }
    }

    /// Publishes the first `n` reserved slots (at most the reservation), which the caller must
    /// have written through [`slots`](Self::slots); the rest stay free.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the reservation.
    pub fn finish(self, n: usize) {
        assert!(
            n <= self.reserved as usize,
            "finish({n}) beyond a reservation of {}",
            self.reserved
        );
        let n = u32::try_from(n).unwrap_or(0);
        if n > 0 {
            let producer = self.producer;
            producer
                .core
                .publish_single(Side::Producer, &mut producer.cursor, n);
        }
    }
}

impl<T: Copy> DequeueZc<'_, T> {
    /// Number of lent elements.
    pub fn len(&self) -> usize {
        self.reserved as usize
    }

    /// Whether no element was lent.
    pub fn is_empty(&self) -> bool {
        self.reserved == 0
    }

    /// The lent elements in ring order: the second slice is non-empty when they wrap.
    pub fn elements(&self) -> (&[T], &[T]) {
        let core = &self.consumer.core;
        let start = self.consumer.cursor.head & core.geometry.mask;
        let (first, rest) = split_at_wrap(start, core.geometry.slots, self.reserved as usize);
        // SAFETY: the slots are inside the storage, were published by the producer (or lie in a
        // shared mapping whose element type accepts any bits), and stay ours until `finish`.
        unsafe {
            (
                std::slice::from_raw_parts(core.memory.slot_ptr(start), first),
                std::slice::from_raw_parts(core.memory.slot_ptr(0), rest),
            )
        }
    }

    /// Releases the first `n` lent elements back to the producer; the rest stay in the ring.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the loan.
    pub fn finish(self, n: usize) {
        assert!(
            n <= self.reserved as usize,
            "finish({n}) beyond a loan of {}",
            self.reserved
        );
        let n = u32::try_from(n).unwrap_or(0);
        if n > 0 {
            let consumer = self.consumer;
            consumer
                .core
                .publish_single(Side::Consumer, &mut consumer.cursor, n);
        }
    }
}

impl<T: Copy> fmt::Debug for EnqueueZc<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnqueueZc")
            .field("reserved", &self.reserved)
            .finish()
    }
}

impl<T: Copy> fmt::Debug for DequeueZc<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DequeueZc")
            .field("reserved", &self.reserved)
            .finish()
    }
}
