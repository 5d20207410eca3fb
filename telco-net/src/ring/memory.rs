//! The memory a ring lives in: one allocation in process memory, or a shared mapping.
//!
//! Both hold the header at offset 0 and the slots at `Geometry::slots_offset`. Only the head and
//! tail atomics are ever borrowed; the metadata block of a shared mapping is read by value, since
//! another process can write it at any time.

use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::layout::{BLOCK_ALIGN, Geometry, HeadTail, Header, Meta};
use super::mapping::SharedMapping;

/// Owner that releases the memory on drop.
#[derive(Debug)]
enum Backing {
    Heap(Layout),
    Mapped(SharedMapping),
}

/// The header and slots of one ring.
#[derive(Debug)]
pub(crate) struct RingMemory<T> {
    base: NonNull<u8>,
    slots: NonNull<T>,
    backing: Backing,
    _elem: PhantomData<T>,
}

impl<T: Copy> RingMemory<T> {
    /// Allocates zeroed process memory for `geometry` and writes a fresh header.
    pub(crate) fn allocate(geometry: &Geometry, meta: Meta) -> Self {
        let align = std::mem::align_of::<T>().max(BLOCK_ALIGN);
        let layout = Layout::from_size_align(geometry.total_len, align)
            .expect("Geometry keeps the ring size below isize::MAX");
        // SAFETY: the layout has a non-zero size, since it holds at least the header.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(base) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: `base` points at `total_len` fresh bytes aligned for `Header` and for `T`.
        unsafe { Self::init(base, geometry, meta, Backing::Heap(layout)) }
    }

    /// Writes a fresh header at the start of `mapping`, which must be at least
    /// `geometry.total_len` bytes long.
    pub(crate) fn format(mapping: SharedMapping, geometry: &Geometry, meta: Meta) -> Self {
        assert!(
            mapping.len() >= geometry.total_len,
            "mapping sized by the caller"
        );
        let base = mapping.base();
        // SAFETY: the mapping is page aligned, writable and long enough, and nobody else has the
        // fd yet, so nobody reads the header while it is written.
        unsafe { Self::init(base, geometry, meta, Backing::Mapped(mapping)) }
    }

    /// Wraps a mapping whose metadata the caller has validated against `geometry`.
    pub(crate) fn attach(mapping: SharedMapping, geometry: &Geometry) -> Self {
        assert!(
            mapping.len() >= geometry.total_len,
            "validated by Geometry::validate"
        );
        let base = mapping.base();
        Self {
            base,
            // SAFETY: `slots_offset` is within the mapping, as validated.
            slots: unsafe { base.add(geometry.slots_offset) }.cast(),
            backing: Backing::Mapped(mapping),
            _elem: PhantomData,
        }
    }

    /// The shared mapping, if the ring lives in one.
    pub(crate) fn mapping(&self) -> Option<&SharedMapping> {
        match &self.backing {
            Backing::Mapped(mapping) => Some(mapping),
            Backing::Heap(_) => None,
        }
    }

    /// Reads the metadata block of a mapping by value.
    pub(crate) fn read_meta(mapping: &SharedMapping) -> Option<Meta> {
        if mapping.len() < std::mem::size_of::<Header>() {
            return None;
        }
        // SAFETY: the mapping holds at least a header, is page aligned, and any bit pattern is a
        // valid `Meta` (integers only). A volatile read because the peer may write it.
        Some(unsafe { std::ptr::read_volatile(mapping.base().as_ptr().cast::<Meta>()) })
    }

    /// # Safety
    ///
    /// `base` must point at `geometry.total_len` writable bytes aligned for `Header` and `T`,
    /// which `backing` owns and nobody else accesses during the call.
    unsafe fn init(base: NonNull<u8>, geometry: &Geometry, meta: Meta, backing: Backing) -> Self {
        let header = Header {
            meta,
            prod: HeadTail::new(),
            cons: HeadTail::new(),
        };
        // SAFETY: the caller guarantees the space and alignment.
        unsafe { base.cast::<Header>().write(header) };
        Self {
            base,
            // SAFETY: `slots_offset + slots * size_of::<T>() == total_len`, within the block.
            slots: unsafe { base.add(geometry.slots_offset) }.cast(),
            backing,
            _elem: PhantomData,
        }
    }

