//! [`DeviceInfo`]: the Network Plumbing WG device-info format (device-info spec v1.1.0), which gives
//! a workload the PCI address, vhost-user socket, memif socket or vDPA device behind an attachment.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use telco_core::PciAddress;

/// The device-info spec version this crate writes.
pub const DEVICE_INFO_VERSION: &str = "1.1.0";

/// Device information of one attachment, as the `device-info` object of a network-status entry
/// or a device-info file.
///
/// On the wire it is `{"type": "pci", "version": "1.1.0", "pci": {...}}`: the `type` key names
/// which one of the `pci`, `vdpa`, `vhost-user` or `memif` objects is present.
///
/// ```
/// use telco_net::cni::{DeviceInfo, MemifDevice, MemifMode, MemifRole};
///
/// let info = DeviceInfo::new(MemifDevice::new(MemifRole::Master, "/run/memif/net1.sock").into());
/// let json = serde_json::to_value(&info).unwrap();
/// assert_eq!(json["type"], "memif");
/// assert_eq!(json["memif"]["role"], "master");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DeviceInfoWire", into = "DeviceInfoWire")]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Spec version of this object, `1.1.0` for objects this crate creates.
    pub version: String,
    /// The device and its type-specific fields.
    pub device: Device,
}

impl DeviceInfo {
    /// Creates device information with the current spec version.
    pub fn new(device: Device) -> Self {
        DeviceInfo {
            version: DEVICE_INFO_VERSION.to_owned(),
            device,
        }
    }
}

/// The device behind an attachment, one variant per device-info `type`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Device {
    /// `"type": "pci"`: a PCI function such as an SR-IOV VF.
    Pci(PciDevice),
    /// `"type": "vdpa"`: a vDPA device.
    Vdpa(VdpaDevice),
    /// `"type": "vhost-user"`: a vhost-user socket.
    VhostUser(VhostUserDevice),
    /// `"type": "memif"`: a memif socket.
    Memif(MemifDevice),
}

impl Device {
    /// The device-info `type` string of this variant.
    pub fn type_name(&self) -> &'static str {
        match self {
            Device::Pci(_) => "pci",
            Device::Vdpa(_) => "vdpa",
            Device::VhostUser(_) => "vhost-user",
            Device::Memif(_) => "memif",
        }
    }
}

impl From<PciDevice> for Device {
    fn from(device: PciDevice) -> Self {
        Device::Pci(device)
    }
}

impl From<VdpaDevice> for Device {
    fn from(device: VdpaDevice) -> Self {
        Device::Vdpa(device)
    }
}

impl From<VhostUserDevice> for Device {
    fn from(device: VhostUserDevice) -> Self {
        Device::VhostUser(device)
    }
}

impl From<MemifDevice> for Device {
    fn from(device: MemifDevice) -> Self {
        Device::Memif(device)
    }
}

/// Fields of a `pci` device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct PciDevice {
    /// `pci-address`: the function given to the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<PciAddress>,
    /// `vhost-net`: path of the vhost-net character device, when one goes with the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost_net: Option<PathBuf>,
    /// `rdma-device`: name of the RDMA device on this function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma_device: Option<String>,
    /// `pf-pci-address`: the physical function of a VF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pf_pci_address: Option<PciAddress>,
    /// `representor-device`: the netdev that represents the VF on the host (switchdev mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representor_device: Option<String>,
}

impl PciDevice {
    /// Creates a `pci` device for the function at `address`.
    pub fn new(address: PciAddress) -> Self {
        PciDevice {
            pci_address: Some(address),
            ..PciDevice::default()
        }
    }
}

/// Driver of a vDPA device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VdpaDriver {
    /// `vhost`: the device is a `/dev/vhost-vdpa-N` character device.
    Vhost,
    /// `virtio`: the device is bound to virtio and shows up as a netdev.
    Virtio,
}

