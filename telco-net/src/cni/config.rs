//! Network configurations: the conflist a runtime reads ([`NetConfList`]), its plugin objects
//! ([`PluginConf`]), and the single-plugin config a plugin receives on stdin ([`NetConf`]).
//!
//! Every type keeps the keys it does not know in an `extra` map and writes them back unchanged,
//! as the spec requires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ErrorCode, PluginError, Version, select_version};

/// A network configuration list (CNI spec section 1, "Configuration format").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NetConfList {
    /// `cniVersion`: the spec version of the list.
    #[serde(default)]
    pub cni_version: String,
    /// `cniVersions`: further versions the list is valid for (CNI 1.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_versions: Vec<String>,
    /// `name`: the network name, unique on the host.
    pub name: String,
    /// `disableCheck`: the runtime must not call CHECK.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_check: bool,
    /// `disableGC`: the runtime must not call GC.
    #[serde(
        rename = "disableGC",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disable_gc: bool,
    /// `loadOnlyInlinedPlugins`: do not append plugin objects from `<confDir>/<name>/`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub load_only_inlined_plugins: bool,
    /// `plugins`: the chain, in ADD order.
    #[serde(default)]
    pub plugins: Vec<PluginConf>,
    /// Keys this type does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One plugin object of a conflist.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PluginConf {
    /// `type`: the plugin binary name, looked up in `CNI_PATH`.
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// `capabilities`: runtime capabilities the plugin accepts in `runtimeConfig`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, bool>,
    /// Every other key (`ipam`, `dns`, plugin-specific keys), kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PluginConf {
    /// Creates a plugin object of `plugin_type` with no other keys.
    pub fn new(plugin_type: impl Into<String>) -> Self {
        PluginConf {
            plugin_type: plugin_type.into(),
            ..PluginConf::default()
        }
    }

    /// Sets a plugin-specific key.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
}

/// The configuration a plugin reads on stdin: one plugin object with the runtime's keys added.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NetConf {
    /// `cniVersion`: the version the runtime selected.
    #[serde(default)]
    pub cni_version: String,
    /// `name`: the network name.
    #[serde(default)]
    pub name: String,
    /// `type`: the plugin name.
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// `runtimeConfig`: capability values the runtime passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<Map<String, Value>>,
    /// `prevResult`: the previous plugin's result, as JSON of its own version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_result: Option<Value>,
    /// Every other key, kept as it is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetConfList {
    /// Creates an empty list called `name` of version `cni_version`.
    pub fn new(name: impl Into<String>, cni_version: impl Into<String>) -> Self {
        NetConfList {
            cni_version: cni_version.into(),
            name: name.into(),
            ..NetConfList::default()
        }
    }

    /// Parses a conflist, or a single-plugin `.conf` which libcni still accepts: that becomes a
    /// list of one plugin with the same version and name.
    ///
    /// # Errors
    ///
    /// Code 6 for malformed JSON, code 7 for a list without a valid name or with a plugin
    /// without `type`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PluginError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::DECODING_FAILURE,
                "failed to decode network configuration",
                &error,
            )
        })?;
        Self::from_value(value)
    }

    /// Like [`NetConfList::from_slice`], from parsed JSON.
    ///
    /// # Errors
    ///
    /// As [`NetConfList::from_slice`].
    pub fn from_value(mut value: Value) -> Result<Self, PluginError> {
        let object = value.as_object_mut().ok_or_else(|| {
            PluginError::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                "network configuration is not a JSON object",
            )
        })?;
        if !object.contains_key("plugins") && object.contains_key("type") {
            value = single_conf_to_list(object);
        }
        let list: NetConfList = serde_json::from_value(value).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::INVALID_NETWORK_CONFIG,
                "invalid network configuration list",
                &error,
            )
        })?;
        list.validate()?;
        Ok(list)
    }

    /// Checks the name and the plugin types.
    ///
    /// # Errors
    ///
    /// Code 7 naming the problem.
    pub fn validate(&self) -> Result<(), PluginError> {
        validate_network_name(&self.name)?;
        if self.plugins.is_empty() {
            return Err(invalid_config(format!(
                "network \"{}\" has no plugins",
                self.name
            )));
        }
        if let Some(index) = self
            .plugins
            .iter()
            .position(|p| !is_valid_plugin_type(&p.plugin_type))
        {
            return Err(invalid_config(format!(
                "plugin {index} of network \"{}\" has a missing or invalid \"type\"",
                self.name
            )));
        }
        Ok(())
    }

    /// The version a runtime uses for this list: the highest supported one of `cniVersion` and
    /// `cniVersions`.
    ///
    /// # Errors
    ///
    /// Code 1 when no listed version is supported.
    pub fn selected_version(&self) -> Result<Version, PluginError> {
        let listed = Some(self.cni_version.as_str()).filter(|v| !v.is_empty());
        select_version(listed, self.cni_versions.iter().map(String::as_str)).ok_or_else(|| {
            PluginError::new(
                ErrorCode::INCOMPATIBLE_VERSION,
                format!(
                    "network \"{}\" lists no supported CNI version (cniVersion \"{}\", cniVersions {:?})",
                    self.name, self.cni_version, self.cni_versions
                ),
            )
        })
    }

    /// Reads a conflist or `.conf` file and, unless `loadOnlyInlinedPlugins` is set, appends
    /// the plugin objects of `<dir>/<name>/*.conf` in lexical order, as libcni does.
    ///
    /// # Errors
    ///
    /// Code 5 when a file cannot be read, and the errors of [`NetConfList::from_slice`].
    pub fn load_file(path: &Path) -> Result<Self, PluginError> {
        let bytes = std::fs::read(path).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::IO_FAILURE,
                format!("failed to read network configuration {}", path.display()),
                &error,
            )
        })?;
        let mut list = Self::from_slice(&bytes).map_err(|error| prefix_path(error, path))?;
        if !list.load_only_inlined_plugins {
            let dir = path.parent().unwrap_or(Path::new(".")).join(&list.name);
            list.plugins.extend(load_plugin_dir(&dir)?);
        }
        Ok(list)
    }

    /// Finds the configuration whose `name` is `name` among the `.conflist`, `.conf` and `.json`
    /// files of `dir`, in lexical file-name order.
    ///
    /// # Errors
    ///
    /// Code 7 when no file has that name, code 5 when `dir` cannot be read. Files that do not
    /// parse are skipped, as libcni skips them.
    pub fn find_in_dir(dir: &Path, name: &str) -> Result<Self, PluginError> {
        for path in config_files(dir)? {
            match Self::load_file(&path) {
                Ok(list) if list.name == name => return Ok(list),
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(path = %path.display(), %error, "skipping network configuration")
                }
            }
        }
        Err(invalid_config(format!(
            "no network configuration named \"{name}\" in {}",
            dir.display()
        )))
    }
}

