//! Minimal ACPI 6.x tables for a hardware-reduced platform: RSDP, XSDT, FADT, MADT and a DSDT
//! that declares COM1 and the virtio-mmio devices as `LNRO0005` devices, which is how a kernel without
//! `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES` (Debian's) finds them. Layouts from the ACPI 6.4
//! specification, sections 5.2.5 (RSDP), 5.2.8 (XSDT), 5.2.9 (FADT), 5.2.12 (MADT) and 6.4
//! (resource descriptors); the AML is written by hand because no maintained crate in the
//! dependency set emits it.
//!
//! With ACPI present Linux takes CPUs and the IOAPIC from the MADT instead of the MP table.

use crate::error::VmmError;
use crate::layout::{APIC_START, IOAPIC_START};
use crate::memory::GuestMemory;

/// Where the RSDP goes: the start of the BIOS area Linux scans, also given in the zero page.
pub(crate) const RSDP_START: u64 = 0xe_0000;
const XSDT_START: u64 = 0xe_0040;
const FADT_START: u64 = 0xe_0100;
const MADT_START: u64 = 0xe_0300;
const DSDT_START: u64 = 0xe_0800;
/// End of the area for the tables; the e820 map reserves up to 1 MiB.
const TABLES_END: u64 = 0x10_0000;

const OEM_ID: &[u8; 6] = b"TELCO ";
const OEM_TABLE_ID: &[u8; 8] = b"MICROVM ";

/// FADT flag `HW_REDUCED_ACPI` (bit 20): no fixed hardware, no SCI, no PM timer.
const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// FADT length in revision 6.
const FADT_LEN: usize = 276;

/// A virtio-mmio device as the DSDT declares it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MmioDeviceEntry {
    pub(crate) address: u64,
    pub(crate) size: u64,
    pub(crate) irq: u32,
}

