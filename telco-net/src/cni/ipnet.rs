//! [`IpNet`]: an address with a prefix length, as CNI writes `"10.1.0.5/16"`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IP address with a prefix length, such as `10.1.0.5/16` or `fd00::/64`.
///
/// The host bits are kept: in a result's `ips[].address` they are the interface's own address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

impl IpNet {
    /// Creates a network, or returns `None` when `prefix_len` exceeds the address width.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= max_prefix_len(addr)).then_some(IpNet { addr, prefix_len })
    }

    /// The address, host bits included.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Returns true when `addr` lies inside this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(other)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(other) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(other)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(other) & mask
            }
            _ => false,
        }
    }
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// The text is not an `ADDRESS/PREFIX` network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid IP network \"{0}\": expected ADDRESS/PREFIX such as 10.1.0.5/16")]
pub struct InvalidIpNet(pub String);

impl FromStr for IpNet {
    type Err = InvalidIpNet;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidIpNet(text.to_owned());
        let (addr, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let prefix_len: u8 = prefix.parse().map_err(|_| invalid())?;
        IpNet::new(addr, prefix_len).ok_or_else(invalid)
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_families() {
        let v4: IpNet = "10.1.0.5/16".parse().unwrap();
        assert_eq!(v4.prefix_len(), 16);
        assert_eq!(v4.to_string(), "10.1.0.5/16");
        let v6: IpNet = "fd00::1/64".parse().unwrap();
        assert_eq!(v6.to_string(), "fd00::1/64");
    }

    #[test]
    fn rejects_bad_prefixes() {
        for text in [
            "10.0.0.1",
            "10.0.0.1/33",
            "fd00::/129",
            "10.0.0.1/",
            "10.0.0.1/+8",
            "x/8",
        ] {
            assert!(text.parse::<IpNet>().is_err(), "{text} parsed");
        }
    }

    #[test]
    fn contains_checks_prefix_only() {
        let net: IpNet = "192.168.1.7/24".parse().unwrap();
        assert!(net.contains("192.168.1.200".parse().unwrap()));
        assert!(!net.contains("192.168.2.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
    }
}
