//! VF attributes set through the PF (`ip link set PF vf N ...`) and read back from the PF's
//! `IFLA_VFINFO_LIST`.
//!
//! Every attribute the kernel's `IFLA_VF_*` interface offers for Ethernet VFs is covered by
//! netlink-packet-route 0.34: `IFLA_VF_MAC`, `IFLA_VF_VLAN_LIST` (VLAN, QoS and protocol),
//! `IFLA_VF_SPOOFCHK`, `IFLA_VF_TRUST`, `IFLA_VF_LINK_STATE` and `IFLA_VF_RATE`. One limit of
//! that crate: it decodes an unreported spoof check or trust setting (the kernel's `-1`) as
//! `false`, so [`VfState`] cannot tell "off" from "driver does not report it".

use std::fmt;
use std::str::FromStr;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::link::{
    LinkAttribute, LinkExtentMask, LinkMessage, LinkVfInfo, VfInfo, VfInfoLinkState, VfInfoMac,
    VfInfoRate, VfInfoSpoofCheck, VfInfoTrust, VfLinkState, VfVlan, VfVlanInfo, VlanProtocol,
};
use rtnetlink::{Handle, LinkUnspec};
use serde::{Deserialize, Serialize};
use telco_core::MacAddr;

use super::SriovError;
use super::netlink;
use crate::netns::Netlink;

/// Largest VLAN id a VF accepts; 4095 is reserved by IEEE 802.1Q.
pub const MAX_VLAN_ID: u16 = 4094;

/// Largest 802.1p priority (VLAN QoS).
pub const MAX_VLAN_QOS: u8 = 7;

/// A VF attribute, named as SR-IOV CNI's config key names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VfAttribute {
    /// Administrative MAC address (`IFLA_VF_MAC`).
    Mac,
    /// VLAN, QoS and VLAN protocol (`IFLA_VF_VLAN_LIST`).
    Vlan,
    /// Spoof check (`IFLA_VF_SPOOFCHK`).
    SpoofCheck,
    /// Trust (`IFLA_VF_TRUST`).
    Trust,
    /// Link state (`IFLA_VF_LINK_STATE`).
    LinkState,
    /// Minimum and maximum TX rate (`IFLA_VF_RATE`).
    TxRate,
}

impl fmt::Display for VfAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VfAttribute::Mac => "mac",
            VfAttribute::Vlan => "vlan",
            VfAttribute::SpoofCheck => "spoofchk",
            VfAttribute::Trust => "trust",
            VfAttribute::LinkState => "link_state",
            VfAttribute::TxRate => "min_tx_rate/max_tx_rate",
        })
    }
}

/// VLAN tag protocol of a VF VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum VlanProto {
    /// IEEE 802.1Q, EtherType 0x8100.
    #[default]
    #[serde(rename = "802.1q")]
    Dot1Q,
    /// IEEE 802.1ad (QinQ service tag), EtherType 0x88a8.
    #[serde(rename = "802.1ad")]
    Dot1Ad,
}

impl FromStr for VlanProto {
    type Err = SriovError;

    /// Parses `802.1q` or `802.1ad`, ignoring case as SR-IOV CNI does.
    fn from_str(text: &str) -> Result<Self, SriovError> {
        match text.to_ascii_lowercase().as_str() {
            "802.1q" => Ok(VlanProto::Dot1Q),
            "802.1ad" => Ok(VlanProto::Dot1Ad),
            _ => Err(SriovError::InvalidConfig {
                field: "vlanProto",
                reason: format!("{text:?} is not \"802.1q\" or \"802.1ad\""),
            }),
        }
    }
}

impl From<VlanProto> for VlanProtocol {
    fn from(proto: VlanProto) -> Self {
        match proto {
            VlanProto::Dot1Q => VlanProtocol::Ieee8021Q,
            VlanProto::Dot1Ad => VlanProtocol::Ieee8021Ad,
        }
    }
}

