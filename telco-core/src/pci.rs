//! [`PciAddress`]: a PCI function address in the kernel's `DDDD:BB:DD.F` form.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;

/// A PCI function address: domain, bus, device (0-31) and function (0-7).
///
/// Parses the full sysfs form `0000:3b:00.1` and the short `3b:00.1` form (domain 0), and
/// always prints the full form with lowercase hex, as sysfs names devices.
///
/// ```
/// use telco_core::PciAddress;
///
/// let vf: PciAddress = "3b:02.1".parse().unwrap();
/// assert_eq!(vf.to_string(), "0000:3b:02.1");
/// assert_eq!(vf.function(), 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    domain: u32,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// Creates an address, or returns `None` when the device exceeds 31 or the function 7.
    pub fn new(domain: u32, bus: u8, device: u8, function: u8) -> Option<Self> {
        (device < 32 && function < 8).then_some(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }

    /// PCI domain (segment).
    pub fn domain(&self) -> u32 {
        self.domain
    }

    /// Bus number.
    pub fn bus(&self) -> u8 {
        self.bus
    }

    /// Device number, 0 to 31.
    pub fn device(&self) -> u8 {
        self.device
    }

    /// Function number, 0 to 7.
    pub fn function(&self) -> u8 {
        self.function
    }
}

impl FromStr for PciAddress {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        let error = |reason: &str| ParseError::new("PCI address", text, reason);
        let parts: Vec<&str> = text.split(':').collect();
        let (domain, bus, slot) = match parts.as_slice() {
            [domain, bus, slot] => (Some(*domain), *bus, *slot),
            [bus, slot] => (None, *bus, *slot),
            _ => return Err(error("expected DDDD:BB:DD.F or BB:DD.F")),
        };
        let (device, function) = slot
            .split_once('.')
            .ok_or_else(|| error("missing \".function\""))?;
        let domain = match domain {
            Some(text) => {
                parse_hex(text, 8).ok_or_else(|| error("domain is not 1 to 8 hex digits"))?
            }
            None => 0,
        };
        let bus = parse_hex(bus, 2).ok_or_else(|| error("bus is not 1 or 2 hex digits"))?;
        let device =
            parse_hex(device, 2).ok_or_else(|| error("device is not 1 or 2 hex digits"))?;
        let function =
            parse_hex(function, 1).ok_or_else(|| error("function is not one hex digit"))?;
        let bus = u8::try_from(bus).map_err(|_| error("bus exceeds ff"))?;
        let device = u8::try_from(device)
            .ok()
            .filter(|d| *d < 32)
            .ok_or_else(|| error("device exceeds 1f"))?;
        let function = u8::try_from(function)
            .ok()
            .filter(|f| *f < 8)
            .ok_or_else(|| error("function exceeds 7"))?;
        Ok(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }
}

fn parse_hex(text: &str, max_digits: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl fmt::Debug for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PciAddress(\"{self}\")")
    }
}

#[cfg(feature = "serde")]
crate::serde_as_text!(PciAddress, "a PCI address such as \"0000:3b:00.1\"");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_full_and_short_forms() {
        let full: PciAddress = "0000:3b:00.1".parse().unwrap();
        let short: PciAddress = "3b:00.1".parse().unwrap();
        assert_eq!(full, short);
        assert_eq!(full.bus(), 0x3b);
        let wide: PciAddress = "10000:00:1F.7".parse().unwrap();
        assert_eq!(wide.to_string(), "10000:00:1f.7");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for text in [
            "",
            "3b",
            "3b:00",
            "3b:00.8",
            "3b:20.0",
            "100:00.0",
            "0000:3b:00.1.2",
            "g0:00.0",
            "00:00.",
            ":00.0",
            "0000:3b:00.10",
        ] {
            let error = text.parse::<PciAddress>().unwrap_err();
            assert_eq!(error.text(), text);
        }
    }

    proptest! {
        #[test]
        fn print_then_parse_is_identity(domain in any::<u16>(), bus in any::<u8>(), device in 0u8..32, function in 0u8..8) {
            let address = PciAddress::new(u32::from(domain), bus, device, function).unwrap();
            let text = address.to_string();
            prop_assert_eq!(text.parse::<PciAddress>().unwrap(), address);
        }

        #[test]
        fn parser_never_panics(text in "[0-9a-fA-F:.]{0,16}") {
            let _ = text.parse::<PciAddress>();
        }
    }
}
