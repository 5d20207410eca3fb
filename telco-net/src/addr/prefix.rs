//! [`IpPrefix`]: an address with a prefix length, as `10.1.0.5/24` or `fd00::5/64`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use telco_core::ParseError;

/// An IP address with a prefix length: an interface address (`10.1.0.5/24`) or a subnet
/// (`10.1.0.0/24`). Written and parsed in CIDR notation; serde uses the same text.
///
/// ```
/// use telco_net::addr::IpPrefix;
///
/// let prefix: IpPrefix = "10.1.0.5/24".parse().unwrap();
/// assert_eq!(prefix.network().to_string(), "10.1.0.0/24");
/// assert!(prefix.contains("10.1.0.200".parse().unwrap()));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    address: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// Builds a prefix; `None` when `len` is longer than the address (32 or 128 bits).
    pub fn new(address: IpAddr, len: u8) -> Option<IpPrefix> {
        (len <= max_len(address)).then_some(IpPrefix { address, len })
    }

    /// A host prefix: `/32` or `/128`.
    pub fn host(address: IpAddr) -> IpPrefix {
        IpPrefix {
            address,
            len: max_len(address),
        }
    }

    /// The address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length in bits.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Returns true for a zero-length prefix (`0.0.0.0/0`, `::/0`), the default route.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns true for an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }

    /// The subnet: the address with the host bits cleared.
    pub fn network(&self) -> IpPrefix {
        let bits = to_bits(self.address) & self.mask();
        IpPrefix {
            address: from_bits(bits, self.address.is_ipv4()),
            len: self.len,
        }
    }

    /// The last address of the subnet (the IPv4 broadcast address).
    pub fn last(&self) -> IpAddr {
        let bits = to_bits(self.address) | !self.mask() & all_ones(self.address);
        from_bits(bits, self.address.is_ipv4())
    }

    /// Returns true when `address` is inside the subnet.
    pub fn contains(&self, address: IpAddr) -> bool {
        address.is_ipv4() == self.address.is_ipv4()
            && to_bits(address) & self.mask() == to_bits(self.address) & self.mask()
    }

    fn mask(&self) -> u128 {
        let width = u32::from(max_len(self.address));
        let ones = all_ones(self.address);
        if self.len == 0 {
            0
        } else {
            (ones << (width - u32::from(self.len))) & ones
        }
    }
}

fn max_len(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}

fn all_ones(address: IpAddr) -> u128 {
    if address.is_ipv4() {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    }
}

/// The address as an integer (IPv4 in the low 32 bits).
pub(crate) fn to_bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address from an integer made by [`to_bits`].
pub(crate) fn from_bits(bits: u128, ipv4: bool) -> IpAddr {
    if ipv4 {
        let low = u32::try_from(bits & u128::from(u32::MAX)).unwrap_or(u32::MAX);
        IpAddr::V4(Ipv4Addr::from(low))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

impl FromStr for IpPrefix {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        let error = |reason: &str| ParseError::new("IP prefix", text, reason);
        let (address, len) = text
            .split_once('/')
            .ok_or_else(|| error("expected ADDRESS/LENGTH"))?;
        let address: IpAddr = address.parse().map_err(|_| error("bad address"))?;
        let len: u8 = len.parse().map_err(|_| error("bad prefix length"))?;
        IpPrefix::new(address, len).ok_or_else(|| error("prefix length too long"))
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.len)
    }
}

impl fmt::Debug for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for IpPrefix {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IpPrefix {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_cidr() {
        let prefix: IpPrefix = "fd00::5/64".parse().unwrap();
        assert_eq!(prefix.to_string(), "fd00::5/64");
        assert_eq!(prefix.network().to_string(), "fd00::/64");
        assert!("10.0.0.1".parse::<IpPrefix>().is_err());
        assert!("10.0.0.1/33".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn last_address_of_ipv4_subnet_is_broadcast() {
        let prefix: IpPrefix = "192.168.7.9/24".parse().unwrap();
        assert_eq!(prefix.last().to_string(), "192.168.7.255");
        let all: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert_eq!(all.last().to_string(), "255.255.255.255");
    }

    proptest! {
        #[test]
        fn network_contains_address(bits: u32, len in 0u8..=32) {
            let prefix = IpPrefix::new(IpAddr::V4(Ipv4Addr::from(bits)), len).unwrap();
            prop_assert!(prefix.network().contains(prefix.address()));
            prop_assert!(prefix.contains(prefix.last()));
            prop_assert_eq!(prefix.to_string().parse::<IpPrefix>().unwrap(), prefix);
        }
    }
}
