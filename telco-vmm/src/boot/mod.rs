//! x86_64 direct kernel boot: loading the kernel and initramfs, and writing the boot structures
//! (zero page or PVH start info, e820 map, MP table, GDT, page tables) that the boot vCPU's
//! registers point at.
//!
//! Two protocols are supported:
//! - the Linux 64-bit boot protocol, for a bzImage (entry at load address + 0x200) and for an ELF
//!   vmlinux without a PVH note (entry at the ELF entry point), with the zero page at 0x7000;
//! - PVH, for an ELF vmlinux that carries the `XEN_ELFNOTE_PHYS32_ENTRY` note: the vCPU starts in
//!   32-bit protected mode with `hvm_start_info` at 0x6000.
//!
//! # Limitations
//! - Only the first GiB is identity-mapped for the 64-bit entry, as the boot protocol requires
//!   for the kernel, zero page and command line; the kernel builds its own page tables for the
//!   rest.
//! - The MP table tells the guest about its vCPUs and the IOAPIC. ACPI tables are written only
//!   when the VM has virtio devices to announce, and then Linux uses their MADT instead.

pub(crate) mod acpi;
pub(crate) mod cpu;
pub(crate) mod mptable;
mod pvh;
mod zero_page;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{BzImage, Elf, KernelLoader, PvhBootCapability};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion};

use crate::error::VmmError;
use crate::layout::{CMDLINE_MAX_SIZE, CMDLINE_START, EBDA_START, HIMEM_START, MMIO_GAP_START};
use crate::memory::GuestMemory;

/// Boot protocol versions: 2.12 is the first with `XLF_KERNEL_64`.
const MIN_BOOT_PROTOCOL: u16 = 0x020c;
/// `xloadflags` bit: the kernel has the 64-bit entry point at load address + 0x200.
const XLF_KERNEL_64: u16 = 1;
/// Offset of the 64-bit entry point from the protected-mode kernel's load address.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// The kernel decompresses itself at or above 16 MiB (`LOAD_PHYSICAL_ADDR` of x86_64 builds).
const KERNEL_MIN_RUN_ADDRESS: u64 = 0x100_0000;

/// e820 type of usable RAM.
pub(crate) const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
pub(crate) const E820_RESERVED: u32 = 2;

/// The first instruction the boot vCPU runs, and the CPU mode it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryPoint {
    /// Linux 64-bit boot protocol: long mode, RSI = zero page.
    Linux64(GuestAddress),
    /// PVH: 32-bit protected mode without paging, RBX = `hvm_start_info`.
    Pvh(GuestAddress),
}

impl EntryPoint {
    pub(crate) fn address(self) -> GuestAddress {
        match self {
            EntryPoint::Linux64(addr) | EntryPoint::Pvh(addr) => addr,
        }
    }
}

/// A kernel loaded into guest memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadedKernel {
    pub(crate) entry: EntryPoint,
    /// The bzImage's setup header, copied into the zero page.
    pub(crate) setup_header: Option<setup_header>,
    /// First byte after the loaded image.
    pub(crate) end: u64,
}

/// The initramfs's place in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InitrdPlacement {
    pub(crate) address: GuestAddress,
    pub(crate) size: u64,
}

/// Kernel image formats recognized by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF vmlinux.
    Elf,
    /// A bzImage (`HdrS` at offset 0x202).
    BzImage,
}