/// Link state the PF forces on a VF (`ip link set PF vf N state ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VfLinkMode {
    /// The VF follows the PF's link.
    Auto,
    /// The VF link is up whatever the PF's link is.
    Enable,
    /// The VF link is down.
    Disable,
}

impl FromStr for VfLinkMode {
    type Err = SriovError;

    fn from_str(text: &str) -> Result<Self, SriovError> {
        match text {
            "auto" => Ok(VfLinkMode::Auto),
            "enable" => Ok(VfLinkMode::Enable),
            "disable" => Ok(VfLinkMode::Disable),
            _ => Err(SriovError::InvalidConfig {
                field: "link_state",
                reason: format!("{text:?} is not \"auto\", \"enable\" or \"disable\""),
            }),
        }
    }
}

impl From<VfLinkMode> for VfLinkState {
    fn from(mode: VfLinkMode) -> Self {
        match mode {
            VfLinkMode::Auto => VfLinkState::Auto,
            VfLinkMode::Enable => VfLinkState::Enable,
            VfLinkMode::Disable => VfLinkState::Disable,
        }
    }
}

/// The PF-side settings to apply to a VF. `None` leaves an attribute as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VfConfig {
    /// Administrative MAC address; all zeros clears it.
    pub mac: Option<MacAddr>,
    /// VLAN id, 0 (no VLAN) to 4094.
    pub vlan: Option<u16>,
    /// VLAN priority, 0 to 7; a non-zero value needs a non-zero VLAN.
    pub vlan_qos: Option<u8>,
    /// VLAN protocol; 802.1ad needs a non-zero VLAN.
    pub vlan_proto: Option<VlanProto>,
    /// Spoof check on or off.
    pub spoof_check: Option<bool>,
    /// Trust on or off.
    pub trust: Option<bool>,
    /// Forced link state.
    pub link_state: Option<VfLinkMode>,
    /// Minimum TX rate in Mbit/s, 0 for no guarantee.
    pub min_tx_rate: Option<u32>,
    /// Maximum TX rate in Mbit/s, 0 for no limit.
    pub max_tx_rate: Option<u32>,
}

impl VfConfig {
    /// Checks the values against each other and their ranges, as SR-IOV CNI does; the error
    /// names the config key.
    pub fn validate(&self) -> Result<(), SriovError> {
        let invalid = |field, reason: String| Err(SriovError::InvalidConfig { field, reason });
        let vlan = self.vlan.unwrap_or(0);
        if vlan > MAX_VLAN_ID {
            return invalid("vlan", format!("{vlan} is out of range 0 to {MAX_VLAN_ID}"));
        }
        if let Some(qos) = self.vlan_qos {
            if qos > MAX_VLAN_QOS {
                return invalid(
                    "vlanQoS",
                    format!("{qos} is out of range 0 to {MAX_VLAN_QOS}"),
                );
            }
            if qos != 0 && vlan == 0 {
                return invalid("vlanQoS", format!("{qos} needs a non-zero vlan"));
            }
        }
        if self.vlan_proto == Some(VlanProto::Dot1Ad) && vlan == 0 {
            return invalid("vlanProto", "802.1ad needs a non-zero vlan".to_owned());
        }
        if let Some(mac) = self.mac
            && mac.is_multicast()
        {
            return invalid("mac", format!("{mac} is a multicast address"));
        }
        if let (Some(min), Some(max)) = (self.min_tx_rate, self.max_tx_rate)
            && max != 0
            && min > max
        {
            return invalid(
                "min_tx_rate",
                format!("{min} Mbit/s is above max_tx_rate {max} Mbit/s"),
            );
        }
        Ok(())
    }

    /// Returns true when a VLAN setting (id, QoS or protocol) is given.
    pub fn sets_vlan(&self) -> bool {
        self.vlan.is_some() || self.vlan_qos.is_some() || self.vlan_proto.is_some()
    }
}

