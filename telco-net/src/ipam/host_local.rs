//! [`HostLocal`]: an address allocator that shares its on-disk store with the host-local CNI
//! plugin.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::range::Canonical;
use super::{IpamError, Lease, RangeSet};
use crate::addr::{IpPrefix, to_bits};

/// The data directory the host-local plugin uses when its config sets no `dataDir`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// Prefix of the file that remembers the last address handed out from range set N.
const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";

/// The separator between container ID and interface name in a lease file.
const LINE_BREAK: &str = "\r\n";

/// The address store of one network, in the host-local plugin's layout:
///
/// ```text
/// <data dir>/<network>/
///     10.1.0.5                one file per leased address, holding "<container ID>\r\n<ifname>"
///     last_reserved_ip.0      the last address handed out from range set 0
///     lock                    flock(2)ed while the store is read or changed
/// ```
///
/// The host-local plugin and this allocator can serve the same network at once: both take the
/// lock, create lease files with `O_EXCL`, and hand out addresses round robin from the one
/// after `last_reserved_ip.N`.
#[derive(Debug, Clone)]
pub struct HostLocal {
    dir: PathBuf,
    network: String,
}

impl HostLocal {
    /// Opens (creating it if needed) the store of `network` under `data_dir`
    /// ([`DEFAULT_DATA_DIR`] for the plugin's default).
    pub fn open(data_dir: &Path, network: &str) -> Result<HostLocal, IpamError> {
        if network.is_empty() || network.contains('/') || network == "." || network == ".." {
            return Err(IpamError::InvalidNetwork {
                network: network.to_owned(),
            });
        }
        let dir = data_dir.join(network);
        fs::create_dir_all(&dir).map_err(|source| IpamError::Store {
            call: "mkdir",
            path: dir.clone(),
            source,
        })?;
        Ok(HostLocal {
            dir,
            network: network.to_owned(),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes one address from each range set, in order, for `(container_id, ifname)`, like a
    /// host-local ADD. The index of a set in `sets` names its `last_reserved_ip.N` file, so
    /// pass the sets in the same order as the plugin's `ranges`. When one set has no free
    /// address, the addresses already taken are given back.
    pub fn allocate(
        &self,
        container_id: &str,
        ifname: &str,
        sets: &[RangeSet],
    ) -> Result<Vec<Lease>, IpamError> {
        let _lock = self.lock()?;
        let mut leases = Vec::with_capacity(sets.len());
        for (index, set) in sets.iter().enumerate() {
            match self.allocate_locked(container_id, ifname, index, set) {
                Ok(lease) => leases.push(lease),
                Err(error) => {
                    if let Err(release) = self.release_locked(container_id, ifname) {
                        tracing::warn!(network = %self.network, %release, "giving back addresses failed");
                    }
                    return Err(error);
                }
            }
        }
        tracing::debug!(network = %self.network, container_id, ifname, ?leases, "allocated addresses");
        Ok(leases)
    }

    /// Gives back every address of `(container_id, ifname)`, like a host-local DEL; also those
    /// written by old plugin versions that stored only the container ID. Succeeds when there
    /// are none.
    pub fn release(&self, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>, IpamError> {
        let _lock = self.lock()?;
        self.release_locked(container_id, ifname)
    }

    /// Lists the leases: address, container ID and interface name (empty for old leases).
    pub fn leases(&self) -> Result<Vec<(IpAddr, String, String)>, IpamError> {
        let _lock = self.lock()?;
        let mut leases = Vec::new();
        for (address, path) in self.lease_files()? {
            let text = fs::read_to_string(&path).map_err(|source| IpamError::Store {
                call: "read",
                path: path.clone(),
                source,
            })?;
            let text = text.trim();
            let (id, ifname) = text.split_once(LINE_BREAK).unwrap_or((text, ""));
            leases.push((address, id.to_owned(), ifname.to_owned()));
        }
        leases.sort();
        Ok(leases)
    }

    fn lock(&self) -> Result<Flock<File>, IpamError> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| IpamError::Store {
                call: "open",
                path: path.clone(),
                source,
            })?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| IpamError::Store {
            call: "flock",
            path,
            source: io::Error::from(errno),
        })
    }

    fn allocate_locked(
        &self,
        container_id: &str,
        ifname: &str,
        set_index: usize,
        set: &RangeSet,
    ) -> Result<Lease, IpamError> {
        let ranges = set
            .iter()
            .map(super::IpRange::canonical)
            .collect::<Result<Vec<_>, _>>()?;
        if ranges.is_empty() {
            return Err(IpamError::InvalidRange {
                range: format!("range set {set_index}"),
                reason: "empty range set".to_owned(),
            });
        }
        let owner = format!("{}{LINE_BREAK}{ifname}", container_id.trim());
        for (address, path) in self.lease_files()? {
            if ranges.iter().any(|range| range.contains(address))
                && fs::read_to_string(&path).is_ok_and(|text| text.trim() == owner)
            {
                return Err(IpamError::DuplicateAllocation {
                    address,
                    container_id: container_id.to_owned(),
                    ifname: ifname.to_owned(),
                });
            }
        }
        let last = self.last_reserved(set_index);
        let mut cursor = Cursor::new(&ranges, last);
        while let Some((range, bits)) = cursor.next() {
            let address = range.address(bits);
            if self.reserve(&owner, address, set_index)? {
                return Ok(Lease {
                    address: IpPrefix::new(address, range.subnet.len()).unwrap_or(range.subnet),
                    gateway: range.gateway,
                });
            }
        }
        Err(IpamError::Exhausted {
            network: self.network.clone(),
            set: set_index,
        })
    }

    /// Creates the lease file of `address`; false when it exists already.
    fn reserve(&self, owner: &str, address: IpAddr, set_index: usize) -> Result<bool, IpamError> {
        let path = self.dir.join(address.to_string());
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
        {
            Ok(file) => file,
            Err(source) if source.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(source) => {
                return Err(IpamError::Store {
                    call: "create",
                    path,
                    source,
                });
            }
        };
        if let Err(source) = file.write_all(owner.as_bytes()) {
            let _ = fs::remove_file(&path);
            return Err(IpamError::Store {
                call: "write",
                path,
                source,
            });
        }
        let last = self.dir.join(format!("{LAST_RESERVED_PREFIX}{set_index}"));
        overwrite(&last, &address.to_string()).map_err(|source| IpamError::Store {
            call: "write",
            path: last,
            source,
        })?;
        Ok(true)
    }

    fn last_reserved(&self, set_index: usize) -> Option<IpAddr> {
        let path = self.dir.join(format!("{LAST_RESERVED_PREFIX}{set_index}"));
        fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    fn release_locked(&self, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>, IpamError> {
        let owner = format!("{}{LINE_BREAK}{ifname}", container_id.trim());
        let files = self.lease_files()?;
        let mut released = self.remove_matching(&files, &owner)?;
        if released.is_empty() {
            released = self.remove_matching(&files, container_id.trim())?;
        }
        if !released.is_empty() {
            tracing::debug!(network = %self.network, container_id, ifname, ?released, "released addresses");
        }
        Ok(released)
    }

    fn remove_matching(
        &self,
        files: &[(IpAddr, PathBuf)],
        owner: &str,
    ) -> Result<Vec<IpAddr>, IpamError> {
        let mut released = Vec::new();
        for (address, path) in files {
            if fs::read_to_string(path).is_ok_and(|text| text.trim() == owner) {
                match fs::remove_file(path) {
                    Ok(()) => released.push(*address),
                    Err(source) if source.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(IpamError::Store {
                            call: "unlink",
                            path: path.clone(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(released)
    }

    /// The lease files: every file whose name is an IP address.
    fn lease_files(&self) -> Result<Vec<(IpAddr, PathBuf)>, IpamError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| IpamError::Store {
            call: "read directory",
            path: self.dir.clone(),
            source,
        })?;
        Ok(entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let address = entry.file_name().to_str()?.parse::<IpAddr>().ok()?;
                Some((address, entry.path()))
            })
            .collect())
    }
}

/// Replaces the contents of the small file `path` with `text`, creating it when missing.
///
/// Writes over the old bytes and then sets the length, rather than truncating first. On ext4,
/// opening with `O_TRUNC` frees the file's block, which took about half a millisecond per lease
/// on the build machine, and an address-long file mostly keeps its length.
fn overwrite(path: &Path, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.set_len(text.len() as u64)
}

/// Walks a range set round robin the way host-local does: from the address after the last
/// one handed out (or from the first range's start), across ranges, wrapping once, skipping
/// gateways.
struct Cursor<'a> {
    ranges: &'a [Canonical],
    index: usize,
    current: Option<u128>,
    first: Option<(usize, u128)>,
}

impl<'a> Cursor<'a> {
    fn new(ranges: &'a [Canonical], last: Option<IpAddr>) -> Cursor<'a> {
        let resume = last.and_then(|last| {
            ranges
                .iter()
                .position(|range| range.contains(last))
                .map(|index| (index, to_bits(last)))
        });
        match resume {
            Some((index, bits)) => Cursor {
                ranges,
                index,
                current: Some(bits),
                first: None,
            },
            None => Cursor {
                ranges,
                index: 0,
                current: None,
                first: None,
            },
        }
    }

    fn next(&mut self) -> Option<(&'a Canonical, u128)> {
        loop {
            let range = &self.ranges[self.index];
            match self.current {
                None => {
                    self.current = Some(range.start);
                    self.first = Some((self.index, range.start));
                }
                Some(current) => {
                    if current == range.end {
                        self.index = (self.index + 1) % self.ranges.len();
                        self.current = Some(self.ranges[self.index].start);
                    } else {
                        self.current = Some(current + 1);
                    }
                    let position = (self.index, self.current?);
                    match self.first {
                        None => self.first = Some(position),
                        Some(first) if first == position => return None,
                        Some(_) => {}
                    }
                }
            }
            let range = &self.ranges[self.index];
            let bits = self.current?;
            if !range.is_gateway(bits) {
                return Some((range, bits));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::IpRange;

    fn set(subnet: &str) -> RangeSet {
        vec![IpRange::new(subnet.parse().unwrap())]
    }

    fn addresses(leases: &[Lease]) -> Vec<String> {
        leases
            .iter()
            .map(|lease| lease.address.to_string())
            .collect()
    }

    #[test]
    fn overwrite_replaces_longer_and_shorter_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last_reserved_ip.0");
        overwrite(&path, "10.1.0.10").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "10.1.0.10");
        overwrite(&path, "10.1.0.9").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "10.1.0.9");
        overwrite(&path, "fd00::1234").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "fd00::1234");
    }

    #[test]
    fn first_lease_skips_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostLocal::open(dir.path(), "net-a").unwrap();
        let leases = store.allocate("c1", "eth0", &[set("10.1.0.0/24")]).unwrap();
        assert_eq!(addresses(&leases), ["10.1.0.2/24"]);
        assert_eq!(leases[0].gateway, Some("10.1.0.1".parse().unwrap()));
        let base = dir.path().join("net-a");
        assert_eq!(
            fs::read_to_string(base.join("10.1.0.2")).unwrap(),
            "c1\r\neth0"
        );
        assert_eq!(
            fs::read_to_string(base.join("last_reserved_ip.0")).unwrap(),
            "10.1.0.2"
        );
        assert!(base.join("lock").exists());
    }

    #[test]
    fn allocation_round_robin() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostLocal::open(dir.path(), "n").unwrap();
        let sets = [set("10.1.0.0/24")];
        store.allocate("c1", "eth0", &sets).unwrap();
        store.allocate("c2", "eth0", &sets).unwrap();
        assert_eq!(
            store.release("c1", "eth0").unwrap(),
            ["10.1.0.2".parse::<IpAddr>().unwrap()]
        );
        let third = store.allocate("c3", "eth0", &sets).unwrap();
        assert_eq!(
            addresses(&third),
            ["10.1.0.4/24"],
            "the freed .2 is not reused at once"
        );
    }

    #[test]
    fn full_range_exhausted_then_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostLocal::open(dir.path(), "n").unwrap();
        // /30: .0 network, .1 gateway, .2 usable, .3 broadcast.
        let sets = [set("10.2.0.0/30")];
        assert_eq!(
            addresses(&store.allocate("c1", "eth0", &sets).unwrap()),
            ["10.2.0.2/30"]
        );
        let error = store.allocate("c2", "eth0", &sets).unwrap_err();
        assert!(
            matches!(error, IpamError::Exhausted { set: 0, .. }),
            "{error:?}"
        );
        store.release("c1", "eth0").unwrap();
        assert_eq!(
            addresses(&store.allocate("c2", "eth0", &sets).unwrap()),
            ["10.2.0.2/30"]
        );
    }

    #[test]
    fn duplicate_allocation_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostLocal::open(dir.path(), "n").unwrap();
        let sets = [set("10.1.0.0/24")];
        store.allocate("c1", "eth0", &sets).unwrap();
        let error = store.allocate("c1", "eth0", &sets).unwrap_err();
        assert!(
            matches!(error, IpamError::DuplicateAllocation { .. }),
            "{error:?}"
        );
        assert_eq!(store.allocate("c1", "net1", &sets).unwrap().len(), 1);
    }

