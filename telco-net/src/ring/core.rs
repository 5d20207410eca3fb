//! The head and tail moves of `rte_ring`, shared by all handle kinds.
//!
//! Indices are free-running `u32` values that wrap at 2^32 and are masked with `slots - 1` only
//! when a slot is touched. A side first moves its head to reserve slots (a CAS when several
//! threads share the side, a plain store when one does), copies, then moves its tail to publish.
//! The multi-threaded modes differ in how the tail moves:
//!
//! - [`Multi`](super::Multi): each thread waits until every earlier reservation has published,
//!   then moves the tail past its own slots.
//! - [`MultiRts`](super::MultiRts) (relaxed tail sync): head and tail each carry a counter of
//!   operations next to the position. A finishing thread counts itself in the tail, and the one
//!   that brings the tail's counter level with the head's moves the tail to the head position
//!   it read. No thread waits for an earlier one to finish. The tail moves only when all
//!   operations in flight have finished, so a new reservation waits while the head is more than
//!   the side's maximum head-tail distance ahead of the tail.
//! - [`MultiHts`](super::MultiHts) (head/tail sync): head and tail share one 64-bit word and a
//!   thread reserves only when they are equal, so one operation of the side runs at a time.
//!
//! Every count derived from an index is clamped to the capacity and every slot index is masked,
//! so a peer that scribbles on a shared header can corrupt data but cannot make this side touch
//! memory outside the ring.

#[cfg(not(all(loom, test)))]
use super::memory::RingMemory;
#[cfg(all(loom, test))]
use super::memory_loom::RingMemory;

use super::layout::{Geometry, HeadTail, SyncType};
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

/// The ring's memory and its trusted geometry, flags and RTS head-tail distances.
#[derive(Debug)]
pub(crate) struct RingCore<T> {
    pub(crate) memory: RingMemory<T>,
    pub(crate) geometry: Geometry,
    pub(crate) flags: u32,
    /// Maximum head-tail distance of the producer and of the consumer side, used in RTS mode.
    pub(crate) htd_max: [u32; 2],
}

// SAFETY: the core moves `T` values between threads, and all shared state is atomics or slots
// owned by the thread that reserved them.
unsafe impl<T: Send> Send for RingCore<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for RingCore<T> {}

/// Extracts the position from the low 32 bits of a head or tail word.
#[inline]
#[allow(
    clippy::cast_possible_truncation,
    reason = "the position is the low half by definition"
)]
fn position(word: u64) -> u32 {
    word as u32
}

/// Extracts the high 32 bits of a head or tail word: the RTS counter, or the HTS head.
#[inline]
fn high(word: u64) -> u32 {
    (word >> 32) as u32
}

#[inline]
fn pack(position: u32, high: u32) -> u64 {
    u64::from(position) | u64::from(high) << 32
}

/// The state one side's reservation uses: its own head and tail, the other side's tail, and its
/// maximum RTS head-tail distance. `offset` turns the other side's tail minus our head into free
/// slots: it is the capacity for producers and 0 for consumers.
struct Sides<'a> {
    own: &'a HeadTail,
    other: &'a HeadTail,
    offset: u32,
    htd_max: u32,
}

