//! The head and tail moves of `rte_ring`, shared by all handle kinds.
//!
//! Indices are free-running `u32` values that wrap at 2^32 and are masked with `slots - 1` only
//! when a slot is touched. A side first moves its head to reserve slots (a CAS when several
//! threads share the side, a plain store when one does), copies, then moves its tail to publish,
//! after any earlier reservation on the same side has published. Every count derived from an
//! index is clamped to the capacity and every slot index is masked, so a peer that scribbles on a
//! shared header can corrupt data but cannot make this side touch memory outside the ring.

#[cfg(not(all(loom, test)))]
use super::memory::RingMemory;
#[cfg(all(loom, test))]
use super::memory_loom::RingMemory;

use super::layout::{Geometry, HeadTail};
use super::sync::{Ordering, spin_hint};

/// Bulk (all or nothing) or burst (as many as fit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behavior {
    Bulk,
    Burst,
}

/// The side of the ring an operation moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Producer,
    Consumer,
}

/// A single-threaded side's private copy of its own head and of the other side's tail, so that
/// it reads the other side's cache line only when the copy shows the ring full or empty.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    pub(crate) head: u32,
    pub(crate) other_tail: u32,
}

/// The ring's memory and its trusted geometry.
#[derive(Debug)]
pub(crate) struct RingCore<T> {
    pub(crate) memory: RingMemory<T>,
    pub(crate) geometry: Geometry,
    pub(crate) flags: u32,
}

// SAFETY: the core moves `T` values between threads, and all shared state is atomics or slots
// owned by the thread that reserved them.
unsafe impl<T: Send> Send for RingCore<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for RingCore<T> {}

impl<T: Copy> RingCore<T> {
    /// Own and other head/tail pairs, and the offset that turns the other side's tail minus our
    /// head into free slots (the capacity for producers, 0 for consumers).
    #[inline]
    fn sides(&self, side: Side) -> (&HeadTail, &HeadTail, u32) {
        match side {
            Side::Producer => (
                self.memory.prod(),
                self.memory.cons(),
                self.geometry.capacity,
            ),
            Side::Consumer => (self.memory.cons(), self.memory.prod(), 0),
        }
    }

    #[inline]
    fn grant(&self, available: u32, n: u32, behavior: Behavior) -> u32 {
        let available = available.min(self.geometry.capacity);
        match behavior {
            Behavior::Bulk if available < n => 0,
            Behavior::Bulk => n,
            Behavior::Burst => n.min(available),
        }
    }

    /// Reserves up to `n` slots for a side that several threads share; returns the old head and
    /// the number reserved.
    #[inline]
    pub(crate) fn reserve_multi(&self, side: Side, n: u32, behavior: Behavior) -> (u32, u32) {
        let (own, other, offset) = self.sides(side);
        // Acquire pairs with the release of a competing CAS, so the other tail read below is at
        // least as new as the one that competitor used.
        let mut head = own.head.load(Ordering::Acquire);
        loop {
            let other_tail = other.tail.load(Ordering::Acquire);
            let granted = self.grant(
                offset.wrapping_add(other_tail).wrapping_sub(head),
                n,
                behavior,
            );
            if granted == 0 {
                return (head, 0);
            }
            let new_head = head.wrapping_add(granted);
            match own.head.compare_exchange_weak(
                head,
                new_head,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return (head, granted),
                Err(current) => head = current,
            }
        }
    }

    /// Publishes `[head, head + n)` for a shared side, after earlier reservations published.
    #[inline]
    pub(crate) fn publish_multi(&self, side: Side, head: u32, n: u32) {
        let (own, _, _) = self.sides(side);
        // Acquire so that the earlier reservation's slot accesses happen before our release.
        while own.tail.load(Ordering::Acquire) != head {
            spin_hint();
        }
        own.tail.store(head.wrapping_add(n), Ordering::Release);
    }