/// A VF's PF-side settings as the PF reports them in `IFLA_VF_INFO`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VfState {
    /// VF index on the PF.
    pub index: u32,
    /// Administrative MAC address; all zeros when none is set.
    pub mac: MacAddr,
    /// VLAN id, 0 for none.
    pub vlan: u16,
    /// VLAN priority.
    pub vlan_qos: u8,
    /// VLAN protocol.
    pub vlan_proto: VlanProto,
    /// Spoof check.
    pub spoof_check: bool,
    /// Trust.
    pub trust: bool,
    /// Forced link state, when the driver reports one.
    pub link_state: Option<VfLinkMode>,
    /// Minimum TX rate in Mbit/s.
    pub min_tx_rate: u32,
    /// Maximum TX rate in Mbit/s.
    pub max_tx_rate: u32,
}

impl VfState {
    fn empty(index: u32) -> Self {
        VfState {
            index,
            mac: MacAddr::ZERO,
            vlan: 0,
            vlan_qos: 0,
            vlan_proto: VlanProto::Dot1Q,
            spoof_check: false,
            trust: false,
            link_state: None,
            min_tx_rate: 0,
            max_tx_rate: 0,
        }
    }

    /// Decodes one `IFLA_VF_INFO` entry; `None` when it has no `IFLA_VF_MAC` to take the index
    /// from.
    pub fn from_vf_info(info: &LinkVfInfo) -> Option<Self> {
        let index = info.0.iter().find_map(|attribute| match attribute {
            VfInfo::Mac(mac) => Some(mac.vf_id),
            _ => None,
        })?;
        let mut state = VfState::empty(index);
        for attribute in &info.0 {
            state.apply_info(attribute);
        }
        Some(state)
    }

    fn apply_info(&mut self, attribute: &VfInfo) {
        match attribute {
            VfInfo::Mac(mac) => {
                let mut octets = [0u8; 6];
                octets.copy_from_slice(&mac.mac[..6]);
                self.mac = MacAddr::new(octets);
            }
            VfInfo::Vlan(vlan) => {
                self.vlan = u16::try_from(vlan.vlan_id).unwrap_or(u16::MAX);
                self.vlan_qos = u8::try_from(vlan.qos).unwrap_or(u8::MAX);
            }
            VfInfo::VlanList(list) => {
                if let Some(VfVlan::Info(info)) = list.first() {
                    self.vlan = u16::try_from(info.vlan_id).unwrap_or(u16::MAX);
                    self.vlan_qos = u8::try_from(info.qos).unwrap_or(u8::MAX);
                    self.vlan_proto = match info.protocol {
                        VlanProtocol::Ieee8021Ad => VlanProto::Dot1Ad,
                        _ => VlanProto::Dot1Q,
                    };
                }
            }
            VfInfo::SpoofCheck(spoof) => self.spoof_check = spoof.enabled,
            VfInfo::Trust(trust) => self.trust = trust.enabled,
            VfInfo::LinkState(link) => {
                self.link_state = match link.state {
                    VfLinkState::Auto => Some(VfLinkMode::Auto),
                    VfLinkState::Enable => Some(VfLinkMode::Enable),
                    VfLinkState::Disable => Some(VfLinkMode::Disable),
                    _ => None,
                }
            }
            VfInfo::Rate(rate) => {
                self.min_tx_rate = rate.min_tx_rate;
                self.max_tx_rate = rate.max_tx_rate;
            }
            _ => {}
        }
    }

    /// Builds the config that puts a VF back into this state: every attribute that `changed` set.
    /// The administrative MAC is always part of it, because SR-IOV CNI restores it whenever
    /// one was saved.
    pub fn restore_config(&self, changed: &VfConfig) -> VfConfig {
        VfConfig {
            mac: Some(self.mac),
            vlan: changed.sets_vlan().then_some(self.vlan),
            vlan_qos: changed.sets_vlan().then_some(self.vlan_qos),
            vlan_proto: changed.sets_vlan().then_some(self.vlan_proto),
            spoof_check: changed.spoof_check.map(|_| self.spoof_check),
            trust: changed.trust.map(|_| self.trust),
            link_state: changed.link_state.and(self.link_state),
            min_tx_rate: changed
                .min_tx_rate
                .or(changed.max_tx_rate)
                .map(|_| self.min_tx_rate),
            max_tx_rate: changed
                .min_tx_rate
                .or(changed.max_tx_rate)
                .map(|_| self.max_tx_rate),
        }
    }
}