    #[test]
    fn range_sets_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostLocal::open(dir.path(), "n").unwrap();
        let v6 = vec![IpRange::new("fd00:1::/120".parse().unwrap())];
        let leases = store
            .allocate("c1", "eth0", &[set("10.1.0.0/24"), v6.clone()])
            .unwrap();
        assert_eq!(addresses(&leases), ["10.1.0.2/24", "fd00:1::2/120"]);
        assert_eq!(
            fs::read_to_string(store.dir().join("last_reserved_ip.1")).unwrap(),
            "fd00:1::2"
        );
        let tiny = set("10.3.0.0/30");
        store
            .allocate("x", "eth0", std::slice::from_ref(&tiny))
            .unwrap();
        let error = store
            .allocate("c2", "eth0", &[set("10.1.0.0/24"), tiny])
            .unwrap_err();
        assert!(matches!(error, IpamError::Exhausted { set: 1, .. }));
        let owners: Vec<String> = store
            .leases()
            .unwrap()
            .into_iter()
            .map(|(_, id, _)| id)
            .collect();
        assert!(
            !owners.contains(&"c2".to_owned()),
            "the address of set 0 went back: {owners:?}"
        );
    }

    #[test]
    fn range_bounds_and_pools() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostLocal::open(dir.path(), "n").unwrap();
        let pool_a = IpRange::new("10.4.0.0/24".parse().unwrap())
            .with_bounds("10.4.0.10".parse().unwrap(), "10.4.0.11".parse().unwrap());
        let pool_b = IpRange::new("10.5.0.0/24".parse().unwrap());
        let sets = [vec![pool_a, pool_b]];
        let got: Vec<String> = (0..3)
            .flat_map(|n| addresses(&store.allocate(&format!("c{n}"), "eth0", &sets).unwrap()))
            .collect();
        assert_eq!(got, ["10.4.0.10/24", "10.4.0.11/24", "10.5.0.2/24"]);
    }

    #[test]
    fn old_format_lease_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostLocal::open(dir.path(), "n").unwrap();
        fs::write(store.dir().join("10.1.0.9"), "oldcontainer\n").unwrap();
        assert_eq!(
            store.release("oldcontainer", "eth0").unwrap(),
            ["10.1.0.9".parse::<IpAddr>().unwrap()]
        );
        assert!(
            store.release("oldcontainer", "eth0").unwrap().is_empty(),
            "release is idempotent"
        );
    }

    #[test]
    fn invalid_ranges_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostLocal::open(dir.path(), "n").unwrap();
        let error = store
            .allocate("c", "eth0", &[set("10.0.0.0/31")])
            .unwrap_err();
        assert!(matches!(error, IpamError::InvalidRange { .. }));
        let outside =
            IpRange::new("10.0.0.0/24".parse().unwrap()).with_gateway("10.9.9.9".parse().unwrap());
        assert!(store.allocate("c", "eth0", &[vec![outside]]).is_err());
        assert!(HostLocal::open(dir.path(), "../escape").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        #[test]
        fn allocation_never_duplicates(releases in proptest::collection::vec(proptest::bool::ANY, 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let store = HostLocal::open(dir.path(), "p").unwrap();
            let sets = [set("10.6.0.0/27")];
            let mut held = std::collections::HashSet::new();
            for (n, release) in releases.iter().enumerate() {
                let id = format!("c{n}");
                match store.allocate(&id, "eth0", &sets) {
                    Ok(leases) => {
                        let address = leases[0].address.address();
                        held.insert((address, id.clone()));
                        proptest::prop_assert!(held.iter().filter(|(a, _)| *a == address).count() == 1);
                        proptest::prop_assert!(leases[0].gateway != Some(address));
                        if *release {
                            store.release(&id, "eth0").unwrap();
                            held.retain(|(a, _)| *a != address);
                        }
                    }
                    Err(IpamError::Exhausted { .. }) => proptest::prop_assert!(held.len() >= 28),
                    Err(other) => proptest::prop_assert!(false, "{other}"),
                }
            }
        }
    }
}
