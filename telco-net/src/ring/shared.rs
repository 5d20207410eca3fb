//! Rings in a shared mapping that another process attaches by fd or path.

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use super::core::RingCore;
use super::handle::{Consumer, Producer, SyncMode};
use super::layout::{FLAG_SC_DEQ, FLAG_SP_ENQ, Geometry};
use super::mapping::SharedMapping;
use super::memory::RingMemory;
use super::{Plain, RingError, RingPair};

/// A ring in a memfd or a file, before it is split into handles.
///
/// The creator formats the header; each other process attaches, which validates the magic,
/// version, flags, element size and alignment, slot count and capacity against the mapping's
/// length, and from then on uses only its own copy of those values. A peer that writes the
/// header or the indices later can corrupt elements but cannot make this process access memory
/// outside the mapping; a peer that stops in the middle of a multi-producer or multi-consumer
/// operation makes the other threads on that side wait for it.
pub struct SharedRing<T> {
    core: Arc<RingCore<T>>,
}

impl<T: Plain> SharedRing<T> {
    pub(crate) fn create(mapping: SharedMapping, geometry: Geometry, flags: u32) -> Self {
        let meta = geometry.meta::<T>(flags);
        let memory = RingMemory::format(mapping, &geometry, meta);
        Self {
            core: Arc::new(RingCore {
                memory,
                geometry,
                flags,
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
        let (geometry, flags) = Geometry::validate::<T>(&meta, mapping.len())?;
        let memory = RingMemory::attach(mapping, &geometry);
        Ok(Self {
            core: Arc::new(RingCore {
                memory,
                geometry,
                flags,
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

    /// Takes the producer side; `P` must match the mode the creator chose.
    pub fn into_producer<P: SyncMode>(self) -> Result<Producer<T, P>, RingError> {
        check_mode::<P>("producer", self.core.flags & FLAG_SP_ENQ == 0)?;
        Ok(Producer::new(self.core))
    }

    /// Takes the consumer side; `C` must match the mode the creator chose.
    pub fn into_consumer<C: SyncMode>(self) -> Result<Consumer<T, C>, RingError> {
        check_mode::<C>("consumer", self.core.flags & FLAG_SC_DEQ == 0)?;
        Ok(Consumer::new(self.core))
    }

    /// Takes both sides, for a process that both produces and consumes.
    pub fn split<P: SyncMode, C: SyncMode>(self) -> Result<RingPair<T, P, C>, RingError> {
        check_mode::<P>("producer", self.core.flags & FLAG_SP_ENQ == 0)?;
        check_mode::<C>("consumer", self.core.flags & FLAG_SC_DEQ == 0)?;
        Ok((
            Producer::new(Arc::clone(&self.core)),
            Consumer::new(self.core),
        ))
    }
}

fn check_mode<M: SyncMode>(side: &'static str, ring_multi: bool) -> Result<(), RingError> {
    if M::MULTI == ring_multi {
        Ok(())
    } else {
        Err(RingError::ModeMismatch {
            side,
            ring_multi,
            requested_multi: M::MULTI,
        })
    }
}

impl<T> fmt::Debug for SharedRing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRing")
            .field("geometry", &self.core.geometry)
            .field("flags", &self.core.flags)
            .finish()
    }
}
