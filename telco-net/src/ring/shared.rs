//! Rings in a shared mapping that another process attaches by fd or path.

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use super::core::RingCore;
use super::handle::{Consumer, Producer, SyncMode};
use super::layout::{Geometry, SyncType};
use super::mapping::SharedMapping;
use super::memory::RingMemory;
use super::{Plain, RingError, RingPair};

/// A ring in a memfd or a file, before it is split into handles.
///
/// The creator formats the header; each other process attaches, which validates the magic,
/// version, flags (one mode per side), element size and alignment, slot count, capacity and RTS
/// head-tail distances against the mapping's length, and from then on uses only its own copy of
/// those values. A peer that writes the
/// header or the indices later can corrupt elements but cannot make this process access memory
/// outside the mapping; a peer that stops in the middle of a multi-producer or multi-consumer
/// operation (in any of the multi-threaded modes) makes the other threads on that side wait for
/// it.
pub struct SharedRing<T> {
    core: Arc<RingCore<T>>,
}

impl<T: Plain> SharedRing<T> {
    pub(crate) fn create(
        mapping: SharedMapping,
        geometry: Geometry,
        flags: u32,
        htd_max: [u32; 2],
    ) -> Self {
        let meta = geometry.meta::<T>(flags, htd_max);
        let memory = RingMemory::format(mapping, &geometry, meta);
        Self {
            core: Arc::new(RingCore {
                memory,
                geometry,
                flags,
                htd_max,
            }),
        }
    }

    /// Attaches to a ring whose mapping fd another process passed to us.
    pub fn attach_fd(fd: OwnedFd) -> Result<Self, RingError> {
        let mapping = SharedMapping::map_whole(fd).map_err(|source| RingError::Map {
            what: "fd".into(),
            source,
        })?;
        Self::attach(mapping)
    }

    /// Attaches to a ring in the file at `path` (tmpfs, hugetlbfs).
    pub fn attach_path(path: &Path) -> Result<Self, RingError> {
        let mapping = SharedMapping::open_file(path).map_err(|source| RingError::Map {
            what: path.display().to_string(),
            source,
        })?;
        Self::attach(mapping)
    }

    fn attach(mapping: SharedMapping) -> Result<Self, RingError> {
        let meta = RingMemory::<T>::read_meta(&mapping).ok_or(RingError::MappingTooSmall {
            len: mapping.len(),
            needed: std::mem::size_of::<super::layout::Header>(),
        })?;
        let (geometry, flags, htd_max) = Geometry::validate::<T>(&meta, mapping.len())?;
        let memory = RingMemory::attach(mapping, &geometry);
        Ok(Self {
            core: Arc::new(RingCore {
                memory,
                geometry,
                flags,
                htd_max,
            }),
        })
    }

    /// The mapping's fd, to send to the process that attaches (for example with `SCM_RIGHTS`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.core
            .memory
            .mapping()
            .expect("shared rings live in a mapping")
            .fd()
    }

    /// Elements the ring holds when full.
    pub fn capacity(&self) -> usize {
        self.core.geometry.capacity as usize
    }

    /// Elements in the ring now.
    pub fn count(&self) -> usize {
        self.core.count()
    }

    /// Returns the producer side's mode from the header (DPDK `rte_ring_get_prod_sync_type`).
    pub fn producer_sync_type(&self) -> SyncType {
        SyncType::of_producer(self.core.flags).expect("flags validated at creation or attach")
    }

    /// Returns the consumer side's mode from the header (DPDK `rte_ring_get_cons_sync_type`).
    pub fn consumer_sync_type(&self) -> SyncType {
        SyncType::of_consumer(self.core.flags).expect("flags validated at creation or attach")
    }

    /// Takes the producer side; `P` must match the mode the creator chose.
    pub fn into_producer<P: SyncMode>(self) -> Result<Producer<T, P>, RingError> {
        check_mode::<P>("producer", self.producer_sync_type())?;
        Ok(Producer::new(self.core))
    }

    /// Takes the consumer side; `C` must match the mode the creator chose.
    pub fn into_consumer<C: SyncMode>(self) -> Result<Consumer<T, C>, RingError> {
        check_mode::<C>("consumer", self.consumer_sync_type())?;
        Ok(Consumer::new(self.core))
    }

    /// Takes both sides, for a process that both produces and consumes.
    pub fn split<P: SyncMode, C: SyncMode>(self) -> Result<RingPair<T, P, C>, RingError> {
        check_mode::<P>("producer", self.producer_sync_type())?;
        check_mode::<C>("consumer", self.consumer_sync_type())?;
        Ok((
            Producer::new(Arc::clone(&self.core)),
            Consumer::new(self.core),
        ))
    }
}

fn check_mode<M: SyncMode>(side: &'static str, ring: SyncType) -> Result<(), RingError> {
    if M::SYNC_TYPE == ring {
        Ok(())
    } else {
        Err(RingError::ModeMismatch {
            side,
            ring,
            requested: M::SYNC_TYPE,
        })
    }
}

impl<T> fmt::Debug for SharedRing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRing")
            .field("geometry", &self.core.geometry)
            .field("flags", &self.core.flags)
            .field("htd_max", &self.core.htd_max)
            .finish()
    }
}