/// The configuration files of `dir` (`.conflist`, `.conf`, `.json`), sorted by file name.
///
/// # Errors
///
/// Code 5 when `dir` cannot be read.
pub fn config_files(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        PluginError::with_cause(
            ErrorCode::IO_FAILURE,
            format!("failed to read configuration directory {}", dir.display()),
            &error,
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let extension = path.extension().and_then(|e| e.to_str());
            matches!(extension, Some("conflist" | "conf" | "json")) && path.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

fn load_plugin_dir(dir: &Path) -> Result<Vec<PluginConf>, PluginError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut plugins = Vec::new();
    for path in config_files(dir)? {
        if path.extension().and_then(|e| e.to_str()) != Some("conf") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::IO_FAILURE,
                format!("failed to read plugin configuration {}", path.display()),
                &error,
            )
        })?;
        let plugin: PluginConf = serde_json::from_slice(&bytes).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::INVALID_NETWORK_CONFIG,
                format!("invalid plugin configuration {}", path.display()),
                &error,
            )
        })?;
        plugins.push(plugin);
    }
    Ok(plugins)
}

fn single_conf_to_list(object: &mut Map<String, Value>) -> Value {
    let mut list = Map::new();
    for key in ["cniVersion", "name", "disableCheck", "disableGC"] {
        if let Some(value) = object.get(key) {
            list.insert(key.to_owned(), value.clone());
        }
    }
    list.insert(
        "plugins".to_owned(),
        Value::Array(vec![Value::Object(object.clone())]),
    );
    Value::Object(list)
}

fn prefix_path(mut error: PluginError, path: &Path) -> PluginError {
    error.msg = format!("{}: {}", path.display(), error.msg);
    error
}

fn invalid_config(msg: String) -> PluginError {
    PluginError::new(ErrorCode::INVALID_NETWORK_CONFIG, msg)
}

fn is_valid_plugin_type(plugin_type: &str) -> bool {
    !plugin_type.is_empty()
        && plugin_type != "."
        && plugin_type != ".."
        && !plugin_type.contains(['/', '\0'])
}