/// Decodes the `IFLA_VFINFO_LIST` of a PF's link message.
pub fn vf_states_from_message(message: &LinkMessage) -> Vec<VfState> {
    message
        .attributes
        .iter()
        .filter_map(|attribute| match attribute {
            LinkAttribute::VfInfoList(list) => Some(list),
            _ => None,
        })
        .flatten()
        .filter_map(VfState::from_vf_info)
        .collect()
}

/// Reads the VF settings of every VF of the PF netdev `pf`, like `ip link show PF`.
pub fn read_vf_states(netlink: &Netlink, pf: &str) -> Result<Vec<VfState>, SriovError> {
    let owned = pf.to_owned();
    netlink
        .call(move |handle| async move { read_vf_states_with(&handle, &owned).await })
        .map_err(|_| netlink::session_closed(netlink, pf))?
}

/// Reads the settings of VF `index` of the PF netdev `pf`.
pub fn read_vf_state(netlink: &Netlink, pf: &str, index: u32) -> Result<VfState, SriovError> {
    read_vf_states(netlink, pf)?
        .into_iter()
        .find(|state| state.index == index)
        .ok_or_else(|| SriovError::VfInfoMissing {
            pf: pf.to_owned(),
            vf: index,
        })
}

/// Applies `config` to VF `index` of the PF netdev `pf`, like `ip link set PF vf N ...`.
/// `driver` is the PF's driver, for the error message.
///
/// Validates `config` first, then sends every attribute in one request. When that fails, it
/// sends them one by one in the order mac, vlan, spoof check, trust, link state, rates, so the
/// error names the attribute the driver rejects; the attributes before it stay set.
pub fn apply_vf_config(
    netlink: &Netlink,
    pf: &str,
    driver: &str,
    index: u32,
    config: &VfConfig,
) -> Result<(), SriovError> {
    config.validate()?;
    let (owned_pf, owned_driver, owned_config) = (pf.to_owned(), driver.to_owned(), config.clone());
    netlink
        .call(move |handle| async move {
            apply_vf_config_with(&handle, &owned_pf, &owned_driver, index, &owned_config).await
        })
        .map_err(|_| netlink::session_closed(netlink, pf))?
}

/// Async form of [`read_vf_states`] on a caller's rtnetlink handle.
///
/// # Cancel safety
///
/// Cancel safe: the request only reads.
pub async fn read_vf_states_with(handle: &Handle, pf: &str) -> Result<Vec<VfState>, SriovError> {
    let mut links = handle
        .link()
        .get()
        .match_name(pf.to_owned())
        .set_filter_mask(AddressFamily::Unspec, vec![LinkExtentMask::Vf])
        .execute();
    let message = links
        .try_next()
        .await
        .map_err(|source| netlink::error("RTM_GETLINK", pf, source))?
        .ok_or_else(|| SriovError::InterfaceNotFound {
            interface: pf.to_owned(),
        })?;
    Ok(vf_states_from_message(&message))
}

/// Async form of [`apply_vf_config`] on a caller's rtnetlink handle; it does not validate
/// `config`.
///
/// # Cancel safety
///
/// Not cancel safe: when dropped between requests, the attributes set so far stay set.
pub async fn apply_vf_config_with(
    handle: &Handle,
    pf: &str,
    driver: &str,
    index: u32,
    config: &VfConfig,
) -> Result<(), SriovError> {
    let requests = vf_requests(index, config);
    if requests.len() > 1 {
        // One request for all attributes is much faster on drivers that reset the VF per
        // change; when it fails, the attributes go one by one to find the one to name.
        let infos: Vec<VfInfo> = requests.iter().map(|(_, info)| info.clone()).collect();
        tracing::debug!(pf, vf = index, count = infos.len(), "setting VF attributes");
        if send_vf_info(handle, pf, infos).await.is_ok() {
            return Ok(());
        }
    }
    for (attribute, info) in requests {
        tracing::debug!(pf, vf = index, %attribute, "setting VF attribute");
        send_vf_info(handle, pf, vec![info])
            .await
            .map_err(|source| attribute_error(attribute, pf, index, driver, source))?;
    }
    Ok(())
}

