//! Starting the pod's command inside its namespace, cgroup and CPUs.
//!
//! Everything the child does between `fork` and `exec` uses descriptors and a CPU mask made
//! before the fork, so it is async-signal-safe: `setns` into the namespace, a write of `0`
//! (the writer itself) to the cgroup's `cgroup.procs`, and `sched_setaffinity`. The command
//! thus starts already confined; nothing can run on other CPUs before the parent moves it.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use telco_core::CpuSet;
use telco_net::netns::Netns;

use super::PodError;

const STEP: &str = "start command";

/// The namespace, CPUs, cgroup and environment the command runs in.
#[derive(Debug)]
pub struct Launch<'a> {
    /// Program and arguments.
    pub command: &'a [String],
    /// The pod's namespace.
    pub netns: &'a Netns,
    /// CPUs to pin to.
    pub cpus: &'a CpuSet,
    /// The pod's cgroup, when there is a cpuset hierarchy.
    pub cgroup: Option<&'a Path>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// For `up`: a new session, stdin from `/dev/null`, output to this file, so the command
    /// outlives `vnf-pod` and keeps none of its descriptors.
    pub detached_log: Option<PathBuf>,
}

/// Starts the command.
pub fn spawn(launch: &Launch<'_>) -> Result<Child, PodError> {
    let context = launch.command.join(" ");
    let (program, args) = launch
        .command
        .split_first()
        .ok_or_else(|| PodError::step(STEP, "", "no command to run"))?;
    let mask =
        cpu_mask(launch.cpus).map_err(|message| PodError::step(STEP, context.clone(), message))?;
    let procs: Option<File> = launch
        .cgroup
        .map(|dir| {
            let path = dir.join("cgroup.procs");
            OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|error| PodError::step(STEP, path.display().to_string(), error))
        })
        .transpose()?;
    let netns_fd: RawFd = launch.netns.as_raw_fd();
    let procs_fd: Option<RawFd> = procs.as_ref().map(AsRawFd::as_raw_fd);
    let detached = launch.detached_log.is_some();

    let mut command = Command::new(program);
    command
        .args(args)
        .envs(launch.env.iter().map(|(key, value)| (key, value)));
    if let Some(log) = &launch.detached_log {
        let file = File::create(log)
            .map_err(|error| PodError::step(STEP, log.display().to_string(), error))?;
        let copy = file
            .try_clone()
            .map_err(|error| PodError::step(STEP, log.display().to_string(), error))?;
        command.stdin(Stdio::null()).stdout(file).stderr(copy);
    }
    // SAFETY: the closure makes only async-signal-safe system calls (setsid, setns, write,
    // sched_setaffinity) on descriptors and a mask prepared before the fork, and allocates
    // nothing.
    unsafe {
        command.pre_exec(move || enter(netns_fd, procs_fd, &mask, detached));
    }
    let child = command
        .spawn()
        .map_err(|error| PodError::step(STEP, context, error))?;
    drop(procs);
    Ok(child)
}

/// Enters the pod in the child, between fork and exec.
fn enter(
    netns_fd: RawFd,
    procs_fd: Option<RawFd>,
    mask: &libc::cpu_set_t,
    detached: bool,
) -> std::io::Result<()> {
    if detached {
        // SAFETY: setsid has no memory arguments.
        if unsafe { libc::setsid() } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: the descriptor is the open namespace file, alive in the parent across the fork.
    if unsafe { libc::setns(netns_fd, libc::CLONE_NEWNET) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if let Some(fd) = procs_fd {
        // SAFETY: writes one byte from a static buffer to an open descriptor.
        if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: `mask` is a fully initialised cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), mask) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Builds the kernel's CPU mask for `cpus`.
fn cpu_mask(cpus: &CpuSet) -> Result<libc::cpu_set_t, String> {
    // SAFETY: cpu_set_t is plain bits; all zeroes is the empty set.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let limit = 8 * size_of::<libc::cpu_set_t>();
    if cpus.is_empty() {
        return Err("empty CPU set".to_owned());
    }
    for cpu in cpus.iter() {
        if cpu >= limit {
            return Err(format!(
                "CPU {cpu} is beyond the {limit} CPUs sched_setaffinity takes here"
            ));
        }
        // SAFETY: `cpu` is below the number of bits in the mask, checked above.
        unsafe { libc::CPU_SET(cpu, &mut mask) };
    }
    Ok(mask)
}
