//! The SR-IOV CNI plugin: SR-IOV CNI's configuration, ADD, DEL, CHECK and STATUS on top of
//! [`attach_vf`] and [`detach_vf`].
//!
//! The configuration keys are SR-IOV CNI's, so existing NetworkAttachmentDefinitions work
//! unchanged: `deviceID` (or Multus's `pciBusID`), `vlan`, `vlanQoS`, `vlanProto`, `mac`,
//! `spoofchk`, `trust`, `link_state`, `min_tx_rate`, `max_tx_rate`, `ipam`,
//! `runtimeConfig.mac` and `runtimeConfig.CNIDeviceInfoFile`; `logLevel` and `logFile` are
//! accepted and ignored (the binary logs to stderr with `RUST_LOG`).
//!
//! Differences from SR-IOV CNI:
//! - DEL without `CNI_NETNS` still restores the PF-side settings and renames the VF netdev
//!   back, where SR-IOV CNI stops after IPAM DEL.
//! - CHECK verifies that the saved attachment exists and, in kernel mode, that the interface is
//!   in the namespace; SR-IOV CNI's CHECK does nothing.
//! - The saved attachment lives in [`SriovPlugin::state_dir`] in this crate's JSON format; the
//!   allocation markers use SR-IOV CNI's directory and format, so both plugins see each
//!   other's allocations.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde::Deserialize;
use serde_json::Value;
use telco_core::{HostRoot, MacAddr, PciAddress};

use super::SriovError;
use super::alloc::{AllocationStore, DEFAULT_ALLOCATION_DIR};
use super::lifecycle::{VfAttachment, VfRequest, attach_vf, attachment_path, detach_vf};
use super::vf_config::{VfConfig, VfLinkMode, VlanProto};
use crate::addr::IpPrefix;
use crate::cni::{
    CmdArgs, CniResult, Command, Device, DeviceInfo, ErrorCode, Interface, PciDevice, Plugin,
    PluginError, find_plugin,
};
use crate::netns::{Netlink, Netns};

/// Directory of the attachments the plugin made, kept between ADD and DEL.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cni/telco-sriov";

/// SR-IOV CNI's network configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SriovNetConf {
    /// `deviceID`: the VF's PCI address.
    #[serde(rename = "deviceID", default)]
    pub device_id: Option<String>,
    /// `pciBusID`: the VF's PCI address as Multus also injects it.
    #[serde(rename = "pciBusID", default)]
    pub pci_bus_id: Option<String>,
    /// `vlan`: 0 to 4094.
    #[serde(default)]
    pub vlan: Option<i64>,
    /// `vlanQoS`: 0 to 7.
    #[serde(rename = "vlanQoS", default)]
    pub vlan_qos: Option<i64>,
    /// `vlanProto`: `802.1q` or `802.1ad`.
    #[serde(default)]
    pub vlan_proto: Option<String>,
    /// `mac`: administrative and effective MAC.
    #[serde(default)]
    pub mac: Option<String>,
    /// `spoofchk`: `on` or `off`.
    #[serde(default)]
    pub spoofchk: Option<String>,
    /// `trust`: `on` or `off`.
    #[serde(default)]
    pub trust: Option<String>,
    /// `link_state`: `auto`, `enable` or `disable`.
    #[serde(rename = "link_state", default)]
    pub link_state: Option<String>,
    /// `min_tx_rate` in Mbit/s.
    #[serde(rename = "min_tx_rate", default)]
    pub min_tx_rate: Option<i64>,
    /// `max_tx_rate` in Mbit/s.
    #[serde(rename = "max_tx_rate", default)]
    pub max_tx_rate: Option<i64>,
    /// `ipam`: the IPAM plugin's configuration.
    #[serde(default)]
    pub ipam: Option<Value>,
    /// `runtimeConfig`.
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
}

/// The `runtimeConfig` keys the plugin reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// `mac`: MAC from the runtime, which wins over `CNI_ARGS` and the config's `mac`.
    #[serde(default)]
    pub mac: Option<String>,
    /// `CNIDeviceInfoFile`: where to write the device-info file.
    #[serde(rename = "CNIDeviceInfoFile", default)]
    pub device_info_file: Option<PathBuf>,
}

