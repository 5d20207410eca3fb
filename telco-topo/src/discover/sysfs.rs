//! A sysfs reader that opens files relative to directory file descriptors and reads them into
//! one reused buffer.
//!
//! Discovery reads thousands of small attribute files. Resolving each one as a full path under
//! the host root costs a lookup per path component, and `std::fs::read_to_string` allocates a
//! buffer per file. This reader opens each directory once (`O_PATH`), opens files with
//! `openat` relative to it and reads them into a buffer that lives as long as the reader.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::str::FromStr;

use telco_core::{CpuSet, FileError, HostRoot, ParseError};

use crate::error::DiscoverError;

/// A directory under the host root, open with `O_PATH`; `fd` is `None` when it does not exist.
pub(crate) struct Dir {
    fd: Option<OwnedFd>,
    /// Host path of the directory (`/sys/devices/system/cpu`), for error messages.
    path: String,
}

impl Dir {
    /// Returns true when the directory exists.
    pub(crate) fn exists(&self) -> bool {
        self.fd.is_some()
    }

    fn raw(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }
}

/// Reader of the files under one [`HostRoot`].
pub(crate) struct Sysfs<'h> {
    host: &'h HostRoot,
    root: Dir,
    buffer: Vec<u8>,
}

/// Bytes requested in one `read`: a sysfs attribute is at most one page.
const CHUNK: usize = 4096;

impl<'h> Sysfs<'h> {
    /// Opens the root of `host`. A root that does not exist reads as an empty tree (see
    /// [`Sysfs::root_exists`]).
    pub(crate) fn open(host: &'h HostRoot) -> Result<Sysfs<'h>, DiscoverError> {
        let root_path = host.root().as_os_str().as_encoded_bytes();
        let root_path = CString::new(root_path).map_err(|_| {
            FileError::read(
                host.root(),
                io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
            )
        })?;
        let fd = open_path_dir(libc::AT_FDCWD, &root_path)
            .map_err(|source| FileError::read(host.root(), source))?;
        Ok(Sysfs {
            host,
            root: Dir {
                fd,
                path: String::new(),
            },
            buffer: Vec::with_capacity(CHUNK),
        })
    }

    /// Returns true when the root directory exists.
    pub(crate) fn root_exists(&self) -> bool {
        self.root.exists()
    }

    /// Returns the host root that the reader reads under.
    pub(crate) fn host(&self) -> &'h HostRoot {
        self.host
    }

    /// Opens the directory at the absolute host path `host_path` (`/sys/devices/system/cpu`).
    pub(crate) fn dir(&self, host_path: &str) -> Result<Dir, FileError> {
        let relative = match host_path.trim_start_matches('/') {
            "" => ".",
            relative => relative,
        };
        let mut dir = self.subdir(&self.root, relative)?;
        dir.path = host_path.to_owned();
        Ok(dir)
    }

    /// Opens `name` (one or more components) inside `parent`.
    pub(crate) fn subdir(&self, parent: &Dir, name: &str) -> Result<Dir, FileError> {
        let path = format!("{}/{name}", parent.path);
        let Some(parent_fd) = parent.raw() else {
            return Ok(Dir { fd: None, path });
        };
        let fd = with_c_name(name, |c_name| open_path_dir(parent_fd, c_name))
            .unwrap_or_else(|| Err(invalid_name()))
            .map_err(|source| FileError::read(self.host.path(&path), source))?;
        Ok(Dir { fd, path })
    }

    /// Full path of `name` inside `dir`, for error messages.
    pub(crate) fn file_path(&self, dir: &Dir, name: &str) -> PathBuf {
        file_path(self.host, dir, name)
    }