/// Fields of a `vdpa` device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct VdpaDevice {
    /// `parent-device`: the vDPA management device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_device: Option<String>,
    /// `driver`: `vhost` or `virtio`.
    pub driver: VdpaDriver,
    /// `path`: the character device of a `vhost` vDPA device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `pci-address`: the PCI function behind the vDPA device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<PciAddress>,
    /// `pf-pci-address`: the physical function of that PCI function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pf_pci_address: Option<PciAddress>,
    /// `representor-device`: the representor netdev on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representor_device: Option<String>,
}

impl VdpaDevice {
    /// Creates a `vdpa` device with the given driver and no other fields.
    pub fn new(driver: VdpaDriver) -> Self {
        VdpaDevice {
            parent_device: None,
            driver,
            path: None,
            pci_address: None,
            pf_pci_address: None,
            representor_device: None,
        }
    }
}

/// Which side of a vhost-user connection the workload takes.
///
/// `client` means the workload is the client, so the host side creates the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VhostUserMode {
    /// `client`: the workload connects, the host side listens.
    Client,
    /// `server`: the workload listens, the host side connects.
    Server,
}

/// Fields of a `vhost-user` device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VhostUserDevice {
    /// `mode`: which side the workload takes.
    pub mode: VhostUserMode,
    /// `path`: the socket path as the workload sees it.
    pub path: PathBuf,
}

impl VhostUserDevice {
    /// Creates a `vhost-user` device.
    pub fn new(mode: VhostUserMode, path: impl Into<PathBuf>) -> Self {
        VhostUserDevice {
            mode,
            path: path.into(),
        }
    }
}

/// Which memif role the workload takes.
///
/// `master` means the workload is the master, so the workload creates the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemifRole {
    /// `master`: the workload creates and listens on the socket and maps the shared memory
    /// that the host side (the slave) creates.
    Master,
    /// `slave`: the workload connects to a socket the host side created and creates the shared
    /// memory.
    Slave,
}

/// memif interface mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemifMode {
    /// `ethernet`: Ethernet frames.
    #[default]
    Ethernet,
    /// `ip`: bare IP packets.
    Ip,
    /// `inject-punt`: VPP's punt and inject mode.
    InjectPunt,
}

/// Fields of a `memif` device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemifDevice {
    /// `role`: which role the workload takes.
    pub role: MemifRole,
    /// `path`: the socket path as the workload sees it.
    pub path: PathBuf,
    /// `mode`: the interface mode.
    #[serde(default)]
    pub mode: MemifMode,
}

impl MemifDevice {
    /// Creates an Ethernet-mode `memif` device.
    pub fn new(role: MemifRole, path: impl Into<PathBuf>) -> Self {
        MemifDevice {
            role,
            path: path.into(),
            mode: MemifMode::Ethernet,
        }
    }
}

/// The flat wire layout, which serde maps to and from [`DeviceInfo`].
#[derive(Serialize, Deserialize)]
struct DeviceInfoWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pci: Option<PciDevice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vdpa: Option<VdpaDevice>,
    #[serde(
        rename = "vhost-user",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    vhost_user: Option<VhostUserDevice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memif: Option<MemifDevice>,
}

impl TryFrom<DeviceInfoWire> for DeviceInfo {
    type Error = String;

    fn try_from(wire: DeviceInfoWire) -> Result<Self, Self::Error> {
        let missing = || {
            format!(
                "device-info of type \"{}\" has no \"{}\" object",
                wire.kind, wire.kind
            )
        };
        let device = match wire.kind.as_str() {
            "pci" => Device::Pci(wire.pci.clone().ok_or_else(missing)?),
            "vdpa" => Device::Vdpa(wire.vdpa.clone().ok_or_else(missing)?),
            "vhost-user" => Device::VhostUser(wire.vhost_user.clone().ok_or_else(missing)?),
            "memif" => Device::Memif(wire.memif.clone().ok_or_else(missing)?),
            other => return Err(format!("unknown device-info type \"{other}\"")),
        };
        Ok(DeviceInfo {
            version: wire.version,
            device,
        })
    }
}

