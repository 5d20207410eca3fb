//! Runtime side: running a conflist's plugins for a container, as libcni's `CNIConfig` does.
//!
//! [`CniRuntime`] execs plugins from its search path (`CNI_PATH`), chains ADD results through
//! `prevResult`, runs DEL in reverse with the cached ADD result, and implements CHECK, STATUS and
//! GC. ADD results are cached in libcni's format (see [`CachedAttachment`]).
//!
//! Limitations: plugins run one at a time and blocking; stderr of a plugin is captured and logged
//! at debug level rather than passed through.

mod cache;
mod error;
mod exec;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use cache::{CACHE_KIND, CachedAttachment, cache_path};
pub use error::CniError;
pub use exec::find_plugin;
use exec::{PluginEnv, exec_plugin};

use super::skel::{Command, GcAttachment};
use super::{CniResult, ErrorCode, NetConfList, PluginConf, PluginError, Version, VersionInfo};

/// libcni's default cache directory; results go under its `results/` folder.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/cni";

/// libcni's usual plugin directory on Debian.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/cni";

/// Runtime facts about one attachment, as libcni's `RuntimeConf` carries them.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RuntimeConf {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`: the namespace path; DEL may run without one.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`: the interface name in the container.
    pub ifname: String,
    /// `CNI_ARGS` pairs.
    pub args: Vec<(String, String)>,
    /// Capability values (`portMappings`, `mac`, `ips`, ...). Each plugin receives in
    /// `runtimeConfig` those its `capabilities` enable.
    pub capability_args: Map<String, Value>,
}

impl RuntimeConf {
    /// Creates the description of the attachment `ifname` of `container_id` in `netns`.
    pub fn new(
        container_id: impl Into<String>,
        netns: Option<PathBuf>,
        ifname: impl Into<String>,
    ) -> Self {
        RuntimeConf {
            container_id: container_id.into(),
            netns,
            ifname: ifname.into(),
            ..RuntimeConf::default()
        }
    }

    fn plugin_env(&self) -> PluginEnv<'_> {
        PluginEnv {
            container_id: Some(&self.container_id),
            netns: self.netns.as_deref(),
            ifname: Some(&self.ifname),
            args: &self.args,
        }
    }
}

/// Runs plugins of network configuration lists (libcni's `CNIConfig`).
///
/// ```no_run
/// use telco_net::cni::{CniRuntime, NetConfList, RuntimeConf};
///
/// let list = NetConfList::load_file("/etc/cni/net.d/10-data.conflist".as_ref())?;
/// let runtime = CniRuntime::new(vec!["/usr/lib/cni".into()]);
/// let attachment = RuntimeConf::new("pod1", Some("/run/netns/pod1".into()), "net1");
/// let result = runtime.add_network_list(&list, &attachment)?;
/// println!("{}", result.to_value());
/// runtime.del_network_list(&list, &attachment)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct CniRuntime {
    plugin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
}

impl CniRuntime {
    /// Creates a runtime that looks for plugins in `plugin_dirs` and caches results under
    /// [`DEFAULT_CACHE_DIR`].
    pub fn new(plugin_dirs: Vec<PathBuf>) -> Self {
        CniRuntime {
            plugin_dirs,
            cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
        }
    }

    /// Creates a runtime whose plugin search path is `CNI_PATH`, or [`DEFAULT_PLUGIN_DIR`] when
    /// that is unset or empty.
    pub fn from_env() -> Self {
        let dirs: Vec<PathBuf> = std::env::var_os("CNI_PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .filter(|d| !d.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if dirs.is_empty() {
            return Self::new(vec![PathBuf::from(DEFAULT_PLUGIN_DIR)]);
        }
        Self::new(dirs)
    }

    /// Sets the cache directory (results go to its `results/` folder).
    pub fn with_cache_dir(mut self, cache_dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = cache_dir.into();
        self
    }