    /// Reads the text of `name` in `dir`, `None` when it does not exist. Trailing newlines,
    /// blanks and NUL bytes (which some sysfs dumps carry) are removed.
    pub(crate) fn text(&mut self, dir: &Dir, name: &str) -> Result<Option<&str>, FileError> {
        let Some(dir_fd) = dir.raw() else {
            return Ok(None);
        };
        match read_into(dir_fd, name, &mut self.buffer) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(source) => return Err(FileError::read(file_path(self.host, dir, name), source)),
        }
        let end = self
            .buffer
            .iter()
            .rposition(|byte| !matches!(byte, b'\n' | b'\0' | b' ' | b'\t'))
            .map_or(0, |last| last + 1);
        match std::str::from_utf8(&self.buffer[..end]) {
            Ok(text) => Ok(Some(text)),
            Err(error) => Err(FileError::read(
                file_path(self.host, dir, name),
                io::Error::new(io::ErrorKind::InvalidData, error),
            )),
        }
    }

    /// Reads and parses `name` in `dir`, `None` when it does not exist.
    pub(crate) fn value<T>(&mut self, dir: &Dir, name: &str) -> Result<Option<T>, FileError>
    where
        T: FromStr<Err = ParseError>,
    {
        let host = self.host;
        match self.text(dir, name)? {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|error| FileError::parse(file_path(host, dir, name), error)),
        }
    }

    /// Reads a file holding one decimal integer, `None` when it does not exist.
    pub(crate) fn int(&mut self, dir: &Dir, name: &str) -> Result<Option<i64>, FileError> {
        let host = self.host;
        match self.text(dir, name)? {
            None => Ok(None),
            Some(text) => text.trim().parse().map(Some).map_err(|_| {
                FileError::parse(
                    file_path(host, dir, name),
                    ParseError::new("integer", text, "not a decimal integer"),
                )
            }),
        }
    }

    /// Reads a hex mask file (`cpumap`, `shared_cpu_map`), `None` when it does not exist.
    pub(crate) fn mask(&mut self, dir: &Dir, name: &str) -> Result<Option<CpuSet>, FileError> {
        let host = self.host;
        let Some(text) = self.text(dir, name)? else {
            return Ok(None);
        };
        let text = text.trim();
        let parsed = if text.contains("0x") {
            CpuSet::parse_mask(&text.replace("0x", ""))
        } else {
            CpuSet::parse_mask(text)
        };
        parsed
            .map(Some)
            .map_err(|error| FileError::parse(file_path(host, dir, name), error))
    }

    /// Reads a CPU set from the first file of `masks` in `dir` that exists, else from the first
    /// of `lists`. Masks come first because hwloc reads them, and some dumps carry lists that
    /// disagree with them.
    pub(crate) fn cpu_set(
        &mut self,
        dir: &Dir,
        masks: &[&str],
        lists: &[&str],
    ) -> Result<Option<CpuSet>, FileError> {
        for name in masks {
            if let Some(set) = self.mask(dir, name)? {
                return Ok(Some(set));
            }
        }
        for name in lists {
            if let Some(set) = self.value(dir, name)? {
                return Ok(Some(set));
            }
        }
        Ok(None)
    }

    /// Returns true when `name` exists in `dir`. Uses `fstatat`, because a failed `open` still
    /// allocates a file structure in the kernel.
    pub(crate) fn exists(&self, dir: &Dir, name: &str) -> bool {
        let Some(dir_fd) = dir.raw() else {
            return false;
        };
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `c_name` is NUL-terminated, `dir_fd` an open descriptor, and `stat` is
        // writable for one `struct stat`.
        with_c_name(name, |c_name| unsafe {
            libc::fstatat(dir_fd, c_name.as_ptr(), stat.as_mut_ptr(), 0) == 0
        })
        .unwrap_or(false)
    }

    /// Returns the last component of the target of the symbolic link `name` in `dir`, `None`
    /// when it is not a link or cannot be read.
    pub(crate) fn link_name(&self, dir: &Dir, name: &str) -> Option<String> {
        let dir_fd = dir.raw()?;
        let mut target = [0u8; 4096];
        // SAFETY: `c_name` is NUL-terminated and `target` is writable for its whole length.
        let length = with_c_name(name, |c_name| unsafe {
            libc::readlinkat(
                dir_fd,
                c_name.as_ptr(),
                target.as_mut_ptr().cast(),
                target.len(),
            )
        })?;
        let length = usize::try_from(length).ok()?;
        let target = std::str::from_utf8(&target[..length]).ok()?;
        let last = target.rsplit('/').next()?;
        (!last.is_empty()).then(|| last.to_owned())
    }

    /// Lists the names of the entries of `dir`, sorted; a missing directory is an empty list.
    pub(crate) fn list(&mut self, dir: &Dir) -> Result<Vec<String>, DiscoverError> {
        self.list_at(dir, ".")
    }

    /// Lists the names of the entries of the directory `name` inside `dir`, sorted; a missing
    /// directory is an empty list.
    pub(crate) fn list_at(&mut self, dir: &Dir, name: &str) -> Result<Vec<String>, DiscoverError> {
        Ok(self.open_and_list(dir, name)?.1)
    }

    /// Opens the directory `name` inside `dir` and lists its entries, sorted. The returned
    /// [`Dir`] serves for reading the entries, which saves a second `open` of the directory.
    pub(crate) fn open_and_list(
        &mut self,
        dir: &Dir,
        name: &str,
    ) -> Result<(Dir, Vec<String>), DiscoverError> {
        open_and_list_in(self.host, &mut self.buffer, dir, name)
    }

    /// Opens the directory at the absolute host path `host_path` and lists its entries, like
    /// [`Sysfs::open_and_list`].
    pub(crate) fn open_and_list_path(
        &mut self,
        host_path: &str,
    ) -> Result<(Dir, Vec<String>), DiscoverError> {
        let relative = match host_path.trim_start_matches('/') {
            "" => ".",
            relative => relative,
        };
        let (mut dir, names) = open_and_list_in(self.host, &mut self.buffer, &self.root, relative)?;
        dir.path = host_path.to_owned();
        Ok((dir, names))
    }
}