impl<T: Copy> RingCore<T> {
    #[inline]
    fn sides(&self, side: Side) -> Sides<'_> {
        match side {
            Side::Producer => Sides {
                own: self.memory.prod(),
                other: self.memory.cons(),
                offset: self.geometry.capacity,
                htd_max: self.htd_max[0],
            },
            Side::Consumer => Sides {
                own: self.memory.cons(),
                other: self.memory.prod(),
                offset: 0,
                htd_max: self.htd_max[1],
            },
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

    /// Slots free for `head` given the other side's current tail.
    #[inline]
    fn available(&self, sides: &Sides<'_>, head: u32) -> u32 {
        // Acquire pairs with the other side's release of its tail, so its slot accesses happen
        // before ours.
        let other_tail = position(sides.other.tail.load(Ordering::Acquire));
        sides.offset.wrapping_add(other_tail).wrapping_sub(head)
    }

    /// Reserves up to `n` slots in mode `sync`; returns the old head and the number reserved.
    #[inline]
    pub(crate) fn reserve(
        &self,
        sync: SyncType,
        side: Side,
        cursor: &mut Cursor,
        n: u32,
        behavior: Behavior,
    ) -> (u32, u32) {
        match sync {
            SyncType::Single => (cursor.head, self.reserve_single(side, cursor, n, behavior)),
            SyncType::Multi => self.reserve_multi(side, n, behavior),
            SyncType::MultiRts => self.reserve_rts(side, n, behavior),
            SyncType::MultiHts => self.reserve_hts(side, n, behavior),
        }
    }

    /// Publishes `[head, head + n)` reserved by `reserve` in mode `sync`.
    #[inline]
    pub(crate) fn publish(
        &self,
        sync: SyncType,
        side: Side,
        cursor: &mut Cursor,
        head: u32,
        n: u32,
    ) {
        match sync {
            SyncType::Single => self.publish_single(side, cursor, n),
            SyncType::Multi => self.publish_multi(side, head, n),
            SyncType::MultiRts => self.publish_rts(side),
            SyncType::MultiHts => self.publish_hts(side, head, n),
        }
    }

    /// Reserves up to `n` slots for a side that several threads share; returns the old head and
    /// the number reserved.
    #[inline]
    fn reserve_multi(&self, side: Side, n: u32, behavior: Behavior) -> (u32, u32) {
        let sides = self.sides(side);
        // Acquire pairs with the release of a competing CAS, so the other tail read below is at
        // least as new as the one that competitor used.
        let mut word = sides.own.head.load(Ordering::Acquire);
        loop {
            let head = position(word);
            let granted = self.grant(self.available(&sides, head), n, behavior);
            if granted == 0 {
                return (head, 0);
            }
            let new_word = pack(head.wrapping_add(granted), high(word));
            match sides.own.head.compare_exchange_weak(
                word,
                new_word,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return (head, granted),
                Err(current) => word = current,
            }
        }
    }

    /// Publishes `[head, head + n)` for a shared side, after earlier reservations published.
    #[inline]
    fn publish_multi(&self, side: Side, head: u32, n: u32) {
        let own = self.sides(side).own;
        // Acquire so that the earlier reservation's slot accesses happen before our release.
        while position(own.tail.load(Ordering::Acquire)) != head {
            spin_hint();
        }
        own.tail
            .store(u64::from(head.wrapping_add(n)), Ordering::Release);
    }

    /// Reserves up to `n` slots in RTS mode: waits while the head is more than the maximum
    /// distance ahead of the tail, then moves the head position and counts the operation in the
    /// head's counter.
    #[inline]
    fn reserve_rts(&self, side: Side, n: u32, behavior: Behavior) -> (u32, u32) {
        let sides = self.sides(side);
        let mut word = sides.own.head.load(Ordering::Acquire);
        loop {
            while position(word).wrapping_sub(position(sides.own.tail.load(Ordering::Acquire)))
                > sides.htd_max
            {
                spin_hint();
                word = sides.own.head.load(Ordering::Acquire);
            }
            let head = position(word);
            let granted = self.grant(self.available(&sides, head), n, behavior);
            if granted == 0 {
                return (head, 0);
            }
            let new_word = pack(head.wrapping_add(granted), high(word).wrapping_add(1));
            match sides.own.head.compare_exchange_weak(
                word,
                new_word,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return (head, granted),
                Err(current) => word = current,
            }
        }
    }

    /// Finishes an RTS operation: counts it in the tail's counter, and if that makes the counter
    /// equal to the head's, moves the tail position to the head position read with it.
    #[inline]
    fn publish_rts(&self, side: Side) {
        let own = self.sides(side).own;
        // The acquire loads of the tail (here and on CAS failure) synchronise with the threads
        // that counted themselves before us. So the head read next is at least as new as the
        // heads those threads reserved from, and the head counter cannot lag the tail counter.
        let mut tail = own.tail.load(Ordering::Acquire);
        loop {
            let head = own.head.load(Ordering::Acquire);
            let finished = high(tail).wrapping_add(1);
            let new_position = if finished == high(head) {
                position(head)
            } else {
                position(tail)
            };
            // Release publishes our slot accesses. The CAS chain on the tail is a release sequence,
            // so a thread that later reads a tail position covering our slots observes them.
            match own.tail.compare_exchange_weak(
                tail,
                pack(new_position, finished),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(current) => tail = current,
            }
        }
    }

    /// Reserves up to `n` slots in HTS mode: waits until no operation of this side is in
    /// flight (head equal to tail), then moves the head in the same word.
    #[inline]
    fn reserve_hts(&self, side: Side, n: u32, behavior: Behavior) -> (u32, u32) {
        let sides = self.sides(side);
        loop {
            // Acquire pairs with the release of the previous operation's tail store.
            let mut word = sides.own.tail.load(Ordering::Acquire);
            while position(word) != high(word) {
                spin_hint();
                word = sides.own.tail.load(Ordering::Acquire);
            }
            let head = high(word);
            let granted = self.grant(self.available(&sides, head), n, behavior);
            if granted == 0 {
                return (head, 0);
            }
            let new_word = pack(position(word), head.wrapping_add(granted));
            if sides
                .own
                .tail
                .compare_exchange_weak(word, new_word, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return (head, granted);
            }
        }
    }

    /// Finishes an HTS operation by moving the tail up to the head. While head and tail differ
    /// no other thread of the side can change the word (its CAS expects them equal), so a plain
    /// store of the whole word is enough.
    #[inline]
    fn publish_hts(&self, side: Side, head: u32, n: u32) {
        let end = head.wrapping_add(n);
        self.sides(side)
            .own
            .tail
            .store(pack(end, end), Ordering::Release);
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
        let sides = self.sides(side);
        let mut available = sides
            .offset
            .wrapping_add(cursor.other_tail)
            .wrapping_sub(cursor.head);
        if available < n || available > self.geometry.capacity {
            cursor.other_tail = position(sides.other.tail.load(Ordering::Acquire));
            available = sides
                .offset
                .wrapping_add(cursor.other_tail)
                .wrapping_sub(cursor.head);
        }
        self.grant(available, n, behavior)
    }

    /// Publishes `n` slots reserved by `reserve_single`.
    #[inline]
    pub(crate) fn publish_single(&self, side: Side, cursor: &mut Cursor, n: u32) {
        let own = self.sides(side).own;
        cursor.head = cursor.head.wrapping_add(n);
        own.head.store(u64::from(cursor.head), Ordering::Relaxed);
        own.tail.store(u64::from(cursor.head), Ordering::Release);
    }

    /// Reads the indices a new single-threaded handle on `side` starts from.
    pub(crate) fn cursor(&self, side: Side) -> Cursor {
        let sides = self.sides(side);
        Cursor {
            head: position(sides.own.tail.load(Ordering::Acquire)),
            other_tail: position(sides.other.tail.load(Ordering::Acquire)),
        }
    }

    /// Moves elements in: reserve, copy, publish.
    #[inline]
    pub(crate) fn enqueue(
        &self,
        sync: SyncType,
        cursor: &mut Cursor,
        src: &[T],
        behavior: Behavior,
    ) -> usize {
        let n = clamp_len(src.len());
        let (head, granted) = self.reserve(sync, Side::Producer, cursor, n, behavior);
        if granted != 0 {
            // SAFETY: the slots `[head, head + granted)` are reserved for us; the start is masked
            // and `granted <= capacity < slots`.
            unsafe {
                self.memory.write(
                    head & self.geometry.mask,
                    self.geometry.slots,
                    &src[..granted as usize],
                )
            };
            self.publish(sync, Side::Producer, cursor, head, granted);
        }
        granted as usize
    }

    /// The consumer counterpart of `enqueue`, writing up to `len` elements at `dst`, which must
    /// be valid for writes of `len` elements.
    #[inline]
    pub(crate) fn dequeue_raw(
        &self,
        sync: SyncType,
        cursor: &mut Cursor,
        dst: *mut T,
        len: usize,
        behavior: Behavior,
    ) -> usize {
        let n = clamp_len(len);
        let (head, granted) = self.reserve(sync, Side::Consumer, cursor, n, behavior);
        if granted != 0 {
            // SAFETY: the slots are reserved for us and were published by producers.
            unsafe {
                self.memory.read(
                    head & self.geometry.mask,
                    self.geometry.slots,
                    dst,
                    granted as usize,
                )
            };
            self.publish(sync, Side::Consumer, cursor, head, granted);
        }
        granted as usize
    }

    /// Elements in the ring, from the two tails, clamped to the capacity.
    pub(crate) fn count(&self) -> usize {
        let prod_tail = position(self.memory.prod().tail.load(Ordering::Acquire));
        let cons_tail = position(self.memory.cons().tail.load(Ordering::Acquire));
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