    /// The producer's head and tail.
    pub(crate) fn prod(&self) -> &HeadTail {
        // SAFETY: the header lives as long as `self`; only atomics are borrowed.
        unsafe { &*std::ptr::addr_of!((*self.base.cast::<Header>().as_ptr()).prod) }
    }

    /// The consumer's head and tail.
    pub(crate) fn cons(&self) -> &HeadTail {
        // SAFETY: as in `prod`.
        unsafe { &*std::ptr::addr_of!((*self.base.cast::<Header>().as_ptr()).cons) }
    }

    /// Copies `src` into the slots from masked index `start` on, wrapping at `slots`.
    ///
    /// # Safety
    ///
    /// `start < slots`, `src.len() <= slots`, and the caller owns those slots (reserved them).
    #[inline]
    pub(crate) unsafe fn write(&self, start: u32, slots: u32, src: &[T]) {
        if src.len() <= SMALL_COPY {
            let mask = slots as usize - 1;
            for (i, value) in src.iter().enumerate() {
                // SAFETY: the index is masked into the slots, which the caller owns.
                unsafe {
                    self.slots
                        .as_ptr()
                        .add((start as usize + i) & mask)
                        .write(*value)
                };
            }
            return;
        }
        let (first, rest) = split_at_wrap(start, slots, src.len());
        // SAFETY: `start + first <= slots` and `rest <= start`, so both copies stay in the slots;
        // the caller owns them.
        unsafe {
            let dst = self.slots.as_ptr();
            std::ptr::copy_nonoverlapping(src.as_ptr(), dst.add(start as usize), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), dst, rest);
        }
    }

    /// Copies slots from masked index `start` on into `dst`, wrapping at `slots`.
    ///
    /// # Safety
    ///
    /// As for `write` with `len` for `src.len()`; `dst` is valid for writes of `len` elements; and
    /// the slots hold values written by a producer, or the ring is in a shared mapping and `T` is
    /// valid for any bit pattern.
    #[inline]
    pub(crate) unsafe fn read(&self, start: u32, slots: u32, dst: *mut T, len: usize) {
        if len <= SMALL_COPY {
            let mask = slots as usize - 1;
            for i in 0..len {
                // SAFETY: the source index is masked into the slots and `dst` has room for `len`.
                unsafe {
                    dst.add(i)
                        .write(self.slots.as_ptr().add((start as usize + i) & mask).read())
                };
            }
            return;
        }
        let (first, rest) = split_at_wrap(start, slots, len);
        // SAFETY: as in `write`.
        unsafe {
            let src = self.slots.as_ptr();
            std::ptr::copy_nonoverlapping(src.add(start as usize), dst, first);
            std::ptr::copy_nonoverlapping(src, dst.add(first), rest);
        }
    }

    /// Pointer to slot `index`.
    ///
    /// # Safety
    ///
    /// `index < slots`.
    pub(crate) unsafe fn slot_ptr(&self, index: u32) -> *mut T {
        // SAFETY: the caller keeps the index in range.
        unsafe { self.slots.as_ptr().add(index as usize) }
    }
}

/// Maximum length of a copy done element by element: up to this length, a call to `memcpy` per
/// part costs more than the copy itself.
const SMALL_COPY: usize = 8;

/// Splits `len` elements starting at `start` into the part before the end of the slots and the
/// part that wraps to slot 0.
#[inline]
pub(crate) fn split_at_wrap(start: u32, slots: u32, len: usize) -> (usize, usize) {
    let before_end = (slots - start) as usize;
    let first = len.min(before_end);
    (first, len - first)
}

impl<T> Drop for RingMemory<T> {
    fn drop(&mut self) {
        if let Backing::Heap(layout) = self.backing {
            // SAFETY: allocated in `allocate` with this layout; the header holds no resources.
            unsafe { std::alloc::dealloc(self.base.as_ptr(), layout) };
        }
    }
}