/// Opens the directory `name` inside `dir` under `host` and lists its entries, sorted, using
/// `buffer` for the records. A missing directory is an empty list.
fn open_and_list_in(
    host: &HostRoot,
    buffer: &mut Vec<u8>,
    dir: &Dir,
    name: &str,
) -> Result<(Dir, Vec<String>), DiscoverError> {
    let path = format!("{}/{name}", dir.path);
    let Some(dir_fd) = dir.raw() else {
        return Ok((Dir { fd: None, path }, Vec::new()));
    };
    let listed = open_listing(dir_fd, name).and_then(|fd| {
        let names = match &fd {
            Some(fd) => read_entries(fd.as_raw_fd(), buffer)?,
            None => Vec::new(),
        };
        Ok((fd, names))
    });
    match listed {
        Ok((fd, names)) => Ok((Dir { fd, path }, names)),
        Err(source) => Err(DiscoverError::ListDir {
            path: file_path(host, dir, name),
            source,
        }),
    }
}

/// Full path of `name` inside `dir` under `host`, for error messages.
pub(crate) fn file_path(host: &HostRoot, dir: &Dir, name: &str) -> PathBuf {
    host.path(format!("{}/{name}", dir.path))
}

/// Calls `f` with `name` as a C string, built on the stack for names shorter than 256 bytes.
/// Returns `None` when `name` contains a NUL byte, which no file name can contain.
fn with_c_name<T>(name: &str, f: impl FnOnce(&CStr) -> T) -> Option<T> {
    let bytes = name.as_bytes();
    if bytes.contains(&0) {
        return None;
    }
    let mut stack = [0u8; 256];
    if bytes.len() < stack.len() {
        stack[..bytes.len()].copy_from_slice(bytes);
        let c_name = CStr::from_bytes_until_nul(&stack[..=bytes.len()]).ok()?;
        return Some(f(c_name));
    }
    CString::new(bytes).ok().map(|c_name| f(&c_name))
}

fn invalid_name() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "file name contains a NUL byte")
}

