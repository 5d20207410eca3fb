//! Compares the sysfs reader with libhwloc (the `hwloc` feature), on this machine and on
//! fixtures that libhwloc reads through `HWLOC_FSROOT`.
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
const COMPARED: [&str; 6] = [
    "16em64t-4s2c2t",
    "offline-cpu0-node0",
    "48amd64-4pa2n6c-sparse",
    "128arm-2pa2n8cluster4co",
    "256ppc-8n8s4t",
    "fakecpuid1f-64intel64-2p4d2n2c2t",
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

#[test]
fn sysfs_reader_and_libhwloc_agree() {
    // SAFETY: this test binary runs this one test only, so no other thread reads or writes the
    // environment while it changes.
    unsafe { std::env::remove_var("HWLOC_FSROOT") };
    let ours = Topology::discover(&HostRoot::system()).unwrap();
    let theirs = discover_with_hwloc().unwrap();
    assert_eq!(summary(&ours), summary(&theirs), "live machine");

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
        assert_eq!(summary(&ours), summary(&theirs.unwrap()), "{name}");
    }
}
