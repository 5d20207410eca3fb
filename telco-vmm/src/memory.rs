//! Guest RAM: anonymous, memfd-shared or hugetlbfs-backed, laid out around the 32-bit MMIO hole.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vm_memory::{FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};

use crate::error::VmmError;
use crate::layout::{MMIO_GAP_END, MMIO_GAP_START};

/// Guest memory as this crate maps it.
pub type GuestMemory = GuestMemoryMmap<()>;

/// Filesystem magic of hugetlbfs, from `statfs(2)`.
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

/// What backs the guest's RAM.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MemoryBackend {
    /// Private anonymous memory (`mmap(MAP_PRIVATE | MAP_ANONYMOUS)`).
    #[default]
    Anonymous,
    /// A `memfd_create(2)` file mapped `MAP_SHARED`, so that a vhost-user backend can map the
    /// same pages from the file descriptor.
    Memfd,
    /// An unlinked file on the hugetlbfs mount at this directory (such as `/dev/hugepages`),
    /// mapped `MAP_SHARED`. The size must be a multiple of the mount's page size.
    Hugetlbfs(PathBuf),
}

impl MemoryBackend {
    fn name(&self) -> &'static str {
        match self {
            MemoryBackend::Anonymous => "anonymous",
            MemoryBackend::Memfd => "memfd",
            MemoryBackend::Hugetlbfs(_) => "hugetlbfs",
        }
    }
}

/// Splits `size` bytes of RAM into the guest ranges below and above the 32-bit MMIO hole.
pub(crate) fn ram_ranges(size: u64) -> Vec<(GuestAddress, u64)> {
    if size <= MMIO_GAP_START {
        vec![(GuestAddress(0), size)]
    } else {
        vec![
            (GuestAddress(0), MMIO_GAP_START),
            (GuestAddress(MMIO_GAP_END), size - MMIO_GAP_START),
        ]
    }
}

/// Allocates `size` bytes of guest RAM from `backend`.
pub(crate) fn create_guest_memory(
    size: u64,
    backend: &MemoryBackend,
) -> Result<GuestMemory, VmmError> {
    let size_mib = size >> 20;
    let fail = |source: std::io::Error| VmmError::GuestMemory {
        size_mib,
        backend: backend.name(),
        source,
    };
    let ranges = ram_ranges(size);
    let file = match backend {
        MemoryBackend::Anonymous => None,
        MemoryBackend::Memfd => Some(create_memfd(size).map_err(fail)?),
        MemoryBackend::Hugetlbfs(dir) => {
            Some(create_hugetlbfs_file(dir, size).map_err(|e| match e {
                HugetlbfsError::NotHugetlbfs => VmmError::NotHugetlbfs { path: dir.clone() },
                HugetlbfsError::Io(source) => fail(source),
            })?)
        }
    };

    let mut regions = Vec::with_capacity(ranges.len());
    let mut file_offset = 0u64;
    for (start, len) in ranges {
        let len_usize = usize::try_from(len).map_err(|_| {
            fail(std::io::Error::other(
                "memory size exceeds the address space",
            ))
        })?;
        let mapping = match &file {
            None => MmapRegion::new(len_usize),
            Some(file) => {
                let mut builder = vm_memory::mmap::MmapRegionBuilder::new(len_usize)
                    .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
                    .with_mmap_flags(libc::MAP_SHARED)
                    .with_file_offset(FileOffset::from_arc(Arc::clone(file), file_offset));
                if matches!(backend, MemoryBackend::Hugetlbfs(_)) {
                    builder = builder.with_hugetlbfs(true);
                }
                builder.build()
            }
        }
        .map_err(|e| fail(std::io::Error::other(e)))?;
        file_offset += len;
        let region = GuestRegionMmap::new(mapping, start)
            .ok_or_else(|| fail(std::io::Error::other("guest region overflows")))?;
        regions.push(region);
    }
    GuestMemory::from_regions(regions).map_err(|e| fail(std::io::Error::other(e)))
}

fn create_memfd(size: u64) -> std::io::Result<Arc<File>> {
    // SAFETY: the name is a NUL-terminated literal and the flags are valid; the returned fd is
    // checked before use.
    let fd = unsafe { libc::memfd_create(c"telco-vmm-guest-ram".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(size)?;
    Ok(Arc::new(file))
}

enum HugetlbfsError {
    NotHugetlbfs,
    Io(std::io::Error),
}

fn create_hugetlbfs_file(dir: &Path, size: u64) -> Result<Arc<File>, HugetlbfsError> {
    if !is_hugetlbfs(dir).map_err(HugetlbfsError::Io)? {
        return Err(HugetlbfsError::NotHugetlbfs);
    }
    let file = tempfile::tempfile_in(dir).map_err(HugetlbfsError::Io)?;
    file.set_len(size).map_err(HugetlbfsError::Io)?;
    Ok(Arc::new(file))
}

fn is_hugetlbfs(dir: &Path) -> std::io::Result<bool> {
    let dir_file = File::open(dir)?;
    // SAFETY: `statfs` is plain old data, and all-zero is a valid value.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the duration of the call and `stat` is a valid out pointer.
    let rc = unsafe { libc::fstatfs(dir_file.as_raw_fd(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_type == HUGETLBFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemoryBackend, GuestMemoryRegion};

    #[test]
    fn ram_below_hole_is_one_range() {
        let ranges = ram_ranges(512 << 20);
        assert_eq!(ranges, vec![(GuestAddress(0), 512 << 20)]);
    }

    #[test]
    fn ram_above_hole_splits_at_four_gib() {
        let ranges = ram_ranges(4 << 30);
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0], (GuestAddress(0), MMIO_GAP_START));
        assert_eq!(
            ranges[1],
            (GuestAddress(MMIO_GAP_END), (4 << 30) - MMIO_GAP_START)
        );
    }

    #[test]
    fn memfd_memory_is_file_backed_and_shared() {
        let mem = create_guest_memory(16 << 20, &MemoryBackend::Memfd).unwrap();
        let region = mem.iter().next().unwrap();
        let file_offset = region.file_offset().expect("memfd region has a file");
        assert_eq!(file_offset.start(), 0);
        mem.write_obj(0xdead_beef_u32, GuestAddress(0x1000))
            .unwrap();

        let mut word = [0u8; 4];
        let file = file_offset.file();
        std::os::unix::fs::FileExt::read_exact_at(file, &mut word, 0x1000).unwrap();
        assert_eq!(u32::from_ne_bytes(word), 0xdead_beef);
    }

    #[test]
    fn anonymous_memory_has_requested_size() {
        let mem = create_guest_memory(8 << 20, &MemoryBackend::Anonymous).unwrap();
        assert_eq!(mem.last_addr(), GuestAddress((8 << 20) - 1));
    }

    #[test]
    fn hugetlbfs_backend_rejects_plain_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_guest_memory(4 << 20, &MemoryBackend::Hugetlbfs(dir.path().to_path_buf()))
            .unwrap_err();
        assert!(matches!(err, VmmError::NotHugetlbfs { .. }), "{err}");
    }
}