/// Opens a directory with `O_PATH`; `None` when it does not exist.
fn open_path_dir(parent: RawFd, name: &CStr) -> io::Result<Option<OwnedFd>> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated, and `parent` is an open descriptor or AT_FDCWD.
    let fd = unsafe { libc::openat(parent, name.as_ptr(), flags) };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => Ok(None),
            _ => Err(error),
        };
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Reads the file `name` in `dir_fd` into `buffer`; false when it does not exist. Stops at the
/// first short read, so a file shorter than [`CHUNK`] costs one `read`.
fn read_into(dir_fd: RawFd, name: &str, buffer: &mut Vec<u8>) -> io::Result<bool> {
    // SAFETY: `c_name` is NUL-terminated and `dir_fd` an open descriptor.
    let fd = with_c_name(name, |c_name| unsafe {
        libc::openat(dir_fd, c_name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)
    })
    .ok_or_else(invalid_name)?;
    if fd < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::NotFound {
            return Ok(false);
        }
        return Err(error);
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    buffer.clear();
    loop {
        buffer.reserve(CHUNK);
        let spare = buffer.spare_capacity_mut();
        let requested = spare.len().min(CHUNK);
        // SAFETY: `spare` is writable for `requested` bytes, and `read` writes at most that many.
        let count = unsafe { libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), requested) };
        if count < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        let count = count.unsigned_abs();
        // SAFETY: `read` initialised the first `count` bytes of the spare capacity.
        unsafe { buffer.set_len(buffer.len() + count) };
        if count < requested {
            return Ok(true);
        }
    }
}

/// Opens the directory `name` in `dir_fd` for listing; `None` when it does not exist.
fn open_listing(dir_fd: RawFd, name: &str) -> io::Result<Option<OwnedFd>> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: `c_name` is NUL-terminated and `dir_fd` an open descriptor.
    let fd = with_c_name(name, |c_name| unsafe {
        libc::openat(dir_fd, c_name.as_ptr(), flags)
    })
    .ok_or_else(invalid_name)?;
    if fd < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => Ok(None),
            _ => Err(error),
        };
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Lists the open directory `fd` with `getdents64`, using `buffer` for the records.
fn read_entries(fd: RawFd, buffer: &mut Vec<u8>) -> io::Result<Vec<String>> {
    buffer.clear();
    buffer.reserve(2 * CHUNK);
    let capacity = buffer.capacity();
    let mut names = Vec::new();
    loop {
        // SAFETY: the buffer is writable for `capacity` bytes, and getdents64 writes at most
        // that many.
        let count =
            unsafe { libc::syscall(libc::SYS_getdents64, fd, buffer.as_mut_ptr(), capacity) };
        if count < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        let count = usize::try_from(count).unwrap_or(0);
        if count == 0 {
            break;
        }
        // SAFETY: getdents64 initialised the first `count` bytes.
        unsafe { buffer.set_len(count) };
        parse_dirents(buffer, &mut names);
        buffer.clear();
    }
    names.sort();
    Ok(names)
}

