//! A writer of initramfs archives in the kernel's `newc` cpio format (the kernel's
//! `Documentation/driver-api/early-userspace/buffer-format.rst`), for building small guest root
//! filesystems without external tools.
//!
//! ```
//! use telco_vmm::initramfs::NewcWriter;
//!
//! let mut archive = NewcWriter::new(Vec::new());
//! archive.directory("dev", 0o755)?;
//! archive.char_device("dev/console", 0o600, 5, 1)?;
//! archive.file("init", 0o755, b"#!/bin/sh\necho hello\n")?;
//! let bytes = archive.finish()?;
//! assert!(bytes.starts_with(b"070701"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Write};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Writes `newc` cpio entries to a writer; [`finish`](Self::finish) appends the trailer.
#[derive(Debug)]
pub struct NewcWriter<W: Write> {
    out: W,
    written: u64,
    next_inode: u32,
}

impl<W: Write> NewcWriter<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W) -> Self {
        NewcWriter {
            out,
            written: 0,
            next_inode: 1,
        }
    }

    /// Adds a directory. Parents must be added first; paths have no leading `/`.
    pub fn directory(&mut self, path: &str, permissions: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | (permissions & 0o7777), 2, (0, 0), &[])
    }

    /// Adds a regular file with `contents`.
    pub fn file(&mut self, path: &str, permissions: u32, contents: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | (permissions & 0o7777), 1, (0, 0), contents)
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Adds a character device node, such as `dev/console` (5, 1).
    pub fn char_device(
        &mut self,
        path: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        self.entry(
            path,
            S_IFCHR | (permissions & 0o7777),
            1,
            (major, minor),
            &[],
        )
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        links: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        if path.starts_with('/') || path.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio path {path:?} must be relative and without NUL"),
            ));
        }
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path} is larger than 4 GiB"),
            )
        })?;
        let inode = self.next_inode;
        self.next_inode += 1;
        self.write_header(path, inode, mode, links, size, rdev)?;
        self.write_padded(data)
    }

    fn write_header(
        &mut self,
        path: &str,
        inode: u32,
        mode: u32,
        links: u32,
        size: u32,
        rdev: (u32, u32),
    ) -> io::Result<()> {
        let name_size = u32::try_from(path.len() + 1)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio path too long"))?;
        // Fields: ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
        // rdevminor, namesize, check; each eight hex digits.
        let fields = [
            inode, mode, 0, 0, links, 0, size, 0, 0, rdev.0, rdev.1, name_size, 0,
        ];
        let mut header = String::with_capacity(110);
        header.push_str(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.write_raw(header.as_bytes())?;
        let mut name = path.as_bytes().to_vec();
        name.push(0);
        self.write_padded(&name)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes `bytes` and pads the archive to a multiple of four bytes.
    fn write_padded(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_raw(bytes)?;
        let padding = (4 - (self.written % 4) as usize) % 4;
        self.write_raw(&[0u8; 3][..padding])
    }

    /// Appends the trailer entry and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_header(TRAILER, 0, 0, 1, 0, (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_entry_has_header_name_and_padding() {
        let mut archive = NewcWriter::new(Vec::new());
        archive.file("init", 0o755, b"abcde").unwrap();
        let bytes = archive.finish().unwrap();
        assert_eq!(&bytes[..6], b"070701");
        let field = |i: usize| {
            let start = 6 + i * 8;
            u32::from_str_radix(std::str::from_utf8(&bytes[start..start + 8]).unwrap(), 16).unwrap()
        };
        assert_eq!(field(1), 0o100_755);
        assert_eq!(field(6), 5);
        assert_eq!(field(11), 5); // "init" plus NUL
        // Header 110 bytes + name 5 = 115, padded to 116; then data.
        assert_eq!(&bytes[116..121], b"abcde");
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn absolute_path_is_rejected() {
        let mut archive = NewcWriter::new(Vec::new());
        assert!(archive.file("/init", 0o755, b"").is_err());
    }

    #[test]
    fn archive_lists_with_cpio_tool() {
        let mut archive = NewcWriter::new(Vec::new());
        archive.directory("bin", 0o755).unwrap();
        archive.file("bin/x", 0o644, b"1234567").unwrap();
        archive.symlink("sh", "bin/x").unwrap();
        archive.char_device("console", 0o600, 5, 1).unwrap();
        let bytes = archive.finish().unwrap();
        let mut child = match std::process::Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => panic!("cpio is needed to check the archive format (apt install cpio): {e}"),
        };
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "bin\nbin/x\nsh\nconsole\n"
        );
    }
}