/// Reads the image's magic numbers to tell an ELF vmlinux from a bzImage.
pub fn detect_kernel_format(path: &Path) -> Result<Option<KernelFormat>, VmmError> {
    let file_error = |source| VmmError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(file_error)?;
    let mut head = [0u8; 0x206];
    let read = read_up_to(&mut file, &mut head).map_err(file_error)?;
    if read >= 4 && head[..4] == *b"\x7fELF" {
        return Ok(Some(KernelFormat::Elf));
    }
    if read >= 0x206 && head[0x202..0x206] == *b"HdrS" {
        return Ok(Some(KernelFormat::BzImage));
    }
    Ok(None)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Loads the kernel at `path` into `mem`, choosing PVH when an ELF has the PVH note.
pub(crate) fn load_kernel(mem: &GuestMemory, path: &Path) -> Result<LoadedKernel, VmmError> {
    let format = detect_kernel_format(path)?.ok_or_else(|| {
        VmmError::InvalidConfig(format!(
            "kernel {} is neither an ELF vmlinux nor a bzImage",
            path.display()
        ))
    })?;
    let mut file = File::open(path).map_err(|source| VmmError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let load_error = |source| VmmError::KernelLoad {
        path: path.to_path_buf(),
        source,
    };
    match format {
        KernelFormat::Elf => {
            let result = Elf::load(mem, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(load_error)?;
            let entry = match result.pvh_boot_cap {
                PvhBootCapability::PvhEntryPresent(addr) => EntryPoint::Pvh(addr),
                _ => EntryPoint::Linux64(result.kernel_load),
            };
            Ok(LoadedKernel {
                entry,
                setup_header: None,
                end: result.kernel_end,
            })
        }
        KernelFormat::BzImage => {
            let result = BzImage::load(mem, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(load_error)?;
            let header = result
                .setup_header
                .ok_or_else(|| VmmError::InvalidConfig("bzImage without setup header".into()))?;
            let (version, xloadflags) = (header.version, header.xloadflags);
            if version < MIN_BOOT_PROTOCOL || xloadflags & XLF_KERNEL_64 == 0 {
                return Err(VmmError::KernelTooOld {
                    path: path.to_path_buf(),
                    version,
                    xloadflags,
                });
            }
            Ok(LoadedKernel {
                entry: EntryPoint::Linux64(
                    result.kernel_load.unchecked_add(BZIMAGE_64BIT_ENTRY_OFFSET),
                ),
                setup_header: Some(header),
                end: result.kernel_end,
            })
        }
    }
}

/// Loads the initramfs at the top of low RAM, below the kernel's `initrd_addr_max`, and above
/// the area the kernel decompresses itself into.
pub(crate) fn load_initrd(
    mem: &GuestMemory,
    path: &Path,
    kernel: &LoadedKernel,
) -> Result<InitrdPlacement, VmmError> {
    let file_error = |source| VmmError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(file_error)?;
    let size = file.seek(SeekFrom::End(0)).map_err(file_error)?;
    file.seek(SeekFrom::Start(0)).map_err(file_error)?;

    let placement = place_initrd(mem, size, kernel).ok_or_else(|| VmmError::InitrdTooLarge {
        path: path.to_path_buf(),
        size,
        limit: initrd_limit(mem, kernel),
    })?;
    let len = usize::try_from(size).map_err(|_| VmmError::InitrdTooLarge {
        path: path.to_path_buf(),
        size,
        limit: initrd_limit(mem, kernel),
    })?;
    mem.read_exact_volatile_from(placement.address, &mut file, len)
        .map_err(VmmError::guest_write("initramfs", placement.address.0))?;
    Ok(placement)
}

/// The first address above the highest byte the initramfs may occupy.
fn initrd_limit(mem: &GuestMemory, kernel: &LoadedKernel) -> u64 {
    let low_ram_end = mem
        .iter()
        .next()
        .map_or(0, |region| region.start_addr().0 + region.len())
        .min(MMIO_GAP_START);
    let header_max = kernel.setup_header.map_or(u64::from(u32::MAX), |header| {
        u64::from(header.initrd_addr_max)
    });
    low_ram_end.min(header_max.saturating_add(1))
}

/// Chooses a page-aligned address for `size` bytes of initramfs, or `None` when it would
/// overlap the kernel.
pub(crate) fn place_initrd(
    mem: &GuestMemory,
    size: u64,
    kernel: &LoadedKernel,
) -> Option<InitrdPlacement> {
    let limit = initrd_limit(mem, kernel);
    let start = limit.checked_sub(size)? & !0xfff;
    let kernel_floor = match kernel.setup_header {
        Some(header) => {
            let init_size = u64::from(header.init_size);
            kernel.end.max(KERNEL_MIN_RUN_ADDRESS + init_size)
        }
        None => kernel.end,
    };
    (start >= kernel_floor).then_some(InitrdPlacement {
        address: GuestAddress(start),
        size,
    })
}

/// Writes the command line at its fixed address.
pub(crate) fn write_cmdline(mem: &GuestMemory, cmdline: &Cmdline) -> Result<(), VmmError> {
    linux_loader::loader::load_cmdline(mem, GuestAddress(CMDLINE_START), cmdline).map_err(
        |source| VmmError::KernelLoad {
            path: PathBuf::from("<command line>"),
            source,
        },
    )
}

/// Builds a command line from `text`, checking it fits the boot protocol's window.
pub(crate) fn parse_cmdline(text: &str) -> Result<Cmdline, VmmError> {
    Cmdline::try_from(text, CMDLINE_MAX_SIZE).map_err(VmmError::Cmdline)
}

/// One e820 entry: start, size and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct E820Entry {
    pub(crate) addr: u64,
    pub(crate) size: u64,
    pub(crate) kind: u32,
}

/// The e820 map: base memory, the reserved MP table and BIOS area, then every RAM region
/// from 1 MiB up.
pub(crate) fn e820_map(mem: &GuestMemory) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: EBDA_START,
            kind: E820_RAM,
        },
        E820Entry {
            addr: EBDA_START,
            size: HIMEM_START - EBDA_START,
            kind: E820_RESERVED,
        },
    ];
    for region in mem.iter() {
        let start = region.start_addr().raw_value().max(HIMEM_START);
        let end = region.start_addr().raw_value() + region.len();
        if end > start {
            map.push(E820Entry {
                addr: start,
                size: end - start,
                kind: E820_RAM,
            });
        }
    }
    map
}