/// Appends the names of the `linux_dirent64` records in `records`, except `.` and `..`.
fn parse_dirents(records: &[u8], names: &mut Vec<String>) {
    // Record layout: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1), then the name,
    // NUL-terminated and padded to `d_reclen`.
    const NAME_OFFSET: usize = 19;
    let mut offset = 0;
    while offset + NAME_OFFSET <= records.len() {
        let length = usize::from(u16::from_ne_bytes([
            records[offset + 16],
            records[offset + 17],
        ]));
        if length < NAME_OFFSET || offset + length > records.len() {
            break;
        }
        let name = &records[offset + NAME_OFFSET..offset + length];
        let end = name
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(name.len());
        if let Ok(name) = std::str::from_utf8(&name[..end])
            && name != "."
            && name != ".."
        {
            names.push(name.to_owned());
        }
        offset += length;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cpu = dir.path().join("sys/devices/system/cpu");
        std::fs::create_dir_all(cpu.join("cpu0")).unwrap();
        std::fs::write(cpu.join("online"), "0-3\n").unwrap();
        std::fs::write(cpu.join("cpu0/core_id"), "7\n\0").unwrap();
        std::fs::write(cpu.join("cpu0/mask"), "0x0000000f\n").unwrap();
        std::fs::write(cpu.join("cpu0/bad"), "seven\n").unwrap();
        std::fs::write(cpu.join("long"), "x".repeat(3 * CHUNK + 5)).unwrap();
        dir
    }

    #[test]
    fn reads_relative_to_directories() {
        let dir = tree();
        let host = HostRoot::at(dir.path());
        let mut sysfs = Sysfs::open(&host).unwrap();
        let cpu_dir = sysfs.dir("/sys/devices/system/cpu").unwrap();
        assert!(cpu_dir.exists());
        assert_eq!(
            sysfs.list_at(&cpu_dir, "cpu0").unwrap(),
            ["bad", "core_id", "mask"]
        );
        assert!(sysfs.list_at(&cpu_dir, "cpu7").unwrap().is_empty());
        assert_eq!(sysfs.text(&cpu_dir, "online").unwrap(), Some("0-3"));
        assert_eq!(
            sysfs.value::<CpuSet>(&cpu_dir, "online").unwrap(),
            Some("0-3".parse().unwrap())
        );
        assert_eq!(sysfs.int(&cpu_dir, "cpu0/core_id").unwrap(), Some(7));
        assert_eq!(
            sysfs.mask(&cpu_dir, "cpu0/mask").unwrap(),
            Some("0-3".parse().unwrap())
        );
        assert_eq!(sysfs.list(&cpu_dir).unwrap(), ["cpu0", "long", "online"]);
    }

    #[test]
    fn lists_directories_with_many_entries() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..500).map(|index| format!("entry-{index:04}")).collect();
        for name in &names {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let host = HostRoot::at(dir.path());
        let mut sysfs = Sysfs::open(&host).unwrap();
        let root = sysfs.dir("/").unwrap();
        assert_eq!(sysfs.list(&root).unwrap(), names);
    }

    #[test]
    fn reads_files_longer_than_one_chunk() {
        let dir = tree();
        let host = HostRoot::at(dir.path());
        let mut sysfs = Sysfs::open(&host).unwrap();
        let cpu_dir = sysfs.dir("/sys/devices/system/cpu").unwrap();
        assert_eq!(
            sysfs.text(&cpu_dir, "long").unwrap().map(str::len),
            Some(3 * CHUNK + 5)
        );
    }

    #[test]
    fn missing_files_and_directories_are_none() {
        let dir = tree();
        let host = HostRoot::at(dir.path());
        let mut sysfs = Sysfs::open(&host).unwrap();
        let node_dir = sysfs.dir("/sys/devices/system/node").unwrap();
        assert!(!node_dir.exists());
        assert!(sysfs.list_at(&node_dir, "node0").unwrap().is_empty());
        assert_eq!(sysfs.text(&node_dir, "online").unwrap(), None);
        assert!(sysfs.list(&node_dir).unwrap().is_empty());
        let cpu_dir = sysfs.dir("/sys/devices/system/cpu").unwrap();
        assert_eq!(sysfs.int(&cpu_dir, "cpu9/core_id").unwrap(), None);
        assert!(!sysfs.exists(&cpu_dir, "cpu9"));
        assert!(sysfs.exists(&cpu_dir, "cpu0"));
    }

    #[test]
    fn parse_errors_name_the_file() {
        let dir = tree();
        let host = HostRoot::at(dir.path());
        let mut sysfs = Sysfs::open(&host).unwrap();
        let cpu_dir = sysfs.dir("/sys/devices/system/cpu").unwrap();
        let error = sysfs.int(&cpu_dir, "cpu0/bad").unwrap_err();
        assert_eq!(
            error.path(),
            dir.path().join("sys/devices/system/cpu/cpu0/bad")
        );
    }

    #[test]
    fn missing_root_reads_as_empty() {
        let host = HostRoot::at("/nonexistent/telco-topo-root");
        let mut sysfs = Sysfs::open(&host).unwrap();
        let cpu_dir = sysfs.dir("/sys/devices/system/cpu").unwrap();
        assert!(!cpu_dir.exists());
        assert_eq!(sysfs.text(&cpu_dir, "online").unwrap(), None);
    }
}
