//! Discovery on every sysfs tarball of hwloc's Linux test suite, checked against hwloc's own
//! output (the `.console` or `.xml` target of the tarball's `.test` descriptor).
//!
//! Compared: numbers of packages, cores, PUs and NUMA nodes, the CPU set of every NUMA node
//! that has CPUs, and the number of cache instances per level. Like hwloc, the comparison
//! counts only CPUs and nodes that the fixture's cpuset cgroup allows.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use telco_core::{CpuSet, HostRoot, NodeMask};
use telco_topo::{DiscoverError, DiscoverOptions, Topology};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/hwloc-linux"
);

/// Creates a scratch directory on tmpfs where there is one: extracting thousands of sysfs files is
/// many times faster there than on an overlay disk.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let on_shm = || {
        tempfile::Builder::new()
            .prefix("telco-topo-")
            .tempdir_in(shm)
    };
    if let Some(dir) = shm.is_dir().then(on_shm).and_then(Result::ok) {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Fixtures where hwloc's output differs from the kernel's data by design, with the reason.
/// The test checks that each of them still differs, so the list cannot go stale.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "40intel64-4n10c+pci-conflicts",
        "built to test hwloc's conflict resolution: package and L3 sets intersect NUMA nodes without inclusion, and hwloc drops the conflicting packages and L3 caches (3 left); this reader reports the kernel's 5 packages and L3 caches",
    ),
    (
        "fakeheterocpunuma",
        "synthetic overlapping node CPU sets that the target keeps through HWLOC_DEBUG_ALLOW_OVERLAPPING_NODE_CPUSETS; without it hwloc, like this reader, takes overlapping nodes as buggy firmware and keeps one node",
    ),
];

/// Tarballs whose target is for another question than sysfs discovery.
const NOT_COMPARABLE: &[(&str, &str)] = &[(
    "test1.fsroot",
    "holds only a cpuset cgroup for hwloc's synthetic-topology test, no sysfs: discovery must fail with NoSysfs",
)];

/// What hwloc reported.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    packages: usize,
    cores: usize,
    pus: usize,
    nodes: usize,
    /// Cache instances per (level, instruction).
    caches: BTreeMap<(u8, bool), usize>,
    /// CPU set of each node, by os index.
    node_cpus: BTreeMap<usize, CpuSet>,
}

/// A `.test` descriptor.
#[derive(Debug, Clone)]
struct TestCase {
    name: String,
    source: String,
    target: String,
    options: String,
    env: bool,
}

fn read_test_cases(dir: &Path) -> Vec<TestCase> {
    let mut cases = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("test") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let mut case = TestCase {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            source: String::new(),
            target: String::new(),
            options: String::new(),
            env: false,
        };
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().to_owned();
            match key.trim() {
                "source" | "fsroot" => case.source = value,
                "target" => case.target = value,
                "options" => case.options = value,
                "env" => case.env = true,
                _ => {}
            }
        }
        cases.push(case);
    }
    cases
}

/// Picks the plainest target for a tarball: a console target before an XML one, no options and
/// no environment before options; `nvidiagpunumanodes` uses the variant that keeps GPU memory
/// nodes, since discovery reports every node the kernel lists.
fn pick_case<'a>(tarball: &str, cases: &'a [TestCase]) -> Option<&'a TestCase> {
    if tarball == "nvidiagpunumanodes.tar.bz2" {
        return cases
            .iter()
            .find(|case| case.name == "nvidiagpunumanodes-kept");
    }
    cases
        .iter()
        .filter(|case| case.source == tarball)
        .min_by_key(|case| {
            (
                !case.target.ends_with(".console"),
                !case.options.is_empty() && case.options != "--no-icaches",
                case.env,
                case.name.clone(),
            )
        })
}

fn parse_console(text: &str) -> Summary {
    let mut summary = Summary::default();
    // Tree: each line's indentation gives its depth; PUs are credited to every open ancestor.
    let mut stack: Vec<(usize, usize)> = Vec::new(); // (indent, object index)
    let mut pus_under: Vec<CpuSet> = Vec::new();
    let mut kinds: Vec<String> = Vec::new();
    let mut parent_of_node: Vec<(usize, Option<usize>)> = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("depth ") || line.starts_with("Special depth") {
            break;
        }
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        while stack.last().is_some_and(|&(open, _)| open >= indent) {
            stack.pop();
        }
        let index = pus_under.len();
        pus_under.push(CpuSet::new());
        let kind = body.split_whitespace().next().unwrap_or("");
        kinds.push(kind.to_owned());
        let os_index = body
            .split("P#")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse::<usize>().ok());
        if kind == "PU" {
            let cpu = os_index.expect("PU line without P#");
            for &(_, ancestor) in &stack {
                pus_under[ancestor].insert(cpu);
            }
        }
        if kind.starts_with("NUMANode") {
            // A node behind a memory-side cache hangs from the cache; its CPUs are those of the
            // first ancestor that is not a memory object.
            let parent = stack
                .iter()
                .rev()
                .map(|&(_, ancestor)| ancestor)
                .find(|&ancestor| kinds[ancestor] != "MemCache");
            parent_of_node.push((os_index.expect("NUMANode without P#"), parent));
        }
        stack.push((indent, index));
    }
    for (node, parent) in parent_of_node {
        summary.node_cpus.insert(
            node,
            parent.map(|p| pus_under[p].clone()).unwrap_or_default(),
        );
    }
    for line in text.lines() {
        let Some((head, rest)) = line.split_once(':') else {
            continue;
        };
        if !head.trim_start().starts_with("depth") && !head.starts_with("Special depth") {
            continue;
        }
        let mut words = rest.split_whitespace();
        let count: usize = words.next().unwrap().parse().unwrap();
        let kind = words.next().unwrap();
        add_count(&mut summary, kind, count);
    }
    summary
}