impl SriovNetConf {
    /// Parses the VF's PCI address from `deviceID`, else `pciBusID`.
    pub fn device(&self) -> Result<PciAddress, SriovError> {
        let (field, text) = match (&self.device_id, &self.pci_bus_id) {
            (Some(text), _) => ("deviceID", text),
            (None, Some(text)) => ("pciBusID", text),
            (None, None) => {
                return Err(SriovError::InvalidConfig {
                    field: "deviceID",
                    reason: "missing; set it or let the device plugin inject it".to_owned(),
                });
            }
        };
        text.parse()
            .map_err(|error: telco_core::ParseError| SriovError::InvalidConfig {
                field,
                reason: error.to_string(),
            })
    }

    /// Builds the PF-side settings and checks them. The error names the config key.
    pub fn vf_config(&self, cni_args_mac: Option<&str>) -> Result<VfConfig, SriovError> {
        let mac_text = self
            .runtime_config
            .mac
            .as_deref()
            .map(|m| ("runtimeConfig.mac", m));
        let mac_text = mac_text
            .or(cni_args_mac.map(|m| ("CNI_ARGS MAC", m)))
            .or(self.mac.as_deref().map(|m| ("mac", m)));
        let mac = match mac_text {
            Some((field, text)) => Some(text.to_ascii_lowercase().parse::<MacAddr>().map_err(
                |error| SriovError::InvalidConfig {
                    field: if field == "mac" {
                        "mac"
                    } else if field == "runtimeConfig.mac" {
                        "runtimeConfig.mac"
                    } else {
                        "CNI_ARGS MAC"
                    },
                    reason: error.to_string(),
                },
            )?),
            None => None,
        };
        let config = VfConfig {
            mac,
            vlan: self.vlan.map(|v| ranged(v, "vlan", 0, 4094)).transpose()?,
            vlan_qos: self
                .vlan_qos
                .map(|v| ranged(v, "vlanQoS", 0, 7))
                .transpose()?,
            vlan_proto: self
                .vlan_proto
                .as_deref()
                .map(str::parse::<VlanProto>)
                .transpose()?,
            spoof_check: self
                .spoofchk
                .as_deref()
                .map(|v| on_off(v, "spoofchk"))
                .transpose()?,
            trust: self
                .trust
                .as_deref()
                .map(|v| on_off(v, "trust"))
                .transpose()?,
            link_state: self
                .link_state
                .as_deref()
                .map(str::parse::<VfLinkMode>)
                .transpose()?,
            min_tx_rate: self
                .min_tx_rate
                .map(|v| ranged(v, "min_tx_rate", 0, i64::from(u32::MAX)))
                .transpose()?,
            max_tx_rate: self
                .max_tx_rate
                .map(|v| ranged(v, "max_tx_rate", 0, i64::from(u32::MAX)))
                .transpose()?,
        };
        config.validate()?;
        Ok(config)
    }
}

fn ranged<T: TryFrom<i64>>(
    value: i64,
    field: &'static str,
    min: i64,
    max: i64,
) -> Result<T, SriovError> {
    let invalid = || SriovError::InvalidConfig {
        field,
        reason: format!("{value} is out of range {min} to {max}"),
    };
    if value < min || value > max {
        return Err(invalid());
    }
    T::try_from(value).map_err(|_| invalid())
}

fn on_off(value: &str, field: &'static str) -> Result<bool, SriovError> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(SriovError::InvalidConfig {
            field,
            reason: format!("{value:?} is not \"on\" or \"off\""),
        }),
    }
}

/// The plugin's saved state for one attachment: the VF and the IPAM result.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
struct SavedAttachment {
    vf: VfAttachment,
    #[serde(default)]
    device_info_file: Option<PathBuf>,
}

/// The SR-IOV CNI plugin. [`crate::cni::plugin_main`] runs it as a binary.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SriovPlugin {
    /// Host root for sysfs.
    pub sysfs: HostRoot,
    /// Directory of saved attachments.
    pub state_dir: PathBuf,
    /// Allocation markers and locks.
    pub allocations: AllocationStore,
}

impl Default for SriovPlugin {
    fn default() -> Self {
        SriovPlugin {
            sysfs: HostRoot::system(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            allocations: AllocationStore::new(DEFAULT_ALLOCATION_DIR),
        }
    }
}

impl SriovPlugin {
    /// Creates a plugin that keeps its attachments and allocation markers under `dir`.
    pub fn with_state_dir(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        SriovPlugin {
            sysfs: HostRoot::system(),
            allocations: AllocationStore::new(dir.join("pci")),
            state_dir: dir,
        }
    }

    fn saved_path(&self, args: &CmdArgs) -> PathBuf {
        attachment_path(&self.state_dir, &args.container_id, &args.ifname)
    }

