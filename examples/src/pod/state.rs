//! The pod's state under `/run/telco/pods/NAME/`: what was placed and the teardown list.
//!
//! `state.json` is rewritten (to a temporary file, then renamed over the old one) before every
//! step that changes the host, so that it always lists at least what exists. `vnf-pod down`
//! reads it and undoes the list, also after `vnf-pod` itself was killed. The directory also
//! contains the network-status file, default memif sockets and the output of `up` workloads.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use telco_core::CpuSet;

use super::PodError;
use super::teardown::Undo;

/// The directory of the pod directories.
pub const PODS_DIR: &str = "/run/telco/pods";

/// The state file's name inside a pod directory.
pub const STATE_FILE: &str = "state.json";

/// The network-status file's name inside a pod directory.
pub const NETWORK_STATUS_FILE: &str = "network-status.json";

/// The command that started the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `vnf-pod run`: torn down when the command ends.
    Run,
    /// `vnf-pod up`: kept until `vnf-pod down`.
    Up,
}

/// The content of `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodState {
    /// Pod name.
    pub name: String,
    /// `run` or `up`.
    pub mode: Mode,
    /// The process of `vnf-pod` that placed the pod.
    pub placer_pid: u32,
    /// The spec, as `vnf-pod` read it.
    pub spec: serde_json::Value,
    /// Exclusive CPUs held by the pod, once allocated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<CpuSet>,
    /// The placement `vnf-pod` printed, once placement finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed: Option<serde_json::Value>,
    /// Undo steps in the order they were recorded; teardown runs them in reverse.
    pub teardown: Vec<Undo>,
}

/// A pod's directory under [`PODS_DIR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDir {
    path: PathBuf,
}

impl PodDir {
    /// Returns the directory of pod `name`.
    pub fn of(name: &str) -> PodDir {
        PodDir {
            path: Path::new(PODS_DIR).join(name),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the path of the state file.
    pub fn state_file(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }

    /// Returns the path of the network-status file.
    pub fn network_status_file(&self) -> PathBuf {
        self.path.join(NETWORK_STATUS_FILE)
    }

    /// Returns true when the directory exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Creates the directory; fails when it exists, so two placements of one name exclude
    /// each other.
    pub fn create(&self, name: &str) -> Result<(), PodError> {
        fs::create_dir_all(PODS_DIR).map_err(|source| state_error("created", PODS_DIR, source))?;
        match fs::create_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                Err(PodError::AlreadyExists {
                    name: name.to_owned(),
                    dir: self.path.clone(),
                })
            }
            Err(source) => Err(state_error("created", &self.path, source)),
        }
    }

    /// Writes `state` atomically: to a temporary file, synced, then renamed over the old one.
    pub fn write_state(&self, state: &PodState) -> Result<(), PodError> {
        let text = serde_json::to_vec_pretty(state).expect("pod state always serialises");
        write_atomically(&self.state_file(), &text)
    }

    /// Reads the state file.
    pub fn read_state(&self) -> Result<PodState, PodError> {
        let path = self.state_file();
        let text = fs::read(&path).map_err(|source| state_error("read", &path, source))?;
        serde_json::from_slice(&text).map_err(|source| state_error("parsed", &path, source.into()))
    }

    /// Removes the directory and everything in it; nothing to do when it is gone.
    pub fn remove(&self) -> Result<(), PodError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(state_error("removed", &self.path, source)),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers see the old or the new content, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PodError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    };
    write().map_err(|source| state_error("written", path, source))
}

/// Lists the names of pods with a directory under [`PODS_DIR`], sorted.
pub fn list_pods() -> Result<Vec<String>, PodError> {
    let entries = match fs::read_dir(PODS_DIR) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(state_error("read", PODS_DIR, source)),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Returns the CPUs of every pod other than `except`, as their state files record them.
pub fn cpus_of_other_pods(except: &str) -> Result<CpuSet, PodError> {
    let mut taken = CpuSet::new();
    for name in list_pods()? {
        if name == except {
            continue;
        }
        // A pod whose state cannot be read owns no CPU that is known, and `status` reports it.
        if let Ok(PodState {
            cpus: Some(cpus), ..
        }) = PodDir::of(&name).read_state()
        {
            taken = taken.union(&cpus);
        }
    }
    Ok(taken)
}

/// An exclusive lock on [`PODS_DIR`], held while a placement allocates CPUs, so two
/// `vnf-pod` processes never hand out the same CPU.
#[derive(Debug)]
pub struct PodsLock {
    _lock: Flock<File>,
}

impl PodsLock {
    /// Waits for the lock.
    pub fn acquire() -> Result<PodsLock, PodError> {
        fs::create_dir_all(PODS_DIR).map_err(|source| state_error("created", PODS_DIR, source))?;
        let path = Path::new(PODS_DIR).join(".lock");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| state_error("locked", &path, source))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| state_error("locked", &path, errno.into()))?;
        Ok(PodsLock { _lock: lock })
    }
}

fn state_error(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> PodError {
    PodError::State {
        action,
        path: path.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"{\"a\": 1}").unwrap();
        write_atomically(&path, b"{\"a\": 2}").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\": 2}");
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn state_round_trips_through_json() {
        let state = PodState {
            name: "p1".to_owned(),
            mode: Mode::Up,
            placer_pid: 42,
            spec: serde_json::json!({"name": "p1"}),
            cpus: Some("1".parse().unwrap()),
            placed: None,
            teardown: vec![
                Undo::RemovePodDir,
                Undo::DeleteNetns {
                    name: "p1".to_owned(),
                },
            ],
        };
        let text = serde_json::to_string(&state).unwrap();
        let back: PodState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
    }
}