    /// The plugin search path.
    pub fn plugin_dirs(&self) -> &[PathBuf] {
        &self.plugin_dirs
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Runs ADD for each plugin in order, passing each result to the next as `prevResult`, and
    /// caches the final result. On failure nothing is undone: like libcni, the caller runs
    /// [`CniRuntime::del_network_list`], which the spec requires after every ADD.
    ///
    /// # Errors
    ///
    /// The first plugin failure, an invalid configuration, or a cache write failure.
    pub fn add_network_list(
        &self,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Result<CniResult, CniError> {
        let version = selected_version(list)?;
        let mut prev: Option<Value> = None;
        for plugin in &list.plugins {
            let config = plugin_config(list, plugin, version, Some(rt), prev.as_ref());
            let stdout = self.run(list, plugin, Command::Add, &rt.plugin_env(), &config)?;
            let value: Value = serde_json::from_slice(&stdout)
                .map_err(|error| invalid_reply(plugin, Command::Add, &error))?;
            CniResult::from_value(value.clone()).map_err(|error| CniError::InvalidReply {
                plugin: plugin.plugin_type.clone(),
                verb: Command::Add,
                error: Box::new(error),
            })?;
            prev = Some(value);
        }
        let value = prev.unwrap_or(Value::Null);
        let result = CniResult::from_value(value.clone()).map_err(|error| CniError::Config {
            network: list.name.clone(),
            error: Box::new(error),
        })?;
        self.write_cache(list, rt, value)?;
        Ok(result)
    }

    /// Runs DEL for each plugin in reverse order with the cached ADD result as `prevResult`
    /// (for versions 0.4.0 and later), then removes the cache entry. DEL without a cache entry
    /// still runs the plugins, which must then succeed when nothing is left.
    ///
    /// Stops at the first failure, like libcni, and keeps the cache entry so the DEL can be
    /// repeated.
    ///
    /// # Errors
    ///
    /// The first plugin failure, an invalid configuration, or a cache failure.
    pub fn del_network_list(&self, list: &NetConfList, rt: &RuntimeConf) -> Result<(), CniError> {
        let version = selected_version(list)?;
        let path = cache_path(&self.cache_dir, &list.name, &rt.container_id, &rt.ifname);
        let cached = cache::read(&path)?.and_then(|entry| entry.result);
        let prev = cached.filter(|_| version >= Version::V0_4_0);
        for plugin in list.plugins.iter().rev() {
            let config = plugin_config(list, plugin, version, Some(rt), prev.as_ref());
            self.run(list, plugin, Command::Del, &rt.plugin_env(), &config)?;
        }
        cache::remove(&path)
    }

    /// Runs CHECK for each plugin in order with the cached ADD result. Does nothing when the
    /// list sets `disableCheck`.
    ///
    /// # Errors
    ///
    /// A version before 0.4.0 (code 1 in [`CniError::Config`]), no cached result
    /// ([`CniError::NotCached`]), or the first plugin failure.
    pub fn check_network_list(&self, list: &NetConfList, rt: &RuntimeConf) -> Result<(), CniError> {
        let version = selected_version(list)?;
        if version < Version::V0_4_0 {
            return Err(CniError::Config {
                network: list.name.clone(),
                error: Box::new(PluginError::new(
                    ErrorCode::INCOMPATIBLE_VERSION,
                    format!("configuration version {version} does not support CHECK"),
                )),
            });
        }
        if list.disable_check {
            return Ok(());
        }
        let path = cache_path(&self.cache_dir, &list.name, &rt.container_id, &rt.ifname);
        let Some(prev) = cache::read(&path)?.and_then(|entry| entry.result) else {
            return Err(CniError::NotCached {
                network: list.name.clone(),
                container_id: rt.container_id.clone(),
                ifname: rt.ifname.clone(),
            });
        };
        for plugin in &list.plugins {
            let config = plugin_config(list, plugin, version, Some(rt), Some(&prev));
            self.run(list, plugin, Command::Check, &rt.plugin_env(), &config)?;
        }
        Ok(())
    }

    /// Runs STATUS for each plugin in order. Lists of versions before 1.1.0 have no STATUS and
    /// report ready without running anything, as libcni does.
    ///
    /// # Errors
    ///
    /// The first plugin that is not ready (codes 50 and 51) or that fails.
    pub fn get_status(&self, list: &NetConfList) -> Result<(), CniError> {
        let version = selected_version(list)?;
        if version < Version::V1_1_0 {
            return Ok(());
        }
        for plugin in &list.plugins {
            let config = plugin_config(list, plugin, version, None, None);
            self.run(
                list,
                plugin,
                Command::Status,
                &PluginEnv::default(),
                &config,
            )?;
        }
        Ok(())
    }

    /// Garbage-collects the network: runs DEL, with the cached configuration, for every cached
    /// attachment not in `valid`, then sends GC with `valid` to each plugin (versions 1.1.0 and
    /// later, unless the list sets `disableGC`) under both `cni.dev/valid-attachments` and
    /// `cni.dev/attachments`.
    ///
    /// Every step runs even when an earlier one fails.
    ///
    /// # Errors
    ///
    /// [`CniError::Gc`] with every failure.
    pub fn gc_network_list(
        &self,
        list: &NetConfList,
        valid: &[GcAttachment],
    ) -> Result<(), CniError> {
        let version = selected_version(list)?;
        let mut errors = Vec::new();
        for (path, entry) in cache::list(&self.cache_dir, &list.name)? {
            let still_valid = valid
                .iter()
                .any(|a| a.container_id == entry.container_id && a.ifname == entry.if_name);
            if !still_valid && let Err(error) = self.del_cached(&path, &entry, list) {
                errors.push(error);
            }
        }
        if version >= Version::V1_1_0 && !list.disable_gc {
            let attachments = serde_json::to_value(valid).unwrap_or(Value::Array(Vec::new()));
            for plugin in &list.plugins {
                let mut config = plugin_config(list, plugin, version, None, None);
                config.insert("cni.dev/valid-attachments".to_owned(), attachments.clone());
                config.insert("cni.dev/attachments".to_owned(), attachments.clone());
                if let Err(error) =
                    self.run(list, plugin, Command::Gc, &PluginEnv::default(), &config)
                {
                    errors.push(error);
                }
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        Err(CniError::Gc {
            network: list.name.clone(),
            errors,
        })
    }

    /// Asks a plugin which versions it supports (VERSION with `cniVersion` 1.1.0 on stdin).
    ///
    /// # Errors
    ///
    /// The plugin is missing, fails or replies with something else than a version reply.
    pub fn plugin_versions(&self, plugin_type: &str) -> Result<VersionInfo, CniError> {
        let stdin = br#"{"cniVersion":"1.1.0"}"#;
        let stdout = exec_plugin(
            plugin_type,
            &self.plugin_dirs,
            Command::Version,
            &PluginEnv::default(),
            stdin,
        )?;
        let plugin = PluginConf::new(plugin_type);
        serde_json::from_slice(&stdout)
            .map_err(|error| invalid_reply(&plugin, Command::Version, &error))
    }

    /// The cached ADD of one attachment, if any.
    ///
    /// # Errors
    ///
    /// The cache file exists but cannot be read or decoded.
    pub fn cached_attachment(
        &self,
        network: &str,
        rt: &RuntimeConf,
    ) -> Result<Option<CachedAttachment>, CniError> {
        cache::read(&cache_path(
            &self.cache_dir,
            network,
            &rt.container_id,
            &rt.ifname,
        ))
    }

    /// Every cached attachment of `network`.
    ///
    /// # Errors
    ///
    /// The cache directory cannot be read.
    pub fn cached_attachments(&self, network: &str) -> Result<Vec<CachedAttachment>, CniError> {
        Ok(cache::list(&self.cache_dir, network)?
            .into_values()
            .collect())
    }

    fn del_cached(
        &self,
        path: &Path,
        entry: &CachedAttachment,
        current: &NetConfList,
    ) -> Result<(), CniError> {
        // The cached configuration is the one ADD used; fall back to the current one when the
        // cached bytes no longer parse.
        let list = NetConfList::from_slice(&entry.config).unwrap_or_else(|_| current.clone());
        let mut rt = RuntimeConf::new(
            entry.container_id.clone(),
            Some(PathBuf::from(&entry.netns)).filter(|p| !p.as_os_str().is_empty()),
            entry.if_name.clone(),
        );
        rt.args = entry.cni_args.clone();
        rt.capability_args = entry.capability_args.clone();
        tracing::debug!(network = %list.name, container_id = %rt.container_id, ifname = %rt.ifname, "GC deleting stale attachment");
        self.del_network_list(&list, &rt)?;
        cache::remove(path)
    }

    fn run(
        &self,
        list: &NetConfList,
        plugin: &PluginConf,
        verb: Command,
        env: &PluginEnv<'_>,
        config: &Map<String, Value>,
    ) -> Result<Vec<u8>, CniError> {
        let stdin = serde_json::to_vec(config).expect("a JSON map always serialises");
        exec_plugin(&plugin.plugin_type, &self.plugin_dirs, verb, env, &stdin).map_err(|error| {
            match error {
                CniError::Plugin {
                    plugin,
                    verb,
                    error,
                    ..
                } => CniError::Plugin {
                    plugin,
                    network: list.name.clone(),
                    verb,
                    error,
                },
                other => other,
            }
        })
    }

    fn write_cache(
        &self,
        list: &NetConfList,
        rt: &RuntimeConf,
        result: Value,
    ) -> Result<(), CniError> {
        let entry = CachedAttachment {
            kind: CACHE_KIND.to_owned(),
            container_id: rt.container_id.clone(),
            config: serde_json::to_vec(list).expect("a conflist always serialises"),
            if_name: rt.ifname.clone(),
            network_name: list.name.clone(),
            netns: rt
                .netns
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            cni_args: rt.args.clone(),
            capability_args: rt.capability_args.clone(),
            result: Some(result),
        };
        cache::write(&self.cache_dir, &entry)
    }
}

fn selected_version(list: &NetConfList) -> Result<Version, CniError> {
    let config_error = |error| CniError::Config {
        network: list.name.clone(),
        error: Box::new(error),
    };
    list.validate().map_err(config_error)?;
    list.selected_version().map_err(config_error)
}

fn invalid_reply(plugin: &PluginConf, verb: Command, error: &serde_json::Error) -> CniError {
    CniError::InvalidReply {
        plugin: plugin.plugin_type.clone(),
        verb,
        error: Box::new(PluginError::with_cause(
            ErrorCode::DECODING_FAILURE,
            "reply is not valid JSON",
            error,
        )),
    }
}

/// Builds the stdin of one plugin (CNI spec section 3, "Deriving execution configuration"): the
/// plugin object with `name` and `cniVersion`, `runtimeConfig` holding the capabilities the plugin
/// enables, and `prevResult`; `capabilities` itself is removed.
fn plugin_config(
    list: &NetConfList,
    plugin: &PluginConf,
    version: Version,
    rt: Option<&RuntimeConf>,
    prev_result: Option<&Value>,
) -> Map<String, Value> {
    let mut config = plugin.extra.clone();
    config.insert("type".to_owned(), Value::from(plugin.plugin_type.clone()));
    config.insert("name".to_owned(), Value::from(list.name.clone()));
    config.insert("cniVersion".to_owned(), Value::from(version.to_string()));
    config.remove("runtimeConfig");
    config.remove("prevResult");
    if let Some(rt) = rt {
        let runtime_config: Map<String, Value> = plugin
            .capabilities
            .iter()
            .filter(|(_, enabled)| **enabled)
            .filter_map(|(name, _)| Some((name.clone(), rt.capability_args.get(name)?.clone())))
            .collect();
        if !runtime_config.is_empty() {
            config.insert("runtimeConfig".to_owned(), Value::Object(runtime_config));
        }
    }
    if let Some(prev) = prev_result {
        let converted = CniResult::from_value(prev.clone())
            .ok()
            .and_then(|r| r.convert_to(&version.to_string()).ok())
            .map_or_else(|| prev.clone(), |r| r.to_value());
        config.insert("prevResult".to_owned(), converted);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plugin_config_injects_runtime_keys() {
        let list = NetConfList::from_value(json!({
            "cniVersion": "1.0.0", "name": "net",
            "plugins": [{"type": "bridge", "capabilities": {"mac": true, "ips": false},
                         "bridge": "br0", "runtimeConfig": {"stale": 1}}]
        }))
        .unwrap();
        let mut rt = RuntimeConf::new("c", None, "eth0");
        rt.capability_args
            .insert("mac".into(), json!("c2:11:22:33:44:55"));
        rt.capability_args
            .insert("ips".into(), json!(["10.0.0.9/24"]));
        rt.capability_args.insert("portMappings".into(), json!([]));
        let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "x"}]});
        let config = plugin_config(
            &list,
            &list.plugins[0],
            Version::V1_0_0,
            Some(&rt),
            Some(&prev),
        );
        assert_eq!(
            Value::Object(config),
            json!({"type": "bridge", "name": "net", "cniVersion": "1.0.0", "bridge": "br0",
                   "runtimeConfig": {"mac": "c2:11:22:33:44:55"}, "prevResult": prev})
        );
    }

    #[test]
    fn prev_result_is_converted_to_list_version() {
        let list = NetConfList::from_value(
            json!({"cniVersion": "0.4.0", "name": "net", "plugins": [{"type": "x"}]}),
        )
        .unwrap();
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]});
        let config = plugin_config(&list, &list.plugins[0], Version::V0_4_0, None, Some(&prev));
        assert_eq!(
            config["prevResult"],
            json!({"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.2/24", "version": "4"}]})
        );
    }
}