    fn do_add(&self, args: &CmdArgs) -> Result<CniResult, PluginError> {
        let conf: SriovNetConf = args.parse_config()?;
        let pci = conf.device().map_err(plugin_error)?;
        let config = conf.vf_config(args.arg("MAC")).map_err(plugin_error)?;
        // Checked before the namespace is opened, so an unknown deviceID is reported as such.
        super::device::VirtualFunction::read(&self.sysfs, pci).map_err(plugin_error)?;
        let netns_path = args.netns_path()?;
        let target = Netns::open_path(netns_path).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::INVALID_ENVIRONMENT,
                format!("failed to open CNI_NETNS {}", netns_path.display()),
                &error,
            )
        })?;
        let host = Netlink::current().map_err(|error| {
            PluginError::with_cause(
                ErrorCode::INTERNAL,
                "failed to open a netlink session",
                &error,
            )
        })?;
        let mut request = VfRequest::new(pci, &args.ifname, &netns_path.display().to_string());
        request.config = config;
        let attachment = attach_vf(&self.sysfs, &host, &self.allocations, &target, &request)
            .map_err(plugin_error)?;

        let result = self.finish_add(args, &conf, &attachment, &target);
        if result.is_err()
            && let Err(error) = detach_vf(
                &self.sysfs,
                &host,
                &self.allocations,
                Some(&target),
                &attachment,
            )
        {
            tracing::warn!(vf = %pci, error = %super::device::error_chain(&error), "could not undo VF attach");
        }
        result
    }

    fn finish_add(
        &self,
        args: &CmdArgs,
        conf: &SriovNetConf,
        attachment: &VfAttachment,
        target: &Netns,
    ) -> Result<CniResult, PluginError> {
        let saved = SavedAttachment {
            vf: attachment.clone(),
            device_info_file: conf.runtime_config.device_info_file.clone(),
        };
        write_json(&self.saved_path(args), &saved)?;
        let mut result = match &conf.ipam {
            Some(ipam) => {
                let ipam_result = exec_ipam(args, ipam, Command::Add)?
                    .unwrap_or_else(|| CniResult::new(args.cni_version()));
                if !attachment.dpdk {
                    configure_ips(target, &attachment.ifname, &ipam_result)?;
                }
                ipam_result
            }
            None => CniResult::new(args.cni_version()),
        };
        result.cni_version = args.cni_version().to_owned();
        let mut interface = Interface::new(args.ifname.clone());
        interface.mac = attachment.mac.map(|mac| mac.to_string());
        interface.mtu = attachment.mtu;
        interface.sandbox = args.netns.as_ref().map(|path| path.display().to_string());
        interface.pci_id = Some(attachment.pci.to_string());
        result.interfaces = vec![interface];
        for ip in &mut result.ips {
            ip.interface = Some(0);
        }
        if let Some(path) = &conf.runtime_config.device_info_file {
            write_device_info(path, attachment)?;
        }
        result.convert_to(args.cni_version())
    }

    fn do_del(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let path = self.saved_path(args);
        let saved: SavedAttachment = match read_json(&path)? {
            Some(saved) => saved,
            None => return Ok(()),
        };
        let conf: SriovNetConf = args.parse_config()?;
        if let Some(ipam) = &conf.ipam {
            exec_ipam(args, ipam, Command::Del)?;
        }
        let target = args
            .netns
            .as_deref()
            .and_then(|path| Netns::open_path(path).ok());
        let host = Netlink::current().map_err(|error| {
            PluginError::with_cause(
                ErrorCode::INTERNAL,
                "failed to open a netlink session",
                &error,
            )
        })?;
        detach_vf(
            &self.sysfs,
            &host,
            &self.allocations,
            target.as_ref(),
            &saved.vf,
        )
        .map_err(plugin_error)?;
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(PluginError::with_cause(
                    ErrorCode::IO_FAILURE,
                    format!("failed to remove {}", path.display()),
                    &error,
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn do_check(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let path = self.saved_path(args);
        let Some(saved) = read_json::<SavedAttachment>(&path)? else {
            return Err(PluginError::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                format!(
                    "no SR-IOV attachment for {} {}",
                    args.container_id, args.ifname
                ),
            ));
        };
        if saved.vf.dpdk {
            return Ok(());
        }
        let netns_path = args.netns_path()?;
        let present = Netns::open_path(netns_path)
            .and_then(|netns| netns.netlink())
            .ok()
            .and_then(|session| session.links().find(&args.ifname).ok().flatten())
            .is_some();
        if present {
            Ok(())
        } else {
            Err(PluginError::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                format!(
                    "interface {} of VF {} is not in {}",
                    args.ifname,
                    saved.vf.pci,
                    netns_path.display()
                ),
            ))
        }
    }
}