impl From<DeviceInfo> for DeviceInfoWire {
    fn from(info: DeviceInfo) -> Self {
        let mut wire = DeviceInfoWire {
            kind: info.device.type_name().to_owned(),
            version: info.version,
            pci: None,
            vdpa: None,
            vhost_user: None,
            memif: None,
        };
        match info.device {
            Device::Pci(device) => wire.pci = Some(device),
            Device::Vdpa(device) => wire.vdpa = Some(device),
            Device::VhostUser(device) => wire.vhost_user = Some(device),
            Device::Memif(device) => wire.memif = Some(device),
        }
        wire
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(info: &DeviceInfo) -> serde_json::Value {
        let value = serde_json::to_value(info).unwrap();
        let back: DeviceInfo = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(&back, info);
        value
    }

    #[test]
    fn pci_device_uses_spec_keys() {
        let mut pci = PciDevice::new("0000:18:02.5".parse().unwrap());
        pci.pf_pci_address = Some("0000:18:00.0".parse().unwrap());
        pci.rdma_device = Some("mlx5_3".to_owned());
        pci.vhost_net = Some("/dev/vhost-net".into());
        pci.representor_device = Some("eth5".to_owned());
        let value = round_trip(&DeviceInfo::new(pci.into()));
        assert_eq!(
            value,
            json!({"type": "pci", "version": "1.1.0", "pci": {
                "pci-address": "0000:18:02.5", "pf-pci-address": "0000:18:00.0",
                "rdma-device": "mlx5_3", "vhost-net": "/dev/vhost-net",
                "representor-device": "eth5"}})
        );
    }

    #[test]
    fn vhost_user_and_memif_round_trip() {
        let vhost = DeviceInfo::new(
            VhostUserDevice::new(VhostUserMode::Client, "/var/run/vhu/a.sock").into(),
        );
        let value = round_trip(&vhost);
        assert_eq!(
            value["vhost-user"],
            json!({"mode": "client", "path": "/var/run/vhu/a.sock"})
        );

        let mut memif = MemifDevice::new(MemifRole::Slave, "/run/memif.sock");
        memif.mode = MemifMode::InjectPunt;
        let value = round_trip(&DeviceInfo::new(memif.into()));
        assert_eq!(
            value["memif"],
            json!({"role": "slave", "path": "/run/memif.sock", "mode": "inject-punt"})
        );
    }

    #[test]
    fn vdpa_device_round_trips() {
        let mut vdpa = VdpaDevice::new(VdpaDriver::Vhost);
        vdpa.path = Some("/dev/vhost-vdpa-1".into());
        vdpa.parent_device = Some("vdpa:0000:65:00.3".to_owned());
        let value = round_trip(&DeviceInfo::new(vdpa.into()));
        assert_eq!(value["type"], "vdpa");
        assert_eq!(value["vdpa"]["driver"], "vhost");
        assert_eq!(value["vdpa"]["parent-device"], "vdpa:0000:65:00.3");
    }

    #[test]
    fn type_without_its_object_is_rejected() {
        let error =
            serde_json::from_value::<DeviceInfo>(json!({"type": "pci", "version": "1.1.0"}))
                .unwrap_err();
        assert!(error.to_string().contains("no \"pci\" object"), "{error}");
        let error =
            serde_json::from_value::<DeviceInfo>(json!({"type": "sriov", "version": "1.1.0"}))
                .unwrap_err();
        assert!(
            error.to_string().contains("unknown device-info type"),
            "{error}"
        );
    }

    #[test]
    fn memif_mode_defaults_to_ethernet() {
        let info: DeviceInfo = serde_json::from_value(
            json!({"type": "memif", "version": "1.0.0", "memif": {"role": "master", "path": "/a"}}),
        )
        .unwrap();
        assert_eq!(info.version, "1.0.0");
        let Device::Memif(memif) = info.device else {
            panic!("expected memif, got {:?}", info.device)
        };
        assert_eq!(memif.mode, MemifMode::Ethernet);
        assert_eq!(memif.role, MemifRole::Master);
    }
}