/// Sends one `RTM_SETLINK` for the PF with one `IFLA_VF_INFO` holding `infos`.
async fn send_vf_info(
    handle: &Handle,
    pf: &str,
    infos: Vec<VfInfo>,
) -> Result<(), rtnetlink::Error> {
    let message = LinkUnspec::new_with_name(pf)
        .append_extra_attribute(LinkAttribute::VfInfoList(vec![LinkVfInfo(infos)]))
        .build();
    handle.link().set(message).execute().await
}

/// Builds the `IFLA_VF_INFO` attribute of each setting in `config`, in the order they are applied.
fn vf_requests(index: u32, config: &VfConfig) -> Vec<(VfAttribute, VfInfo)> {
    let mut requests = Vec::new();
    if let Some(mac) = config.mac {
        requests.push((
            VfAttribute::Mac,
            VfInfo::Mac(VfInfoMac::new(index, &mac.octets())),
        ));
    }
    if config.sets_vlan() {
        let vlan = VfVlanInfo::new(
            index,
            u32::from(config.vlan.unwrap_or(0)),
            u32::from(config.vlan_qos.unwrap_or(0)),
            config.vlan_proto.unwrap_or_default().into(),
        );
        requests.push((
            VfAttribute::Vlan,
            VfInfo::VlanList(vec![VfVlan::Info(vlan)]),
        ));
    }
    if let Some(enabled) = config.spoof_check {
        requests.push((
            VfAttribute::SpoofCheck,
            VfInfo::SpoofCheck(VfInfoSpoofCheck::new(index, enabled)),
        ));
    }
    if let Some(enabled) = config.trust {
        requests.push((
            VfAttribute::Trust,
            VfInfo::Trust(VfInfoTrust::new(index, enabled)),
        ));
    }
    if let Some(mode) = config.link_state {
        requests.push((
            VfAttribute::LinkState,
            VfInfo::LinkState(VfInfoLinkState::new(index, mode.into())),
        ));
    }
    if config.min_tx_rate.is_some() || config.max_tx_rate.is_some() {
        let rate = VfInfoRate::new(
            index,
            config.min_tx_rate.unwrap_or(0),
            config.max_tx_rate.unwrap_or(0),
        );
        requests.push((VfAttribute::TxRate, VfInfo::Rate(rate)));
    }
    requests
}

