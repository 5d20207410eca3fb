//! CPUs, cores, dies, clusters and packages from `sys/devices/system/cpu`.

use std::collections::HashMap;
use std::fmt::Write;

use telco_core::CpuSet;

use super::sysfs::{Dir, Sysfs};
use super::{Core, Cpu, CpuGroup, numbered};
use crate::error::DiscoverError;

pub(super) const CPU_DIR: &str = "/sys/devices/system/cpu";

/// Result of [`read_cpus`].
pub(super) struct CpuScan {
    pub possible: CpuSet,
    pub present: CpuSet,
    pub online: CpuSet,
    pub list: Vec<Cpu>,
    pub packages: Vec<CpuGroup>,
    pub dies: Vec<CpuGroup>,
    pub clusters: Vec<CpuGroup>,
    pub cores: Vec<Core>,
}

/// The kernel ids in the `topology/` files of one online CPU.
#[derive(Default)]
struct CpuIds {
    package: Option<usize>,
    die: Option<usize>,
    cluster: Option<usize>,
    core: Option<usize>,
}

impl CpuIds {
    fn set(&mut self, kind: IdKind, id: Option<usize>) {
        match kind {
            IdKind::Package => self.package = id,
            IdKind::Die => self.die = id,
            IdKind::Cluster => self.cluster = id,
            IdKind::Core => self.core = id,
        }
    }

    /// Returns true when `other` lies in the same package, and for cores in the same die,
    /// which is how the groupings of [`read_cpus`] key dies, clusters and cores.
    fn same_parent(&self, other: &CpuIds, kind: IdKind) -> bool {
        match kind {
            IdKind::Package => true,
            IdKind::Die | IdKind::Cluster => self.package == other.package,
            IdKind::Core => (self.package, self.die) == (other.package, other.die),
        }
    }
}

/// An id file of the `topology/` directory. [`read_ids`] fills the kinds in this order, because
/// each kind checks its groups against the kinds before it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Package,
    Die,
    Cluster,
    Core,
}

impl IdKind {
    const ALL: [IdKind; 4] = [IdKind::Package, IdKind::Die, IdKind::Cluster, IdKind::Core];

    fn file(self) -> &'static str {
        match self {
            IdKind::Package => "physical_package_id",
            IdKind::Die => "die_id",
            IdKind::Cluster => "cluster_id",
            IdKind::Core => "core_id",
        }
    }

    /// Returns the sibling list that the kernel builds from the same id.
    fn siblings(self) -> Siblings {
        match self {
            IdKind::Package => Siblings::Package,
            IdKind::Die => Siblings::Die,
            IdKind::Cluster => Siblings::Cluster,
            IdKind::Core => Siblings::Thread,
        }
    }
}

/// A sibling list of the `topology/` directory.
#[derive(Clone, Copy)]
enum Siblings {
    Thread,
    Package,
    Die,
    Cluster,
}

impl Siblings {
    /// Mask files, then list files, in the order they are tried.
    fn files(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Siblings::Thread => (
                &["core_cpus", "thread_siblings"],
                &["core_cpus_list", "thread_siblings_list"],
            ),
            Siblings::Package => (
                &["package_cpus", "core_siblings"],
                &["package_cpus_list", "core_siblings_list"],
            ),
            Siblings::Die => (&["die_cpus"], &["die_cpus_list"]),
            Siblings::Cluster => (&["cluster_cpus"], &["cluster_cpus_list"]),
        }
    }
}

/// Sibling sets, read on first use, and the reader of id files. Grouping needs the set of the
/// first CPU of each group only, so most CPUs' sibling files are never opened.
struct SiblingSets<'a, 'h> {
    sysfs: &'a mut Sysfs<'h>,
    cpu_dir: &'a Dir,
    files: &'a TopologyFiles,
    cpu_ids: &'a [usize],
    read: Vec<[Option<Option<CpuSet>>; 4]>,
    name: String,
}

