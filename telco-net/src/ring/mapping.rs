//! A `MAP_SHARED` mapping of a memfd or a file (tmpfs, hugetlbfs), which rings and memif regions
//! live in.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::stat::{Mode, fstat};

/// Why a mapping could not be made; the callers wrap it with their own context.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// `memfd_create(2)` failed.
    #[error("memfd_create({name:?}) failed")]
    MemfdCreate {
        /// Name given to the memfd.
        name: String,
        /// Cause.
        #[source]
        source: Errno,
    },
    /// `open(2)` of a backing file failed.
    #[error("open {path} failed")]
    Open {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: Errno,
    },
    /// `ftruncate(2)` failed.
    #[error("ftruncate to {len} bytes failed")]
    Truncate {
        /// Requested length.
        len: usize,
        /// Cause.
        #[source]
        source: Errno,
    },
    /// `fstat(2)` failed.
    #[error("fstat failed")]
    Stat(#[source] Errno),
    /// `mmap(2)` failed.
    #[error("mmap of {len} bytes failed")]
    Map {
        /// Requested length.
        len: usize,
        /// Cause.
        #[source]
        source: Errno,
    },
    /// The file is empty or larger than the address space.
    #[error("file size {size} cannot be mapped")]
    BadSize {
        /// Size reported by `fstat`.
        size: i64,
    },
}

/// A read-write `MAP_SHARED` mapping and the fd it maps; unmapped on drop.
#[derive(Debug)]
pub struct SharedMapping {
    base: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain memory owned by this value; users synchronise through atomics.
unsafe impl Send for SharedMapping {}
// SAFETY: `&SharedMapping` only hands out the base address and the length.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// Creates a memfd of `len` bytes, sealed against shrinking so that a peer cannot make our
    /// accesses fault with `SIGBUS`, and maps it.
    pub fn memfd(name: &str, len: usize) -> Result<Self, MappingError> {
        let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
        let fd = memfd_create(
            cname.as_c_str(),
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|source| MappingError::MemfdCreate {
            name: name.to_owned(),
            source,
        })?;
        truncate(&fd, len)?;
        // The seal is a hardening step: a kernel without sealing still maps the memfd.
        let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL;
        if let Err(error) = fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)) {
            tracing::debug!(%error, "could not seal memfd {name} against shrinking");
        }
        Self::map(fd, len)
    }

    /// Creates (or truncates) the file at `path` with `len` bytes, rounded up to the file system's
    /// block size (the huge page size on hugetlbfs), and maps it.
    pub fn create_file(path: &Path, len: usize) -> Result<Self, MappingError> {
        let open_error = |source| MappingError::Open {
            path: path.display().to_string(),
            source,
        };
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(open_error)?;
        let block = nix::sys::statfs::fstatfs(&fd)
            .ok()
            .and_then(|fs| usize::try_from(fs.block_size()).ok())
            .filter(|block| block.is_power_of_two())
            .unwrap_or(4096);
        let len = len.next_multiple_of(block);
        truncate(&fd, len)?;
        Self::map(fd, len)
    }

    /// Opens the existing file at `path` and maps all of it.
    pub fn open_file(path: &Path) -> Result<Self, MappingError> {
        let fd = nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(
            |source| MappingError::Open {
                path: path.display().to_string(),
                source,
            },
        )?;
        Self::map_whole(fd)
    }

    /// Maps all of the file behind `fd`, whose size `fstat` gives.
    pub fn map_whole(fd: OwnedFd) -> Result<Self, MappingError> {
        let size = fstat(&fd).map_err(MappingError::Stat)?.st_size;
        let len = usize::try_from(size)
            .ok()
            .filter(|len| *len > 0 && *len <= isize::MAX as usize);
        let Some(len) = len else {
            return Err(MappingError::BadSize { size });
        };
        Self::map(fd, len)
    }

    /// Maps the first `len` bytes of `fd`, which must be at least that long.
    pub fn map(fd: OwnedFd, len: usize) -> Result<Self, MappingError> {
        let length = NonZeroUsize::new(len).ok_or(MappingError::BadSize { size: 0 })?;
        // SAFETY: a fresh shared mapping at an address the kernel chooses; no Rust object is
        // aliased. The memory is only accessed through raw pointers and atomics.
        let base = unsafe {
            mmap(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .map_err(|source| MappingError::Map { len, source })?;
        Ok(Self {
            base: base.cast(),
            len,
            fd,
        })
    }

    /// Start of the mapping, page aligned.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: mappings have at least one byte).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped file's fd, to pass to another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn truncate(fd: &OwnedFd, len: usize) -> Result<(), MappingError> {
    let size = i64::try_from(len).map_err(|_| MappingError::Truncate {
        len,
        source: Errno::EFBIG,
    })?;
    nix::unistd::ftruncate(fd, size).map_err(|source| MappingError::Truncate { len, source })
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map` with this length and is dropped once.
        if let Err(error) = unsafe { munmap(self.base.cast(), self.len) } {
            tracing::warn!(%error, "munmap of a shared mapping failed");
        }
    }
}
