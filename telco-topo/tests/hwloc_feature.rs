//! Compares the sysfs reader with libhwloc (the `hwloc` feature), on this machine and on
//! fixtures that libhwloc reads through `HWLOC_FSROOT`: CPUs, cores, packages, node CPU sets,
//! caches per level, node memory, the distance matrix and the PCI functions.
//!
//! This file contains one test so that setting `HWLOC_FSROOT` races with no other test.
#![cfg(feature = "hwloc")]

use std::path::Path;
use std::process::Command;

use telco_core::HostRoot;
use telco_topo::Topology;
use telco_topo::discover::CacheKind;
use telco_topo::hwloc::discover_with_hwloc;

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

/// Fixtures without cgroup limits or hwloc-only quirks, where both readers must agree.
const COMPARED: [&str; 8] = [
    "16em64t-4s2c2t",
    "offline-cpu0-node0",
    "48amd64-4pa2n6c-sparse",
    "128arm-2pa2n8cluster4co",
    "256ppc-8n8s4t",
    "fakecpuid1f-64intel64-2p4d2n2c2t",
    "40intel64-2g2n4c+pcilocality",
    "32intel64-2p8co2t+8ve",
];

fn summary(topology: &Topology) -> String {
    let caches: Vec<String> = (1..=3)
        .map(|level| {
            let count = topology
                .caches
                .iter()
                .filter(|cache| cache.level == level && cache.kind != CacheKind::Instruction)
                .count();
            format!("L{level}={count}")
        })
        .collect();
    let nodes: Vec<String> = topology
        .numa_nodes
        .iter()
        .map(|node| format!("{}:{}", node.id, node.cpus.intersection(&topology.online)))
        .collect();
    format!(
        "packages={} cores={} pus={} nodes=[{}] {}",
        topology.packages.len(),
        topology.cores.len(),
        topology.online,
        nodes.join(" "),
        caches.join(" ")
    )
}

/// NUMA node memory in KiB, by node id.
fn node_memory(topology: &Topology) -> String {
    let nodes: Vec<String> = topology
        .numa_nodes
        .iter()
        .map(|node| format!("{}:{:?}", node.id, node.memory_kib))
        .collect();
    nodes.join(" ")
}

/// PCI functions as address, vendor:device and class without the programming interface byte
/// (libhwloc keeps 16 bits of class).
fn pci_functions(topology: &Topology) -> Vec<String> {
    topology
        .pci_devices
        .iter()
        .map(|device| {
            format!(
                "{} {:04x}:{:04x} class {:04x}",
                device.address,
                device.vendor,
                device.device,
                device.class >> 8
            )
        })
        .collect()
}

/// Checks memory, distances and PCI functions; `what` names the machine in messages.
fn assert_memory_distances_pci_agree(ours: &Topology, theirs: &Topology, what: &str) {
    assert_eq!(
        node_memory(ours),
        node_memory(theirs),
        "{what}: node memory"
    );
    if ours.numa_nodes.len() > 1 {
        assert_eq!(ours.distances, theirs.distances, "{what}: distances");
    } else {
        // libhwloc keeps no matrix for a single node; the sysfs reader reports its 1x1 row.
        assert!(
            theirs.distances.is_empty(),
            "{what}: {:?}",
            theirs.distances
        );
    }
    assert_eq!(pci_functions(ours), pci_functions(theirs), "{what}: PCI");
}

#[test]
fn sysfs_reader_and_libhwloc_agree() {
    // SAFETY: this test binary runs this one test only, so no other thread reads or writes the
    // environment while it changes.
    unsafe { std::env::remove_var("HWLOC_FSROOT") };
    let ours = Topology::discover(&HostRoot::system()).unwrap();
    let theirs = discover_with_hwloc().unwrap();
    assert_eq!(summary(&ours), summary(&theirs), "live machine");
    assert_memory_distances_pci_agree(&ours, &theirs, "live machine");

    // Fixtures where libhwloc reported each of PCI functions, a distance matrix and node
    // memory, so that the comparisons above compare something.
    let (mut with_pci, mut with_distances, mut with_memory) = (0, 0, 0);
    for name in COMPARED {
        let scratch = scratch_dir();
        let status = Command::new("tar")
            .arg("xjf")
            .arg(Path::new(FIXTURES).join(format!("{name}.tar.bz2")))
            .arg("-C")
            .arg(scratch.path())
            .status()
            .unwrap();
        assert!(status.success());
        let root = std::fs::read_dir(scratch.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let ours = Topology::discover(&HostRoot::at(&root)).unwrap();
        // SAFETY: as above, no other thread uses the environment.
        unsafe {
            std::env::set_var("HWLOC_FSROOT", &root);
            std::env::set_var("HWLOC_COMPONENTS", "linux,stop");
        }
        let theirs = discover_with_hwloc();
        // SAFETY: as above, no other thread uses the environment.
        unsafe {
            std::env::remove_var("HWLOC_FSROOT");
            std::env::remove_var("HWLOC_COMPONENTS");
        }
        let theirs = theirs.unwrap();
        assert_eq!(summary(&ours), summary(&theirs), "{name}");
        assert_memory_distances_pci_agree(&ours, &theirs, name);
        with_pci += usize::from(!theirs.pci_devices.is_empty());
        with_distances += usize::from(theirs.distances.len() > 1);
        with_memory += usize::from(
            theirs
                .numa_nodes
                .iter()
                .all(|node| node.memory_kib.is_some_and(|kib| kib > 0)),
        );
    }
    assert!(with_pci > 0, "no fixture had PCI functions");
    assert!(with_distances > 0, "no fixture had a distance matrix");
    assert!(with_memory > 0, "no fixture had node memory");
}
