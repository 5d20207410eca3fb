//! Runs the built `topo` and `cpu-alloc` programs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

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

/// Extracts one of hwloc's sysfs tarballs into `into` and returns its root.
fn extract(name: &str, into: &Path) -> PathBuf {
    let status = Command::new("tar")
        .arg("xjf")
        .arg(Path::new(FIXTURES).join(format!("{name}.tar.bz2")))
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar must be installed");
    assert!(status.success());
    std::fs::read_dir(into)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .expect("run the example")
}

fn topo_json(root: &Path) -> Value {
    let output = run(
        env!("CARGO_BIN_EXE_topo"),
        &["--root", root.to_str().unwrap(), "--json"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn topo_json_reports_offline_cpus_and_the_only_online_node() {
    let scratch = scratch_dir();
    let root = extract("offline-cpu0-node0", scratch.path());
    let json = topo_json(&root);
    assert_eq!(json["packages"], 2);
    assert_eq!(json["pus"], 17);
    let nodes = json["numa_nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["id"], 1);
    assert_eq!(nodes[0]["memory_kib"], 67_108_864);
    let sizes: Vec<u64> = nodes[0]["hugepages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pool| pool["size_kib"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [2048, 1_048_576]);
    let cpu0 = json["cpus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cpu| cpu["id"] == 0)
        .unwrap();
    assert_eq!(cpu0["online"], false);
    assert_eq!(cpu0["numa_node"], Value::Null);
    let cpu5 = json["cpus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cpu| cpu["id"] == 5)
        .unwrap();
    assert_eq!(
        (
            cpu5["package"].clone(),
            cpu5["core"].clone(),
            cpu5["numa_node"].clone()
        ),
        (1.into(), 2.into(), 1.into())
    );
    for key in [
        "distances",
        "caches",
        "pci_devices",
        "isolated",
        "nohz_full",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let l3 = json["caches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|cache| cache["level"] == 3)
        .count();
    assert_eq!(l3, 2);
}

#[test]
fn topo_json_lists_pci_devices_with_their_node() {
    let scratch = scratch_dir();
    let root = extract("32intel64-2p8co2t+8ve", scratch.path());
    let json = topo_json(&root);
    let devices = json["pci_devices"].as_array().unwrap();
    assert!(!devices.is_empty());
    let with_net = devices
        .iter()
        .find(|device| !device["net"].as_array().unwrap().is_empty());
    assert!(with_net.is_some(), "some device has a network interface");
    assert!(
        devices
            .iter()
            .all(|device| device["class"].as_str().unwrap().starts_with("0x"))
    );
}

#[test]
fn topo_prints_a_tree_of_the_live_machine() {
    let output = run(env!("CARGO_BIN_EXE_topo"), &[]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("Machine: "), "{text}");
    assert!(text.contains("Package P#"), "{text}");
}

#[test]
fn topo_fails_with_the_path_on_a_tree_without_sysfs() {
    let scratch = scratch_dir();
    let output = run(
        env!("CARGO_BIN_EXE_topo"),
        &["--root", scratch.path().to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains(scratch.path().to_str().unwrap()),
        "{message}"
    );
    assert!(message.contains("has no sys/ subdirectory"), "{message}");
}

#[test]
fn topo_names_a_missing_root() {
    let scratch = scratch_dir();
    let missing = scratch.path().join("nonexistent");
    let output = run(
        env!("CARGO_BIN_EXE_topo"),
        &["--root", missing.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains(&format!(
            "root directory {} does not exist",
            missing.display()
        )),
        "{message}"
    );
}

#[test]
fn topo_rejects_a_root_that_is_a_file() {
    let scratch = scratch_dir();
    let file = scratch.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let output = run(
        env!("CARGO_BIN_EXE_topo"),
        &["--root", file.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains(file.to_str().unwrap()), "{message}");
    assert!(message.contains("Not a directory"), "{message}");
}

/// Writes `text` to `path` under `root`, creating the parent directories.
fn write_file(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Writes a sysfs tree with one online CPU, no NUMA directory, no hugepages, a virtio network
/// device and a PCI NIC with its interface under `net/`.
fn one_cpu_tree(root: &Path) {
    write_file(root, "sys/devices/system/cpu/online", "0\n");
    write_file(root, "sys/devices/system/cpu/possible", "0\n");
    write_file(
        root,
        "sys/devices/system/cpu/cpu0/topology/physical_package_id",
        "0\n",
    );
    write_file(root, "sys/devices/system/cpu/cpu0/topology/core_id", "0\n");
    let virtio = "sys/bus/pci/devices/0000:00:03.0";
    write_file(root, &format!("{virtio}/vendor"), "0x1af4\n");
    write_file(root, &format!("{virtio}/device"), "0x1000\n");
    write_file(root, &format!("{virtio}/class"), "0x020000\n");
    std::fs::create_dir_all(root.join(format!("{virtio}/virtio0/net/eth0"))).unwrap();
    let nic = "sys/bus/pci/devices/0000:3b:00.0";
    write_file(root, &format!("{nic}/vendor"), "0x8086\n");
    write_file(root, &format!("{nic}/device"), "0x1592\n");
    write_file(root, &format!("{nic}/class"), "0x020000\n");
    std::fs::create_dir_all(root.join(format!("{nic}/net/ens1f0"))).unwrap();
}

fn device_net(json: &Value, address: &str) -> Vec<String> {
    let device = json["pci_devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|device| device["address"] == address)
        .unwrap_or_else(|| panic!("no PCI device {address} in {json}"));
    device["net"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn topo_lists_virtio_network_interfaces() {
    let scratch = scratch_dir();
    one_cpu_tree(scratch.path());
    let json = topo_json(scratch.path());
    assert_eq!(device_net(&json, "0000:00:03.0"), ["eth0"]);
    assert_eq!(device_net(&json, "0000:3b:00.0"), ["ens1f0"]);
}

#[test]
fn topo_lists_virtio_interface_of_a_qemu_dump() {
    let scratch = scratch_dir();
    let root = extract("2pa-pcidomain32bits", scratch.path());
    let json = topo_json(&root);
    assert_eq!(device_net(&json, "0000:00:03.0"), ["ens3"]);
}

#[test]
fn topo_tree_uses_singular_and_skips_empty_pools() {
    let scratch = scratch_dir();
    one_cpu_tree(scratch.path());
    let output = run(
        env!("CARGO_BIN_EXE_topo"),
        &["--root", scratch.path().to_str().unwrap()],
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let first_line = text.lines().next().unwrap();
    assert_eq!(
        first_line,
        "Machine: 1 package, 1 core, 1 CPU online of 1 possible, 1 NUMA node"
    );
    assert!(
        text.contains("    NUMANode P#0 (CPUs 0, memory unknown)\n"),
        "{text}"
    );
    assert!(!text.contains("hugepages )"), "{text}");
    assert!(text.contains("net eth0"), "{text}");
}

#[test]
fn topo_tree_uses_plural_for_several() {
    let scratch = scratch_dir();
    let root = extract("16em64t-4s2c2t", scratch.path());
    let output = run(
        env!("CARGO_BIN_EXE_topo"),
        &["--root", root.to_str().unwrap()],
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("Machine: 4 packages, 8 cores, 16 CPUs online of 16 possible, "),
        "{text}"
    );
}

/// `topoDualSocketHT` as a `cpu-alloc` topology file.
fn dual_socket_ht_file(dir: &Path) -> PathBuf {
    let cpus: Vec<Value> = (0..12)
        .map(|cpu| {
            let core = cpu % 6;
            serde_json::json!({"id": cpu, "core": core, "package": core % 2, "numa_node": core % 2})
        })
        .collect();
    let path = dir.join("topology.json");
    std::fs::write(&path, serde_json::json!({ "cpus": cpus }).to_string()).unwrap();
    path
}

fn cpu_alloc(args: &[&str]) -> (bool, String, String) {
    let output = run(env!("CARGO_BIN_EXE_cpu-alloc"), args);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

#[test]
fn cpu_alloc_gives_the_kubelet_answers() {
    let scratch = scratch_dir();
    let file = dual_socket_ht_file(scratch.path());
    let file = file.to_str().unwrap();
    assert_eq!(
        cpu_alloc(&["--topology", file, "--request", "6"]),
        (true, "0,2,4,6,8,10".to_owned(), String::new())
    );
    let (ok, cpus, _) = cpu_alloc(&[
        "--topology",
        file,
        "--request",
        "8",
        "--options",
        "distribute-cpus-across-cores",
    ]);
    assert!(ok);
    assert_eq!(cpus, "0-4,6,8,10");
    let (ok, cpus, _) = cpu_alloc(&[
        "--topology",
        file,
        "--request",
        "2",
        "--numa-affinity",
        "1",
        "--reserved",
        "0",
    ]);
    assert!(ok);
    assert_eq!(cpus, "1,7");
    let (ok, cpus, _) = cpu_alloc(&[
        "--topology",
        file,
        "--request",
        "2",
        "--available",
        "0-5,7-11",
        "--reserved",
        "1",
    ]);
    assert!(ok);
    // CPU 6 is busy, so core 0 is not whole: the first whole core of socket 0 is core 2.
    assert_eq!(cpus, "2,8");
}

#[test]
fn cpu_alloc_reports_errors_and_exits_one() {
    let scratch = scratch_dir();
    let file = dual_socket_ht_file(scratch.path());
    let file = file.to_str().unwrap();
    let output = run(
        env!("CARGO_BIN_EXE_cpu-alloc"),
        &["--topology", file, "--request", "5", "--available", "0-3"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("requested=5, available=4"));
    let (ok, _, error) = cpu_alloc(&[
        "--topology",
        file,
        "--request",
        "3",
        "--options",
        "full-pcpus-only=true",
    ]);
    assert!(!ok);
    assert!(
        error.contains("requested 3 cpus not multiple cpus per core = 2"),
        "{error}"
    );
    let (ok, _, error) = cpu_alloc(&[
        "--topology",
        file,
        "--request",
        "2",
        "--options",
        "full-pcpus-only,distribute-cpus-across-cores",
    ]);
    assert!(!ok);
    assert!(error.contains("mutually exclusive"), "{error}");
}

#[test]
fn cpu_alloc_reads_what_topo_writes() {
    let scratch = scratch_dir();
    let root = extract("16em64t-4s2c2t", scratch.path());
    let json = topo_json(&root);
    let file = scratch.path().join("topo.json");
    std::fs::write(&file, json.to_string()).unwrap();
    let (ok, cpus, error) = cpu_alloc(&["--topology", file.to_str().unwrap(), "--request", "2"]);
    assert!(ok, "{error}");
    // 16em64t-4s2c2t: core 0 of package 0 holds CPUs 0 and 8.
    assert_eq!(cpus, "0,8");
    let (ok, from_root, _) = cpu_alloc(&["--root", root.to_str().unwrap(), "--request", "2"]);
    assert!(ok);
    assert_eq!(from_root, cpus);
}
