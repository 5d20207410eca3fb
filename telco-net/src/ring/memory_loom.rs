//! The ring's memory under the loom model checker: loom atomics in a boxed header and loom cells
//! for the slots, so loom sees every access to a slot.

use std::mem::MaybeUninit;

use loom::cell::UnsafeCell;

use super::layout::{Geometry, HeadTail, Meta};

/// The header and slots of one ring.
#[derive(Debug)]
pub(crate) struct RingMemory<T> {
    prod: HeadTail,
    cons: HeadTail,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

impl<T: Copy> RingMemory<T> {
    /// Allocates the ring.
    pub(crate) fn allocate(geometry: &Geometry, _meta: Meta) -> Self {
        Self {
            prod: HeadTail::new(),
            cons: HeadTail::new(),
            slots: (0..geometry.slots)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        }
    }

    pub(crate) fn prod(&self) -> &HeadTail {
        &self.prod
    }

    pub(crate) fn cons(&self) -> &HeadTail {
        &self.cons
    }

    /// # Safety
    ///
    /// As for the process-memory version.
    pub(crate) unsafe fn write(&self, start: u32, slots: u32, src: &[T]) {
        for (i, value) in src.iter().enumerate() {
            let index = (start as usize + i) % slots as usize;
            // SAFETY: loom checks that no other thread accesses the cell concurrently.
            self.slots[index].with_mut(|p| unsafe { p.write(MaybeUninit::new(*value)) });
        }
    }

    /// # Safety
    ///
    /// As for the process-memory version.
    pub(crate) unsafe fn read(&self, start: u32, slots: u32, dst: *mut T, len: usize) {
        for i in 0..len {
            let index = (start as usize + i) % slots as usize;
            // SAFETY: the producer initialised the slot before publishing it, and the caller
            // passes a `dst` valid for `len` writes.
            let value = self.slots[index].with(|p| unsafe { (*p).assume_init() });
            // SAFETY: as above.
            unsafe { dst.add(i).write(value) };
        }
    }
}
