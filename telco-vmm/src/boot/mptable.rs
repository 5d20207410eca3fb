//! The Intel MultiProcessor Specification 1.4 table: one processor entry per vCPU, an ISA bus,
//! the IOAPIC with ISA interrupts 0-15 on the same pins, ExtINT on LINT0 and NMI on LINT1.
//!
//! Without it (and without ACPI) Linux starts in virtual-wire mode and stops receiving timer
//! interrupts once it reprograms the local APIC, and it sees a single CPU.

use crate::error::VmmError;
use crate::layout::{APIC_START, IOAPIC_START, MPTABLE_START};
use crate::memory::GuestMemory;

/// Entry type codes (MP spec table 4-3).
const MP_PROCESSOR: u8 = 0;
const MP_BUS: u8 = 1;
const MP_IOAPIC: u8 = 2;
const MP_INTSRC: u8 = 3;
const MP_LINTSRC: u8 = 4;
/// Interrupt types (MP spec table 4-10).
const MP_INT: u8 = 0;
const MP_NMI: u8 = 1;
const MP_EXTINT: u8 = 3;
/// Processor flags: enabled, bootstrap processor.
const CPU_ENABLED: u8 = 1;
const CPU_BOOTPROCESSOR: u8 = 2;
/// CPUID feature flags reported in processor entries: FPU and on-chip APIC.
const CPU_FEATURES: u32 = 1 | (1 << 9);
/// Family 6 signature.
const CPU_SIGNATURE: u32 = 0x600;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const ISA_IRQS: u8 = 16;
const SPEC_REVISION: u8 = 4;

/// Size of the floating pointer structure.
const FLOATING_POINTER_SIZE: usize = 16;
/// Size of the configuration table header.
const HEADER_SIZE: usize = 44;
const PROCESSOR_ENTRY_SIZE: usize = 20;
const SMALL_ENTRY_SIZE: usize = 8;

/// The most vCPUs whose table fits in the KiB below 640 KiB.
pub const MAX_VCPUS: u8 = 32;

/// Builds the floating pointer followed by the configuration table, as placed at
/// [`MPTABLE_START`].
pub(crate) fn build(vcpus: u8) -> Result<Vec<u8>, VmmError> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(VmmError::InvalidConfig(format!(
            "{vcpus} vCPUs do not fit in the MP table: use 1 to {MAX_VCPUS}"
        )));
    }
    let ioapic_id = vcpus;
    let mut entries = Vec::new();
    for cpu in 0..vcpus {
        entries.push(MP_PROCESSOR);
        entries.push(cpu);
        entries.push(APIC_VERSION);
        entries.push(CPU_ENABLED | if cpu == 0 { CPU_BOOTPROCESSOR } else { 0 });
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
    }
    entries.extend_from_slice(&[MP_BUS, 0, b'I', b'S', b'A', b' ', b' ', b' ']);
    entries.extend_from_slice(&[MP_IOAPIC, ioapic_id, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&u32::try_from(IOAPIC_START).unwrap_or(0).to_le_bytes());
    for irq in 0..ISA_IRQS {
        // Flags 0: polarity and trigger conform to the ISA bus (active high, edge).
        entries.extend_from_slice(&[MP_INTSRC, MP_INT, 0, 0, 0, irq, ioapic_id, irq]);
    }
    // Local interrupts go to every local APIC (destination 0xff).
    entries.extend_from_slice(&[MP_LINTSRC, MP_EXTINT, 0, 0, 0, 0, 0xff, 0]);
    entries.extend_from_slice(&[MP_LINTSRC, MP_NMI, 0, 0, 0, 0, 0xff, 1]);

    let entry_count = u16::from(vcpus) + 2 + u16::from(ISA_IRQS) + 2;
    let table_len = HEADER_SIZE + entries.len();
    debug_assert_eq!(
        entries.len(),
        usize::from(vcpus) * PROCESSOR_ENTRY_SIZE
            + (2 + usize::from(ISA_IRQS) + 2) * SMALL_ENTRY_SIZE
    );
    let table_address = MPTABLE_START + FLOATING_POINTER_SIZE as u64;

    let mut header = Vec::with_capacity(HEADER_SIZE);
    header.extend_from_slice(b"PCMP");
    header.extend_from_slice(&u16::try_from(table_len).unwrap_or(u16::MAX).to_le_bytes());
    header.push(SPEC_REVISION);
    header.push(0); // checksum, set below
    header.extend_from_slice(b"TELCO   ");
    header.extend_from_slice(b"MICROVM     ");
    header.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    header.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    header.extend_from_slice(&entry_count.to_le_bytes());
    header.extend_from_slice(&u32::try_from(APIC_START).unwrap_or(0).to_le_bytes());
    header.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    debug_assert_eq!(header.len(), HEADER_SIZE);

    let mut table = header;
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut floating = Vec::with_capacity(FLOATING_POINTER_SIZE);
    floating.extend_from_slice(b"_MP_");
    floating.extend_from_slice(&u32::try_from(table_address).unwrap_or(0).to_le_bytes());
    floating.push(1); // length in 16-byte units
    floating.push(SPEC_REVISION);
    floating.push(0); // checksum, set below
    floating.extend_from_slice(&[0; 5]); // feature bytes: 0 = a configuration table is present
    floating[10] = checksum(&floating);

    let mut out = floating;
    out.extend_from_slice(&table);
    Ok(out)
}

