//! The teardown list: one [`Undo`] entry per thing a placement step made, run in reverse.
//!
//! A step records its entry in the state file before it changes the host, and every entry
//! succeeds when there is nothing left to undo. So a teardown after a crash at any point, even
//! inside a step, removes what exists and passes over what was never made.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use telco_net::attach::{Attacher, AttachmentSpec};
use telco_net::netns::{self, Netlink, Netns, NetnsError};

use super::error::error_chain;
use super::spec::PodSpec;
use super::state::PodDir;
use super::{PodError, cgroup, hugepages, networks};

/// How long a workload gets to exit after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// One thing to undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "kebab-case")]
pub enum Undo {
    /// Remove the pod directory with the state file; always the first entry, so the last undone.
    RemovePodDir,
    /// Give back hugepages that the placement added to a node's pool.
    ReleaseHugepages {
        /// NUMA node.
        node: usize,
        /// Page size in KiB.
        size_kib: u64,
        /// Pages added to the pool.
        added: u64,
    },
    /// Delete the named network namespace.
    DeleteNetns {
        /// Namespace name.
        name: String,
    },
    /// Delete a link that the placement made in the host namespace (a bridge, a parent link).
    DeleteHostLink {
        /// Link name.
        name: String,
    },
    /// Detach every network of the spec, in reverse order.
    DetachNetworks,
    /// Remove the pod's cpuset cgroup, killing what is left in it.
    RemoveCgroup {
        /// The cgroup directory.
        path: PathBuf,
    },
    /// Stop the pod's command: SIGTERM, then SIGKILL after [`STOP_GRACE`].
    StopWorkload {
        /// Process id.
        pid: i32,
        /// Start time in clock ticks, to recognise a reused pid.
        start_ticks: u64,
    },
}

impl Undo {
    /// Returns a short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Undo::RemovePodDir => "remove pod directory",
            Undo::ReleaseHugepages { .. } => "release hugepages",
            Undo::DeleteNetns { .. } => "delete network namespace",
            Undo::DeleteHostLink { .. } => "delete host link",
            Undo::DetachNetworks => "detach networks",
            Undo::RemoveCgroup { .. } => "remove cgroup",
            Undo::StopWorkload { .. } => "stop workload",
        }
    }
}

/// The context the undo steps need besides their own entry.
#[derive(Debug)]
pub struct TeardownContext<'a> {
    /// The pod's spec.
    pub spec: &'a PodSpec,
    /// The pod's directory.
    pub dir: &'a PodDir,
    /// The attachments made by this process, when it is the one that placed the pod. Detaching
    /// them stops what their kinds run in this process (the memif echo responder); without them
    /// the attachments are rebuilt from the spec.
    pub attachments: Option<&'a [AttachmentSpec]>,
}