impl Plugin for SriovPlugin {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError> {
        self.do_add(args)
            .map_err(|error| error.version(args.cni_version()))
    }

    fn del(&self, args: &CmdArgs) -> Result<(), PluginError> {
        self.do_del(args)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), PluginError> {
        self.do_check(args)
    }

    fn status(&self, _args: &CmdArgs) -> Result<(), PluginError> {
        if self.sysfs.path("/sys/bus/pci/devices").is_dir() {
            Ok(())
        } else {
            Err(PluginError::new(
                ErrorCode::PLUGIN_NOT_AVAILABLE,
                "no /sys/bus/pci/devices: sysfs is not mounted",
            ))
        }
    }

    fn about(&self) -> String {
        "telco-sriov: SR-IOV VF CNI plugin, compatible with SR-IOV CNI's configuration".to_owned()
    }
}

/// Maps a [`SriovError`] to a CNI error; invalid values and taken VFs name the field.
pub fn plugin_error(error: SriovError) -> PluginError {
    match &error {
        SriovError::InvalidConfig { field, .. } => PluginError::new(
            ErrorCode::INVALID_NETWORK_CONFIG,
            format!("invalid {field}"),
        )
        .details(error.to_string()),
        SriovError::DeviceNotFound { pci } | SriovError::NotVirtualFunction { pci } => {
            PluginError::with_cause(
                ErrorCode::INVALID_NETWORK_CONFIG,
                format!("invalid deviceID: {pci} is not a VF on this host"),
                &error,
            )
        }
        SriovError::VfTaken { pci, .. } => PluginError::with_cause(
            ErrorCode::TRY_AGAIN_LATER,
            format!("deviceID {pci} is already allocated"),
            &error,
        ),
        _ => PluginError::with_cause(ErrorCode::INTERNAL, "SR-IOV attach failed", &error),
    }
}

fn write_device_info(path: &Path, attachment: &VfAttachment) -> Result<(), PluginError> {
    let mut pci = PciDevice::new(attachment.pci);
    pci.pf_pci_address = Some(attachment.pf_pci);
    write_json(path, &DeviceInfo::new(Device::Pci(pci)))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), PluginError> {
    let io_error = |error: &dyn std::error::Error| {
        PluginError::with_cause(
            ErrorCode::IO_FAILURE,
            format!("failed to write {}", path.display()),
            error,
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| io_error(&error))?;
    }
    let text = serde_json::to_vec_pretty(value).map_err(|error| io_error(&error))?;
    std::fs::write(path, text).map_err(|error| io_error(&error))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, PluginError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::DECODING_FAILURE,
                format!("failed to decode {}", path.display()),
                &error,
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(PluginError::with_cause(
            ErrorCode::IO_FAILURE,
            format!("failed to read {}", path.display()),
            &error,
        )),
    }
}

