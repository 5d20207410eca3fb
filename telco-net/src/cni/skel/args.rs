//! [`CmdArgs`]: the validated request of one plugin run, from the `CNI_*` variables and stdin.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Environment;
use crate::cni::{CniResult, ErrorCode, NetConf, PluginError, is_valid_identifier};

/// A CNI verb, the value of `CNI_COMMAND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `ADD`: attach.
    Add,
    /// `DEL`: detach.
    Del,
    /// `CHECK`: verify an attachment.
    Check,
    /// `STATUS`: report readiness (CNI 1.1).
    Status,
    /// `GC`: release stale resources (CNI 1.1).
    Gc,
    /// `VERSION`: list supported versions.
    Version,
}

impl Command {
    /// The `CNI_COMMAND` text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// Whether the verb acts on one attachment, so it needs `CNI_CONTAINERID` and `CNI_IFNAME`.
    fn is_per_attachment(&self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Command {
    type Err = PluginError;

    /// Parses a `CNI_COMMAND` value; anything else is code 4.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            _ => {
                return Err(PluginError::new(
                    ErrorCode::INVALID_ENVIRONMENT,
                    format!("unknown CNI_COMMAND \"{text}\""),
                )
                .details("expected ADD, DEL, CHECK, STATUS, GC or VERSION"));
            }
        })
    }
}

/// One attachment that is still in use, as GC's `cni.dev/valid-attachments` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcAttachment {
    /// `containerID`.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `ifname`.
    #[serde(rename = "ifname")]
    pub ifname: String,
}

/// The request of one plugin run: the verb, the validated `CNI_*` variables and the configuration.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CmdArgs {
    /// The verb from `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`; empty for STATUS and GC.
    pub container_id: String,
    /// `CNI_NETNS`; absent for STATUS, GC and a DEL whose namespace is gone.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`; empty for STATUS and GC.
    pub ifname: String,
    /// `CNI_ARGS` split into `KEY=VALUE` pairs, in order.
    pub args: Vec<(String, String)>,
    /// `CNI_PATH` split at `:`.
    pub path: Vec<PathBuf>,
    /// The configuration bytes read from stdin.
    pub stdin: Vec<u8>,
    /// The configuration's common keys, decoded.
    pub config: NetConf,
    netns_override: bool,
}

impl CmdArgs {
    /// Reads and validates the variables a verb requires (CNI spec section 2 and libcni's skel).
    ///
    /// # Errors
    ///
    /// Code 4 naming a missing or invalid variable, code 3 for an empty container ID, code 6
    /// for a configuration that is not JSON, and code 7 for an invalid network name.
    pub fn from_env(
        command: Command,
        env: &Environment,
        stdin: &[u8],
    ) -> Result<Self, PluginError> {
        let var = |name: &str| env.get(name).map(String::as_str);
        check_required(command, env)?;

        let container_id = var("CNI_CONTAINERID").unwrap_or_default().to_owned();
        let ifname = var("CNI_IFNAME").unwrap_or_default().to_owned();
        if command.is_per_attachment() {
            validate_container_id(&container_id)?;
            validate_ifname(&ifname)?;
        }
        let args = parse_cni_args(var("CNI_ARGS").unwrap_or_default())?;
        let path = std::env::split_paths(var("CNI_PATH").unwrap_or_default())
            .filter(|dir| !dir.as_os_str().is_empty())
            .collect();
        let netns = var("CNI_NETNS")
            .filter(|n| !n.is_empty())
            .map(PathBuf::from);
        let netns_override = matches!(var("CNI_NETNS_OVERRIDE"), Some(v) if v == "1" || v.eq_ignore_ascii_case("true"));

        let config = NetConf::from_slice(stdin)?;
        if config.cni_version.is_empty() {
            return Err(PluginError::new(
                ErrorCode::DECODING_FAILURE,
                "network configuration has no \"cniVersion\"",
            ));
        }
        crate::cni::validate_network_name(&config.name)?;
        Ok(CmdArgs {
            command,
            container_id,
            netns,
            ifname,
            args,
            path,
            stdin: stdin.to_vec(),
            config,
            netns_override,
        })
    }

    /// The request's `cniVersion`.
    pub fn cni_version(&self) -> &str {
        &self.config.cni_version
    }

    /// The namespace path, which ADD and CHECK always have.
    ///
    /// # Errors
    ///
    /// Code 4 when `CNI_NETNS` is unset, as it may be on DEL.
    pub fn netns_path(&self) -> Result<&Path, PluginError> {
        self.netns.as_deref().ok_or_else(|| {
            PluginError::new(
                ErrorCode::INVALID_ENVIRONMENT,
                "required variable CNI_NETNS is missing",
            )
        })
    }

