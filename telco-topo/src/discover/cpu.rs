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

/// Sibling sets, read on first use: grouping needs the set of the first CPU of each group only,
/// so most CPUs' sibling files are never opened.
struct SiblingSets<'a, 'h> {
    sysfs: &'a mut Sysfs<'h>,
    cpu_dir: &'a Dir,
    files: &'a TopologyFiles,
    cpu_ids: &'a [usize],
    read: Vec<[Option<Option<CpuSet>>; 4]>,
    name: String,
}

impl SiblingSets<'_, '_> {
    fn get(&mut self, cpu: usize, kind: Siblings) -> Result<Option<CpuSet>, DiscoverError> {
        let position = self.cpu_ids.binary_search(&cpu).unwrap_or(0);
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
    let mut ids = Vec::with_capacity(all.len());
    let mut name = String::new();
    for cpu in all.iter() {
        ids.push(if online.contains(cpu) {
            read_cpu_ids(sysfs, cpu_dir, cpu, &files, &mut name)?
        } else {
            CpuIds::default()
        });
    }
    let cpu_ids: Vec<usize> = all.iter().collect();
    let id_of = |cpu: usize| &ids[cpu_ids.binary_search(&cpu).unwrap_or(0)];
    let mut siblings = SiblingSets {
        sysfs,
        cpu_dir,
        files: &files,
        cpu_ids: &cpu_ids,
        read: vec![[None, None, None, None]; cpu_ids.len()],
        name,
    };

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

fn read_cpu_ids(
    sysfs: &mut Sysfs<'_>,
    cpu_dir: &Dir,
    cpu: usize,
    files: &TopologyFiles,
    name: &mut String,
) -> Result<CpuIds, DiscoverError> {
    let mut id = |file: &str| -> Result<Option<usize>, DiscoverError> {
        if !files.has(file) {
            return Ok(None);
        }
        name.clear();
        let _ = write!(name, "cpu{cpu}/topology/{file}");
        // A negative id (`-1`) means the kernel does not know it.
        Ok(sysfs
            .int(cpu_dir, name)?
            .and_then(|id| usize::try_from(id).ok()))
    };
    Ok(CpuIds {
        package: id("physical_package_id")?,
        die: id("die_id")?,
        cluster: id("cluster_id")?,
        core: id("core_id")?,
    })
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