/// Writes the zero page or the PVH start info for `kernel`, pointing at the ACPI RSDP when
/// there is one.
pub(crate) fn write_boot_params(
    mem: &GuestMemory,
    kernel: &LoadedKernel,
    cmdline: &Cmdline,
    initrd: Option<InitrdPlacement>,
    acpi_rsdp: Option<u64>,
) -> Result<(), VmmError> {
    let cmdline_size = cmdline
        .as_cstring()
        .map_err(VmmError::Cmdline)?
        .as_bytes_with_nul()
        .len();
    let map = e820_map(mem);
    match kernel.entry {
        EntryPoint::Linux64(_) => zero_page::write(
            mem,
            kernel.setup_header,
            cmdline_size,
            initrd,
            acpi_rsdp,
            &map,
        ),
        EntryPoint::Pvh(_) => pvh::write(mem, initrd, acpi_rsdp, &map),
    }
}

/// Writes `bytes` at `addr`, naming the structure in the error.
pub(crate) fn write_bytes(
    mem: &GuestMemory,
    what: &'static str,
    addr: u64,
    bytes: &[u8],
) -> Result<(), VmmError> {
    mem.write_slice(bytes, GuestAddress(addr))
        .map_err(VmmError::guest_write(what, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryBackend, create_guest_memory};

    fn kernel_ending_at(end: u64) -> LoadedKernel {
        LoadedKernel {
            entry: EntryPoint::Linux64(GuestAddress(HIMEM_START)),
            setup_header: None,
            end,
        }
    }

    #[test]
    fn e820_reserves_mp_table_and_bios_area() {
        let mem = create_guest_memory(64 << 20, &MemoryBackend::Anonymous).unwrap();
        let map = e820_map(&mem);
        assert_eq!(
            map[0],
            E820Entry {
                addr: 0,
                size: 0x9_fc00,
                kind: E820_RAM
            }
        );
        assert_eq!(map[1].addr, 0x9_fc00);
        assert_eq!(map[1].kind, E820_RESERVED);
        assert_eq!(
            map[2],
            E820Entry {
                addr: HIMEM_START,
                size: (64 << 20) - HIMEM_START,
                kind: E820_RAM
            }
        );
    }

    #[test]
    fn initrd_goes_page_aligned_to_top_of_ram() {
        let mem = create_guest_memory(64 << 20, &MemoryBackend::Anonymous).unwrap();
        let placement = place_initrd(&mem, 0x1234, &kernel_ending_at(0x20_0000)).unwrap();
        assert_eq!(placement.address.0 % 0x1000, 0);
        assert!(placement.address.0 + 0x1234 <= 64 << 20);
        assert!(placement.address.0 + 0x1234 + 0x1000 > 64 << 20);
    }

    #[test]
    fn initrd_overlapping_kernel_is_rejected() {
        let mem = create_guest_memory(16 << 20, &MemoryBackend::Anonymous).unwrap();
        assert_eq!(
            place_initrd(&mem, 15 << 20, &kernel_ending_at(0x20_0000)),
            None
        );
    }

    #[test]
    fn cmdline_longer_than_window_is_rejected() {
        let long = "a".repeat(CMDLINE_MAX_SIZE + 1);
        assert!(matches!(parse_cmdline(&long), Err(VmmError::Cmdline(_))));
    }

    /// Debian's installed kernel; panics with the reason when there is none.
    fn debian_kernel() -> PathBuf {
        let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
            .expect("/boot is readable")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .collect();
        kernels.sort();
        kernels
            .pop()
            .expect("no /boot/vmlinuz-*: install linux-image-amd64")
    }

    #[test]
    fn debian_bzimage_loads_with_64bit_entry() {
        let mem = create_guest_memory(256 << 20, &MemoryBackend::Anonymous).unwrap();
        let kernel = load_kernel(&mem, &debian_kernel()).unwrap();
        assert_eq!(
            kernel.entry,
            EntryPoint::Linux64(GuestAddress(HIMEM_START + 0x200))
        );
        let header = kernel.setup_header.expect("bzImage has a setup header");
        let version = header.version;
        assert!(version >= MIN_BOOT_PROTOCOL, "boot protocol {version:#x}");
        assert!(kernel.end > HIMEM_START);

        let initrd = place_initrd(&mem, 8 << 20, &kernel).expect("8 MiB initrd fits in 256 MiB");
        let init_size = u64::from(header.init_size);
        assert!(initrd.address.0 >= KERNEL_MIN_RUN_ADDRESS + init_size);
    }

    #[test]
    fn debian_bzimage_boot_params_carry_its_header() {
        let mem = create_guest_memory(256 << 20, &MemoryBackend::Anonymous).unwrap();
        let kernel = load_kernel(&mem, &debian_kernel()).unwrap();
        let cmdline = parse_cmdline(DEFAULT_TEST_CMDLINE).unwrap();
        write_cmdline(&mem, &cmdline).unwrap();
        write_boot_params(&mem, &kernel, &cmdline, None, None).unwrap();
        let params: linux_loader::loader::bootparam::boot_params = mem
            .read_obj(GuestAddress(crate::layout::ZERO_PAGE_START))
            .unwrap();
        let (loader, cmd_line_ptr, xloadflags) = (
            params.hdr.type_of_loader,
            params.hdr.cmd_line_ptr,
            params.hdr.xloadflags,
        );
        assert_eq!(loader, 0xff);
        assert_eq!(cmd_line_ptr, 0x2_0000);
        assert!(xloadflags & XLF_KERNEL_64 != 0);
        assert_eq!(params.e820_entries, 3);
    }

    const DEFAULT_TEST_CMDLINE: &str = "console=ttyS0 panic=1";

    #[test]
    fn unknown_kernel_format_is_none() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), [0u8; 4096]).unwrap();
        assert_eq!(detect_kernel_format(file.path()).unwrap(), None);
    }
}
