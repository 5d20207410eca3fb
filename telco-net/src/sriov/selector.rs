//! Device selectors of the SR-IOV network device plugin's config (`resourceList[].selectors`).

use serde::{Deserialize, Serialize};
use telco_core::{HostRoot, PciAddress};

use super::SriovError;
use super::device::{PhysicalFunction, VirtualFunction, device_path};

/// One selector object. Its fields are ANDed; an empty field matches every device.
///
/// Field names are the device plugin's. `numaNodes` is an addition of this crate; the device
/// plugin itself has no NUMA selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Selector {
    /// PCI vendor ids in hex without `0x`, such as `"8086"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vendors: Vec<String>,
    /// PCI device ids in hex, such as `"154c"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Bound drivers, such as `"iavf"` or `"vfio-pci"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<String>,
    /// VF PCI addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pci_addresses: Vec<String>,
    /// PF netdev names, each with optional VF ranges: `"ens1f0#0-3,5"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pf_names: Vec<String>,
    /// PF PCI addresses, each with optional VF ranges: `"0000:3b:00.0#0-1"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_devices: Vec<String>,
    /// Link types: `"ether"` or `"infiniband"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_types: Vec<String>,
    /// NUMA nodes of the device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numa_nodes: Vec<usize>,
    /// Selector keys this crate does not implement (`isRdma`, `acpiIndexes`...), kept so
    /// [`Selector::validate`] can reject them rather than match more devices than intended.
    #[serde(flatten, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unsupported: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A PF named with an optional set of VF indices, as in `ens1f0#0-3,5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfWithRange {
    /// PF netdev name or PCI address.
    pub pf: String,
    /// The VF indices, or `None` for every VF.
    pub vf_indices: Option<Vec<u32>>,
}

impl PfWithRange {
    /// Parses `NAME` or `NAME#RANGES`, where RANGES is a comma list of indices and `A-B`
    /// ranges. `field` names the selector field for the error.
    pub fn parse(text: &str, field: &'static str) -> Result<Self, SriovError> {
        let invalid = |reason: String| SriovError::InvalidConfig {
            field,
            reason: format!("{text:?}: {reason}"),
        };
        let Some((pf, ranges)) = text.split_once('#') else {
            return Ok(PfWithRange {
                pf: text.to_owned(),
                vf_indices: None,
            });
        };
        if pf.is_empty() {
            return Err(invalid("missing PF before '#'".to_owned()));
        }
        let mut indices = Vec::new();
        for part in ranges.split(',') {
            let number = |digits: &str| {
                digits
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| invalid(format!("{digits:?} is not a VF index")))
            };
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (number(first)?, number(last)?);
                    if first > last {
                        return Err(invalid(format!("range {part:?} ends before it starts")));
                    }
                    indices.extend(first..=last);
                }
                None => indices.push(number(part)?),
            }
        }
        indices.sort_unstable();
        indices.dedup();
        Ok(PfWithRange {
            pf: pf.to_owned(),
            vf_indices: Some(indices),
        })
    }

    fn matches(&self, name: &str, index: u32) -> bool {
        self.pf == name
            && self
                .vf_indices
                .as_ref()
                .is_none_or(|indices| indices.contains(&index))
    }
}

/// Selector input: a VF with its PF netdev and link type.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub vf: VirtualFunction,
    pub pf_netdev: Option<String>,
    pub link_type: Option<String>,
}

impl Candidate {
    pub(crate) fn read(host: &HostRoot, vf: VirtualFunction, pf: &PhysicalFunction) -> Self {
        let netdev_device = match &vf.netdev {
            Some(netdev) => Some((vf.pci, netdev.clone())),
            None => pf.netdev.clone().map(|netdev| (pf.pci, netdev)),
        };
        let link_type = netdev_device.and_then(|(pci, netdev)| {
            let path = device_path(pci).join("net").join(netdev).join("type");
            host.read_integer(path).ok().map(link_type_name)
        });
        Candidate {
            vf,
            pf_netdev: pf.netdev.clone(),
            link_type,
        }
    }
}

/// Returns the name `ip link` gives an `ARPHRD_*` link type.
fn link_type_name(arphrd: i64) -> String {
    match arphrd {
        1 => "ether".to_owned(),
        32 => "infiniband".to_owned(),
        772 => "loopback".to_owned(),
        other => other.to_string(),
    }
}