/// Runs `list` in reverse, going on past failures, and returns them together.
pub fn run_teardown(list: &[Undo], cx: &TeardownContext<'_>) -> Result<(), PodError> {
    let mut failures = Vec::new();
    for undo in list.iter().rev() {
        tracing::debug!(pod = %cx.spec.name, step = undo.name(), "undoing");
        if let Err(error) = undo_one(undo, cx) {
            tracing::warn!(pod = %cx.spec.name, step = undo.name(), error = %error_chain(&error), "undo failed");
            failures.push(format!("{}: {}", undo.name(), error_chain(&error)));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(PodError::Teardown {
            name: cx.spec.name.clone(),
            failures,
        })
    }
}

fn undo_one(undo: &Undo, cx: &TeardownContext<'_>) -> Result<(), PodError> {
    match undo {
        Undo::RemovePodDir => cx.dir.remove(),
        Undo::ReleaseHugepages {
            node,
            size_kib,
            added,
        } => hugepages::release(*node, *size_kib, *added),
        Undo::DeleteNetns { name } => delete_netns(name),
        Undo::DeleteHostLink { name } => delete_host_link(name),
        Undo::DetachNetworks => detach_networks(cx),
        Undo::RemoveCgroup { path } => cgroup::remove(path),
        Undo::StopWorkload { pid, start_ticks } => stop_workload(*pid, *start_ticks),
    }
}

fn delete_netns(name: &str) -> Result<(), PodError> {
    match netns::delete_named(name) {
        Ok(()) | Err(NetnsError::NotFound { .. }) => Ok(()),
        Err(error) => Err(PodError::step("delete network namespace", name, error)),
    }
}

fn delete_host_link(name: &str) -> Result<(), PodError> {
    let host =
        Netlink::current().map_err(|error| PodError::step("delete host link", name, error))?;
    match host.links().delete(name) {
        Err(error) if !error.is_not_found() => Err(PodError::step("delete host link", name, error)),
        _ => Ok(()),
    }
}

/// Detaches the spec's networks. When the namespace is gone already, the kinds still run
/// against an empty stand-in namespace, so host-side leftovers (leases, CNI state, host
/// links named after the pod) go too.
fn detach_networks(cx: &TeardownContext<'_>) -> Result<(), PodError> {
    let step = "detach networks";
    let name = &cx.spec.name;
    let pod_netns = match Netns::open(name) {
        Ok(netns) => netns,
        Err(NetnsError::NotFound { .. }) => {
            Netns::anonymous().map_err(|error| PodError::step(step, name.as_str(), error))?
        }
        Err(error) => return Err(PodError::step(step, name.as_str(), error)),
    };
    let rebuilt;
    let specs = match cx.attachments {
        Some(attachments) if !attachments.is_empty() => attachments,
        _ => {
            rebuilt = networks::attachment_specs(cx.spec, cx.dir, networks::Purpose::Detach)
                .map_err(|error| PodError::step(step, name.as_str(), error))?;
            rebuilt.as_slice()
        }
    };
    let attacher = Attacher::new(&pod_netns, &networks::container_id(name))
        .map_err(|error| PodError::step(step, name.as_str(), error))?;
    attacher
        .detach(specs)
        .map_err(|error| PodError::step(step, name.as_str(), error))
}

/// Stops the process `pid` if it is still the one that started at `start_ticks`.
pub fn stop_workload(pid: i32, start_ticks: u64) -> Result<(), PodError> {
    if process_start_ticks(pid) != Some(start_ticks) {
        return Ok(());
    }
    let target = Pid::from_raw(pid);
    let _ = signal::kill(target, Signal::SIGTERM);
    if wait_gone(pid, start_ticks, STOP_GRACE) {
        return Ok(());
    }
    tracing::warn!(pid, "workload ignored SIGTERM; sending SIGKILL");
    let _ = signal::kill(target, Signal::SIGKILL);
    if wait_gone(pid, start_ticks, STOP_GRACE) {
        Ok(())
    } else {
        Err(PodError::step(
            "stop workload",
            format!("pid {pid}"),
            "process still running after SIGKILL",
        ))
    }
}

/// Waits until `pid` exits (or is reaped) and returns true, or false after `timeout`.
fn wait_gone(pid: i32, start_ticks: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // Reap it when it is our child; otherwise its parent (or init) does.
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        match process_state(pid) {
            None => return true,
            Some((ticks, _)) if ticks != start_ticks => return true,
            Some((_, 'Z')) => return true,
            _ => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Returns the start time of `pid` in clock ticks (field 22 of `/proc/PID/stat`), or `None` when
/// there is no such process.
pub fn process_start_ticks(pid: i32) -> Option<u64> {
    process_state(pid).map(|(ticks, _)| ticks)
}

/// Start time and state letter of `pid`.
fn process_state(pid: i32) -> Option<(u64, char)> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after its end.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ticks = fields.get(19)?.parse().ok()?;
    Some((ticks, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_of_self_are_stable() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let first = process_start_ticks(pid).unwrap();
        assert_eq!(process_start_ticks(pid), Some(first));
    }

    #[test]
    fn stop_skips_reused_pid() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let ticks = process_start_ticks(pid).unwrap();
        stop_workload(pid, ticks + 1).unwrap();
    }

    #[test]
    fn undo_list_uses_tagged_json() {
        let undo = Undo::DeleteHostLink {
            name: "br0".to_owned(),
        };
        let text = serde_json::to_string(&undo).unwrap();
        assert_eq!(text, r#"{"undo":"delete-host-link","name":"br0"}"#);
    }
}
