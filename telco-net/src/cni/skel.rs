//! Plugin side: what libcni's `skel` package does for a plugin binary.
//!
//! A plugin implements [`Plugin`], one method per verb, and calls [`plugin_main`] from `main`.
//! The skeleton reads and validates the `CNI_*` variables and stdin, checks the configuration's
//! version, calls the method, and writes exactly one JSON document to stdout: the result, the
//! VERSION reply, or an error object followed by exit status 1.
//!
//! ```no_run
//! use telco_net::cni::{CmdArgs, CniResult, Plugin, PluginError, plugin_main};
//!
//! struct Noop;
//!
//! impl Plugin for Noop {
//!     fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError> {
//!         Ok(args.prev_result()?.unwrap_or_else(|| CniResult::new(args.cni_version())))
//!     }
//!     fn del(&self, _args: &CmdArgs) -> Result<(), PluginError> {
//!         Ok(())
//!     }
//!     fn check(&self, _args: &CmdArgs) -> Result<(), PluginError> {
//!         Ok(())
//!     }
//! }
//!
//! fn main() {
//!     plugin_main(&Noop)
//! }
//! ```
//!
//! Differences from libcni's `skel`: the check that `CNI_NETNS` is not the plugin's own network
//! namespace (code 8, skipped when `CNI_NETNS_OVERRIDE` is `1` or `true`) runs before ADD and DEL
//! instead of after them, so a plugin never changes the namespace it runs in. VERSION replies with
//! the request's `cniVersion` when it is supported, as the spec requires, where libcni's `skel` always
//! replies with its own newest version.

mod args;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;

pub use args::{
    CmdArgs, Command, GcAttachment, parse_cni_args, validate_container_id, validate_ifname,
};

use super::{
    CURRENT_VERSION, CniResult, ErrorCode, PluginError, SUPPORTED_VERSIONS, Version, VersionInfo,
};

/// A CNI plugin: one method per verb. [`plugin_main`] and [`dispatch`] call them.
pub trait Plugin {
    /// ADD: creates the attachment and returns its result. A chained plugin extends or echoes
    /// [`CmdArgs::prev_result`].
    ///
    /// # Errors
    ///
    /// The plugin's error, written to stdout as the error result.
    fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError>;

    /// DEL: removes the attachment. It must succeed when the attachment or the namespace is
    /// already gone.
    ///
    /// # Errors
    ///
    /// The plugin's error.
    fn del(&self, args: &CmdArgs) -> Result<(), PluginError>;

    /// CHECK: verifies the attachment that [`CmdArgs::prev_result`] describes.
    ///
    /// # Errors
    ///
    /// The plugin's error naming what differs.
    fn check(&self, args: &CmdArgs) -> Result<(), PluginError>;

    /// STATUS (CNI 1.1): returns whether the plugin can serve ADD. The default reports ready, as
    /// libcni's `skel` does for plugins without a STATUS function.
    ///
    /// # Errors
    ///
    /// Code 50 or 51 when the plugin is not ready.
    fn status(&self, _args: &CmdArgs) -> Result<(), PluginError> {
        Ok(())
    }

    /// GC (CNI 1.1): releases resources of attachments not in [`CmdArgs::valid_attachments`].
    /// The default does nothing and succeeds.
    ///
    /// # Errors
    ///
    /// The plugin's error.
    fn gc(&self, _args: &CmdArgs) -> Result<(), PluginError> {
        Ok(())
    }

    /// The spec versions the plugin accepts; by default every version this crate implements.
    fn supported_versions(&self) -> &[&str] {
        SUPPORTED_VERSIONS
    }

    /// One line naming the plugin, printed to stderr when it runs without `CNI_COMMAND`.
    fn about(&self) -> String {
        "CNI plugin".to_owned()
    }
}

/// The process environment a plugin ran with, as name and value.
pub type Environment = BTreeMap<String, String>;

/// What a plugin run produces: stdout text, optional stderr text and the exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reply {
    /// Text for stdout: at most one JSON document.
    pub stdout: String,
    /// Text for stderr (only the "about" text of a run without `CNI_COMMAND`).
    pub stderr: String,
    /// 0 on success, 1 on error.
    pub exit_code: i32,
}

impl Reply {
    fn success(stdout: String) -> Self {
        Reply {
            stdout,
            stderr: String::new(),
            exit_code: 0,
        }
    }

    fn error(error: &PluginError) -> Self {
        let stdout = serde_json::to_string(error).unwrap_or_else(|_| {
            format!(
                r#"{{"code":{},"msg":"failed to encode error"}}"#,
                ErrorCode::INTERNAL
            )
        });
        Reply {
            stdout,
            stderr: String::new(),
            exit_code: 1,
        }
    }
}