/// Runs the IPAM plugin named by `ipam.type` from `CNI_PATH` with the same environment and
/// configuration, as libcni's `DelegateAdd` and `DelegateDel` do. Returns its result on ADD.
fn exec_ipam(
    args: &CmdArgs,
    ipam: &Value,
    command: Command,
) -> Result<Option<CniResult>, PluginError> {
    let plugin = ipam.get("type").and_then(Value::as_str).ok_or_else(|| {
        PluginError::new(
            ErrorCode::INVALID_NETWORK_CONFIG,
            "invalid ipam: missing \"type\"",
        )
    })?;
    let binary = find_plugin(plugin, &args.path).map_err(|error| {
        PluginError::with_cause(
            ErrorCode::INVALID_NETWORK_CONFIG,
            format!("invalid ipam: plugin {plugin} not found in CNI_PATH"),
            &error,
        )
    })?;
    let mut env: BTreeMap<&str, String> = BTreeMap::new();
    env.insert("CNI_COMMAND", command.as_str().to_owned());
    env.insert("CNI_CONTAINERID", args.container_id.clone());
    env.insert(
        "CNI_NETNS",
        args.netns
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    env.insert("CNI_IFNAME", args.ifname.clone());
    let cni_args: Vec<String> = args.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.insert("CNI_ARGS", cni_args.join(";"));
    let joined = std::env::join_paths(&args.path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    env.insert("CNI_PATH", joined);

    let io_error = |error: &std::io::Error| {
        PluginError::with_cause(
            ErrorCode::IO_FAILURE,
            format!("failed to run IPAM plugin {}", binary.display()),
            error,
        )
    };
    let mut child = Process::new(&binary)
        .env_clear()
        .envs(&env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| io_error(&error))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&args.stdin)
            .map_err(|error| io_error(&error))?;
    }
    let output = child.wait_with_output().map_err(|error| io_error(&error))?;
    if !output.status.success() {
        if let Ok(error) = serde_json::from_slice::<PluginError>(&output.stdout) {
            return Err(error);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(
            PluginError::new(ErrorCode::INTERNAL, format!("IPAM plugin {plugin} failed"))
                .details(stderr.trim().to_owned()),
        );
    }
    if command != Command::Add {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&output.stdout).map_err(|error| {
        PluginError::with_cause(
            ErrorCode::DECODING_FAILURE,
            format!("failed to decode the result of IPAM plugin {plugin}"),
            &error,
        )
    })?;
    CniResult::from_value(value).map(Some)
}

/// Adds the IPAM result's addresses and routes to the VF netdev in the workload namespace.
fn configure_ips(target: &Netns, ifname: &str, result: &CniResult) -> Result<(), PluginError> {
    let internal = |what: String, error: &dyn std::error::Error| {
        PluginError::with_cause(ErrorCode::INTERNAL, what, error)
    };
    let session = Netlink::in_netns(target).map_err(|error| {
        internal(
            "failed to open a netlink session in CNI_NETNS".to_owned(),
            &error,
        )
    })?;
    for ip in &result.ips {
        let prefix =
            IpPrefix::new(ip.address.addr(), ip.address.prefix_len()).ok_or_else(|| {
                PluginError::new(
                    ErrorCode::INTERNAL,
                    format!("invalid IPAM address {}", ip.address),
                )
            })?;
        session
            .addresses()
            .add(ifname, prefix)
            .map_err(|error| internal(format!("failed to add {prefix} to {ifname}"), &error))?;
    }
    for route in &result.routes {
        let destination =
            IpPrefix::new(route.dst.addr(), route.dst.prefix_len()).ok_or_else(|| {
                PluginError::new(
                    ErrorCode::INTERNAL,
                    format!("invalid IPAM route {}", route.dst),
                )
            })?;
        let mut kernel_route = crate::route::Route::to(destination).dev(ifname);
        if let Some(gateway) = route.gw.or_else(|| {
            result
                .ips
                .iter()
                .find(|ip| ip.address.addr().is_ipv4() == destination.is_ipv4())
                .and_then(|ip| ip.gateway)
        }) {
            kernel_route = kernel_route.via(gateway);
        }
        session.routes().add(&kernel_route).map_err(|error| {
            internal(
                format!("failed to add route to {destination} via {ifname}"),
                &error,
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(json: &str) -> SriovNetConf {
        serde_json::from_str(json).unwrap()
    }

    fn field_of(error: SriovError) -> &'static str {
        match error {
            SriovError::InvalidConfig { field, .. } => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn accepts_sriov_cni_config_unchanged() {
        let conf = conf(
            r#"{"cniVersion": "1.0.0", "name": "sriov-net", "type": "sriov", "deviceID": "0000:3b:02.1",
            "vlan": 100, "vlanQoS": 3, "vlanProto": "802.1Q", "mac": "CA:FE:C0:FF:EE:01", "spoofchk": "off",
            "trust": "on", "link_state": "enable", "min_tx_rate": 100, "max_tx_rate": 200, "logLevel": "debug",
            "ipam": {"type": "host-local", "subnet": "10.56.217.0/24"},
            "runtimeConfig": {"CNIDeviceInfoFile": "/var/run/k8s.cni.cncf.io/devinfo/cni/x.json"}}"#,
        );
        assert_eq!(conf.device().unwrap().to_string(), "0000:3b:02.1");
        let config = conf.vf_config(None).unwrap();
        assert_eq!(config.vlan, Some(100));
        assert_eq!(config.vlan_qos, Some(3));
        assert_eq!(config.vlan_proto, Some(VlanProto::Dot1Q));
        assert_eq!(config.mac.unwrap().to_string(), "ca:fe:c0:ff:ee:01");
        assert_eq!(
            (config.spoof_check, config.trust),
            (Some(false), Some(true))
        );
        assert_eq!(config.link_state, Some(VfLinkMode::Enable));
        assert_eq!(
            (config.min_tx_rate, config.max_tx_rate),
            (Some(100), Some(200))
        );
        assert!(conf.runtime_config.device_info_file.is_some());
    }

    #[test]
    fn mac_priority_is_runtime_then_args_then_config() {
        let both =
            conf(r#"{"mac": "02:00:00:00:00:01", "runtimeConfig": {"mac": "02:00:00:00:00:03"}}"#);
        assert_eq!(
            both.vf_config(Some("02:00:00:00:00:02"))
                .unwrap()
                .mac
                .unwrap()
                .to_string(),
            "02:00:00:00:00:03"
        );
        let config_only = conf(r#"{"mac": "02:00:00:00:00:01"}"#);
        assert_eq!(
            config_only
                .vf_config(Some("02:00:00:00:00:02"))
                .unwrap()
                .mac
                .unwrap()
                .to_string(),
            "02:00:00:00:00:02"
        );
    }

    #[test]
    fn invalid_values_name_their_field() {
        assert_eq!(
            field_of(conf(r#"{"vlan": 4095}"#).vf_config(None).unwrap_err()),
            "vlan"
        );
        assert_eq!(
            field_of(conf(r#"{"vlan": -1}"#).vf_config(None).unwrap_err()),
            "vlan"
        );
        assert_eq!(
            field_of(conf(r#"{"vlanQoS": 2}"#).vf_config(None).unwrap_err()),
            "vlanQoS"
        );
        assert_eq!(
            field_of(
                conf(r#"{"vlan": 5, "vlanQoS": 9}"#)
                    .vf_config(None)
                    .unwrap_err()
            ),
            "vlanQoS"
        );
        assert_eq!(
            field_of(
                conf(r#"{"vlanProto": "802.1ad"}"#)
                    .vf_config(None)
                    .unwrap_err()
            ),
            "vlanProto"
        );
        assert_eq!(
            field_of(
                conf(r#"{"vlan": 5, "vlanProto": "qinq"}"#)
                    .vf_config(None)
                    .unwrap_err()
            ),
            "vlanProto"
        );
        assert_eq!(
            field_of(
                conf(r#"{"min_tx_rate": 300, "max_tx_rate": 200}"#)
                    .vf_config(None)
                    .unwrap_err()
            ),
            "min_tx_rate"
        );
        assert_eq!(
            field_of(conf(r#"{"spoofchk": "yes"}"#).vf_config(None).unwrap_err()),
            "spoofchk"
        );
        assert_eq!(
            field_of(conf(r#"{"trust": "1"}"#).vf_config(None).unwrap_err()),
            "trust"
        );
        assert_eq!(
            field_of(conf(r#"{"link_state": "up"}"#).vf_config(None).unwrap_err()),
            "link_state"
        );
        assert_eq!(
            field_of(conf(r#"{"mac": "zz"}"#).vf_config(None).unwrap_err()),
            "mac"
        );
        assert_eq!(
            field_of(
                conf(r#"{"runtimeConfig": {"mac": "01:00:5e:00:00:01"}}"#)
                    .vf_config(None)
                    .unwrap_err()
            ),
            "mac"
        );
        assert_eq!(
            field_of(conf(r#"{"deviceID": "3b:02"}"#).device().unwrap_err()),
            "deviceID"
        );
        assert_eq!(field_of(conf(r#"{}"#).device().unwrap_err()), "deviceID");
        assert_eq!(
            field_of(conf(r#"{"pciBusID": "x"}"#).device().unwrap_err()),
            "pciBusID"
        );
    }

    #[test]
    fn plugin_errors_name_field_and_code() {
        let error = plugin_error(SriovError::InvalidConfig {
            field: "vlan",
            reason: "4095 is out of range 0 to 4094".into(),
        });
        assert_eq!(error.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(error.msg.contains("vlan"), "{error}");
        let pci: PciAddress = "0000:01:00.1".parse().unwrap();
        let error = plugin_error(SriovError::DeviceNotFound { pci });
        assert_eq!(error.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(
            error.msg.contains("deviceID") && error.msg.contains("0000:01:00.1"),
            "{error}"
        );
        let error = plugin_error(SriovError::VfTaken {
            pci,
            owner: "/run/netns/a".into(),
        });
        assert_eq!(error.code, ErrorCode::TRY_AGAIN_LATER);
        assert!(error.msg.contains("deviceID"), "{error}");
    }
}
