//! Cache instances from `cpuN/cache/indexK`.

use std::collections::HashSet;
use std::fmt::Write;

use serde::{Deserialize, Serialize};
use telco_core::{CpuSet, FileError, ParseError};

use super::cpu::CpuScan;
use super::numbered;
use super::sysfs::{Dir, Sysfs, file_path};
use crate::error::DiscoverError;

/// Content type of a cache (`indexK/type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    /// Data only (`Data`).
    Data,
    /// Instructions only (`Instruction`).
    Instruction,
    /// Data and instructions (`Unified`).
    Unified,
}

/// One cache instance and the online CPUs that share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cache {
    /// Level, 1 for L1.
    pub level: u8,
    /// Content type.
    pub kind: CacheKind,
    /// Size in KiB; `None` when the kernel does not report it.
    pub size_kib: Option<u64>,
    /// Line size in bytes (`coherency_line_size`).
    pub line_size: Option<u32>,
    /// Associativity (`ways_of_associativity`); 0 means fully associative.
    pub ways: Option<u32>,
    /// Kernel cache id within its level (`indexK/id`) of a last-level cache, where reported.
    /// `None` for the other levels, whose ids discovery does not read.
    pub id: Option<usize>,
    /// Online CPUs sharing the instance.
    pub cpus: CpuSet,
}

/// Index directories tracked in the coverage bit masks of [`read_caches`]. CPUs with more
/// index directories are read in full.
const TRACKED_INDEXES: usize = 64;

/// Reads the cache instances of the online CPUs.
///
/// Each instance is read once, by the first CPU of its `shared_cpu_map`. That CPU marks index
/// `K` as covered for every sharer, and a sharer skips its own `indexK` later. This relies on
/// the kernel numbering cache leaves the same way on the CPUs that share them, so the sharers'
/// `indexK` directories describe the same instance. A CPU covered at every index seen so far
/// is not read at all. An index of its own beyond those would be a cache that none of the CPUs
/// sharing all its other caches has, and the kernel reports no such cache.
///
/// A CPU not covered at every index reads the indexes that earlier CPUs had without listing
/// `cpuN/cache`, after one existence check for the next index number. It lists the directory
/// where that index exists or an expected one is missing, and so does the first CPU.
///
/// NOTE: a hand-edited dump can give a CPU an index number beyond those of every CPU read
/// before it (say `index3`, where they have only `index0` to `index2`). That index is lost where
/// the CPU is covered at every earlier index, or where the next number is missing (`index4`
/// without `index3`).
///
/// Only last-level caches have their `id` read (see [`read_llc_ids`]).
pub(super) fn read_caches(
    sysfs: &mut Sysfs<'_>,
    cpu_dir: &Dir,
    scan: &CpuScan,
) -> Result<Vec<Cache>, DiscoverError> {
    let online = &scan.online;
    let mut core_of = vec![None; online.last().map_or(0, |last| last + 1)];
    for core in &scan.cores {
        for id in core.cpus.iter() {
            if let Some(slot) = core_of.get_mut(id) {
                slot.get_or_insert(&core.cpus);
            }
        }
    }
    let mut covered = vec![0u64; core_of.len()];
    let mut index_count = 0usize;
    let mut seen = HashSet::new();
    let mut caches = Vec::new();
    // The `indexK` entry each cache of `caches` was read from.
    let mut sources = Vec::new();
    let mut name = String::new();
    for cpu in online.iter() {
        let all_covered = if index_count == 0 {
            false
        } else if index_count >= TRACKED_INDEXES {
            covered[cpu] == u64::MAX
        } else {
            covered[cpu] == (1u64 << index_count) - 1
        };
        if all_covered && index_count < TRACKED_INDEXES {
            continue;
        }
        // Indexes this CPU has read in the pass without a listing.
        let mut done = 0u64;
        name.clear();
        let _ = write!(name, "cpu{cpu}/cache/index{index_count}");
        // With at most 10 indexes, numeric order is the order of the listed names, which
        // decides which of two identical instances is kept.
        let mut list = index_count == 0 || index_count > 10 || sysfs.exists(cpu_dir, &name);
        if !list {
            for index in 0..index_count {
                if covered[cpu] & (1 << index) != 0 {
                    continue;
                }
                let entry = format!("index{index}");
                name.clear();
                let _ = write!(name, "cpu{cpu}/cache/{entry}");
                let Some(instance) =
                    read_cache(sysfs, cpu_dir, &name, cpu, core_of[cpu], online, &mut seen)?
                else {
                    list = true;
                    break;
                };
                done |= 1 << index;
                record(
                    &mut covered,
                    &mut caches,
                    &mut sources,
                    instance,
                    index,
                    cpu,
                    entry,
                );
            }
        }
        if !list {
            continue;
        }
        name.clear();
        let _ = write!(name, "cpu{cpu}/cache");
        let (cache_dir, entries) = sysfs.open_and_list(cpu_dir, &name)?;
        for entry in entries {
            let Some(index) = numbered(&entry, "index") else {
                continue;
            };
            if index < TRACKED_INDEXES && (covered[cpu] | done) & (1 << index) != 0 {
                continue;
            }
            index_count = index_count.max(index + 1);
            let Some(instance) = read_cache(
                sysfs,
                &cache_dir,
                &entry,
                cpu,
                core_of[cpu],
                online,
                &mut seen,
            )?
            else {
                continue;
            };
            record(
                &mut covered,
                &mut caches,
                &mut sources,
                instance,
                index,
                cpu,
                entry,
            );
        }
    }
    read_llc_ids(sysfs, cpu_dir, &mut caches, &sources)?;
    caches.sort_by(|a, b| {
        (a.level, kind_rank(a.kind), a.cpus.first()).cmp(&(
            b.level,
            kind_rank(b.kind),
            b.cpus.first(),
        ))
    });
    Ok(caches)
}

