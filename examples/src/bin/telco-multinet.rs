//! `telco-multinet`: a meta CNI plugin that attaches several networks to one container, a Multus
//! for plain CNI runtimes such as podman's CNI backend.
//!
//! Configuration (one plugin object of the runtime's conflist):
//!
//! ```json
//! {"cniVersion": "1.0.0", "name": "pod-nets", "type": "telco-multinet",
//!  "delegates": [{"cniVersion": "1.0.0", "name": "mgmt", "plugins": [...]}, ...],
//!  "confDir": "/etc/cni/telco-multinet/net.d", "stateDir": "/var/lib/cni/telco-multinet"}
//! ```
//!
//! `delegates` holds conflists (or single-plugin configs) inline; `networks` instead names
//! conflists found in `confDir`. ADD runs the delegates in order through the CNI runtime: the
//! first gets `CNI_IFNAME`, the next ones `net1`, `net2`, ... It returns the first delegate's
//! result and writes the network-status list to `<stateDir>/<containerID>.json`. When a delegate
//! fails, the delegates before it and the failed one are deleted again. DEL runs in reverse, goes
//! on after errors, and succeeds when nothing is left. CHECK, STATUS and GC are forwarded to
//! every delegate. Delegate results are cached in libcni's format under `<stateDir>/cache`.
//!
//! Every run prints at most one JSON document on stdout; errors carry the CNI code (6 malformed
//! JSON, 1 unsupported version, 4 missing or invalid variable, 7 invalid configuration, or the
//! delegate's own code) and exit with status 1. Logs go to stderr, filtered by `RUST_LOG`
//! (default `warn`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use telco_net::cni::{
    CmdArgs, CniError, CniResult, CniRuntime, Command, ErrorCode, GcAttachment, NetConfList,
    NetworkStatus, Plugin, PluginError, RuntimeConf, plugin_main, validate_network_name,
};

const DEFAULT_CONF_DIR: &str = "/etc/cni/telco-multinet/net.d";
const DEFAULT_STATE_DIR: &str = "/var/lib/cni/telco-multinet";

/// The keys of this plugin's configuration object; the common ones are read by the skeleton.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MultinetConf {
    #[serde(default)]
    delegates: Vec<Value>,
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default = "default_conf_dir")]
    conf_dir: PathBuf,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
}

fn default_conf_dir() -> PathBuf {
    PathBuf::from(DEFAULT_CONF_DIR)
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}

/// One resolved delegate: its conflist and the interface name it gets in the container.
#[derive(Debug)]
struct Delegate {
    list: NetConfList,
    ifname: String,
}

/// A request with its configuration resolved.
#[derive(Debug)]
struct Request {
    delegates: Vec<Delegate>,
    state_dir: PathBuf,
    runtime: CniRuntime,
}

impl Request {
    fn from_args(args: &CmdArgs) -> Result<Request, PluginError> {
        let conf: MultinetConf = args.parse_config()?;
        let runtime =
            CniRuntime::new(args.path.clone()).with_cache_dir(conf.state_dir.join("cache"));
        // DEL must succeed after a network's file was removed: it then uses the configuration
        // cached at ADD, or skips the network when there is none because nothing was attached.
        let cached = |index: usize, name: &str| {
            if args.command != Command::Del {
                return Err(());
            }
            let rt = RuntimeConf::new(
                args.container_id.clone(),
                None,
                delegate_ifname(&args.ifname, index),
            );
            let entry = runtime.cached_attachment(name, &rt).ok().flatten();
            Ok(entry.and_then(|entry| NetConfList::from_slice(&entry.config).ok()))
        };
        let delegates = resolve_delegates(&conf, &cached)?
            .into_iter()
            .map(|(index, list)| Delegate {
                ifname: delegate_ifname(&args.ifname, index),
                list,
            })
            .collect();
        Ok(Request {
            delegates,
            state_dir: conf.state_dir,
            runtime,
        })
    }

    fn runtime_conf(&self, args: &CmdArgs, delegate: &Delegate) -> RuntimeConf {
        let mut rt = RuntimeConf::new(
            args.container_id.clone(),
            args.netns.clone(),
            delegate.ifname.clone(),
        );
        rt.args = args.args.clone();
        rt
    }

    fn status_path(&self, container_id: &str) -> PathBuf {
        self.state_dir.join(format!("{container_id}.json"))
    }
}

