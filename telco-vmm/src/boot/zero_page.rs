//! The Linux zero page (`struct boot_params`), from the kernel's `Documentation/arch/x86/boot.rst`.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use vm_memory::{Bytes, GuestAddress};

use super::{E820Entry, InitrdPlacement};
use crate::error::VmmError;
use crate::layout::{CMDLINE_START, ZERO_PAGE_START};
use crate::memory::GuestMemory;

/// `boot_flag`: the 0xAA55 boot signature.
const BOOT_FLAG: u16 = 0xaa55;
/// `header`: "HdrS".
const HDRS_MAGIC: u32 = 0x5372_6448;
/// `type_of_loader`: 0xFF, a boot loader without an assigned id.
const LOADER_UNDEFINED: u8 = 0xff;
/// `kernel_alignment` for an ELF vmlinux, which has no setup header of its own.
const ELF_KERNEL_ALIGNMENT: u32 = 0x100_0000;

/// Fills and writes the zero page.
pub(super) fn write(
    mem: &GuestMemory,
    image_header: Option<setup_header>,
    cmdline_size: usize,
    initrd: Option<InitrdPlacement>,
    acpi_rsdp: Option<u64>,
    e820: &[E820Entry],
) -> Result<(), VmmError> {
    let mut params = build(image_header, cmdline_size, initrd, e820)?;
    params.acpi_rsdp_addr = acpi_rsdp.unwrap_or(0);
    mem.write_obj(params, GuestAddress(ZERO_PAGE_START))
        .map_err(VmmError::guest_write("zero page", ZERO_PAGE_START))
}

pub(super) fn build(
    image_header: Option<setup_header>,
    cmdline_size: usize,
    initrd: Option<InitrdPlacement>,
    e820: &[E820Entry],
) -> Result<boot_params, VmmError> {
    let mut params = boot_params::default();
    match image_header {
        Some(header) => params.hdr = header,
        None => params.hdr.kernel_alignment = ELF_KERNEL_ALIGNMENT,
    }
    params.hdr.boot_flag = BOOT_FLAG;
    params.hdr.header = HDRS_MAGIC;
    params.hdr.type_of_loader = LOADER_UNDEFINED;
    params.hdr.cmd_line_ptr = fit_u32("command line address", CMDLINE_START)?;
    params.hdr.cmdline_size = fit_u32("command line size", cmdline_size as u64)?;
    if let Some(initrd) = initrd {
        params.hdr.ramdisk_image = fit_u32("initramfs address", initrd.address.0)?;
        params.hdr.ramdisk_size = fit_u32("initramfs size", initrd.size)?;
    }

    if e820.len() > params.e820_table.len() {
        return Err(VmmError::InvalidConfig(format!(
            "{} e820 entries exceed the zero page's {}",
            e820.len(),
            params.e820_table.len()
        )));
    }
    for (slot, entry) in params.e820_table.iter_mut().zip(e820) {
        *slot = boot_e820_entry {
            addr: entry.addr,
            size: entry.size,
            r#type: entry.kind,
        };
    }
    params.e820_entries = u8::try_from(e820.len()).unwrap_or(u8::MAX);
    Ok(params)
}

fn fit_u32(what: &str, value: u64) -> Result<u32, VmmError> {
    u32::try_from(value)
        .map_err(|_| VmmError::InvalidConfig(format!("{what} {value:#x} does not fit in 32 bits")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::{E820_RAM, E820_RESERVED};
    use vm_memory::ByteValued;

    #[test]
    fn zero_page_fields_sit_at_documented_offsets() {
        let e820 = [
            E820Entry {
                addr: 0,
                size: 0x9_fc00,
                kind: E820_RAM,
            },
            E820Entry {
                addr: 0x9_fc00,
                size: 0x6_0400,
                kind: E820_RESERVED,
            },
        ];
        let initrd = InitrdPlacement {
            address: GuestAddress(0x0800_0000),
            size: 0x1234,
        };
        let params = build(None, 20, Some(initrd), &e820).unwrap();
        let bytes = params.as_slice();
        let u16_at = |off: usize| u16::from_le_bytes([bytes[off], bytes[off + 1]]);
        let u32_at = |off: usize| u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());

        assert_eq!(u16_at(0x1fe), 0xaa55);
        assert_eq!(u32_at(0x202), 0x5372_6448);
        assert_eq!(bytes[0x210], 0xff);
        assert_eq!(u32_at(0x218), 0x0800_0000);
        assert_eq!(u32_at(0x21c), 0x1234);
        assert_eq!(u32_at(0x228), 0x2_0000);
        assert_eq!(u32_at(0x230), 0x100_0000);
        assert_eq!(u32_at(0x238), 20);
        assert_eq!(bytes[0x1e8], 2);
        // Second e820 entry: 20 bytes each from 0x2d0.
        assert_eq!(u32_at(0x2d0 + 20), 0x9_fc00);
        assert_eq!(u32_at(0x2d0 + 20 + 16), E820_RESERVED);
    }
}