impl SiblingSets<'_, '_> {
    fn position(&self, cpu: usize) -> usize {
        self.cpu_ids.binary_search(&cpu).unwrap_or(0)
    }

    fn get(&mut self, cpu: usize, kind: Siblings) -> Result<Option<CpuSet>, DiscoverError> {
        let position = self.position(cpu);
        if let Some(set) = &self.read[position][kind as usize] {
            return Ok(set.clone());
        }
        let (masks, lists) = kind.files();
        let mut set = None;
        for (names, is_mask) in [(masks, true), (lists, false)] {
            for name in names.iter().filter(|name| self.files.has(name)) {
                self.name.clear();
                let _ = write!(self.name, "cpu{cpu}/topology/{name}");
                set = if is_mask {
                    self.sysfs.mask(self.cpu_dir, &self.name)?
                } else {
                    self.sysfs.value(self.cpu_dir, &self.name)?
                };
                if set.is_some() {
                    break;
                }
            }
            if set.is_some() {
                break;
            }
        }
        self.read[position][kind as usize] = Some(set.clone());
        Ok(set)
    }

    /// Reads the `kind` id file of `cpu`. A missing file and a negative id (`-1`, which means
    /// the kernel does not know it) are `None`.
    fn id(&mut self, cpu: usize, kind: IdKind) -> Result<Option<usize>, DiscoverError> {
        let file = kind.file();
        if !self.files.has(file) {
            return Ok(None);
        }
        self.name.clear();
        let _ = write!(self.name, "cpu{cpu}/topology/{file}");
        Ok(self
            .sysfs
            .int(self.cpu_dir, &self.name)?
            .and_then(|id| usize::try_from(id).ok()))
    }