    /// Decodes the whole configuration into the plugin's own type.
    ///
    /// # Errors
    ///
    /// Code 6 when the configuration does not match `T`.
    pub fn parse_config<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.stdin).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::DECODING_FAILURE,
                "failed to decode plugin configuration",
                &error,
            )
        })
    }

    /// Decodes `prevResult`, when the runtime sent one.
    ///
    /// # Errors
    ///
    /// Code 1 or 6 as [`CniResult::from_value`].
    pub fn prev_result(&self) -> Result<Option<CniResult>, PluginError> {
        match &self.config.prev_result {
            None | Some(Value::Null) => Ok(None),
            Some(value) => CniResult::from_value(value.clone()).map(Some),
        }
    }

    /// The value of `key` in `CNI_ARGS`.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The attachments GC must keep: `cni.dev/valid-attachments`, or the older
    /// `cni.dev/attachments` when only that key is present.
    ///
    /// # Errors
    ///
    /// Code 6 when the list does not decode.
    pub fn valid_attachments(&self) -> Result<Vec<GcAttachment>, PluginError> {
        let extra = &self.config.extra;
        let Some(list) = extra
            .get("cni.dev/valid-attachments")
            .or_else(|| extra.get("cni.dev/attachments"))
        else {
            return Ok(Vec::new());
        };
        serde_json::from_value(list.clone()).map_err(|error| {
            PluginError::with_cause(
                ErrorCode::DECODING_FAILURE,
                "failed to decode cni.dev/valid-attachments",
                &error,
            )
        })
    }

    /// Rejects a `CNI_NETNS` that is the namespace this process runs in (code 8), unless
    /// `CNI_NETNS_OVERRIDE` allows it.
    pub(super) fn check_foreign_netns(&self) -> Result<(), PluginError> {
        let Some(netns) = self.netns.as_deref().filter(|_| !self.netns_override) else {
            return Ok(());
        };
        let target = match std::fs::metadata(netns) {
            Ok(metadata) => metadata,
            // A missing namespace is the plugin's concern: DEL must then succeed, ADD fails
            // when it opens it.
            Err(_) => return Ok(()),
        };
        let own = std::fs::metadata("/proc/self/ns/net").map_err(|error| {
            PluginError::with_cause(
                ErrorCode::IO_FAILURE,
                "failed to stat /proc/self/ns/net",
                &error,
            )
        })?;
        if (target.dev(), target.ino()) == (own.dev(), own.ino()) {
            return Err(PluginError::new(
                ErrorCode::INVALID_NETNS,
                format!(
                    "CNI_NETNS {} is the plugin's own network namespace",
                    netns.display()
                ),
            )
            .details("set CNI_NETNS_OVERRIDE=1 to allow it"));
        }
        Ok(())
    }
}

fn check_required(command: Command, env: &Environment) -> Result<(), PluginError> {
    let required: &[&str] = match command {
        Command::Add | Command::Check => {
            &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]
        }
        Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
        Command::Status | Command::Gc => &["CNI_PATH"],
        Command::Version => &[],
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|name| env.get(*name).is_none_or(String::is_empty))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(PluginError::new(
        ErrorCode::INVALID_ENVIRONMENT,
        format!("required variables missing: {}", missing.join(", ")),
    ))
}

/// Checks a container ID as libcni does: code 3 when empty, code 4 when it has other
/// characters than `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
///
/// # Errors
///
/// As described.
pub fn validate_container_id(container_id: &str) -> Result<(), PluginError> {
    if container_id.is_empty() {
        return Err(PluginError::new(
            ErrorCode::UNKNOWN_CONTAINER,
            "required variable CNI_CONTAINERID is missing",
        ));
    }
    if !is_valid_identifier(container_id) {
        return Err(PluginError::new(
            ErrorCode::INVALID_ENVIRONMENT,
            format!("invalid CNI_CONTAINERID \"{container_id}\""),
        )
        .details("it must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$"));
    }
    Ok(())
}

/// Checks an interface name as libcni does: 1 to 15 bytes, not `.` or `..`, without `/`, `:`
/// or whitespace.
///
/// # Errors
///
/// Code 4 naming the problem.
pub fn validate_ifname(ifname: &str) -> Result<(), PluginError> {
    let problem = if ifname.is_empty() {
        Some("it is empty")
    } else if ifname.len() > 15 {
        Some("it is longer than 15 bytes")
    } else if ifname == "." || ifname == ".." {
        Some("it is \".\" or \"..\"")
    } else if ifname
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("it contains '/', ':' or whitespace")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(PluginError::new(
            ErrorCode::INVALID_ENVIRONMENT,
            format!("invalid CNI_IFNAME \"{ifname}\": {problem}"),
        )),
    }
}

/// Splits `CNI_ARGS` (`K=V;K=V`) into pairs.
///
/// # Errors
///
/// Code 4 for a pair without `=`.
pub fn parse_cni_args(text: &str) -> Result<Vec<(String, String)>, PluginError> {
    text.split(';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                PluginError::new(
                    ErrorCode::INVALID_ENVIRONMENT,
                    format!("invalid CNI_ARGS pair \"{pair}\": expected KEY=VALUE"),
                )
            })?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}