/// The interface name of delegate `index`: the runtime's for the first, `netN` for the others.
fn delegate_ifname(first: &str, index: usize) -> String {
    if index == 0 {
        first.to_owned()
    } else {
        format!("net{index}")
    }
}

/// Looks up the cached configuration of network `name` at position `index` during DEL; `Err`
/// outside DEL.
type CacheLookup<'a> = dyn Fn(usize, &str) -> Result<Option<NetConfList>, ()> + 'a;

/// Resolves the configured delegates, each with its position in the list (which names its
/// interface). A network of `networks` missing from `confDir` is an error unless `cached`
/// returns `Ok`: then its cached configuration is used, or the network is skipped when `None`.
fn resolve_delegates(
    conf: &MultinetConf,
    cached: &CacheLookup<'_>,
) -> Result<Vec<(usize, NetConfList)>, PluginError> {
    let lists: Vec<(usize, NetConfList)> = match (
        conf.delegates.is_empty(),
        conf.networks.is_empty(),
    ) {
        (false, true) => conf
            .delegates
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let list = NetConfList::from_value(value.clone()).map_err(|mut error| {
                    error.msg = format!("delegate {index}: {}", error.msg);
                    error
                })?;
                Ok((index, list))
            })
            .collect::<Result<Vec<_>, PluginError>>()?,
        (true, false) => {
            let mut lists = Vec::with_capacity(conf.networks.len());
            for (index, name) in conf.networks.iter().enumerate() {
                validate_network_name(name)?;
                match NetConfList::find_in_dir(&conf.conf_dir, name) {
                    Ok(list) => lists.push((index, list)),
                    Err(error) => match cached(index, name) {
                        Err(()) => return Err(error),
                        Ok(Some(list)) => lists.push((index, list)),
                        Ok(None) => {
                            tracing::info!(network = %name, "network not found and not cached, nothing to delete");
                        }
                    },
                }
            }
            lists
        }
        _ => {
            return Err(PluginError::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                "exactly one of \"delegates\" and \"networks\" must list at least one network",
            ));
        }
    };
    let mut names = BTreeSet::new();
    if let Some((_, list)) = lists
        .iter()
        .find(|(_, list)| !names.insert(list.name.as_str()))
    {
        return Err(PluginError::new(
            ErrorCode::INVALID_NETWORK_CONFIG,
            format!("network \"{}\" is listed twice", list.name),
        ));
    }
    Ok(lists)
}

fn delegate_context(delegate: &Delegate) -> String {
    format!("delegate \"{}\" ({})", delegate.list.name, delegate.ifname)
}

/// The plugin: each verb forwards to the delegates.
struct Multinet;

impl Plugin for Multinet {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, PluginError> {
        let request = Request::from_args(args)?;
        let mut results = Vec::with_capacity(request.delegates.len());
        for (index, delegate) in request.delegates.iter().enumerate() {
            let rt = request.runtime_conf(args, delegate);
            match request.runtime.add_network_list(&delegate.list, &rt) {
                Ok(result) => results.push(result),
                Err(error) => {
                    // The spec wants a DEL after every ADD, also a failed one, so the failed
                    // delegate is deleted together with those before it.
                    undo(args, &request, index);
                    return Err(error.to_plugin_error(&delegate_context(delegate)));
                }
            }
        }
        if let Err(error) = write_status(args, &request, &results) {
            undo(args, &request, request.delegates.len() - 1);
            return Err(error);
        }
        Ok(results.swap_remove(0))
    }

    fn del(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let request = Request::from_args(args)?;
        let mut errors = Vec::new();
        for delegate in request.delegates.iter().rev() {
            let rt = request.runtime_conf(args, delegate);
            if let Err(error) = request.runtime.del_network_list(&delegate.list, &rt) {
                tracing::warn!(network = %delegate.list.name, ifname = %delegate.ifname, error = %error_text(&error), "DEL of delegate failed");
                errors.push(error.to_plugin_error(&delegate_context(delegate)));
            }
        }
        remove_file(&request.status_path(&args.container_id))?;
        first_of(errors)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let request = Request::from_args(args)?;
        let path = request.status_path(&args.container_id);
        if !path.exists() {
            return Err(PluginError::new(
                ErrorCode::UNKNOWN_CONTAINER,
                format!(
                    "no network status for container \"{}\" at {}",
                    args.container_id,
                    path.display()
                ),
            ));
        }
        for delegate in &request.delegates {
            let rt = request.runtime_conf(args, delegate);
            request
                .runtime
                .check_network_list(&delegate.list, &rt)
                .map_err(|error| error.to_plugin_error(&delegate_context(delegate)))?;
        }
        Ok(())
    }

