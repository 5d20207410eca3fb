//! Guest physical memory layout on x86_64.
//!
//! The addresses follow the layout that Firecracker and Cloud Hypervisor use, so guest kernels
//! tested on those VMMs find their boot structures where they expect them.

/// Boot GDT: NULL, code, data and TSS descriptors, 8 bytes each.
pub const BOOT_GDT_START: u64 = 0x500;
/// Boot IDT: one zero entry with limit 7, so any exception before the kernel installs its own
/// IDT ends in a triple fault instead of running garbage.
pub const BOOT_IDT_START: u64 = 0x520;
/// PVH `hvm_start_info`.
pub const PVH_INFO_START: u64 = 0x6000;
/// PVH module list (the initramfs).
pub const PVH_MODLIST_START: u64 = 0x6040;
/// Linux zero page (`boot_params`), or the PVH memory map.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// PVH e820 memory map, after the start info and module list.
pub const PVH_MEMMAP_START: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Level-4 page table (PML4).
pub const PML4_START: u64 = 0x9000;
/// Page-directory-pointer table.
pub const PDPTE_START: u64 = 0xa000;
/// Page directory with 512 entries of 2 MiB: the first GiB identity-mapped.
pub const PDE_START: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE_START: u64 = 0x2_0000;
/// Maximum command line length, including the terminating NUL.
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// MP floating pointer and configuration table: the last KiB of the 640 KiB base memory, where
/// Linux scans for them.
pub const MPTABLE_START: u64 = 0x9_fc00;
/// End of the base memory that the e820 map reports as RAM.
pub const EBDA_START: u64 = MPTABLE_START;
/// First address above the legacy BIOS area: the lowest kernel load address.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO hole, which holds the virtio-mmio devices and the APICs.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// End of the 32-bit MMIO hole; RAM beyond the hole continues here.
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// First virtio-mmio device window.
pub const VIRTIO_MMIO_START: u64 = 0xd000_0000;
/// Size of one virtio-mmio device window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// IOAPIC base address.
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// Local APIC base address.
pub const APIC_START: u64 = 0xfee0_0000;
/// Three pages that KVM needs for the real-mode TSS on Intel hosts.
pub const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;

/// I/O port of the first 16550 UART (COM1).
pub const SERIAL_PORT: u16 = 0x3f8;
/// Interrupt line of COM1.
pub const SERIAL_IRQ: u32 = 4;
/// First interrupt line given to virtio-mmio devices.
pub const VIRTIO_IRQ_START: u32 = 5;
/// Last interrupt line usable for virtio-mmio devices: ISA lines route through the MP table's
/// 16 IOAPIC pins, and line 8 (RTC) and 12 (PS/2 mouse) are skipped.
pub const VIRTIO_IRQ_END: u32 = 15;