/// Returns true for names libcni accepts as network name or container ID:
/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
pub fn is_valid_identifier(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Checks a network name as libcni does.
///
/// # Errors
///
/// Code 7 for an empty name or one outside `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
pub fn validate_network_name(name: &str) -> Result<(), PluginError> {
    if name.is_empty() {
        return Err(invalid_config("missing network name".to_owned()));
    }
    if !is_valid_identifier(name) {
        return Err(invalid_config(format!(
            "invalid network name \"{name}\": it must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$"
        )));
    }
    Ok(())
}

impl NetConf {
    /// Parses the plugin's stdin.
    ///
    /// # Errors
    ///
    /// Code 6 for malformed JSON or a document that is not a configuration object.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PluginError> {
        serde_json::from_slice(bytes).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::DECODING_FAILURE,
                "failed to decode network configuration",
                &error,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_pass_through_untouched() {
        let text = json!({
            "cniVersion": "1.1.0", "cniVersions": ["1.0.0", "1.1.0"], "name": "dbnet",
            "disableGC": true, "vendor.example/flag": {"nested": [1, 2]},
            "plugins": [
                {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"},
                 "capabilities": {"mac": true}, "x-custom": 7},
                {"type": "tuning", "sysctl": {"net.core.somaxconn": "500"}}
            ]
        });
        let list = NetConfList::from_value(text.clone()).unwrap();
        assert!(list.disable_gc);
        assert_eq!(list.plugins[0].plugin_type, "bridge");
        assert_eq!(list.plugins[0].capabilities.get("mac"), Some(&true));
        assert_eq!(list.plugins[0].extra["x-custom"], 7);
        assert_eq!(serde_json::to_value(&list).unwrap(), text);
    }

    #[test]
    fn single_conf_becomes_list() {
        let list = NetConfList::from_slice(
            br#"{"cniVersion": "0.4.0", "name": "old", "type": "ptp", "ipMasq": true}"#,
        )
        .unwrap();
        assert_eq!(list.cni_version, "0.4.0");
        assert_eq!(list.plugins.len(), 1);
        assert_eq!(list.plugins[0].plugin_type, "ptp");
        assert_eq!(list.plugins[0].extra["ipMasq"], true);
    }

    #[test]
    fn bad_lists_get_spec_codes() {
        let cases: &[(&[u8], ErrorCode)] = &[
            (b"{", ErrorCode::DECODING_FAILURE),
            (b"[]", ErrorCode::INVALID_NETWORK_CONFIG),
            (
                br#"{"cniVersion": "1.0.0", "plugins": [{"type": "x"}]}"#,
                ErrorCode::INVALID_NETWORK_CONFIG,
            ),
            (
                br#"{"name": "-bad", "plugins": [{"type": "x"}]}"#,
                ErrorCode::INVALID_NETWORK_CONFIG,
            ),
            (
                br#"{"name": "n", "plugins": [{"type": "../x"}]}"#,
                ErrorCode::INVALID_NETWORK_CONFIG,
            ),
            (
                br#"{"name": "n", "plugins": [{"bridge": "x"}]}"#,
                ErrorCode::INVALID_NETWORK_CONFIG,
            ),
            (
                br#"{"name": "n", "plugins": []}"#,
                ErrorCode::INVALID_NETWORK_CONFIG,
            ),
        ];
        for (text, code) in cases {
            let error = NetConfList::from_slice(text).unwrap_err();
            assert_eq!(
                error.code,
                *code,
                "{}: {error}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn identifiers_follow_libcni_rule() {
        for good in ["a", "net-1", "A_b.c", "0abc"] {
            assert!(is_valid_identifier(good), "{good}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "ä"] {
            assert!(!is_valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn selected_version_uses_cni_versions() {
        let mut list = NetConfList::new("n", "1.0.0");
        list.cni_versions = vec!["1.1.0".to_owned()];
        assert_eq!(list.selected_version().unwrap(), Version::V1_1_0);
        list.cni_version = "0.2.0".to_owned();
        list.cni_versions.clear();
        assert_eq!(
            list.selected_version().unwrap_err().code,
            ErrorCode::INCOMPATIBLE_VERSION
        );
    }

    #[test]
    fn find_in_dir_picks_by_name_and_appends_plugin_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("10-a.conflist"),
            br#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("20-b.conf"),
            br#"{"cniVersion":"1.0.0","name":"b","type":"bridge"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("05-broken.conf"), b"{").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(
            dir.path().join("a/1.conf"),
            br#"{"type":"tuning","mtu":1400}"#,
        )
        .unwrap();

        let a = NetConfList::find_in_dir(dir.path(), "a").unwrap();
        let types: Vec<_> = a.plugins.iter().map(|p| p.plugin_type.as_str()).collect();
        assert_eq!(types, ["ptp", "tuning"]);
        let b = NetConfList::find_in_dir(dir.path(), "b").unwrap();
        assert_eq!(b.plugins[0].plugin_type, "bridge");
        let missing = NetConfList::find_in_dir(dir.path(), "c").unwrap_err();
        assert_eq!(missing.code, ErrorCode::INVALID_NETWORK_CONFIG);
    }
}
