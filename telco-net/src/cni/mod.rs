//! CNI (Container Network Interface) types, plugin side and runtime side, and the Kubernetes
//! multi-network status types (Network Plumbing WG multi-network spec v1.3, device-info spec
//! v1.1.0).

mod config;
mod device_info;
mod dns;
mod error;
mod ipnet;
mod result;
mod runtime;
mod skel;
mod status;
mod version;

pub use config::{
    NetConf, NetConfList, PluginConf, config_files, is_valid_identifier, validate_network_name,
};
pub use device_info::{
    DEVICE_INFO_VERSION, Device, DeviceInfo, MemifDevice, MemifMode, MemifRole, PciDevice,
    VdpaDevice, VdpaDriver, VhostUserDevice, VhostUserMode,
};
pub use dns::Dns;
pub use error::{ErrorCode, PluginError};
pub use ipnet::{InvalidIpNet, IpNet};
pub use result::{CniResult, Interface, IpConfig, Route};
pub use runtime::{
    CACHE_KIND, CachedAttachment, CniError, CniRuntime, DEFAULT_CACHE_DIR, DEFAULT_PLUGIN_DIR,
    RuntimeConf, cache_path, find_plugin,
};
pub use skel::{
    CmdArgs, Command, Environment, GcAttachment, Plugin, Reply, dispatch, parse_cni_args,
    plugin_main, validate_container_id, validate_ifname,
};
pub use status::{NETWORK_STATUS_ANNOTATION, NetworkStatus};
pub use version::{
    CURRENT_VERSION, InvalidVersion, SUPPORTED_VERSIONS, Version, VersionInfo, select_version,
};
