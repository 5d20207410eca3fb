//! Cache instances from `cpuN/cache/indexK`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use telco_core::{CpuSet, FileError, HostRoot, ParseError};

use super::{Core, Cpu, list_dir, numbered, read_cpu_set, read_text};
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
    /// Kernel cache id within its level (`indexK/id`), where reported.
    pub id: Option<usize>,
    /// Online CPUs sharing the instance.
    pub cpus: CpuSet,
}

pub(super) fn read_caches(
    host: &HostRoot,
    online: &CpuSet,
    cpus: &[Cpu],
    cores: &[Core],
) -> Result<Vec<Cache>, DiscoverError> {
    let mut seen = HashSet::new();
    let mut caches = Vec::new();
    for cpu in cpus.iter().filter(|cpu| cpu.online) {
        let dir = format!("/sys/devices/system/cpu/cpu{}/cache", cpu.id);
        for name in list_dir(&host.path(&dir))? {
            if numbered(&name, "index").is_none() {
                continue;
            }
            let siblings = cores
                .iter()
                .find(|core| core.cpus.contains(cpu.id))
                .map(|core| core.cpus.clone())
                .unwrap_or_default();
            let path = format!("{dir}/{name}");
            if let Some(cache) = read_cache(host, &path, cpu.id, &siblings, online, &mut seen)? {
                caches.push(cache);
            }
        }
    }
    caches.sort_by(|a, b| {
        (a.level, kind_rank(a.kind), a.cpus.first()).cmp(&(
            b.level,
            kind_rank(b.kind),
            b.cpus.first(),
        ))
    });
    Ok(caches)
}

fn kind_rank(kind: CacheKind) -> u8 {
    match kind {
        CacheKind::Data => 0,
        CacheKind::Unified => 1,
        CacheKind::Instruction => 2,
    }
}

/// Reads one `indexK` directory; `None` for kinds that are not caches of CPUs (hwloc skips
/// `type` values other than Data, Instruction and Unified).
fn read_cache(
    host: &HostRoot,
    dir: &str,
    cpu: usize,
    core_siblings: &CpuSet,
    online: &CpuSet,
    seen: &mut HashSet<(u8, CacheKind, CpuSet)>,
) -> Result<Option<Cache>, DiscoverError> {
    let shared = read_cpu_set(
        host,
        &[&format!("{dir}/shared_cpu_map")],
        &[&format!("{dir}/shared_cpu_list")],
    )?;
    let mut cpus = shared.unwrap_or_default().intersection(online);
    if cpus.is_empty() {
        // IA64 kernels report an empty map for some caches: hwloc takes them as per core.
        cpus = core_siblings.intersection(online);
    }
    cpus.insert(cpu);
    // As in hwloc, only the first CPU of an instance reads the rest, because the other sharers
    // list the same files.
    if cpus.first() != Some(cpu) {
        return Ok(None);
    }
    let Some(level_text) = read_text(host, &format!("{dir}/level"))? else {
        return Ok(None);
    };
    let level = parse_number::<u8>(host, &format!("{dir}/level"), &level_text, "cache level")?;
    let kind = match read_text(host, &format!("{dir}/type"))?
        .as_deref()
        .map(str::trim)
    {
        Some("Data") => CacheKind::Data,
        Some("Instruction") => CacheKind::Instruction,
        Some("Unified") | None => CacheKind::Unified,
        Some(_) => return Ok(None),
    };
    if !seen.insert((level, kind, cpus.clone())) {
        return Ok(None);
    }
    let size_kib = match read_text(host, &format!("{dir}/size"))? {
        Some(text) => Some(
            parse_size_kib(&text)
                .map_err(|error| FileError::parse(host.path(format!("{dir}/size")), error))?,
        ),
        None => None,
    };
    let line_size = read_optional_number(host, &format!("{dir}/coherency_line_size"))?;
    let ways = read_optional_number(host, &format!("{dir}/ways_of_associativity"))?;
    let id = read_optional_number(host, &format!("{dir}/id"))?;
    Ok(Some(Cache {
        level,
        kind,
        size_kib,
        line_size,
        ways,
        id,
        cpus,
    }))
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

fn parse_number<T: std::str::FromStr>(
    host: &HostRoot,
    path: &str,
    text: &str,
    what: &'static str,
) -> Result<T, DiscoverError> {
    text.trim().parse().map_err(|_| {
        FileError::parse(
            host.path(path),
            ParseError::new(what, text, "not a decimal number"),
        )
        .into()
    })
}

fn read_optional_number<T: std::str::FromStr>(
    host: &HostRoot,
    path: &str,
) -> Result<Option<T>, DiscoverError> {
    match read_text(host, path)? {
        None => Ok(None),
        Some(text) => parse_number(host, path, &text, "number").map(Some),
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
}
