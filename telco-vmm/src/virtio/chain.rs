//! Descriptor chains taken from a split virtqueue and checked against guest memory before a
//! device touches them.
//!
//! `virtio-queue` walks a chain but ends the walk silently on a loop, on a `next` index beyond
//! the queue, or on a descriptor it cannot read. [`CheckedChain::from_queue`] turns each of
//! those into an error, checks every buffer's range through `vm-memory`, and enforces the
//! spec's order of device-readable before device-writable buffers.

use virtio_queue::{DescriptorChain, Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemory as _, Permissions};

use crate::memory::GuestMemory;

/// A guest buffer: address and length, range-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Buffer {
    pub(crate) addr: GuestAddress,
    pub(crate) len: u32,
}

/// The reason a descriptor chain was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChainError {
    /// A buffer lies partly or wholly outside guest RAM.
    #[error("descriptor buffer {addr:#x}+{len} is outside guest memory")]
    OutOfRange { addr: u64, len: u32 },
    /// The chain does not end within the queue: a loop, a `next` index beyond the queue, or more
    /// descriptors than the queue has.
    #[error("descriptor chain from head {head} does not end within the queue")]
    Unterminated { head: u16 },
    /// A device-readable buffer follows a device-writable one.
    #[error("readable descriptor after a writable one in chain from head {head}")]
    ReadableAfterWritable { head: u16 },
    /// The chain carries no bytes at all (only zero-length descriptors).
    #[error("descriptor chain from head {head} has no data")]
    Empty { head: u16 },
}

/// A chain split into its readable and writable buffers; zero-length descriptors are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedChain {
    pub(crate) head: u16,
    pub(crate) readable: Vec<Buffer>,
    pub(crate) writable: Vec<Buffer>,
}

impl CheckedChain {
    /// Pops the next available chain; `None` when the queue is empty or its ring unreadable.
    pub(crate) fn pop(
        queue: &mut Queue,
        mem: &GuestMemory,
    ) -> Option<Result<CheckedChain, (u16, ChainError)>> {
        let chain = queue.pop_descriptor_chain(mem)?;
        let head = chain.head_index();
        Some(CheckedChain::check(chain, mem).map_err(|error| (head, error)))
    }

    fn check(chain: DescriptorChain<&GuestMemory>, mem: &GuestMemory) -> Result<Self, ChainError> {
        let head = chain.head_index();
        let mut checked = CheckedChain {
            head,
            readable: Vec::new(),
            writable: Vec::new(),
        };
        let mut last_has_next = false;
        for descriptor in chain {
            last_has_next = descriptor.has_next();
            let (addr, len) = (descriptor.addr(), descriptor.len());
            let access = if descriptor.is_write_only() {
                Permissions::Write
            } else {
                Permissions::Read
            };
            if !mem.check_range(addr, len as usize, access) {
                return Err(ChainError::OutOfRange { addr: addr.0, len });
            }
            if descriptor.is_write_only() {
                if len > 0 {
                    checked.writable.push(Buffer { addr, len });
                }
            } else {
                if !checked.writable.is_empty() {
                    return Err(ChainError::ReadableAfterWritable { head });
                }
                if len > 0 {
                    checked.readable.push(Buffer { addr, len });
                }
            }
        }
        // The walk ended on a descriptor that still points onwards: a loop that exhausted the
        // walk's budget of one visit per queue entry, or a `next` it could not follow.
        if last_has_next {
            return Err(ChainError::Unterminated { head });
        }
        if checked.readable.is_empty() && checked.writable.is_empty() {
            return Err(ChainError::Empty { head });
        }
        Ok(checked)
    }

    /// Total bytes in the writable buffers.
    pub(crate) fn writable_len(&self) -> u64 {
        self.writable.iter().map(|b| u64::from(b.len)).sum()
    }

