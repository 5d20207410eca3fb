//! vCPU register state at entry: GDT, identity page tables, segment and control registers, FPU,
//! MSRs, CPUID and the local APIC's LINT pins.

use kvm_bindings::{CpuId, Msrs, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs};
use kvm_ioctls::VcpuFd;

use super::EntryPoint;
use crate::error::VmmError;
use crate::layout::{
    BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_POINTER, PDE_START, PDPTE_START, PML4_START,
    PVH_INFO_START, ZERO_PAGE_START,
};
use crate::memory::GuestMemory;

const X86_CR0_PE: u64 = 0x1;
const X86_CR0_ET: u64 = 0x10;
const X86_CR0_PG: u64 = 0x8000_0000;
const X86_CR4_PAE: u64 = 0x20;
const EFER_LME: u64 = 0x100;
const EFER_LMA: u64 = 0x400;
/// RFLAGS with only the always-one bit 1 set: interrupts disabled.
const RFLAGS_RESERVED: u64 = 0x2;

/// Boot GDT entries for the 64-bit entry: NULL, code (L=1), data, TSS.
const GDT_LONG_MODE: [u64; 4] = [
    0,
    gdt_entry(0xa09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x808b, 0, 0xfffff),
];
/// Boot GDT entries for PVH's 32-bit protected-mode entry.
const GDT_PROTECTED_MODE: [u64; 4] = [
    0,
    gdt_entry(0xc09b, 0, 0xffff_ffff),
    gdt_entry(0xc093, 0, 0xffff_ffff),
    gdt_entry(0x008b, 0, 0x67),
];

/// Encodes a segment descriptor from access/flags bits, base and limit.
const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << (56 - 24))
        | ((flags as u64 & 0x0000_f0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << (48 - 16))
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

/// Decodes a descriptor into the form `KVM_SET_SREGS` takes.
fn segment_from_gdt(entry: u64, table_index: u8) -> kvm_segment {
    let bit = |shift: u32| ((entry >> shift) & 1) as u8;
    let limit_raw = u32::try_from((entry & 0xffff) | ((entry >> 32) & 0xf_0000)).unwrap_or(0);
    let granularity = bit(55);
    let present = bit(47);
    kvm_segment {
        base: ((entry >> 16) & 0xff_ffff) | ((entry >> 32) & 0xff00_0000),
        limit: if granularity == 1 {
            (limit_raw << 12) | 0xfff
        } else {
            limit_raw
        },
        selector: u16::from(table_index) * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present,
        dpl: ((entry >> 45) & 0x3) as u8,
        db: bit(54),
        s: bit(44),
        l: bit(53),
        g: granularity,
        avl: bit(52),
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

/// Writes the boot GDT and the empty IDT for `entry`'s CPU mode, and fills the segment and
/// descriptor-table registers to match.
fn setup_segments(
    mem: &GuestMemory,
    sregs: &mut kvm_sregs,
    entry: EntryPoint,
) -> Result<(), VmmError> {
    let gdt = match entry {
        EntryPoint::Linux64(_) => GDT_LONG_MODE,
        EntryPoint::Pvh(_) => GDT_PROTECTED_MODE,
    };
    let gdt_bytes: Vec<u8> = gdt.iter().flat_map(|e| e.to_le_bytes()).collect();
    super::write_bytes(mem, "boot GDT", BOOT_GDT_START, &gdt_bytes)?;
    super::write_bytes(mem, "boot IDT", BOOT_IDT_START, &0u64.to_le_bytes())?;

    let code = segment_from_gdt(gdt[1], 1);
    let data = segment_from_gdt(gdt[2], 2);
    let tss = segment_from_gdt(gdt[3], 3);
    sregs.gdt.base = BOOT_GDT_START;
    sregs.gdt.limit = u16::try_from(gdt_bytes.len() - 1).unwrap_or(u16::MAX);
    sregs.idt.base = BOOT_IDT_START;
    sregs.idt.limit = 7;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    Ok(())
}

/// Writes PML4, PDPT and one page directory that identity-map the first GiB with 2 MiB pages.
fn setup_page_tables(mem: &GuestMemory) -> Result<(), VmmError> {
    super::write_bytes(mem, "PML4", PML4_START, &(PDPTE_START | 0x03).to_le_bytes())?;
    super::write_bytes(mem, "PDPT", PDPTE_START, &(PDE_START | 0x03).to_le_bytes())?;
    // Present, writable, page size (2 MiB).
    let directory: Vec<u8> = (0u64..512)
        .flat_map(|i| ((i << 21) | 0x83).to_le_bytes())
        .collect();
    super::write_bytes(mem, "page directory", PDE_START, &directory)
}

/// Sets the boot vCPU's special registers for `entry` and writes the tables they point at.
pub(crate) fn setup_sregs(
    mem: &GuestMemory,
    vcpu: &VcpuFd,
    entry: EntryPoint,
) -> Result<(), VmmError> {
    let mut sregs = vcpu.get_sregs().map_err(VmmError::kvm("KVM_GET_SREGS"))?;
    setup_segments(mem, &mut sregs, entry)?;
    match entry {
        EntryPoint::Linux64(_) => {
            setup_page_tables(mem)?;
            sregs.cr3 = PML4_START;
            sregs.cr4 |= X86_CR4_PAE;
            sregs.cr0 |= X86_CR0_PE | X86_CR0_PG;
            sregs.efer |= EFER_LME | EFER_LMA;
        }
        EntryPoint::Pvh(_) => {
            sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
            sregs.cr4 = 0;
        }
    }
    vcpu.set_sregs(&sregs)
        .map_err(VmmError::kvm("KVM_SET_SREGS"))
}

/// Sets the boot vCPU's general registers: entry point, stack and the boot-parameter pointer.
pub(crate) fn setup_regs(vcpu: &VcpuFd, entry: EntryPoint) -> Result<(), VmmError> {
    let mut regs = kvm_regs {
        rflags: RFLAGS_RESERVED,
        rip: entry.address().0,
        ..Default::default()
    };
    match entry {
        EntryPoint::Linux64(_) => {
            regs.rsp = BOOT_STACK_POINTER;
            regs.rbp = BOOT_STACK_POINTER;
            regs.rsi = ZERO_PAGE_START;
        }
        EntryPoint::Pvh(_) => regs.rbx = PVH_INFO_START,
    }
    vcpu.set_regs(&regs).map_err(VmmError::kvm("KVM_SET_REGS"))
}

/// Sets the x87 control word and MXCSR to their power-on values.
pub(crate) fn setup_fpu(vcpu: &VcpuFd) -> Result<(), VmmError> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(VmmError::kvm("KVM_SET_FPU"))
}

/// MSRs zeroed or set at entry: SYSENTER and SYSCALL state cleared, fast strings on, MTRRs on
/// with write-back as the default type.
pub(crate) fn setup_msrs(vcpu: &VcpuFd) -> Result<(), VmmError> {
    const MSR_IA32_SYSENTER_CS: u32 = 0x174;
    const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
    const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
    const MSR_STAR: u32 = 0xc000_0081;
    const MSR_LSTAR: u32 = 0xc000_0082;
    const MSR_CSTAR: u32 = 0xc000_0083;
    const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
    const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
    const MSR_IA32_TSC: u32 = 0x10;
    const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
    const MISC_ENABLE_FAST_STRING: u64 = 1;
    const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
    const MTRR_ENABLE_WRITE_BACK: u64 = (1 << 11) | 6;

    let values = [
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITE_BACK),
    ];
    let entries: Vec<kvm_msr_entry> = values
        .iter()
        .map(|&(index, data)| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let msrs = Msrs::from_entries(&entries)
        .map_err(|_| VmmError::InvalidConfig("too many MSR entries".into()))?;
    let written = vcpu
        .set_msrs(&msrs)
        .map_err(VmmError::kvm("KVM_SET_MSRS"))?;
    if written != entries.len() {
        let failed = entries[written].index;
        return Err(VmmError::InvalidConfig(format!(
            "KVM rejected MSR {failed:#x}: the host does not support it"
        )));
    }
    Ok(())
}

/// Gives vCPU `index` the host's supported CPUID with its own APIC id, the vCPU count and the
/// hypervisor bit.
pub(crate) fn setup_cpuid(
    vcpu: &VcpuFd,
    supported: &CpuId,
    index: u8,
    vcpu_count: u8,
) -> Result<(), VmmError> {
    const HYPERVISOR_BIT: u32 = 1 << 31;
    let mut cpuid = supported.clone();
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            1 => {
                // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
                entry.ebx = (entry.ebx & 0x0000_ffff)
                    | (u32::from(index) << 24)
                    | (u32::from(vcpu_count) << 16);
                entry.ecx |= HYPERVISOR_BIT;
            }
            // Extended topology: EDX holds the x2APIC id.
            0xb | 0x1f => entry.edx = u32::from(index),
            _ => {}
        }
    }
    vcpu.set_cpuid2(&cpuid)
        .map_err(VmmError::kvm("KVM_SET_CPUID2"))
}

