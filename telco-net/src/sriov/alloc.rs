//! VF allocation markers and per-VF locks in a state directory.
//!
//! The layout is SR-IOV CNI's: an ADD or DEL takes an exclusive `flock` on
//! `<dir>/vf_lock/<pci>.lock` for its whole run, and `<dir>/<pci>` is the allocation marker
//! that names the owner. A claim of a VF whose marker names another owner is rejected, and a
//! release by a former owner changes nothing, so the DEL of an old workload that arrives after
//! a new workload's ADD never resets the VF under the new one.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use telco_core::PciAddress;

use super::SriovError;

/// SR-IOV CNI's state directory for allocation markers.
pub const DEFAULT_ALLOCATION_DIR: &str = "/var/lib/cni/sriov/pci";

/// The allocation markers and locks of one state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationStore {
    dir: PathBuf,
}

impl AllocationStore {
    /// Creates a store in `dir`; the directory is created on first use.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        AllocationStore { dir: dir.into() }
    }

    /// Returns the state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the exclusive lock of the VF, waiting while another process holds it. The lock is
    /// released when the returned guard is dropped.
    pub fn lock(&self, pci: PciAddress) -> Result<VfLock, SriovError> {
        let (file, path) = self.open_lock_file(pci)?;
        file.lock()
            .map_err(|source| state_error("lock", &path, source))?;
        Ok(self.guard(file, pci))
    }

    /// Takes the exclusive lock of the VF when no other process or thread holds it; `None`
    /// when one does.
    pub fn try_lock(&self, pci: PciAddress) -> Result<Option<VfLock>, SriovError> {
        let (file, path) = self.open_lock_file(pci)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(self.guard(file, pci))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(state_error("lock", &path, source)),
        }
    }

    fn guard(&self, file: File, pci: PciAddress) -> VfLock {
        VfLock {
            _file: file,
            pci,
            marker: self.dir.join(pci.to_string()),
        }
    }

    fn open_lock_file(&self, pci: PciAddress) -> Result<(File, PathBuf), SriovError> {
        let lock_dir = self.dir.join("vf_lock");
        fs::create_dir_all(&lock_dir).map_err(|source| state_error("create", &lock_dir, source))?;
        let path = lock_dir.join(format!("{pci}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| state_error("open", &path, source))?;
        Ok((file, path))
    }

    /// Reads the owner recorded for the VF, without taking its lock.
    pub fn owner(&self, pci: PciAddress) -> Result<Option<String>, SriovError> {
        read_marker(&self.dir.join(pci.to_string()))
    }
}

/// An exclusive lock on one VF; allocation changes go through it.
#[derive(Debug)]
pub struct VfLock {
    _file: File,
    pci: PciAddress,
    marker: PathBuf,
}

impl VfLock {
    /// Returns the locked VF.
    pub fn pci(&self) -> PciAddress {
        self.pci
    }

    /// Reads the owner recorded in the allocation marker.
    pub fn owner(&self) -> Result<Option<String>, SriovError> {
        read_marker(&self.marker)
    }

    /// Records `owner` (such as the workload's namespace path) as the VF's owner.
    ///
    /// Succeeds when the VF is free or already owned by `owner`. A marker whose owner is an
    /// absolute path that no longer exists (a deleted namespace) is stale and is replaced, as
    /// SR-IOV CNI does. Any other owner gives [`SriovError::VfTaken`].
    pub fn claim(&self, owner: &str) -> Result<(), SriovError> {
        if let Some(current) = self.owner()? {
            if current == owner {
                return Ok(());
            }
            if !is_stale(&current) {
                return Err(SriovError::VfTaken {
                    pci: self.pci,
                    owner: current,
                });
            }
            tracing::info!(pci = %self.pci, stale_owner = %current, "replacing stale VF allocation");
        }
        fs::write(&self.marker, owner).map_err(|source| state_error("write", &self.marker, source))
    }

    /// Removes the marker when it names `owner`. Returns false, changing nothing, when the VF
    /// is free or owned by someone else: the caller must then leave the VF alone.
    pub fn release(&self, owner: &str) -> Result<bool, SriovError> {
        match self.owner()? {
            Some(current) if current == owner => {
                fs::remove_file(&self.marker)
                    .map_err(|source| state_error("remove", &self.marker, source))?;
                Ok(true)
            }
            Some(current) => {
                tracing::info!(pci = %self.pci, owner, current_owner = %current, "VF belongs to another workload; release skipped");
                Ok(false)
            }
            None => Ok(false),
        }
    }
}

fn is_stale(owner: &str) -> bool {
    owner.starts_with('/') && !Path::new(owner).exists()
}

fn read_marker(path: &Path) -> Result<Option<String>, SriovError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(state_error("read", path, source)),
    }
}

fn state_error(operation: &'static str, path: &Path, source: io::Error) -> SriovError {
    SriovError::StateFile {
        operation,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vf() -> PciAddress {
        "0000:3b:02.1".parse().unwrap()
    }

    #[test]
    fn claim_rejects_second_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = AllocationStore::new(dir.path());
        store.lock(vf()).unwrap().claim("pod-a").unwrap();
        let error = store.lock(vf()).unwrap().claim("pod-b").unwrap_err();
        assert!(
            matches!(&error, SriovError::VfTaken { owner, .. } if owner == "pod-a"),
            "{error:?}"
        );
        assert_eq!(store.owner(vf()).unwrap().as_deref(), Some("pod-a"));
    }

    #[test]
    fn claim_by_same_owner_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = AllocationStore::new(dir.path());
        let lock = store.lock(vf()).unwrap();
        lock.claim("pod-a").unwrap();
        lock.claim("pod-a").unwrap();
    }

    #[test]
    fn late_release_by_old_owner_keeps_new_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let store = AllocationStore::new(dir.path());
        let lock = store.lock(vf()).unwrap();
        lock.claim("pod-old").unwrap();
        assert!(lock.release("pod-old").unwrap());
        lock.claim("pod-new").unwrap();
        assert!(!lock.release("pod-old").unwrap());
        assert_eq!(store.owner(vf()).unwrap().as_deref(), Some("pod-new"));
    }

    #[test]
    fn stale_namespace_owner_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = AllocationStore::new(dir.path());
        let lock = store.lock(vf()).unwrap();
        lock.claim("/run/netns/telco-gone-namespace").unwrap();
        lock.claim("/run/netns/telco-new").unwrap();
        let live = dir.path().to_str().unwrap().to_owned();
        lock.claim(&live).unwrap();
        assert!(lock.claim("/run/netns/other").is_err());
    }

    #[test]
    fn lock_excludes_other_holders() {
        let dir = tempfile::tempdir().unwrap();
        let store = AllocationStore::new(dir.path());
        let held = store.lock(vf()).unwrap();
        let path = dir.path().join("vf_lock/0000:3b:02.1.lock");
        let other = File::open(&path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        assert!(store.try_lock(vf()).unwrap().is_none());
        drop(held);
        other.try_lock().unwrap();
    }
}
