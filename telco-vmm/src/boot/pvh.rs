//! PVH boot: `hvm_start_info`, its memory map and module list, from Xen's `arch-x86/hvm/start_info.h`.

use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use vm_memory::{Bytes, GuestAddress};

use super::{E820Entry, InitrdPlacement};
use crate::error::VmmError;
use crate::layout::{CMDLINE_START, PVH_INFO_START, PVH_MEMMAP_START, PVH_MODLIST_START};
use crate::memory::GuestMemory;

/// `hvm_start_info.magic`.
const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;

pub(super) fn write(
    mem: &GuestMemory,
    initrd: Option<InitrdPlacement>,
    acpi_rsdp: Option<u64>,
    e820: &[E820Entry],
) -> Result<(), VmmError> {
    let mut info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC,
        version: 1,
        cmdline_paddr: CMDLINE_START,
        memmap_paddr: PVH_MEMMAP_START,
        memmap_entries: u32::try_from(e820.len()).unwrap_or(u32::MAX),
        rsdp_paddr: acpi_rsdp.unwrap_or(0),
        ..Default::default()
    };
    if let Some(initrd) = initrd {
        let module = hvm_modlist_entry {
            paddr: initrd.address.0,
            size: initrd.size,
            ..Default::default()
        };
        mem.write_obj(module, GuestAddress(PVH_MODLIST_START))
            .map_err(VmmError::guest_write("PVH module list", PVH_MODLIST_START))?;
        info.nr_modules = 1;
        info.modlist_paddr = PVH_MODLIST_START;
    }
    for (index, entry) in e820.iter().enumerate() {
        let addr = PVH_MEMMAP_START + (index * size_of::<hvm_memmap_table_entry>()) as u64;
        let table_entry = hvm_memmap_table_entry {
            addr: entry.addr,
            size: entry.size,
            type_: entry.kind,
            reserved: 0,
        };
        mem.write_obj(table_entry, GuestAddress(addr))
            .map_err(VmmError::guest_write("PVH memory map", addr))?;
    }
    mem.write_obj(info, GuestAddress(PVH_INFO_START))
        .map_err(VmmError::guest_write("PVH start info", PVH_INFO_START))
}