/// The byte that makes all bytes of `data` sum to zero.
fn checksum(data: &[u8]) -> u8 {
    data.iter()
        .fold(0u8, |sum, byte| sum.wrapping_add(*byte))
        .wrapping_neg()
}

/// Writes the MP table for `vcpus` vCPUs.
pub(crate) fn write(mem: &GuestMemory, vcpus: u8) -> Result<(), VmmError> {
    let bytes = build(vcpus)?;
    super::write_bytes(mem, "MP table", MPTABLE_START, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn floating_pointer_and_table_checksums_are_zero() {
        let bytes = build(2).unwrap();
        assert_eq!(&bytes[..4], b"_MP_");
        assert_eq!(sum(&bytes[..16]), 0);
        assert_eq!(&bytes[16..20], b"PCMP");
        let table_len = usize::from(u16::from_le_bytes([bytes[20], bytes[21]]));
        assert_eq!(table_len, bytes.len() - 16);
        assert_eq!(sum(&bytes[16..]), 0);
    }

    #[test]
    fn one_processor_entry_per_vcpu_with_one_bsp() {
        let bytes = build(3).unwrap();
        let entries = &bytes[16 + HEADER_SIZE..];
        let cpus: Vec<&[u8]> = entries.chunks(PROCESSOR_ENTRY_SIZE).take(3).collect();
        for (id, cpu) in cpus.iter().enumerate() {
            assert_eq!(cpu[0], MP_PROCESSOR);
            assert_eq!(usize::from(cpu[1]), id);
        }
        assert_eq!(cpus[0][3], CPU_ENABLED | CPU_BOOTPROCESSOR);
        assert_eq!(cpus[1][3], CPU_ENABLED);
        let count = u16::from_le_bytes([bytes[16 + 34], bytes[16 + 35]]);
        assert_eq!(count, 3 + 2 + 16 + 2);
    }

    #[test]
    fn largest_table_fits_below_640k() {
        let bytes = build(MAX_VCPUS).unwrap();
        assert!(
            MPTABLE_START + bytes.len() as u64 <= 0xa_0000,
            "{} bytes",
            bytes.len()
        );
    }

    #[test]
    fn zero_or_too_many_vcpus_are_rejected() {
        assert!(build(0).is_err());
        assert!(build(MAX_VCPUS + 1).is_err());
    }
}