fn attribute_error(
    attribute: VfAttribute,
    pf: &str,
    vf: u32,
    driver: &str,
    source: rtnetlink::Error,
) -> SriovError {
    let (pf, driver) = (pf.to_owned(), driver.to_owned());
    match netlink::errno(&source) {
        Some(libc::EOPNOTSUPP) | Some(libc::EPROTONOSUPPORT) => SriovError::AttributeUnsupported {
            attribute,
            pf,
            vf,
            driver,
            source: Box::new(source),
        },
        Some(libc::EPERM) | Some(libc::EACCES) => SriovError::PermissionDenied {
            operation: format!("setting {attribute} of VF {vf} on {pf}"),
        },
        _ => SriovError::AttributeRejected {
            attribute,
            pf,
            vf,
            driver,
            source: Box::new(source),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_field(config: VfConfig) -> &'static str {
        match config.validate() {
            Err(SriovError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn validate_names_the_field() {
        let base = VfConfig::default;
        assert_eq!(
            invalid_field(VfConfig {
                vlan: Some(4095),
                ..base()
            }),
            "vlan"
        );
        assert_eq!(
            invalid_field(VfConfig {
                vlan_qos: Some(3),
                ..base()
            }),
            "vlanQoS"
        );
        assert_eq!(
            invalid_field(VfConfig {
                vlan: Some(10),
                vlan_qos: Some(8),
                ..base()
            }),
            "vlanQoS"
        );
        assert_eq!(
            invalid_field(VfConfig {
                vlan_proto: Some(VlanProto::Dot1Ad),
                ..base()
            }),
            "vlanProto"
        );
        assert_eq!(
            invalid_field(VfConfig {
                min_tx_rate: Some(200),
                max_tx_rate: Some(100),
                ..base()
            }),
            "min_tx_rate"
        );
        assert_eq!(
            invalid_field(VfConfig {
                mac: Some("01:00:5e:00:00:01".parse().unwrap()),
                ..base()
            }),
            "mac"
        );
    }

    #[test]
    fn validate_accepts_sriov_cni_ranges() {
        let config = VfConfig {
            vlan: Some(4094),
            vlan_qos: Some(7),
            vlan_proto: Some(VlanProto::Dot1Ad),
            min_tx_rate: Some(100),
            max_tx_rate: Some(0),
            ..VfConfig::default()
        };
        config.validate().unwrap();
    }

    #[test]
    fn vlan_proto_parses_any_case() {
        assert_eq!("802.1Q".parse::<VlanProto>().unwrap(), VlanProto::Dot1Q);
        assert_eq!("802.1AD".parse::<VlanProto>().unwrap(), VlanProto::Dot1Ad);
        assert!("qinq".parse::<VlanProto>().is_err());
    }

    #[test]
    fn requests_follow_config_order() {
        let config = VfConfig {
            mac: Some("02:00:00:00:00:01".parse().unwrap()),
            vlan: Some(100),
            trust: Some(true),
            max_tx_rate: Some(500),
            ..VfConfig::default()
        };
        let attributes: Vec<VfAttribute> = vf_requests(2, &config)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(
            attributes,
            [
                VfAttribute::Mac,
                VfAttribute::Vlan,
                VfAttribute::Trust,
                VfAttribute::TxRate
            ]
        );
    }

    #[test]
    fn vf_info_decodes_every_attribute() {
        let info = LinkVfInfo(vec![
            VfInfo::Mac(VfInfoMac::new(3, &[2, 0, 0, 0, 0, 9])),
            VfInfo::VlanList(vec![VfVlan::Info(VfVlanInfo::new(
                3,
                100,
                5,
                VlanProtocol::Ieee8021Ad,
            ))]),
            VfInfo::SpoofCheck(VfInfoSpoofCheck::new(3, true)),
            VfInfo::Trust(VfInfoTrust::new(3, true)),
            VfInfo::LinkState(VfInfoLinkState::new(3, VfLinkState::Disable)),
            VfInfo::Rate(VfInfoRate::new(3, 10, 1000)),
        ]);
        let state = VfState::from_vf_info(&info).unwrap();
        assert_eq!(state.index, 3);
        assert_eq!(state.mac.to_string(), "02:00:00:00:00:09");
        assert_eq!(
            (state.vlan, state.vlan_qos, state.vlan_proto),
            (100, 5, VlanProto::Dot1Ad)
        );
        assert!(state.spoof_check && state.trust);
        assert_eq!(state.link_state, Some(VfLinkMode::Disable));
        assert_eq!((state.min_tx_rate, state.max_tx_rate), (10, 1000));
    }

    #[test]
    fn restore_config_covers_changed_attributes_and_mac() {
        let saved = VfState::empty(1);
        let changed = VfConfig {
            vlan: Some(5),
            trust: Some(true),
            ..VfConfig::default()
        };
        let restore = saved.restore_config(&changed);
        assert_eq!(restore.mac, Some(MacAddr::ZERO));
        assert_eq!(restore.vlan, Some(0));
        assert_eq!(restore.trust, Some(false));
        assert_eq!(restore.spoof_check, None);
        assert_eq!(restore.max_tx_rate, None);
    }
}