/// Reads `indexK/id` of the last-level caches (the highest level of data or unified caches),
/// where it identifies an uncore cache. Other levels are skipped because nothing in this crate
/// reads their ids, and each costs a file open. `sources` gives the `indexK` entry each cache
/// was read from, in the directory of its first CPU.
fn read_llc_ids(
    sysfs: &mut Sysfs<'_>,
    cpu_dir: &Dir,
    caches: &mut [Cache],
    sources: &[String],
) -> Result<(), DiscoverError> {
    let is_data = |cache: &Cache| cache.kind != CacheKind::Instruction;
    let Some(last_level) = caches
        .iter()
        .filter(|cache| is_data(cache))
        .map(|cache| cache.level)
        .max()
    else {
        return Ok(());
    };
    let mut name = String::new();
    for (cache, index_dir) in caches.iter_mut().zip(sources) {
        if cache.level != last_level || !is_data(cache) {
            continue;
        }
        let Some(cpu) = cache.cpus.first() else {
            continue;
        };
        name.clear();
        let _ = write!(name, "cpu{cpu}/cache/{index_dir}/id");
        cache.id = read_optional_number(sysfs, cpu_dir, &name)?;
    }
    Ok(())
}

/// Marks the sharers of an instance that `cpu` read from `entry` (index `index`) as covered,
/// and keeps its cache with `entry` as its source.
fn record(
    covered: &mut [u64],
    caches: &mut Vec<Cache>,
    sources: &mut Vec<String>,
    instance: Instance,
    index: usize,
    cpu: usize,
    entry: String,
) {
    // Only the CPU that read the instance marks its sharers as covered, because a dump may
    // give a later CPU a map that disagrees with that CPU's own.
    if index < TRACKED_INDEXES && instance.cpus.first() == Some(cpu) {
        for sharer in instance.cpus.iter() {
            if let Some(mask) = covered.get_mut(sharer) {
                *mask |= 1 << index;
            }
        }
    }
    if let Some(cache) = instance.cache {
        caches.push(cache);
        sources.push(entry);
    }
}

fn kind_rank(kind: CacheKind) -> u8 {
    match kind {
        CacheKind::Data => 0,
        CacheKind::Unified => 1,
        CacheKind::Instruction => 2,
    }
}

/// Result of reading one `indexK` directory: the CPUs sharing it, and the cache when this CPU
/// is the first of them and the instance is new.
struct Instance {
    cpus: CpuSet,
    cache: Option<Cache>,
}