/// Runs `plugin` as a CNI plugin process: reads the environment and stdin, calls the verb,
/// prints the reply and exits. Never returns.
pub fn plugin_main<P: Plugin + ?Sized>(plugin: &P) -> ! {
    let env: Environment = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    let mut stdin = Vec::new();
    let reply = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => dispatch(plugin, &env, &stdin),
        Err(error) => Reply::error(&PluginError::with_cause(
            ErrorCode::IO_FAILURE,
            "failed to read network configuration from stdin",
            &error,
        )),
    };
    // A closed stdout or stderr leaves nothing useful to do, because the exit status still
    // reports to the runtime whether the verb succeeded.
    let _ = std::io::stderr().write_all(reply.stderr.as_bytes());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(reply.stdout.as_bytes());
    let _ = stdout.flush();
    std::process::exit(reply.exit_code)
}

/// Runs one verb of `plugin` on the given environment and stdin and returns what the process
/// would print. [`plugin_main`] is this plus the process plumbing; tests call it directly.
///
/// A panic inside the plugin becomes an error result with code 999, so stdout still contains one
/// JSON document.
pub fn dispatch<P: Plugin + ?Sized>(plugin: &P, env: &Environment, stdin: &[u8]) -> Reply {
    let Some(command) = env.get("CNI_COMMAND") else {
        return about(plugin);
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run_command(plugin, command, env, stdin)
    }));
    match outcome {
        Ok(Ok(stdout)) => Reply::success(stdout),
        Ok(Err(error)) => Reply::error(&error),
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Reply::error(&PluginError::new(ErrorCode::INTERNAL, "plugin panicked").details(text))
        }
    }
}

fn about<P: Plugin + ?Sized>(plugin: &P) -> Reply {
    Reply {
        stdout: String::new(),
        stderr: format!(
            "{}\nCNI protocol versions supported: {}\n",
            plugin.about(),
            plugin.supported_versions().join(", ")
        ),
        exit_code: 0,
    }
}

fn run_command<P: Plugin + ?Sized>(
    plugin: &P,
    command: &str,
    env: &Environment,
    stdin: &[u8],
) -> Result<String, PluginError> {
    let command: Command = command.parse()?;
    if command == Command::Version {
        return version_reply(plugin, stdin);
    }
    let args = CmdArgs::from_env(command, env, stdin)?;
    check_version(plugin, &args)?;
    match command {
        Command::Add => {
            args.check_foreign_netns()?;
            let result = plugin.add(&args)?;
            let result = result.convert_to(args.cni_version())?;
            serde_json::to_string(&result.to_value()).map_err(|error| {
                PluginError::with_cause(ErrorCode::INTERNAL, "failed to encode result", &error)
            })
        }
        Command::Del => {
            args.check_foreign_netns()?;
            plugin.del(&args).map(|()| String::new())
        }
        Command::Check => plugin.check(&args).map(|()| String::new()),
        Command::Status => plugin.status(&args).map(|()| String::new()),
        Command::Gc => plugin.gc(&args).map(|()| String::new()),
        Command::Version => unreachable!("VERSION returned above"),
    }
}

fn version_reply<P: Plugin + ?Sized>(plugin: &P, stdin: &[u8]) -> Result<String, PluginError> {
    let requested = serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|value| value.get("cniVersion")?.as_str().map(str::to_owned))
        .filter(|version| plugin.supported_versions().contains(&version.as_str()));
    let info = VersionInfo::new(
        requested.unwrap_or_else(|| CURRENT_VERSION.to_owned()),
        plugin.supported_versions(),
    );
    serde_json::to_string(&info).map_err(|error| {
        PluginError::with_cause(
            ErrorCode::INTERNAL,
            "failed to encode version reply",
            &error,
        )
    })
}

/// Checks the configuration's version against the plugin's list and the verb's minimum.
fn check_version<P: Plugin + ?Sized>(plugin: &P, args: &CmdArgs) -> Result<(), PluginError> {
    let text = args.cni_version();
    let supported = plugin.supported_versions();
    let version = text
        .parse::<Version>()
        .ok()
        .filter(|_| supported.contains(&text));
    let Some(version) = version else {
        return Err(
            PluginError::new(ErrorCode::INCOMPATIBLE_VERSION, "incompatible CNI versions").details(
                format!("config is \"{text}\", plugin supports {supported:?}"),
            ),
        );
    };
    let minimum = match args.command {
        Command::Check => Version::V0_4_0,
        Command::Status | Command::Gc => Version::V1_1_0,
        _ => return Ok(()),
    };
    if version < minimum {
        return Err(PluginError::new(
            ErrorCode::INCOMPATIBLE_VERSION,
            format!("config version {version} does not allow {}", args.command),
        )
        .details(format!("{} needs version {minimum} or later", args.command)));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
