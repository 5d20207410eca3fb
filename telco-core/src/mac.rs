//! [`MacAddr`]: a 48-bit Ethernet MAC address.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;

/// A 48-bit Ethernet MAC address, printed as `02:00:00:aa:bb:cc` (lowercase, colon-separated, as
/// `ip link` prints it).
///
/// ```
/// use telco_core::MacAddr;
///
/// let mac: MacAddr = "02:00:5E:10:00:01".parse().unwrap();
/// assert!(mac.is_locally_administered());
/// assert_eq!(mac.to_string(), "02:00:5e:10:00:01");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    /// The all-zero address, which the kernel reads as "no address set" on a VF.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Creates an address from its six octets.
    pub const fn new(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }

    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Returns true for the all-zero address.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Returns true when the group (multicast) bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Returns true when the locally administered bit is set.
    pub fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// Returns true for a unicast address that is not all zeros, the only kind a NIC can take.
    pub fn is_valid_unicast(&self) -> bool {
        !self.is_zero() && !self.is_multicast()
    }

    /// A locally administered unicast address whose last five octets come from `seed`, for
    /// interfaces that need a stable address derived from a name or id.
    pub fn local_from_seed(seed: u64) -> Self {
        let bytes = seed.to_be_bytes();
        MacAddr([0x02, bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;

    /// Parses six colon- or dash-separated groups of two hex digits.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let separator = if text.contains('-') { '-' } else { ':' };
        let mut octets = [0u8; 6];
        let mut count = 0;
        for group in text.split(separator) {
            if count == 6 {
                return Err(ParseError::new("MAC address", text, "more than six octets"));
            }
            if group.len() != 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseError::new(
                    "MAC address",
                    text,
                    format!("{group:?} is not two hex digits"),
                ));
            }
            octets[count] = u8::from_str_radix(group, 16)
                .map_err(|_| ParseError::new("MAC address", text, "not hex"))?;
            count += 1;
        }
        if count != 6 {
            return Err(ParseError::new(
                "MAC address",
                text,
                "fewer than six octets",
            ));
        }
        Ok(MacAddr(octets))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr(\"{self}\")")
    }
}

#[cfg(feature = "serde")]
crate::serde_as_text!(MacAddr, "a MAC address such as \"02:00:00:aa:bb:cc\"");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_colon_and_dash_forms() {
        let colon: MacAddr = "02:AB:cd:00:11:22".parse().unwrap();
        let dash: MacAddr = "02-ab-cd-00-11-22".parse().unwrap();
        assert_eq!(colon, dash);
        assert_eq!(colon.to_string(), "02:ab:cd:00:11:22");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for text in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:00:00:00:00:00",
            "02:00:00:00:00:0g",
            "02:00-00:00:00:00",
            "020000000000",
        ] {
            assert_eq!(text.parse::<MacAddr>().unwrap_err().text(), text);
        }
    }

    #[test]
    fn classifies_addresses() {
        assert!(!MacAddr::ZERO.is_valid_unicast());
        assert!(
            "01:00:5e:00:00:01"
                .parse::<MacAddr>()
                .unwrap()
                .is_multicast()
        );
        let local = MacAddr::local_from_seed(0x1234);
        assert!(local.is_locally_administered() && local.is_valid_unicast());
    }

    proptest! {
        #[test]
        fn print_then_parse_is_identity(octets in any::<[u8; 6]>()) {
            let mac = MacAddr::new(octets);
            prop_assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
        }
    }
}