/// Reads one `indexK` directory (`index_dir` inside `cache_dir`), `None` when it does not
/// exist. The cache is `None` for kinds that are not caches of CPUs (hwloc skips `type`
/// values other than Data, Instruction and Unified).
fn read_cache(
    sysfs: &mut Sysfs<'_>,
    cache_dir: &Dir,
    index_dir: &str,
    cpu: usize,
    core_siblings: Option<&CpuSet>,
    online: &CpuSet,
    seen: &mut HashSet<(u8, CacheKind, CpuSet)>,
) -> Result<Option<Instance>, DiscoverError> {
    let host = sysfs.host();
    let mut path = String::with_capacity(index_dir.len() + 32);
    let mut shared = sysfs.mask(cache_dir, join(&mut path, index_dir, "shared_cpu_map"))?;
    if shared.is_none() {
        shared = sysfs.value(cache_dir, join(&mut path, index_dir, "shared_cpu_list"))?;
        if shared.is_none() && !sysfs.exists(cache_dir, index_dir) {
            return Ok(None);
        }
    }
    let mut cpus = shared.unwrap_or_default().intersection(online);
    if cpus.is_empty() {
        // IA64 kernels report an empty map for some caches: hwloc takes them as per core.
        cpus = core_siblings.map_or_else(CpuSet::new, |siblings| siblings.intersection(online));
    }
    cpus.insert(cpu);
    // As in hwloc, only the first CPU of an instance reads the rest, because the other sharers
    // list the same files.
    if cpus.first() != Some(cpu) {
        return Ok(Some(Instance { cpus, cache: None }));
    }
    let level_file = join(&mut path, index_dir, "level").to_owned();
    let Some(level_text) = sysfs.text(cache_dir, &level_file)? else {
        return Ok(Some(Instance { cpus, cache: None }));
    };
    let level: u8 = level_text.trim().parse().map_err(|_| {
        FileError::parse(
            file_path(host, cache_dir, &level_file),
            ParseError::new("cache level", level_text, "not a decimal number"),
        )
    })?;
    let kind = match sysfs
        .text(cache_dir, join(&mut path, index_dir, "type"))?
        .map(str::trim)
    {
        Some("Data") => CacheKind::Data,
        Some("Instruction") => CacheKind::Instruction,
        Some("Unified") | None => CacheKind::Unified,
        Some(_) => return Ok(Some(Instance { cpus, cache: None })),
    };
    if !seen.insert((level, kind, cpus.clone())) {
        return Ok(Some(Instance { cpus, cache: None }));
    }
    let size_kib = match sysfs.text(cache_dir, join(&mut path, index_dir, "size"))? {
        Some(text) => Some(parse_size_kib(text).map_err(|error| {
            FileError::parse(
                file_path(host, cache_dir, &format!("{index_dir}/size")),
                error,
            )
        })?),
        None => None,
    };
    let line_size = read_optional_number(
        sysfs,
        cache_dir,
        join(&mut path, index_dir, "coherency_line_size"),
    )?;
    let ways = read_optional_number(
        sysfs,
        cache_dir,
        join(&mut path, index_dir, "ways_of_associativity"),
    )?;
    let cache = Cache {
        level,
        kind,
        size_kib,
        line_size,
        ways,
        id: None,
        cpus: cpus.clone(),
    };
    Ok(Some(Instance {
        cpus,
        cache: Some(cache),
    }))
}

/// Sets `path` to `dir/name` and returns it.
fn join<'a>(path: &'a mut String, dir: &str, name: &str) -> &'a str {
    path.clear();
    path.push_str(dir);
    path.push('/');
    path.push_str(name);
    path
}

/// Parses the kernel's cache size text (`32K`, `30720K`, `8M`) into KiB.
pub(crate) fn parse_size_kib(text: &str) -> Result<u64, ParseError> {
    let trimmed = text.trim();
    let (digits, factor) = match trimmed.as_bytes().last() {
        Some(b'K' | b'k') => (&trimmed[..trimmed.len() - 1], 1),
        Some(b'M' | b'm') => (&trimmed[..trimmed.len() - 1], 1024),
        Some(b'G' | b'g') => (&trimmed[..trimmed.len() - 1], 1024 * 1024),
        _ => (trimmed, 1),
    };
    digits
        .parse::<u64>()
        .map(|value| value * factor)
        .map_err(|_| ParseError::new("cache size", text, "expected a number with K, M or G"))
}