    fn status(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let request = Request::from_args(args)?;
        for delegate in &request.delegates {
            request
                .runtime
                .get_status(&delegate.list)
                .map_err(|error| error.to_plugin_error(&delegate_context(delegate)))?;
        }
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), PluginError> {
        let request = Request::from_args(args)?;
        let valid = args.valid_attachments()?;
        let mut errors = Vec::new();
        for (index, delegate) in request.delegates.iter().enumerate() {
            let delegate_valid: Vec<GcAttachment> = valid
                .iter()
                .map(|a| GcAttachment {
                    container_id: a.container_id.clone(),
                    ifname: delegate_ifname(&a.ifname, index),
                })
                .collect();
            if let Err(error) = request
                .runtime
                .gc_network_list(&delegate.list, &delegate_valid)
            {
                errors.push(error.to_plugin_error(&delegate_context(delegate)));
            }
        }
        if let Err(error) = remove_stale_status_files(&request.state_dir, &valid) {
            errors.push(error);
        }
        first_of(errors)
    }

    fn about(&self) -> String {
        format!(
            "telco-multinet {}: attaches several CNI networks to one container",
            env!("CARGO_PKG_VERSION")
        )
    }
}

/// Deletes delegates `0..=last` in reverse; failures are logged, because the ADD error is the
/// one the runtime needs to see.
fn undo(args: &CmdArgs, request: &Request, last: usize) {
    for delegate in request.delegates[..=last].iter().rev() {
        let rt = request.runtime_conf(args, delegate);
        if let Err(error) = request.runtime.del_network_list(&delegate.list, &rt) {
            tracing::warn!(network = %delegate.list.name, ifname = %delegate.ifname, error = %error_text(&error), "undoing delegate failed");
        }
    }
}

fn write_status(
    args: &CmdArgs,
    request: &Request,
    results: &[CniResult],
) -> Result<(), PluginError> {
    let statuses: Vec<NetworkStatus> = request
        .delegates
        .iter()
        .zip(results)
        .enumerate()
        .map(|(index, (delegate, result))| {
            let mut status = result.to_network_status(delegate.list.name.clone());
            status
                .interface
                .get_or_insert_with(|| delegate.ifname.clone());
            status.default = index == 0;
            status
        })
        .collect();
    let path = request.status_path(&args.container_id);
    let io_error = |error: std::io::Error| {
        PluginError::with_cause(
            ErrorCode::IO_FAILURE,
            format!("failed to write network status {}", path.display()),
            &error,
        )
    };
    std::fs::create_dir_all(&request.state_dir).map_err(io_error)?;
    let bytes = serde_json::to_vec_pretty(&statuses).expect("statuses always serialise");
    let temp = request
        .state_dir
        .join(format!(".{}.json.tmp", args.container_id));
    let mut file = std::fs::File::create(&temp).map_err(io_error)?;
    file.write_all(&bytes).map_err(io_error)?;
    std::fs::rename(&temp, &path).map_err(io_error)
}

fn remove_file(path: &Path) -> Result<(), PluginError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(PluginError::with_cause(
            ErrorCode::IO_FAILURE,
            format!("failed to remove {}", path.display()),
            &error,
        )),
    }
}

fn remove_stale_status_files(state_dir: &Path, valid: &[GcAttachment]) -> Result<(), PluginError> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(container_id) = name.strip_suffix(".json") else {
            continue;
        };
        if !valid.iter().any(|a| a.container_id == container_id) {
            remove_file(&entry.path())?;
        }
    }
    Ok(())
}

fn first_of(errors: Vec<PluginError>) -> Result<(), PluginError> {
    let count = errors.len();
    match errors.into_iter().next() {
        None => Ok(()),
        Some(mut error) if count > 1 => {
            error.msg = format!("{} (and {} more failures)", error.msg, count - 1);
            Err(error)
        }
        Some(error) => Err(error),
    }
}

fn error_text(error: &CniError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn main() {
    telco_examples::init_logging("warn");
    plugin_main(&Multinet)
}
