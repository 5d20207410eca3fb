//! CPUs, cores, dies, clusters and packages from `sys/devices/system/cpu`.

use telco_core::{CpuSet, HostRoot};

use super::{
    Core, Cpu, CpuGroup, list_dir, numbered, read_cpu_set, read_int, read_text, read_value,
};
use crate::error::DiscoverError;

const CPU_DIR: &str = "/sys/devices/system/cpu";

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

/// The `topology/` files of one online CPU.
#[derive(Default)]
struct CpuIds {
    package: Option<usize>,
    die: Option<usize>,
    cluster: Option<usize>,
    core: Option<usize>,
    thread_siblings: Option<CpuSet>,
    package_siblings: Option<CpuSet>,
    die_siblings: Option<CpuSet>,
    cluster_siblings: Option<CpuSet>,
}

pub(super) fn read_cpus(host: &HostRoot) -> Result<CpuScan, DiscoverError> {
    let with_dirs: CpuSet = list_dir(&host.path(CPU_DIR))?
        .iter()
        .filter_map(|name| numbered(name, "cpu"))
        .filter(|&id| id <= CpuSet::MAX_ID)
        .collect();
    let present = read_value::<CpuSet>(host, &format!("{CPU_DIR}/present"))?.unwrap_or_default();
    let known = with_dirs.union(&present);
    let possible = read_value::<CpuSet>(host, &format!("{CPU_DIR}/possible"))?
        .map_or_else(|| known.clone(), |possible| possible.union(&known));
    let online = match read_value::<CpuSet>(host, &format!("{CPU_DIR}/online"))? {
        Some(online) => online,
        None => online_from_cpu_files(host, &known)?,
    };
    if online.is_empty() {
        return Err(DiscoverError::NoOnlineCpu {
            path: host.path(CPU_DIR),
        });
    }
    let all = known.union(&online);

    let files = TopologyFiles::probe(host, online.first().unwrap_or(0));
    let mut ids = Vec::with_capacity(all.len());
    for cpu in all.iter() {
        ids.push(if online.contains(cpu) {
            read_cpu_ids(host, cpu, &files)?
        } else {
            CpuIds::default()
        });
    }
    let cpu_ids: Vec<usize> = all.iter().collect();
    let id_of = |cpu: usize| &ids[cpu_ids.binary_search(&cpu).unwrap_or(0)];

    let package_sets = group_online(&online, |cpu| {
        let own = id_of(cpu);
        own.package_siblings.clone().unwrap_or_else(|| {
            same_key(&online, |other| {
                id_of(other).package.unwrap_or(0) == own.package.unwrap_or(0)
            })
        })
    });
    // hwloc makes no package (and no core) object where the kernel reports nothing about it;
    // the groupings below still need one package to work in.
    let has_packages = ids
        .iter()
        .any(|own| own.package.is_some() || own.package_siblings.is_some());
    let has_cores = ids
        .iter()
        .any(|own| own.core.is_some() || own.thread_siblings.is_some());
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

    let has_dies = ids
        .iter()
        .any(|own| own.die.is_some() || own.die_siblings.is_some());
    let dies = if has_dies {
        subgroups(&online, &packages, |cpu| {
            let own = id_of(cpu);
            (
                own.die.unwrap_or(0),
                own.die_siblings.clone().unwrap_or_else(|| {
                    same_key(&online, |other| {
                        let theirs = id_of(other);
                        (theirs.package, theirs.die) == (own.package, own.die)
                    })
                }),
            )
        })
    } else {
        Vec::new()
    };
    let has_clusters = ids.iter().any(|own| own.cluster.is_some());
    let clusters = if has_clusters {
        subgroups(&online, &packages, |cpu| {
            let own = id_of(cpu);
            (
                own.cluster.unwrap_or(0),
                own.cluster_siblings.clone().unwrap_or_else(|| {
                    same_key(&online, |other| {
                        let theirs = id_of(other);
                        (theirs.package, theirs.cluster) == (own.package, own.cluster)
                    })
                }),
            )
        })
    } else {
        Vec::new()
    };

    let core_groups = if !has_cores {
        Vec::new()
    } else {
        subgroups(&online, &packages, |cpu| {
            let own = id_of(cpu);
            let same_core_id = |core: usize| {
                same_key(&online, |other| {
                    let theirs = id_of(other);
                    (theirs.package, theirs.die, theirs.core) == (own.package, own.die, Some(core))
                })
            };
            // Sibling threads with different core ids (AMD compute units) are separate cores.
            let siblings = match (own.thread_siblings.clone(), own.core) {
                (Some(siblings), Some(core)) => siblings.intersection(&same_core_id(core)),
                (Some(siblings), None) => siblings,
                (None, Some(core)) => same_core_id(core),
                (None, None) => std::iter::once(cpu).collect(),
            };
            (own.core.unwrap_or(usize::MAX), siblings)
        })
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
    let list = cpu_ids
        .iter()
        .zip(&ids)
        .map(|(&id, own)| {
            let is_online = online.contains(id);
            let core_index = cores.iter().position(|core| core.cpus.contains(id));
            Cpu {
                id,
                online: is_online,
                package: packages
                    .iter()
                    .find(|package| package.cpus.contains(id))
                    .map(|package| package.id),
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
fn online_from_cpu_files(host: &HostRoot, known: &CpuSet) -> Result<CpuSet, DiscoverError> {
    let mut online = CpuSet::new();
    for cpu in known.iter() {
        let path = format!("{CPU_DIR}/cpu{cpu}/online");
        // An empty file (seen in dumps of IA64 machines) counts as online, like a missing one.
        let is_online = match read_text(host, &path)?.as_deref().map(str::trim) {
            None | Some("") => true,
            Some(_) => read_int(host, &path)? != Some(0),
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
    fn probe(host: &HostRoot, cpu: usize) -> TopologyFiles {
        let dir = host.path(format!("{CPU_DIR}/cpu{cpu}/topology"));
        let names: std::collections::HashSet<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        let present = TOPOLOGY_FILES
            .iter()
            .copied()
            .filter(|name| names.is_empty() || names.contains(*name))
            .collect();
        TopologyFiles { present }
    }

    fn has(&self, name: &str) -> bool {
        self.present.contains(&name)
    }
}

fn read_cpu_ids(
    host: &HostRoot,
    cpu: usize,
    files: &TopologyFiles,
) -> Result<CpuIds, DiscoverError> {
    let dir = format!("{CPU_DIR}/cpu{cpu}/topology");
    let id = |name: &str| {
        if files.has(name) {
            read_optional_id(host, &format!("{dir}/{name}"))
        } else {
            Ok(None)
        }
    };
    let set = |lists: &[&str], masks: &[&str]| -> Result<Option<CpuSet>, DiscoverError> {
        let paths = |names: &[&str]| -> Vec<String> {
            names
                .iter()
                .filter(|name| files.has(name))
                .map(|name| format!("{dir}/{name}"))
                .collect()
        };
        let (masks, lists) = (paths(masks), paths(lists));
        let masks: Vec<&str> = masks.iter().map(String::as_str).collect();
        let lists: Vec<&str> = lists.iter().map(String::as_str).collect();
        Ok(read_cpu_set(host, &masks, &lists)?)
    };
    Ok(CpuIds {
        package: id("physical_package_id")?,
        die: id("die_id")?,
        cluster: id("cluster_id")?,
        core: id("core_id")?,
        thread_siblings: set(
            &["core_cpus_list", "thread_siblings_list"],
            &["core_cpus", "thread_siblings"],
        )?,
        package_siblings: set(
            &["package_cpus_list", "core_siblings_list"],
            &["package_cpus", "core_siblings"],
        )?,
        die_siblings: set(&["die_cpus_list"], &["die_cpus"])?,
        cluster_siblings: set(&["cluster_cpus_list"], &["cluster_cpus"])?,
    })
}

/// Partitions the online CPUs into groups: each CPU not yet placed starts a group made of its
/// sibling set (limited to online CPUs not yet placed), as hwloc does.
fn group_online(online: &CpuSet, mut siblings: impl FnMut(usize) -> CpuSet) -> Vec<CpuSet> {
    let mut placed = CpuSet::new();
    let mut groups = Vec::new();
    for cpu in online.iter() {
        if placed.contains(cpu) {
            continue;
        }
        let mut group = siblings(cpu).intersection(online).difference(&placed);
        group.insert(cpu);
        placed = placed.union(&group);
        groups.push(group);
    }
    groups
}

/// Groups inside packages: like [`group_online`], but a group never crosses a package, and
/// each group keeps the kernel id that `key` gives for its first CPU.
fn subgroups(
    online: &CpuSet,
    packages: &[CpuGroup],
    mut key: impl FnMut(usize) -> (usize, CpuSet),
) -> Vec<CpuGroup> {
    let mut groups = Vec::new();
    for package in packages {
        let mut ids = Vec::new();
        let sets = group_online(&package.cpus, |cpu| {
            let (id, set) = key(cpu);
            ids.push(id);
            set.intersection(online)
        });
        for (id, cpus) in ids.into_iter().zip(sets) {
            groups.push(CpuGroup {
                id,
                package: package.id,
                cpus,
            });
        }
    }
    groups.sort_by_key(|group| group.cpus.first());
    groups
}

/// Online CPUs for which `same` holds.
fn same_key(online: &CpuSet, mut same: impl FnMut(usize) -> bool) -> CpuSet {
    online.iter().filter(|&cpu| same(cpu)).collect()
}

/// Reads a kernel id file; a missing file or a negative id (`-1`, "unknown") is `None`.
fn read_optional_id(host: &HostRoot, path: &str) -> Result<Option<usize>, DiscoverError> {
    Ok(read_int(host, path)?.and_then(|id| usize::try_from(id).ok()))
}