    /// Returns true when some online CPU has a `kind` sibling file.
    fn any(&mut self, online: &CpuSet, kind: Siblings) -> Result<bool, DiscoverError> {
        for cpu in online.iter() {
            if self.get(cpu, kind)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

pub(super) fn read_cpus(sysfs: &mut Sysfs<'_>, cpu_dir: &Dir) -> Result<CpuScan, DiscoverError> {
    let with_dirs: CpuSet = sysfs
        .list(cpu_dir)?
        .iter()
        .filter_map(|name| numbered(name, "cpu"))
        .filter(|&id| id <= CpuSet::MAX_ID)
        .collect();
    let present = sysfs
        .value::<CpuSet>(cpu_dir, "present")?
        .unwrap_or_default();
    let known = with_dirs.union(&present);
    let possible = sysfs
        .value::<CpuSet>(cpu_dir, "possible")?
        .map_or_else(|| known.clone(), |possible| possible.union(&known));
    let online = match sysfs.value::<CpuSet>(cpu_dir, "online")? {
        Some(online) => online,
        None => online_from_cpu_files(sysfs, cpu_dir, &known)?,
    };
    if online.is_empty() {
        return Err(DiscoverError::NoOnlineCpu {
            path: sysfs.host().path(CPU_DIR),
        });
    }
    let all = known.union(&online);

    let files = TopologyFiles::probe(sysfs, cpu_dir, online.first().unwrap_or(0));
    let cpu_ids: Vec<usize> = all.iter().collect();
    let mut siblings = SiblingSets {
        sysfs,
        cpu_dir,
        files: &files,
        cpu_ids: &cpu_ids,
        read: vec![[None, None, None, None]; cpu_ids.len()],
        name: String::new(),
    };
    let ids = read_ids(&mut siblings, &online)?;
    let id_of = |cpu: usize| &ids[cpu_ids.binary_search(&cpu).unwrap_or(0)];

    let package_sets = group_online(&online, |cpu| {
        let own = id_of(cpu);
        Ok(siblings.get(cpu, Siblings::Package)?.unwrap_or_else(|| {
            same_key(&online, |other| {
                id_of(other).package.unwrap_or(0) == own.package.unwrap_or(0)
            })
        }))
    })?;
    // hwloc makes no package (and no core) object where the kernel reports nothing about it;
    // the groupings below still need one package to work in.
    let has_packages =
        ids.iter().any(|own| own.package.is_some()) || siblings.any(&online, Siblings::Package)?;
    let has_cores =
        ids.iter().any(|own| own.core.is_some()) || siblings.any(&online, Siblings::Thread)?;
    let packages: Vec<CpuGroup> = package_sets
        .into_iter()
        .map(|cpus| {
            let first = id_of(cpus.first().unwrap_or(0));
            let id = first.package.unwrap_or(0);
            CpuGroup {
                id,
                package: id,
                cpus,
            }
        })
        .collect();

    let has_dies =
        ids.iter().any(|own| own.die.is_some()) || siblings.any(&online, Siblings::Die)?;
    let dies = if has_dies {
        subgroups(&online, &packages, |cpu| {
            let own = id_of(cpu);
            let set = siblings.get(cpu, Siblings::Die)?.unwrap_or_else(|| {
                same_key(&online, |other| {
                    let theirs = id_of(other);
                    (theirs.package, theirs.die) == (own.package, own.die)
                })
            });
            Ok((own.die.unwrap_or(0), set))
        })?
    } else {
        Vec::new()
    };
    let has_clusters = ids.iter().any(|own| own.cluster.is_some());
    let clusters = if has_clusters {
        subgroups(&online, &packages, |cpu| {
            let own = id_of(cpu);
            let set = siblings.get(cpu, Siblings::Cluster)?.unwrap_or_else(|| {
                same_key(&online, |other| {
                    let theirs = id_of(other);
                    (theirs.package, theirs.cluster) == (own.package, own.cluster)
                })
            });
            Ok((own.cluster.unwrap_or(0), set))
        })?
    } else {
        Vec::new()
    };

    // Online CPUs by (package, die, core) id, built once rather than searched per core.
    let mut by_core_id: HashMap<(Option<usize>, Option<usize>, usize), CpuSet> = HashMap::new();
    for cpu in online.iter() {
        let own = id_of(cpu);
        if let Some(core) = own.core {
            by_core_id
                .entry((own.package, own.die, core))
                .or_default()
                .insert(cpu);
        }
    }
    let core_groups = if !has_cores {
        Vec::new()
    } else {
        subgroups(&online, &packages, |cpu| {
            let own = id_of(cpu);
            let same_core_id = |core: usize| {
                by_core_id
                    .get(&(own.package, own.die, core))
                    .cloned()
                    .unwrap_or_default()
            };
            // Sibling threads with different core ids (AMD compute units) are separate cores.
            let set = match (siblings.get(cpu, Siblings::Thread)?, own.core) {
                (Some(threads), Some(core)) => threads.intersection(&same_core_id(core)),
                (Some(threads), None) => threads,
                (None, Some(core)) => same_core_id(core),
                (None, None) => std::iter::once(cpu).collect(),
            };
            Ok((own.core.unwrap_or(usize::MAX), set))
        })?
    };
    let cores: Vec<Core> = core_groups
        .into_iter()
        .enumerate()
        .map(|(index, group)| Core {
            id: if group.id == usize::MAX {
                index
            } else {
                group.id
            },
            package: group.package,
            cpus: group.cpus,
        })
        .collect();

    let packages = if has_packages { packages } else { Vec::new() };
    // Index of the core and id of the package of each CPU, by position in `cpu_ids`.
    let mut core_of = vec![None; cpu_ids.len()];
    for (index, core) in cores.iter().enumerate() {
        for id in core.cpus.iter() {
            if let Ok(position) = cpu_ids.binary_search(&id) {
                core_of[position].get_or_insert(index);
            }
        }
    }
    let mut package_of = vec![None; cpu_ids.len()];
    for package in &packages {
        for id in package.cpus.iter() {
            if let Ok(position) = cpu_ids.binary_search(&id) {
                package_of[position].get_or_insert(package.id);
            }
        }
    }
    let list = cpu_ids
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(position, (&id, own))| {
            let core_index = core_of[position];
            Cpu {
                id,
                online: online.contains(id),
                package: package_of[position],
                die: own.die,
                cluster: own.cluster,
                core: core_index.map(|index| cores[index].id),
                core_index,
                numa_node: None,
                llc: None,
            }
        })
        .collect();

    Ok(CpuScan {
        possible,
        present,
        online,
        list,
        packages,
        dies,
        clusters,
        cores,
    })
}

/// Decides which CPUs are online from each `cpuN/online` file, when `cpu/online` is missing.
fn online_from_cpu_files(
    sysfs: &mut Sysfs<'_>,
    cpu_dir: &Dir,
    known: &CpuSet,
) -> Result<CpuSet, DiscoverError> {
    let mut online = CpuSet::new();
    for cpu in known.iter() {
        let name = format!("cpu{cpu}/online");
        // An empty file (seen in dumps of IA64 machines) counts as online, like a missing one.
        let is_online = match sysfs.text(cpu_dir, &name)?.map(str::trim) {
            None | Some("") => true,
            Some(_) => sysfs.int(cpu_dir, &name)? != Some(0),
        };
        if is_online {
            online.insert(cpu);
        }
    }
    Ok(online)
}

/// The `topology/` files the kernel publishes, probed on the first online CPU: the kernel
/// publishes the same set for every online CPU, so the others skip the names it lacks.
struct TopologyFiles {
    present: Vec<&'static str>,
}

const TOPOLOGY_FILES: [&str; 16] = [
    "physical_package_id",
    "die_id",
    "cluster_id",
    "core_id",
    "core_cpus_list",
    "thread_siblings_list",
    "core_cpus",
    "thread_siblings",
    "package_cpus_list",
    "core_siblings_list",
    "package_cpus",
    "core_siblings",
    "die_cpus_list",
    "die_cpus",
    "cluster_cpus_list",
    "cluster_cpus",
];

impl TopologyFiles {
    /// Lists `cpuN/topology`; where it cannot be listed, every name counts as present.
    fn probe(sysfs: &mut Sysfs<'_>, cpu_dir: &Dir, cpu: usize) -> TopologyFiles {
        let names = sysfs
            .list_at(cpu_dir, &format!("cpu{cpu}/topology"))
            .unwrap_or_default();
        let present = TOPOLOGY_FILES
            .iter()
            .copied()
            .filter(|name| names.is_empty() || names.iter().any(|listed| listed == name))
            .collect();
        TopologyFiles { present }
    }

    fn has(&self, name: &str) -> bool {
        self.present.contains(&name)
    }
}

/// Reads the kernel ids of the online CPUs, by position in `siblings.cpu_ids`. Offline CPUs
/// get none.
///
/// The kernel builds each sibling mask from CPUs with the same id. So where a kind's masks
/// partition the online CPUs cleanly, only the first CPU of each group has its id file read,
/// and the other CPUs take that id, as hwloc does. Otherwise every online CPU's file is read
/// (see [`ids_from_groups`]).
fn read_ids(
    siblings: &mut SiblingSets<'_, '_>,
    online: &CpuSet,
) -> Result<Vec<CpuIds>, DiscoverError> {
    let mut ids: Vec<CpuIds> = std::iter::repeat_with(CpuIds::default)
        .take(siblings.cpu_ids.len())
        .collect();
    for kind in IdKind::ALL {
        if !siblings.files.has(kind.file()) {
            continue;
        }
        // Ids read so far, by position, kept when the groups turn out unusable.
        let mut read = vec![None; ids.len()];
        if let Some(values) = ids_from_groups(siblings, online, kind, &ids, &mut read)? {
            for (own, value) in ids.iter_mut().zip(values) {
                own.set(kind, value);
            }
            continue;
        }
        for cpu in online.iter() {
            let position = siblings.position(cpu);
            let value = match read[position] {
                Some(value) => value,
                None => siblings.id(cpu, kind)?,
            };
            ids[position].set(kind, value);
        }
    }
    Ok(ids)
}

/// Gives each online CPU the `kind` id of the first CPU of its sibling group, reading one id
/// file per group. Returns `None`, for a read of every CPU's file, where a group's mask is
/// missing, does not contain the CPU it was read from, overlaps an earlier group or spans
/// CPUs of different parents (see [`CpuIds::same_parent`]).
///
/// Two more cases return `None`. Sibling threads whose core ids differ (AMD compute units,
/// whose `thread_siblings` covers both cores of the unit on older kernels) are checked for
/// once, on the first core with two online threads, as hwloc does. A first CPU without a
/// cluster id means a kernel without clusters, whose cluster masks are single cores, so
/// reading them would cost more than the ids.
fn ids_from_groups(
    siblings: &mut SiblingSets<'_, '_>,
    online: &CpuSet,
    kind: IdKind,
    ids: &[CpuIds],
    read: &mut [Option<Option<usize>>],
) -> Result<Option<Vec<Option<usize>>>, DiscoverError> {
    let (masks, lists) = kind.siblings().files();
    if !masks
        .iter()
        .chain(lists)
        .any(|name| siblings.files.has(name))
    {
        return Ok(None);
    }
    let mut values = vec![None; ids.len()];
    let mut placed = CpuSet::new();
    let mut threads_checked = false;
    for cpu in online.iter() {
        if placed.contains(cpu) {
            continue;
        }
        let position = siblings.position(cpu);
        let id = siblings.id(cpu, kind)?;
        read[position] = Some(id);
        if kind == IdKind::Cluster && id.is_none() && placed.is_empty() {
            return Ok(None);
        }
        let Some(mask) = siblings.get(cpu, kind.siblings())? else {
            return Ok(None);
        };
        let group = mask.intersection(online);
        if !group.contains(cpu) || !group.intersection(&placed).is_empty() {
            return Ok(None);
        }
        let own = &ids[position];
        let same_parent = group
            .iter()
            .all(|member| own.same_parent(&ids[siblings.position(member)], kind));
        if !same_parent {
            return Ok(None);
        }
        if kind == IdKind::Core && !threads_checked && group.len() > 1 {
            threads_checked = true;
            if let Some(other) = group.iter().find(|&member| member != cpu) {
                let other_position = siblings.position(other);
                let other_id = siblings.id(other, kind)?;
                read[other_position] = Some(other_id);
                if other_id != id {
                    return Ok(None);
                }
            }
        }
        for member in group.iter() {
            values[siblings.position(member)] = id;
        }
        placed.extend(group.iter());
    }
    Ok(Some(values))
}

/// Partitions the online CPUs into groups: each CPU not yet placed starts a group made of its
/// sibling set (limited to online CPUs not yet placed), as hwloc does.
fn group_online(
    online: &CpuSet,
    mut siblings: impl FnMut(usize) -> Result<CpuSet, DiscoverError>,
) -> Result<Vec<CpuSet>, DiscoverError> {
    let mut placed = CpuSet::new();
    let mut groups = Vec::new();
    for cpu in online.iter() {
        if placed.contains(cpu) {
            continue;
        }
        let mut group = siblings(cpu)?.intersection(online).difference(&placed);
        group.insert(cpu);
        placed.extend(group.iter());
        groups.push(group);
    }
    Ok(groups)
}

/// Groups inside packages: like [`group_online`], but a group never crosses a package, and
/// each group keeps the kernel id that `key` gives for its first CPU.
fn subgroups(
    online: &CpuSet,
    packages: &[CpuGroup],
    mut key: impl FnMut(usize) -> Result<(usize, CpuSet), DiscoverError>,
) -> Result<Vec<CpuGroup>, DiscoverError> {
    let mut groups = Vec::new();
    for package in packages {
        let mut ids = Vec::new();
        let sets = group_online(&package.cpus, |cpu| {
            let (id, set) = key(cpu)?;
            ids.push(id);
            Ok(set.intersection(online))
        })?;
        for (id, cpus) in ids.into_iter().zip(sets) {
            groups.push(CpuGroup {
                id,
                package: package.id,
                cpus,
            });
        }
    }
    groups.sort_by_key(|group| group.cpus.first());
    Ok(groups)
}

/// Online CPUs for which `same` holds.
fn same_key(online: &CpuSet, mut same: impl FnMut(usize) -> bool) -> CpuSet {
    online.iter().filter(|&cpu| same(cpu)).collect()
}

#[cfg(test)]
mod tests {
    use telco_core::HostRoot;

    use crate::Topology;

    /// Writes a four-CPU tree whose `cpuN/topology` directories contain `files`. Each entry
    /// names a file and gives its text for CPUs 0 to 3.
    fn tree(files: &[(&str, [&str; 4])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cpu_dir = dir.path().join("sys/devices/system/cpu");
        std::fs::create_dir_all(&cpu_dir).unwrap();
        std::fs::write(cpu_dir.join("online"), "0-3\n").unwrap();
        for cpu in 0..4 {
            let topology = cpu_dir.join(format!("cpu{cpu}/topology"));
            std::fs::create_dir_all(&topology).unwrap();
            for (name, texts) in files {
                std::fs::write(topology.join(name), format!("{}\n", texts[cpu])).unwrap();
            }
        }
        dir
    }

    fn discover(dir: &tempfile::TempDir) -> Topology {
        Topology::discover(&HostRoot::at(dir.path())).unwrap()
    }

    #[test]
    fn group_ids_reach_every_cpu() {
        let dir = tree(&[
            ("package_cpus", ["3", "3", "c", "c"]),
            ("physical_package_id", ["5", "5", "9", "9"]),
            ("core_cpus", ["3", "3", "c", "c"]),
            ("core_id", ["4", "4", "8", "8"]),
        ]);
        let topology = discover(&dir);
        let packages: Vec<_> = topology.cpus.iter().map(|cpu| cpu.package).collect();
        assert_eq!(packages, [Some(5), Some(5), Some(9), Some(9)]);
        let cores: Vec<_> = topology.cpus.iter().map(|cpu| cpu.core).collect();
        assert_eq!(cores, [Some(4), Some(4), Some(8), Some(8)]);
    }

    #[test]
    fn mask_without_own_cpu_reads_each_id() {
        // CPU 0's die mask names only CPU 1, so no CPU may take another's die id.
        let dir = tree(&[
            ("package_cpus", ["f", "f", "f", "f"]),
            ("physical_package_id", ["0", "0", "0", "0"]),
            ("die_cpus", ["2", "3", "c", "c"]),
            ("die_id", ["3", "4", "5", "5"]),
        ]);
        let dies: Vec<_> = discover(&dir).cpus.iter().map(|cpu| cpu.die).collect();
        assert_eq!(dies, [Some(3), Some(4), Some(5), Some(5)]);
    }

    #[test]
    fn overlapping_masks_read_each_id() {
        // CPU 2's cluster mask overlaps the cluster of CPUs 0 and 1.
        let dir = tree(&[
            ("cluster_cpus", ["3", "3", "6", "8"]),
            ("cluster_id", ["10", "10", "20", "30"]),
        ]);
        let clusters: Vec<_> = discover(&dir).cpus.iter().map(|cpu| cpu.cluster).collect();
        assert_eq!(clusters, [Some(10), Some(10), Some(20), Some(30)]);
    }

    #[test]
    fn sibling_threads_with_own_core_ids_are_cores() {
        // Sibling threads with different core ids, as older kernels report AMD compute units.
        let dir = tree(&[
            ("thread_siblings", ["3", "3", "c", "c"]),
            ("core_id", ["0", "1", "2", "3"]),
        ]);
        let topology = discover(&dir);
        assert_eq!(topology.cores.len(), 4);
        let cores: Vec<_> = topology.cpus.iter().map(|cpu| cpu.core).collect();
        assert_eq!(cores, [Some(0), Some(1), Some(2), Some(3)]);
    }
}