    /// Copies the readable buffers, in order, into one vector of at most `limit` bytes.
    pub(crate) fn read_all(&self, mem: &GuestMemory, limit: usize) -> Result<Vec<u8>, ChainError> {
        let mut out = Vec::new();
        for buffer in &self.readable {
            let take = (buffer.len as usize).min(limit.saturating_sub(out.len()));
            let start = out.len();
            out.resize(start + take, 0);
            mem.read_slice(&mut out[start..], buffer.addr)
                .map_err(|_| ChainError::OutOfRange {
                    addr: buffer.addr.0,
                    len: buffer.len,
                })?;
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Copies `data` across the writable buffers; returns the bytes written, which is less than
    /// `data.len()` when the buffers are too small.
    pub(crate) fn write_all(&self, mem: &GuestMemory, data: &[u8]) -> Result<u32, ChainError> {
        let mut written = 0usize;
        for buffer in &self.writable {
            if written == data.len() {
                break;
            }
            let take = (buffer.len as usize).min(data.len() - written);
            mem.write_slice(&data[written..written + take], buffer.addr)
                .map_err(|_| ChainError::OutOfRange {
                    addr: buffer.addr.0,
                    len: buffer.len,
                })?;
            written += take;
        }
        Ok(u32::try_from(written).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::memory::{MemoryBackend, create_guest_memory};

    pub(crate) const DESC_TABLE: u32 = 0x1000;
    pub(crate) const AVAIL_RING: u32 = 0x2000;
    pub(crate) const USED_RING: u32 = 0x3000;
    pub(crate) const F_NEXT: u16 = 1;
    pub(crate) const F_WRITE: u16 = 2;

    /// A guest with one split queue of `size` entries at fixed addresses.
    pub(crate) struct TestQueue {
        pub(crate) mem: GuestMemory,
        pub(crate) queue: Queue,
        avail_idx: u16,
    }

    impl TestQueue {
        pub(crate) fn new(size: u16) -> Self {
            let mem = create_guest_memory(1 << 20, &MemoryBackend::Anonymous).unwrap();
            let mut queue = Queue::new(size).unwrap();
            queue.set_size(size);
            queue.set_desc_table_address(Some(DESC_TABLE), Some(0));
            queue.set_avail_ring_address(Some(AVAIL_RING), Some(0));
            queue.set_used_ring_address(Some(USED_RING), Some(0));
            queue.set_ready(true);
            assert!(queue.is_valid(&mem));
            TestQueue {
                mem,
                queue,
                avail_idx: 0,
            }
        }

        pub(crate) fn set_descriptor(
            &self,
            index: u16,
            addr: u64,
            len: u32,
            flags: u16,
            next: u16,
        ) {
            let base = u64::from(DESC_TABLE) + u64::from(index) * 16;
            self.mem.write_obj(addr, GuestAddress(base)).unwrap();
            self.mem.write_obj(len, GuestAddress(base + 8)).unwrap();
            self.mem.write_obj(flags, GuestAddress(base + 12)).unwrap();
            self.mem.write_obj(next, GuestAddress(base + 14)).unwrap();
        }

        pub(crate) fn make_available(&mut self, head: u16) {
            let size = self.queue.size();
            let slot = u64::from(AVAIL_RING) + 4 + u64::from(self.avail_idx % size) * 2;
            self.mem.write_obj(head, GuestAddress(slot)).unwrap();
            self.avail_idx = self.avail_idx.wrapping_add(1);
            self.mem
                .write_obj(self.avail_idx, GuestAddress(u64::from(AVAIL_RING) + 2))
                .unwrap();
        }

        pub(crate) fn used(&self, slot: u16) -> (u32, u32) {
            let base = u64::from(USED_RING) + 4 + u64::from(slot) * 8;
            (
                self.mem.read_obj(GuestAddress(base)).unwrap(),
                self.mem.read_obj(GuestAddress(base + 4)).unwrap(),
            )
        }

        pub(crate) fn used_idx(&self) -> u16 {
            self.mem
                .read_obj(GuestAddress(u64::from(USED_RING) + 2))
                .unwrap()
        }

        fn pop(&mut self) -> Option<Result<CheckedChain, (u16, ChainError)>> {
            CheckedChain::pop(&mut self.queue, &self.mem)
        }
    }

    #[test]
    fn valid_chain_splits_readable_and_writable() {
        let mut q = TestQueue::new(8);
        q.set_descriptor(0, 0x10000, 100, F_NEXT, 1);
        q.set_descriptor(1, 0x20000, 200, F_WRITE, 0);
        q.make_available(0);
        let chain = q.pop().unwrap().unwrap();
        assert_eq!(
            chain.readable,
            vec![Buffer {
                addr: GuestAddress(0x10000),
                len: 100
            }]
        );
        assert_eq!(
            chain.writable,
            vec![Buffer {
                addr: GuestAddress(0x20000),
                len: 200
            }]
        );
    }

    #[test]
    fn buffer_beyond_guest_memory_is_rejected() {
        let mut q = TestQueue::new(8);
        q.set_descriptor(0, (1 << 20) - 10, 100, 0, 0);
        q.make_available(0);
        let (head, error) = q.pop().unwrap().unwrap_err();
        assert_eq!(head, 0);
        assert_eq!(
            error,
            ChainError::OutOfRange {
                addr: (1 << 20) - 10,
                len: 100
            }
        );
    }

    #[test]
    fn buffer_at_wrapping_address_is_rejected() {
        let mut q = TestQueue::new(8);
        q.set_descriptor(0, u64::MAX - 4, 64, F_WRITE, 0);
        q.make_available(0);
        assert!(matches!(
            q.pop().unwrap(),
            Err((0, ChainError::OutOfRange { .. }))
        ));
    }

    #[test]
    fn looping_chain_is_rejected() {
        let mut q = TestQueue::new(4);
        q.set_descriptor(0, 0x10000, 16, F_NEXT, 1);
        q.set_descriptor(1, 0x10010, 16, F_NEXT, 0);
        q.make_available(0);
        assert_eq!(
            q.pop().unwrap(),
            Err((0, ChainError::Unterminated { head: 0 }))
        );
    }

    #[test]
    fn self_referencing_descriptor_is_rejected() {
        let mut q = TestQueue::new(4);
        q.set_descriptor(2, 0x10000, 16, F_NEXT, 2);
        q.make_available(2);
        assert_eq!(
            q.pop().unwrap(),
            Err((2, ChainError::Unterminated { head: 2 }))
        );
    }

    #[test]
    fn next_index_beyond_queue_is_rejected() {
        let mut q = TestQueue::new(4);
        q.set_descriptor(0, 0x10000, 16, F_NEXT, 200);
        q.make_available(0);
        assert_eq!(
            q.pop().unwrap(),
            Err((0, ChainError::Unterminated { head: 0 }))
        );
    }

    #[test]
    fn chain_longer_than_queue_is_rejected() {
        let mut q = TestQueue::new(4);
        // Four linked descriptors whose last points back into the table: five hops in a
        // four-entry queue.
        for i in 0..4u16 {
            q.set_descriptor(i, 0x10000 + u64::from(i) * 0x100, 16, F_NEXT, (i + 1) % 4);
        }
        q.make_available(0);
        assert_eq!(
            q.pop().unwrap(),
            Err((0, ChainError::Unterminated { head: 0 }))
        );
    }

    #[test]
    fn chain_using_whole_queue_is_accepted() {
        let mut q = TestQueue::new(4);
        for i in 0..3u16 {
            q.set_descriptor(i, 0x10000 + u64::from(i) * 0x100, 16, F_NEXT, i + 1);
        }
        q.set_descriptor(3, 0x10300, 16, 0, 0);
        q.make_available(0);
        assert_eq!(q.pop().unwrap().unwrap().readable.len(), 4);
    }

    #[test]
    fn zero_length_descriptors_are_skipped() {
        let mut q = TestQueue::new(8);
        q.set_descriptor(0, 0x10000, 0, F_NEXT, 1);
        q.set_descriptor(1, 0x10000, 8, 0, 0);
        q.make_available(0);
        let chain = q.pop().unwrap().unwrap();
        assert_eq!(
            chain.readable,
            vec![Buffer {
                addr: GuestAddress(0x10000),
                len: 8
            }]
        );
    }

    #[test]
    fn chain_of_only_zero_lengths_is_rejected() {
        let mut q = TestQueue::new(8);
        q.set_descriptor(0, 0x10000, 0, F_WRITE, 0);
        q.make_available(0);
        assert_eq!(q.pop().unwrap(), Err((0, ChainError::Empty { head: 0 })));
    }

    #[test]
    fn readable_after_writable_is_rejected() {
        let mut q = TestQueue::new(8);
        q.set_descriptor(0, 0x10000, 8, F_WRITE | F_NEXT, 1);
        q.set_descriptor(1, 0x20000, 8, 0, 0);
        q.make_available(0);
        assert_eq!(
            q.pop().unwrap(),
            Err((0, ChainError::ReadableAfterWritable { head: 0 }))
        );
    }

    #[test]
    fn head_index_beyond_queue_pops_nothing_usable() {
        let mut q = TestQueue::new(4);
        q.make_available(100);
        match q.pop() {
            None => {}
            Some(result) => assert!(result.is_err(), "{result:?}"),
        }
    }

    #[test]
    fn write_all_stops_at_buffer_end() {
        let mut q = TestQueue::new(8);
        q.set_descriptor(0, 0x10000, 4, F_WRITE | F_NEXT, 1);
        q.set_descriptor(1, 0x20000, 2, F_WRITE, 0);
        q.make_available(0);
        let chain = q.pop().unwrap().unwrap();
        assert_eq!(chain.write_all(&q.mem, b"abcdefgh").unwrap(), 6);
        let mut first = [0u8; 4];
        q.mem.read_slice(&mut first, GuestAddress(0x10000)).unwrap();
        assert_eq!(&first, b"abcd");
    }
}
