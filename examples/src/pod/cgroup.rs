//! The pod's cpuset cgroup, `telco-NAME` at the root of the cpuset hierarchy (v1 or v2), made
//! with telco-topo and removed by the teardown, which may run in a later process.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use telco_core::{CpuSet, HostRoot, NodeMask};
use telco_topo::CgroupError;
use telco_topo::cgroup::CpusetCgroup;

use super::PodError;

/// Returns the cgroup name of pod `pod`.
pub fn name_for(pod: &str) -> String {
    format!("telco-{pod}")
}

/// Creates the pod's cgroup confined to `cpus` and `mems` and returns its directory, or
/// `None` when no cpuset hierarchy is mounted (the pod is then pinned by affinity alone).
pub fn create(
    host: &HostRoot,
    pod: &str,
    cpus: &CpuSet,
    mems: &NodeMask,
) -> Result<Option<PathBuf>, PodError> {
    match CpusetCgroup::create(host, &name_for(pod), cpus, mems) {
        Ok(cgroup) => {
            let path = cgroup.path().to_owned();
            // TODO: keep the cgroup through a telco-topo call once CpusetCgroup has one. Until
            // then it is forgotten, so its drop does not remove it, and the teardown does.
            std::mem::forget(cgroup);
            Ok(Some(path))
        }
        Err(CgroupError::NoCpusetController { .. }) => Ok(None),
        Err(error) => Err(PodError::step("create cgroup", name_for(pod), error)),
    }
}

/// Kills what is left in the cgroup at `path` and removes it; nothing to do when it is gone.
pub fn remove(path: &Path) -> Result<(), PodError> {
    const STEP: &str = "remove cgroup";
    if !path.exists() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = read_procs(path)?;
        if pids.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(PodError::step(
                STEP,
                path.display().to_string(),
                format!("processes {pids:?} still in the cgroup after SIGKILL"),
            ));
        }
        for pid in pids {
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(PodError::step(STEP, path.display().to_string(), error)),
    }
}

/// Reads the processes in the cgroup at `path`.
fn read_procs(path: &Path) -> Result<Vec<i32>, PodError> {
    let text = match fs::read_to_string(path.join("cgroup.procs")) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(PodError::step(
                "read cgroup.procs",
                path.display().to_string(),
                error,
            ));
        }
    };
    Ok(text
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect())
}