/// Writes all tables; returns the RSDP address for the zero page.
pub(crate) fn write(
    mem: &GuestMemory,
    vcpus: u8,
    devices: &[MmioDeviceEntry],
) -> Result<u64, VmmError> {
    let dsdt = dsdt(devices)?;
    if DSDT_START + dsdt.len() as u64 > TABLES_END {
        return Err(VmmError::InvalidConfig(format!(
            "the DSDT for {} devices does not fit below 1 MiB",
            devices.len()
        )));
    }
    let tables = [
        (DSDT_START, dsdt),
        (FADT_START, fadt(DSDT_START)),
        (MADT_START, madt(vcpus)),
        (XSDT_START, xsdt(&[FADT_START, MADT_START])),
        (RSDP_START, rsdp(XSDT_START)),
    ];
    for (address, bytes) in tables {
        super::write_bytes(mem, "ACPI table", address, &bytes)?;
    }
    Ok(RSDP_START)
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// A table with the standard 36-byte header, its length and checksum filled in.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + body.len());
    out.extend_from_slice(signature);
    out.extend_from_slice(
        &u32::try_from(36 + body.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.push(revision);
    out.push(0); // checksum, set below
    out.extend_from_slice(OEM_ID);
    out.extend_from_slice(OEM_TABLE_ID);
    out.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    out.extend_from_slice(b"TLCO"); // creator id
    out.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    out.extend_from_slice(body);
    out[9] = checksum(&out);
    out
}

fn rsdp(xsdt: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(36);
    out.extend_from_slice(b"RSD PTR ");
    out.push(0); // checksum of the first 20 bytes
    out.extend_from_slice(OEM_ID);
    out.push(2); // revision: ACPI 2.0 and later
    out.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    out.extend_from_slice(&36u32.to_le_bytes());
    out.extend_from_slice(&xsdt.to_le_bytes());
    out.push(0); // extended checksum
    out.extend_from_slice(&[0; 3]);
    out[8] = checksum(&out[..20]);
    out[32] = checksum(&out);
    out
}

fn xsdt(entries: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    table(b"XSDT", 1, &body)
}

fn fadt(dsdt: u64) -> Vec<u8> {
    let mut body = vec![0u8; FADT_LEN - 36];
    let at = |offset: usize| offset - 36;
    let dsdt32 = u32::try_from(dsdt).unwrap_or(0);
    body[at(40)..at(44)].copy_from_slice(&dsdt32.to_le_bytes());
    body[at(112)..at(116)].copy_from_slice(&FADT_HW_REDUCED_ACPI.to_le_bytes());
    body[at(131)] = 4; // FADT minor version: ACPI 6.4
    body[at(140)..at(148)].copy_from_slice(&dsdt.to_le_bytes()); // X_DSDT
    body[at(268)..at(276)].copy_from_slice(b"TELCOVMM"); // hypervisor vendor identity
    table(b"FACP", 6, &body)
}

fn madt(vcpus: u8) -> Vec<u8> {
    const PCAT_COMPAT: u32 = 1;
    const LAPIC_ENABLED: u32 = 1;
    let mut body = Vec::new();
    body.extend_from_slice(&u32::try_from(APIC_START).unwrap_or(0).to_le_bytes());
    body.extend_from_slice(&PCAT_COMPAT.to_le_bytes());
    for cpu in 0..vcpus {
        // Processor local APIC: type 0, length 8, ACPI processor UID, APIC id, flags.
        body.extend_from_slice(&[0, 8, cpu, cpu]);
        body.extend_from_slice(&LAPIC_ENABLED.to_le_bytes());
    }
    // I/O APIC: type 1, length 12, id, reserved, address, global system interrupt base 0.
    body.extend_from_slice(&[1, 12, vcpus, 0]);
    body.extend_from_slice(&u32::try_from(IOAPIC_START).unwrap_or(0).to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    table(b"APIC", 5, &body)
}

/// AML `PkgLength` for a package whose contents (after the length bytes) are `len` bytes.
fn pkg_length(len: usize) -> Result<Vec<u8>, VmmError> {
    // One byte holds up to 63; two bytes up to 4095; three bytes up to 2^20 - 1, each count
    // including the length bytes themselves.
    for extra in 0..3usize {
        let total = len + 1 + extra;
        match extra {
            0 if total < 0x40 => return Ok(vec![u8::try_from(total).unwrap_or(0)]),
            1 if total < 0x1000 => return Ok(vec![0x40 | low_nibble(total), byte(total >> 4)]),
            2 if total < 0x10_0000 => {
                return Ok(vec![
                    0x80 | low_nibble(total),
                    byte(total >> 4),
                    byte(total >> 12),
                ]);
            }
            _ => {}
        }
    }
    Err(VmmError::InvalidConfig("AML package too large".into()))
}

fn low_nibble(value: usize) -> u8 {
    byte(value & 0xf)
}

/// The low byte of `value`.
fn byte(value: usize) -> u8 {
    value.to_le_bytes()[0]
}

fn name_string(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x08]; // NameOp
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value);
    out
}

/// `Device (NAME) { _HID hid, _UID uid, _CRS resources }`, with the resource template's end
/// tag appended.
fn device(name: &[u8; 4], hid: &str, uid: u8, resources: &[u8]) -> Result<Vec<u8>, VmmError> {
    let mut template = resources.to_vec();
    // End tag with a zero checksum, which means "no checksum".
    template.extend_from_slice(&[0x79, 0x00]);
    let size = u8::try_from(template.len())
        .map_err(|_| VmmError::InvalidConfig("ACPI resource template too large".into()))?;
    let mut buffer = vec![0x0a, size]; // BytePrefix size
    buffer.extend_from_slice(&template);
    let mut crs_value = vec![0x11]; // BufferOp
    crs_value.extend(pkg_length(buffer.len())?);
    crs_value.extend(buffer);

    let mut hid_value = vec![0x0d]; // StringPrefix
    hid_value.extend_from_slice(hid.as_bytes());
    hid_value.push(0);

    let mut contents = name.to_vec();
    contents.extend(name_string("_HID", &hid_value));
    contents.extend(name_string("_UID", &[0x0a, uid]));
    contents.extend(name_string("_CRS", &crs_value));

    let mut out = vec![0x5b, 0x82]; // DeviceOp
    out.extend(pkg_length(contents.len())?);
    out.extend(contents);
    Ok(out)
}

/// COM1 as a `PNP0501` device at ports 0x3f8-0x3ff on IRQ 4. Without it a hardware-reduced
/// platform has no legacy IRQ mappings, the 8250 driver cannot get IRQ 4, and user space
/// writes to the console go nowhere.
fn com1() -> Result<Vec<u8>, VmmError> {
    let resources = [
        // I/O port (small item 0x47): 16-bit decode, min 0x3f8, max 0x3f8, alignment 1, 8 ports.
        0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
        // IRQ (small item 0x22) without flags: edge, active high, mask bit 4.
        0x22, 0x10, 0x00,
    ];
    device(b"COM1", "PNP0501", 0, &resources)
}

/// A virtio-mmio device as `LNRO0005` with its register window and interrupt.
fn mmio_device(index: usize, entry: &MmioDeviceEntry) -> Result<Vec<u8>, VmmError> {
    let address = u32::try_from(entry.address)
        .map_err(|_| VmmError::InvalidConfig("virtio-mmio window above 4 GiB".into()))?;
    let size = u32::try_from(entry.size)
        .map_err(|_| VmmError::InvalidConfig("virtio-mmio window larger than 4 GiB".into()))?;
    let uid =
        u8::try_from(index).map_err(|_| VmmError::InvalidConfig("too many devices".into()))?;

    let mut resources = Vec::new();
    // Memory32Fixed (large item 0x86): length 9, read-write, base, length.
    resources.extend_from_slice(&[0x86, 0x09, 0x00, 0x01]);
    resources.extend_from_slice(&address.to_le_bytes());
    resources.extend_from_slice(&size.to_le_bytes());
    // Extended Interrupt (large item 0x89): length 6, flags consumer | edge | active high,
    // one interrupt number.
    resources.extend_from_slice(&[0x89, 0x06, 0x00, 0x03, 0x01]);
    resources.extend_from_slice(&entry.irq.to_le_bytes());

    let name = format!("V{index:03}");
    let name: [u8; 4] = name
        .as_bytes()
        .try_into()
        .map_err(|_| VmmError::InvalidConfig("too many devices".into()))?;
    device(&name, "LNRO0005", uid, &resources)
}

fn dsdt(devices: &[MmioDeviceEntry]) -> Result<Vec<u8>, VmmError> {
    let mut scope_contents = b"\\_SB_".to_vec();
    scope_contents.extend(com1()?);
    for (index, device) in devices.iter().enumerate() {
        scope_contents.extend(mmio_device(index, device)?);
    }
    let mut aml = vec![0x10]; // ScopeOp
    aml.extend(pkg_length(scope_contents.len())?);
    aml.extend(scope_contents);
    // Revision 2: 64-bit AML integers.
    Ok(table(b"DSDT", 2, &aml))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn every_table_checksums_to_zero() {
        let devices = [MmioDeviceEntry {
            address: 0xd000_0000,
            size: 0x1000,
            irq: 5,
        }];
        for bytes in [
            dsdt(&devices).unwrap(),
            fadt(DSDT_START),
            madt(2),
            xsdt(&[1, 2]),
        ] {
            assert_eq!(sum(&bytes), 0, "{:?}", &bytes[..4]);
            let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            assert_eq!(len as usize, bytes.len());
        }
        let rsdp = rsdp(XSDT_START);
        assert_eq!(rsdp.len(), 36);
        assert_eq!(sum(&rsdp[..20]), 0);
        assert_eq!(sum(&rsdp), 0);
    }

    #[test]
    fn fadt_is_hardware_reduced_and_points_at_dsdt() {
        let fadt = fadt(DSDT_START);
        assert_eq!(fadt.len(), FADT_LEN);
        assert_eq!(
            u32::from_le_bytes(fadt[112..116].try_into().unwrap()),
            FADT_HW_REDUCED_ACPI
        );
        assert_eq!(
            u64::from_le_bytes(fadt[140..148].try_into().unwrap()),
            DSDT_START
        );
    }

    #[test]
    fn madt_lists_each_cpu_and_the_ioapic() {
        let madt = madt(3);
        assert_eq!(madt.len(), 36 + 8 + 3 * 8 + 12);
        assert_eq!(&madt[44..48], &[0, 8, 0, 0]);
        assert_eq!(&madt[60..64], &[0, 8, 2, 2]);
        assert_eq!(&madt[68..72], &[1, 12, 3, 0]);
    }

    #[test]
    fn pkg_length_uses_two_bytes_from_64() {
        assert_eq!(pkg_length(10).unwrap(), vec![11]);
        assert_eq!(pkg_length(62).unwrap(), vec![63]);
        // 63 contents + 2 length bytes = 65 = 0x41.
        assert_eq!(pkg_length(63).unwrap(), vec![0x41, 0x04]);
    }

    #[test]
    fn dsdt_declares_lnro0005_with_window_and_irq() {
        let devices = [MmioDeviceEntry {
            address: 0xd000_1000,
            size: 0x1000,
            irq: 6,
        }];
        let dsdt = dsdt(&devices).unwrap();
        let find = |needle: &[u8]| dsdt.windows(needle.len()).position(|w| w == needle);
        assert!(find(b"LNRO0005\0").is_some());
        assert!(find(b"V000").is_some());
        assert!(find(&[0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0]).is_some());
        assert!(find(&[0x89, 0x06, 0x00, 0x03, 0x01, 6, 0, 0, 0]).is_some());
    }

    #[test]
    fn dsdt_declares_com1_on_irq4() {
        let dsdt = dsdt(&[]).unwrap();
        let find = |needle: &[u8]| dsdt.windows(needle.len()).position(|w| w == needle);
        assert!(find(b"PNP0501\0").is_some());
        assert!(find(&[0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08]).is_some());
        assert!(find(&[0x22, 0x10, 0x00]).is_some());
    }
}
