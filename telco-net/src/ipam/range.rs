//! [`IpRange`]: one pool of a host-local range set, with host-local's defaults.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::IpamError;
use crate::addr::{IpPrefix, from_bits, to_bits};

/// One pool of addresses, with the keys of the host-local plugin's `ranges` entries:
/// `subnet`, `rangeStart`, `rangeEnd`, `gateway`.
///
/// Defaults, as host-local fills them in: `rangeStart` is the subnet's first address plus
/// one, `rangeEnd` the last address (for IPv4 the one before broadcast), and `gateway` the
/// first address plus one. The gateway is never handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct IpRange {
    /// `subnet`: the pool's subnet in CIDR notation.
    pub subnet: IpPrefix,
    /// `rangeStart`: the first address handed out (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<IpAddr>,
    /// `rangeEnd`: the last address handed out (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<IpAddr>,
    /// `gateway`: the subnet's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A range set: the pools one address is taken from, tried in order (host-local's inner
/// `ranges` list).
pub type RangeSet = Vec<IpRange>;

/// A range with its defaults filled in and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Canonical {
    pub(super) subnet: IpPrefix,
    pub(super) start: u128,
    pub(super) end: u128,
    pub(super) gateway: Option<IpAddr>,
}

impl IpRange {
    /// A range covering `subnet` with every default.
    pub fn new(subnet: IpPrefix) -> IpRange {
        IpRange {
            subnet,
            range_start: None,
            range_end: None,
            gateway: None,
        }
    }

    /// Sets `rangeStart` and `rangeEnd`.
    pub fn with_bounds(mut self, start: IpAddr, end: IpAddr) -> IpRange {
        self.range_start = Some(start);
        self.range_end = Some(end);
        self
    }

    /// Sets `gateway`.
    pub fn with_gateway(mut self, gateway: IpAddr) -> IpRange {
        self.gateway = Some(gateway);
        self
    }

    /// Fills in the defaults and checks that every address lies in the subnet.
    pub(super) fn canonical(&self) -> Result<Canonical, IpamError> {
        let invalid = |reason: &str| IpamError::InvalidRange {
            range: self.subnet.to_string(),
            reason: reason.to_owned(),
        };
        let subnet = self.subnet.network();
        let width = if subnet.is_ipv4() { 32 } else { 128 };
        if width - subnet.len() < 2 {
            return Err(invalid("network too small to allocate from"));
        }
        let ipv4 = subnet.is_ipv4();
        let first = to_bits(subnet.address());
        let last = to_bits(subnet.last());
        let inside = |address: IpAddr| subnet.contains(address);
        let start = match self.range_start {
            Some(start) if !inside(start) => return Err(invalid("rangeStart outside the subnet")),
            Some(start) => to_bits(start),
            None => first + 1,
        };
        let end = match self.range_end {
            Some(end) if !inside(end) => return Err(invalid("rangeEnd outside the subnet")),
            Some(end) => to_bits(end),
            None if ipv4 => last - 1,
            None => last,
        };
        if start > end {
            return Err(invalid("rangeStart after rangeEnd"));
        }
        let gateway = match self.gateway {
            Some(gateway) if !inside(gateway) => return Err(invalid("gateway outside the subnet")),
            Some(gateway) => Some(gateway),
            None => Some(from_bits(first + 1, ipv4)),
        };
        Ok(Canonical {
            subnet,
            start,
            end,
            gateway,
        })
    }
}

impl Canonical {
    pub(super) fn contains(&self, address: IpAddr) -> bool {
        self.subnet.contains(address) && (self.start..=self.end).contains(&to_bits(address))
    }

    pub(super) fn address(&self, bits: u128) -> IpAddr {
        from_bits(bits, self.subnet.is_ipv4())
    }

    pub(super) fn is_gateway(&self, bits: u128) -> bool {
        self.gateway.is_some_and(|gateway| to_bits(gateway) == bits)
    }
}