fn read_optional_number<T: std::str::FromStr>(
    sysfs: &mut Sysfs<'_>,
    dir: &Dir,
    name: &str,
) -> Result<Option<T>, DiscoverError> {
    let host = sysfs.host();
    match sysfs.text(dir, name)? {
        None => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|_| {
            FileError::parse(
                file_path(host, dir, name),
                ParseError::new("number", text, "not a decimal number"),
            )
            .into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_accept_kernel_suffixes() {
        assert_eq!(parse_size_kib("32K").unwrap(), 32);
        assert_eq!(parse_size_kib("8M").unwrap(), 8192);
        assert_eq!(parse_size_kib("512").unwrap(), 512);
        assert!(parse_size_kib("lots").is_err());
    }

    /// Writes a four-CPU tree where each CPU has a private L1 (`index0`) and an L3 (`index1`)
    /// whose `shared_cpu_map` is the given mask.
    fn tree_with_l3_maps(masks: [&str; 4]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cpu_dir = dir.path().join("sys/devices/system/cpu");
        std::fs::create_dir_all(&cpu_dir).unwrap();
        std::fs::write(cpu_dir.join("online"), "0-3\n").unwrap();
        for (cpu, l3_mask) in masks.iter().enumerate() {
            let cache = cpu_dir.join(format!("cpu{cpu}/cache"));
            for (index, level, mask) in [
                (0, "1", format!("{:x}", 1 << cpu)),
                (1, "3", (*l3_mask).to_owned()),
            ] {
                let index_dir = cache.join(format!("index{index}"));
                std::fs::create_dir_all(&index_dir).unwrap();
                std::fs::write(index_dir.join("level"), format!("{level}\n")).unwrap();
                std::fs::write(index_dir.join("type"), "Unified\n").unwrap();
                std::fs::write(index_dir.join("shared_cpu_map"), format!("{mask}\n")).unwrap();
            }
        }
        dir
    }

    fn l3_sets(dir: &std::path::Path) -> Vec<String> {
        let host = telco_core::HostRoot::at(dir);
        let topology = crate::Topology::discover(&host).unwrap();
        topology
            .caches_at(3, false)
            .map(|cache| cache.cpus.to_string())
            .collect()
    }

    #[test]
    fn only_last_level_ids_are_read() {
        let dir = tree_with_l3_maps(["f", "f", "f", "f"]);
        let cpu_dir = dir.path().join("sys/devices/system/cpu");
        for cpu in 0..4 {
            let cache = cpu_dir.join(format!("cpu{cpu}/cache"));
            std::fs::write(cache.join("index0/id"), format!("{cpu}\n")).unwrap();
            std::fs::write(cache.join("index1/id"), "7\n").unwrap();
        }
        let topology = crate::Topology::discover(&telco_core::HostRoot::at(dir.path())).unwrap();
        let l3_ids: Vec<_> = topology.caches_at(3, false).map(|cache| cache.id).collect();
        assert_eq!(l3_ids, [Some(7)]);
        let l1_ids: Vec<_> = topology.caches_at(1, false).map(|cache| cache.id).collect();
        assert_eq!(l1_ids, [None, None, None, None]);
    }

    #[test]
    fn missing_index_is_listed_around() {
        // CPUs 2 and 3 share a core, and CPU 2 lacks `index0`. Reading the indexes CPU 0 had
        // finds it missing, so CPU 2 lists its directory instead, and marks no sibling as
        // covered at index 0, so CPU 3 still reads its own L1.
        let dir = tree_with_l3_maps(["1", "2", "4", "8"]);
        let cpu_dir = dir.path().join("sys/devices/system/cpu");
        for (cpu, siblings) in ["1", "2", "c", "c"].iter().enumerate() {
            let topology = cpu_dir.join(format!("cpu{cpu}/topology"));
            std::fs::create_dir_all(&topology).unwrap();
            std::fs::write(topology.join("core_cpus"), format!("{siblings}\n")).unwrap();
        }
        std::fs::remove_dir_all(cpu_dir.join("cpu2/cache/index0")).unwrap();
        assert_eq!(l3_sets(dir.path()), ["0", "1", "2", "3"]);
        let topology = crate::Topology::discover(&telco_core::HostRoot::at(dir.path())).unwrap();
        let l1_sets: Vec<String> = topology
            .caches_at(1, false)
            .map(|cache| cache.cpus.to_string())
            .collect();
        assert_eq!(l1_sets, ["0", "1", "3"]);
    }

    #[test]
    fn extra_index_is_read() {
        // CPU 2 has an L2 at `index2`, an index number no CPU before it had.
        let dir = tree_with_l3_maps(["1", "2", "4", "8"]);
        let index2 = dir.path().join("sys/devices/system/cpu/cpu2/cache/index2");
        std::fs::create_dir_all(&index2).unwrap();
        std::fs::write(index2.join("level"), "2\n").unwrap();
        std::fs::write(index2.join("type"), "Unified\n").unwrap();
        std::fs::write(index2.join("shared_cpu_map"), "4\n").unwrap();
        let topology = crate::Topology::discover(&telco_core::HostRoot::at(dir.path())).unwrap();
        let l2_sets: Vec<String> = topology
            .caches_at(2, false)
            .map(|cache| cache.cpus.to_string())
            .collect();
        assert_eq!(l2_sets, ["2"]);
    }

    #[test]
    fn shared_caches_appear_once() {
        let dir = tree_with_l3_maps(["5", "a", "5", "a"]);
        assert_eq!(l3_sets(dir.path()), ["0,2", "1,3"]);
    }

    #[test]
    fn disagreeing_map_does_not_hide_a_cache() {
        // CPU 2's map claims CPUs 0-3, but it is not the first of them, so it reads nothing
        // and marks no CPU as covered. CPU 3 still reads its own L3.
        let dir = tree_with_l3_maps(["5", "2", "f", "8"]);
        assert_eq!(l3_sets(dir.path()), ["0,2", "1", "3"]);
    }
}
