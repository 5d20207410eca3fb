//! Running a plugin binary: lookup in the search path, environment, stdin and reply decoding
//! (libcni's `invoke` package).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use super::CniError;
use crate::cni::PluginError;
use crate::cni::skel::Command;

/// Attempts to start a binary that another process is still writing (`ETXTBSY`), as libcni does.
const EXEC_ATTEMPTS: u32 = 5;
const EXEC_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Finds the executable `plugin` in `dirs`, first match wins.
///
/// # Errors
///
/// [`CniError::PluginNotFound`] when no directory has it.
pub fn find_plugin(plugin: &str, dirs: &[PathBuf]) -> Result<PathBuf, CniError> {
    use std::os::unix::fs::PermissionsExt;

    let found = dirs.iter().map(|dir| dir.join(plugin)).find(|path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    found.ok_or_else(|| CniError::PluginNotFound {
        plugin: plugin.to_owned(),
        search_path: dirs.to_vec(),
    })
}

/// The `CNI_*` variables of one plugin run.
#[derive(Clone, Debug, Default)]
pub(crate) struct PluginEnv<'a> {
    pub(crate) container_id: Option<&'a str>,
    pub(crate) netns: Option<&'a Path>,
    pub(crate) ifname: Option<&'a str>,
    pub(crate) args: &'a [(String, String)],
}

/// Runs `plugin` for `verb` with `stdin` and returns its stdout on success.
///
/// The child inherits this process's environment without its `CNI_*` variables, plus the
/// request's. Its stderr is captured: logged at debug level, and used as the error text when the
/// plugin fails without an error result.
pub(crate) fn exec_plugin(
    plugin: &str,
    dirs: &[PathBuf],
    verb: Command,
    env: &PluginEnv<'_>,
    stdin: &[u8],
) -> Result<Vec<u8>, CniError> {
    let path = find_plugin(plugin, dirs)?;
    let mut process = Process::new(&path);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CNI_") {
            process.env_remove(key);
        }
    }
    process
        .env("CNI_COMMAND", verb.as_str())
        .env("CNI_PATH", std::env::join_paths(dirs).unwrap_or_default());
    if let Some(id) = env.container_id {
        process.env("CNI_CONTAINERID", id);
    }
    if let Some(netns) = env.netns {
        process.env("CNI_NETNS", netns);
    }
    if let Some(ifname) = env.ifname {
        process.env("CNI_IFNAME", ifname);
    }
    if !env.args.is_empty() {
        let args: Vec<String> = env.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        process.env("CNI_ARGS", args.join(";"));
    }
    process
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let exec_error = |source| CniError::Exec {
        path: path.clone(),
        verb,
        source,
    };
    let started = std::time::Instant::now();
    let mut child = spawn_with_retry(&mut process).map_err(exec_error)?;
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let (output, written) = if stdin.len() <= libc::PIPE_BUF {
        // A pipe buffers at least PIPE_BUF bytes, so this write cannot block. It is also
        // cheaper than starting a thread.
        let written = pipe.write_all(stdin);
        drop(pipe);
        (child.wait_with_output(), written)
    } else {
        // A thread writes a larger stdin so that a plugin which prints before it has read
        // everything cannot block on a full pipe while this side waits.
        let input = stdin.to_vec();
        let writer = std::thread::spawn(move || pipe.write_all(&input));
        let output = child.wait_with_output();
        (output, writer.join().unwrap_or(Ok(())))
    };
    let output = output.map_err(exec_error)?;
    // A plugin may exit without reading stdin (VERSION does); a broken pipe is then expected.
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(exec_error(error));
    }

    tracing::debug!(plugin, verb = %verb, elapsed_us = started.elapsed().as_micros(), status = %output.status, "CNI plugin ran");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if !stderr.is_empty() {
        tracing::debug!(plugin, verb = %verb, stderr, "CNI plugin stderr");
    }
    if output.status.success() {
        return Ok(output.stdout);
    }
    if let Ok(error) = serde_json::from_slice::<PluginError>(&output.stdout) {
        return Err(CniError::Plugin {
            plugin: plugin.to_owned(),
            network: String::new(),
            verb,
            error: Box::new(error),
        });
    }
    Err(CniError::PluginCrashed {
        plugin: plugin.to_owned(),
        verb,
        status: output.status,
        stderr: if stderr.is_empty() {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        } else {
            stderr
        },
    })
}

fn spawn_with_retry(process: &mut Process) -> std::io::Result<std::process::Child> {
    let mut attempt = 1;
    loop {
        match process.spawn() {
            Err(error)
                if error.raw_os_error() == Some(libc::ETXTBSY) && attempt < EXEC_ATTEMPTS =>
            {
                tracing::debug!(attempt, "CNI plugin binary busy, retrying");
                attempt += 1;
                std::thread::sleep(EXEC_RETRY_DELAY);
            }
            other => return other,
        }
    }
}