impl Selector {
    /// Checks the fields that can be checked without a device: PCI addresses, VF ranges and
    /// keys this crate does not implement.
    pub fn validate(&self) -> Result<(), SriovError> {
        if !self.unsupported.is_empty() {
            let keys: Vec<&str> = self.unsupported.keys().map(String::as_str).collect();
            return Err(SriovError::InvalidConfig {
                field: "selectors",
                reason: format!("unsupported selector keys: {}", keys.join(", ")),
            });
        }
        for text in &self.pci_addresses {
            text.parse::<PciAddress>()
                .map_err(|error| SriovError::InvalidConfig {
                    field: "pciAddresses",
                    reason: error.to_string(),
                })?;
        }
        for text in &self.pf_names {
            PfWithRange::parse(text, "pfNames")?;
        }
        for text in &self.root_devices {
            let root = PfWithRange::parse(text, "rootDevices")?;
            root.pf
                .parse::<PciAddress>()
                .map_err(|error| SriovError::InvalidConfig {
                    field: "rootDevices",
                    reason: error.to_string(),
                })?;
        }
        Ok(())
    }

    /// Returns true when every non-empty field matches the candidate.
    pub(crate) fn matches(&self, candidate: &Candidate) -> bool {
        let vf = &candidate.vf;
        let hex_matches = |list: &[String], id: u16| {
            list.is_empty()
                || list
                    .iter()
                    .any(|text| u16::from_str_radix(text.trim_start_matches("0x"), 16) == Ok(id))
        };
        let driver = vf.driver.as_deref().unwrap_or("");
        hex_matches(&self.vendors, vf.vendor)
            && hex_matches(&self.devices, vf.device)
            && (self.drivers.is_empty() || self.drivers.iter().any(|d| d == driver))
            && (self.pci_addresses.is_empty()
                || self
                    .pci_addresses
                    .iter()
                    .any(|text| text.parse::<PciAddress>() == Ok(vf.pci)))
            && (self.pf_names.is_empty() || self.matches_pf_name(candidate))
            && (self.root_devices.is_empty() || self.matches_root_device(vf))
            && (self.link_types.is_empty()
                || candidate.link_type.as_ref().is_some_and(|link| {
                    self.link_types.iter().any(|t| t.eq_ignore_ascii_case(link))
                }))
            && (self.numa_nodes.is_empty()
                || vf
                    .numa_node
                    .is_some_and(|node| self.numa_nodes.contains(&node)))
    }

    fn matches_pf_name(&self, candidate: &Candidate) -> bool {
        let Some(pf_netdev) = &candidate.pf_netdev else {
            return false;
        };
        self.pf_names
            .iter()
            .filter_map(|text| PfWithRange::parse(text, "pfNames").ok())
            .any(|range| range.matches(pf_netdev, candidate.vf.index))
    }

    fn matches_root_device(&self, vf: &VirtualFunction) -> bool {
        let pf = vf.pf.to_string();
        self.root_devices
            .iter()
            .filter_map(|text| PfWithRange::parse(text, "rootDevices").ok())
            .filter_map(|range| {
                let address = range.pf.parse::<PciAddress>().ok()?;
                Some(PfWithRange {
                    pf: address.to_string(),
                    vf_indices: range.vf_indices,
                })
            })
            .any(|range| range.matches(&pf, vf.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vf_ranges() {
        let range = PfWithRange::parse("ens1f0#0-3,5", "pfNames").unwrap();
        assert_eq!(range.pf, "ens1f0");
        assert_eq!(range.vf_indices, Some(vec![0, 1, 2, 3, 5]));
        let whole = PfWithRange::parse("ens1f0", "pfNames").unwrap();
        assert_eq!(whole.vf_indices, None);
        let root = PfWithRange::parse("0000:86:00.0#0-1,3,4", "rootDevices").unwrap();
        assert_eq!(root.vf_indices, Some(vec![0, 1, 3, 4]));
    }

    #[test]
    fn rejects_bad_vf_ranges() {
        for text in ["ens1f0#3-1", "ens1f0#a", "#1", "ens1f0#", "ens1f0#1-"] {
            let error = PfWithRange::parse(text, "pfNames").unwrap_err();
            assert!(
                matches!(
                    error,
                    SriovError::InvalidConfig {
                        field: "pfNames",
                        ..
                    }
                ),
                "{text}: {error:?}"
            );
        }
    }

    #[test]
    fn unsupported_selector_key_is_rejected() {
        let selector: Selector =
            serde_json::from_str(r#"{"drivers": ["iavf"], "isRdma": true}"#).unwrap();
        let error = selector.validate().unwrap_err();
        assert!(error.to_string().contains("isRdma"), "{error}");
    }

    #[test]
    fn validate_names_bad_field() {
        let selector = Selector {
            root_devices: vec!["ens1f0#1".into()],
            ..Selector::default()
        };
        assert!(matches!(
            selector.validate(),
            Err(SriovError::InvalidConfig {
                field: "rootDevices",
                ..
            })
        ));
        let selector = Selector {
            pci_addresses: vec!["3b:02".into()],
            ..Selector::default()
        };
        assert!(matches!(
            selector.validate(),
            Err(SriovError::InvalidConfig {
                field: "pciAddresses",
                ..
            })
        ));
    }
}