    /// Reserves up to `n` slots for a side that one thread owns, reading the other side's tail
    /// only when the cached copy does not show enough room.
    #[inline]
    pub(crate) fn reserve_single(
        &self,
        side: Side,
        cursor: &mut Cursor,
        n: u32,
        behavior: Behavior,
    ) -> u32 {
        let (_, other, offset) = self.sides(side);
        let mut available = offset
            .wrapping_add(cursor.other_tail)
            .wrapping_sub(cursor.head);
        if available < n || available > self.geometry.capacity {
            cursor.other_tail = other.tail.load(Ordering::Acquire);
            available = offset
                .wrapping_add(cursor.other_tail)
                .wrapping_sub(cursor.head);
        }
        self.grant(available, n, behavior)
    }

    /// Publishes `n` slots reserved by `reserve_single`.
    #[inline]
    pub(crate) fn publish_single(&self, side: Side, cursor: &mut Cursor, n: u32) {
        let (own, _, _) = self.sides(side);
        cursor.head = cursor.head.wrapping_add(n);
        own.head.store(cursor.head, Ordering::Relaxed);
        own.tail.store(cursor.head, Ordering::Release);
    }

    /// Reads the indices a new single-threaded handle on `side` starts from.
    pub(crate) fn cursor(&self, side: Side) -> Cursor {
        let (own, other, _) = self.sides(side);
        Cursor {
            head: own.tail.load(Ordering::Acquire),
            other_tail: other.tail.load(Ordering::Acquire),
        }
    }

    /// Moves elements in or out: reserve, copy, publish.
    #[inline]
    pub(crate) fn enqueue(
        &self,
        cursor: Option<&mut Cursor>,
        src: &[T],
        behavior: Behavior,
    ) -> usize {
        let n = clamp_len(src.len());
        match cursor {
            Some(cursor) => {
                let granted = self.reserve_single(Side::Producer, cursor, n, behavior);
                if granted != 0 {
                    // SAFETY: the slots `[head, head + granted)` are reserved for us; the start
                    // is masked and `granted <= capacity < slots`.
                    unsafe {
                        self.memory.write(
                            cursor.head & self.geometry.mask,
                            self.geometry.slots,
                            &src[..granted as usize],
                        )
                    };
                    self.publish_single(Side::Producer, cursor, granted);
                }
                granted as usize
            }
            None => {
                let (head, granted) = self.reserve_multi(Side::Producer, n, behavior);
                if granted != 0 {
                    // SAFETY: as above.
                    unsafe {
                        self.memory.write(
                            head & self.geometry.mask,
                            self.geometry.slots,
                            &src[..granted as usize],
                        )
                    };
                    self.publish_multi(Side::Producer, head, granted);
                }
                granted as usize
            }
        }
    }

    /// The consumer counterpart of `enqueue`, writing up to `len` elements at `dst`, which must
    /// be valid for writes of `len` elements.
    #[inline]
    pub(crate) fn dequeue_raw(
        &self,
        cursor: Option<&mut Cursor>,
        dst: *mut T,
        len: usize,
        behavior: Behavior,
    ) -> usize {
        let n = clamp_len(len);
        match cursor {
            Some(cursor) => {
                let granted = self.reserve_single(Side::Consumer, cursor, n, behavior);
                if granted != 0 {
                    // SAFETY: the slots are reserved for us and were published by producers.
                    unsafe {
                        self.memory.read(
                            cursor.head & self.geometry.mask,
                            self.geometry.slots,
                            dst,
                            granted as usize,
                        )
                    };
                    self.publish_single(Side::Consumer, cursor, granted);
                }
                granted as usize
            }
            None => {
                let (head, granted) = self.reserve_multi(Side::Consumer, n, behavior);
                if granted != 0 {
                    // SAFETY: as above.
                    unsafe {
                        self.memory.read(
                            head & self.geometry.mask,
                            self.geometry.slots,
                            dst,
                            granted as usize,
                        )
                    };
                    self.publish_multi(Side::Consumer, head, granted);
                }
                granted as usize
            }
        }
    }

    /// Elements in the ring, from the two tails, clamped to the capacity.
    pub(crate) fn count(&self) -> usize {
        let prod_tail = self.memory.prod().tail.load(Ordering::Acquire);
        let cons_tail = self.memory.cons().tail.load(Ordering::Acquire);
        prod_tail
            .wrapping_sub(cons_tail)
            .min(self.geometry.capacity) as usize
    }
}

/// Clamps a slice length to `u32`; a ring never moves more than its capacity anyway.
#[inline]
fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