fn parse_xml(text: &str) -> Summary {
    let mut summary = Summary::default();
    for chunk in text.split("<object ").skip(1) {
        let tag = format!(" {}", chunk.split('>').next().unwrap_or(""));
        let attribute = |name: &str| {
            tag.split(&format!(" {name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
        };
        let kind = attribute("type").expect("object without type");
        add_count(&mut summary, kind, 1);
        if kind == "NUMANode" {
            let id: usize = attribute("os_index").unwrap().parse().unwrap();
            let cpuset = attribute("cpuset").unwrap().replace("0x", "");
            summary
                .node_cpus
                .insert(id, CpuSet::parse_mask(&cpuset).unwrap());
        }
    }
    summary
}

/// Credits `count` objects of hwloc type name `kind` (`Package`, `L1dCache`, `L2iCache`...).
fn add_count(summary: &mut Summary, kind: &str, count: usize) {
    match kind {
        "Package" => summary.packages += count,
        "Core" => summary.cores += count,
        "PU" => summary.pus += count,
        "NUMANode" => summary.nodes += count,
        _ => {
            if let Some(level) = kind
                .strip_prefix('L')
                .and_then(|rest| rest.strip_suffix("Cache"))
            {
                let instruction = level.ends_with('i');
                let digits = level.trim_end_matches(['i', 'd', 'u']);
                if let Ok(level) = digits.parse::<u8>() {
                    *summary.caches.entry((level, instruction)).or_default() += count;
                }
            }
        }
    }
}

/// Summarizes our topology, restricted to what the cgroup allows, as hwloc restricts by default.
fn summarize(topology: &Topology) -> Summary {
    let allowed_cpus = topology
        .cgroup
        .as_ref()
        .map_or(topology.online.clone(), |cgroup| {
            cgroup.cpus.intersection(&topology.online)
        });
    let allowed_nodes: NodeMask = topology
        .cgroup
        .as_ref()
        .map_or(topology.node_ids(), |cgroup| {
            cgroup.mems.intersection(&topology.node_ids())
        });
    let visible = |cpus: &CpuSet| !cpus.intersection(&allowed_cpus).is_empty();
    // hwloc keeps a package or cache whose CPUs are all disallowed when it contains an allowed
    // node.
    let holds_allowed_node = |cpus: &CpuSet| {
        topology.numa_nodes.iter().any(|node| {
            let node_cpus = node.cpus.intersection(&topology.online);
            allowed_nodes.contains(node.id) && !node_cpus.is_empty() && node_cpus.is_subset(cpus)
        })
    };
    let mut caches = BTreeMap::new();
    for cache in topology
        .caches
        .iter()
        .filter(|cache| visible(&cache.cpus) || holds_allowed_node(&cache.cpus))
    {
        let instruction = cache.kind == telco_topo::discover::CacheKind::Instruction;
        *caches.entry((cache.level, instruction)).or_default() += 1;
    }
    Summary {
        packages: topology
            .packages
            .iter()
            .filter(|p| visible(&p.cpus) || holds_allowed_node(&p.cpus))
            .count(),
        cores: topology.cores.iter().filter(|c| visible(&c.cpus)).count(),
        pus: allowed_cpus.len(),
        nodes: allowed_nodes.len(),
        caches,
        node_cpus: topology
            .numa_nodes
            .iter()
            .filter(|node| allowed_nodes.contains(node.id))
            .map(|node| (node.id, node.cpus.intersection(&allowed_cpus)))
            .collect(),
    }
}

/// Lists the differences between hwloc's summary and ours.
fn differences(case: &TestCase, expected: &Summary, ours: &Summary) -> Vec<String> {
    let mut found = Vec::new();
    let mut check = |what: &str, hwloc: String, telco: String| {
        if hwloc != telco {
            found.push(format!("{what}: hwloc {hwloc}, ours {telco}"));
        }
    };
    // `--merge` and `--filter all:structure` drop levels that add no structure.
    let merged = case.options.contains("--merge") || case.options.contains("--filter");
    check(
        "packages",
        expected.packages.to_string(),
        ours.packages.to_string(),
    );
    if !merged {
        check("cores", expected.cores.to_string(), ours.cores.to_string());
    }
    check("PUs", expected.pus.to_string(), ours.pus.to_string());
    check(
        "NUMA nodes",
        expected.nodes.max(1).to_string(),
        ours.nodes.max(1).to_string(),
    );
    for (node, cpus) in &ours.node_cpus {
        if cpus.is_empty() {
            continue; // hwloc gives a CPU-less node the CPU set of the object it hangs from
        }
        let hwloc = expected
            .node_cpus
            .get(node)
            .map(ToString::to_string)
            .unwrap_or_default();
        check(&format!("node {node} CPUs"), hwloc, cpus.to_string());
    }
    let no_caches = case.options.contains("--no-caches") || merged;
    let no_icaches = case.options.contains("--no-icaches");
    if !no_caches {
        let levels: std::collections::BTreeSet<_> = expected
            .caches
            .keys()
            .chain(ours.caches.keys())
            .copied()
            .collect();
        for key @ (level, instruction) in levels {
            if instruction && no_icaches {
                continue;
            }
            let kind = if instruction { "i" } else { "" };
            check(
                &format!("L{level}{kind} caches"),
                expected.caches.get(&key).copied().unwrap_or(0).to_string(),
                ours.caches.get(&key).copied().unwrap_or(0).to_string(),
            );
        }
    }
    found
}

/// Extracts `tarball` into `into` and returns the tree's top directory.
fn extract(tarball: &Path, into: &Path) -> PathBuf {
    let status = Command::new("tar")
        .arg("xjf")
        .arg(tarball)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar must be installed to extract hwloc's fixtures");
    assert!(status.success(), "tar xjf {} failed", tarball.display());
    let mut tops: Vec<PathBuf> = fs::read_dir(into)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    assert_eq!(
        tops.len(),
        1,
        "{} has several top directories",
        tarball.display()
    );
    tops.pop().unwrap()
}

fn tarballs() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in [PathBuf::from(FIXTURES), Path::new(FIXTURES).join("allowed")] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".tar.bz2") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn discovery_agrees_with_hwloc_on_every_fixture() {
    let cases = read_test_cases(Path::new(FIXTURES));
    let tarballs = tarballs();
    assert!(
        tarballs.len() >= 42,
        "expected hwloc's 42+1 tarballs, found {}",
        tarballs.len()
    );
    let mut failures = Vec::new();
    let mut compared = 0;
    for tarball in &tarballs {
        let file_name = tarball.file_name().unwrap().to_string_lossy().into_owned();
        let stem = file_name.trim_end_matches(".tar.bz2");
        let scratch = scratch_dir();
        let root = extract(tarball, scratch.path());
        let host = HostRoot::at(&root);
        let started = std::time::Instant::now();
        let discovered = Topology::discover_with(&host, &DiscoverOptions::default().with_cgroup());
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs() < 5, "{stem}: discovery took {elapsed:?}");

        if let Some((_, reason)) = NOT_COMPARABLE.iter().find(|(name, _)| *name == stem) {
            match discovered {
                Err(DiscoverError::NoSysfs { .. }) => continue,
                other => failures.push(format!("{stem} ({reason}): got {other:?}")),
            }
            continue;
        }
        let topology = match discovered {
            Ok(topology) => topology,
            Err(error) => {
                failures.push(format!("{stem}: discovery failed: {error:?}"));
                continue;
            }
        };
        let case = pick_case(&file_name, &cases)
            .unwrap_or_else(|| panic!("no .test descriptor names {file_name}"));
        let expected_text = fs::read_to_string(Path::new(FIXTURES).join(&case.target)).unwrap();
        let expected = if case.target.ends_with(".xml") {
            parse_xml(&expected_text)
        } else {
            parse_console(&expected_text)
        };
        let found = differences(case, &expected, &summarize(&topology));
        let known = KNOWN_DIFFERENCES.iter().find(|(name, _)| *name == stem);
        match (found.is_empty(), known) {
            (true, None) => compared += 1,
            (false, Some(_)) => compared += 1,
            (true, Some((_, reason))) => failures.push(format!(
                "{stem} now agrees with hwloc; remove it from KNOWN_DIFFERENCES ({reason})"
            )),
            (false, None) => {
                failures.push(format!("{stem} ({}): {}", case.target, found.join("; ")))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixtures differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 42, "only {compared} fixtures compared");
}

#[test]
fn console_parser_reads_node_cpus_from_the_tree() {
    let text = "Machine (P#0)\n  Package L#0 (P#0)\n    NUMANode L#0 (P#1 local=1GiB)\n    Core L#0 (P#0)\n      PU L#0 (P#4)\n      PU L#1 (P#5)\n  Package L#1 (P#1)\n    NUMANode L#1 (P#0)\n    Core L#1 (P#0)\n      PU L#2 (P#6)\ndepth 0: 1 Machine (type #0)\n depth 1: 2 Package (type #1)\n  depth 2: 2 Core (type #3)\n   depth 3: 3 PU (type #4)\nSpecial depth -3: 2 NUMANode (type #14)\n";
    let summary = parse_console(text);
    assert_eq!(summary.packages, 2);
    assert_eq!(summary.pus, 3);
    assert_eq!(summary.nodes, 2);
    assert_eq!(summary.node_cpus[&1].to_string(), "4-5");
    assert_eq!(summary.node_cpus[&0].to_string(), "6");
}
