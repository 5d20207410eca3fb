//! [`CniError`]: why a runtime operation failed.

use std::path::PathBuf;
use std::process::ExitStatus;

use crate::cni::error::error_chain;
use crate::cni::skel::Command;
use crate::cni::{ErrorCode, PluginError};

/// A failure of the CNI runtime: finding or running a plugin, its reply, or the result cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CniError {
    /// No directory of the plugin search path contains an executable named after the plugin type.
    #[error(
        "CNI plugin \"{plugin}\" not found in {search_path:?}; install it or add its directory to CNI_PATH"
    )]
    PluginNotFound {
        /// The plugin type.
        plugin: String,
        /// The directories searched.
        search_path: Vec<PathBuf>,
    },
    /// The plugin could not be started or its pipes failed.
    #[error("failed to execute CNI plugin {} for {verb}", path.display())]
    Exec {
        /// The plugin binary.
        path: PathBuf,
        /// The verb.
        verb: Command,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The plugin returned an error result.
    #[error("CNI plugin \"{plugin}\" failed on {verb} for network \"{network}\"")]
    Plugin {
        /// The plugin type.
        plugin: String,
        /// The network name.
        network: String,
        /// The verb.
        verb: Command,
        /// The plugin's error result.
        #[source]
        error: Box<PluginError>,
    },
    /// The plugin exited with a failure status and wrote no error result on stdout.
    #[error(
        "CNI plugin \"{plugin}\" failed on {verb} with {status} and no error result; stderr: {stderr:?}"
    )]
    PluginCrashed {
        /// The plugin type.
        plugin: String,
        /// The verb.
        verb: Command,
        /// The exit status.
        status: ExitStatus,
        /// What the plugin wrote to stderr.
        stderr: String,
    },
    /// The plugin succeeded but its stdout is not a valid reply.
    #[error("CNI plugin \"{plugin}\" wrote an invalid {verb} reply")]
    InvalidReply {
        /// The plugin type.
        plugin: String,
        /// The verb.
        verb: Command,
        /// What is wrong with the reply.
        #[source]
        error: Box<PluginError>,
    },
    /// The network configuration cannot be used.
    #[error("invalid network configuration \"{network}\"")]
    Config {
        /// The network name.
        network: String,
        /// What is wrong.
        #[source]
        error: Box<PluginError>,
    },
    /// CHECK needs the result of an earlier ADD, and the cache contains none.
    #[error(
        "no cached result for network \"{network}\", container \"{container_id}\", interface \"{ifname}\": ADD first"
    )]
    NotCached {
        /// The network name.
        network: String,
        /// The container ID.
        container_id: String,
        /// The interface name.
        ifname: String,
    },
    /// Reading, writing or removing a result cache file failed.
    #[error("failed to {action} CNI result cache {}", path.display())]
    Cache {
        /// `read`, `write`, `decode` or `remove`.
        action: &'static str,
        /// The cache file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// GC collects every failure and goes on; these are all of them.
    #[error("GC of network \"{network}\" failed in {} step(s): {}", errors.len(), join_errors(errors))]
    Gc {
        /// The network name.
        network: String,
        /// Each failure.
        errors: Vec<CniError>,
    },
}

fn join_errors(errors: &[CniError]) -> String {
    errors
        .iter()
        .map(|e| error_chain(e))
        .collect::<Vec<_>>()
        .join("; ")
}

impl CniError {
    /// Converts the failure into the error result a plugin prints, for a meta plugin that
    /// passes a delegate's failure on.
    ///
    /// A plugin's own error keeps its code and details and gains `context` and the plugin name
    /// in `msg`. Configuration and version problems keep their code, and the rest become 999.
    pub fn to_plugin_error(&self, context: &str) -> PluginError {
        match self {
            CniError::Plugin {
                plugin,
                verb,
                error,
                ..
            } => {
                let mut passed_on = (**error).clone();
                passed_on.msg = format!(
                    "{context}: plugin \"{plugin}\" failed on {verb}: {}",
                    error.msg
                );
                passed_on
            }
            CniError::Config { error, .. } => {
                PluginError::new(error.code, format!("{context}: {}", error.msg))
                    .details(error_chain(self))
            }
            CniError::Gc { errors, .. } => {
                let code = errors
                    .iter()
                    .map(|e| e.to_plugin_error(context).code)
                    .next()
                    .unwrap_or(ErrorCode::INTERNAL);
                PluginError::new(code, format!("{context}: {self}"))
            }
            _ => PluginError::new(ErrorCode::INTERNAL, format!("{context}: {self}"))
                .details(error_chain(self)),
        }
    }
}