/// Wires the local APIC's LINT0 to ExtINT (the 8259 PIC) and LINT1 to NMI, as the MP table says.
pub(crate) fn setup_lapic(vcpu: &VcpuFd) -> Result<(), VmmError> {
    const APIC_LVT0: usize = 0x350;
    const APIC_LVT1: usize = 0x360;
    const DELIVERY_MODE_EXTINT: u32 = 0x7;
    const DELIVERY_MODE_NMI: u32 = 0x4;

    let mut lapic = vcpu.get_lapic().map_err(VmmError::kvm("KVM_GET_LAPIC"))?;
    for (offset, mode) in [
        (APIC_LVT0, DELIVERY_MODE_EXTINT),
        (APIC_LVT1, DELIVERY_MODE_NMI),
    ] {
        let mut bytes = [0u8; 4];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = lapic.regs[offset + i] as u8;
        }
        let value = (u32::from_le_bytes(bytes) & !0x700) | (mode << 8);
        for (i, byte) in value.to_le_bytes().iter().enumerate() {
            lapic.regs[offset + i] = *byte as std::os::raw::c_char;
        }
    }
    vcpu.set_lapic(&lapic)
        .map_err(VmmError::kvm("KVM_SET_LAPIC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entry_encodes_long_mode_code_segment() {
        assert_eq!(gdt_entry(0xa09b, 0, 0xfffff), 0x00af_9b00_0000_ffff);
        assert_eq!(gdt_entry(0xc093, 0, 0xfffff), 0x00cf_9300_0000_ffff);
    }

    #[test]
    fn code_segment_decodes_as_present_64bit() {
        let code = segment_from_gdt(GDT_LONG_MODE[1], 1);
        assert_eq!(code.selector, 0x8);
        assert_eq!(code.l, 1);
        assert_eq!(code.db, 0);
        assert_eq!(code.present, 1);
        assert_eq!(code.type_, 0xb);
        assert_eq!(code.limit, 0xffff_ffff);
        assert_eq!(code.unusable, 0);
    }

    #[test]
    fn pvh_tss_has_byte_granular_limit() {
        let tss = segment_from_gdt(GDT_PROTECTED_MODE[3], 3);
        assert_eq!(tss.selector, 0x18);
        assert_eq!(tss.limit, 0x67);
        assert_eq!(tss.g, 0);
    }
}
