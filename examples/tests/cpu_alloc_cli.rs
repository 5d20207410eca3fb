//! Runs the built `cpu-alloc` on inputs that the topology does not describe.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes a topology file with 16 CPUs on 8 NUMA nodes (0-7), two CPUs per node, one core
/// per CPU, and returns its path.
fn eight_node_file(dir: &Path) -> PathBuf {
    let cpus: Vec<serde_json::Value> = (0..16)
        .map(|cpu| {
            let node = cpu / 2;
            serde_json::json!({"id": cpu, "core": cpu, "package": node / 4, "numa_node": node})
        })
        .collect();
    let path = dir.join("topology.json");
    std::fs::write(&path, serde_json::json!({ "cpus": cpus }).to_string()).unwrap();
    path
}

/// Runs `cpu-alloc` and returns its exit code, stdout and stderr.
fn cpu_alloc(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cpu-alloc"))
        .args(args)
        .output()
        .expect("run cpu-alloc");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

#[test]
fn numa_affinity_outside_the_topology_is_rejected() {
    let scratch = tempfile::tempdir().unwrap();
    let file = eight_node_file(scratch.path());
    let file = file.to_str().unwrap();
    let (code, stdout, stderr) =
        cpu_alloc(&["--topology", file, "--request", "2", "--numa-affinity", "9"]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert!(stderr.contains("invalid --numa-affinity 9"), "{stderr}");
    assert!(
        stderr.contains("NUMA node(s) 9 not in the topology, which has nodes 0-7"),
        "{stderr}"
    );
}

#[test]
fn numa_affinity_inside_the_topology_is_used() {
    let scratch = tempfile::tempdir().unwrap();
    let file = eight_node_file(scratch.path());
    let file = file.to_str().unwrap();
    let (code, stdout, stderr) =
        cpu_alloc(&["--topology", file, "--request", "2", "--numa-affinity", "7"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "14-15");
}

#[test]
fn available_cpus_outside_the_topology_are_rejected() {
    let scratch = tempfile::tempdir().unwrap();
    let file = eight_node_file(scratch.path());
    let file = file.to_str().unwrap();
    let (code, stdout, stderr) =
        cpu_alloc(&["--topology", file, "--request", "2", "--available", "0-19"]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert!(stderr.contains("invalid --available 0-19"), "{stderr}");
    assert!(
        stderr.contains("CPU(s) 16-19 not in the topology, which has CPUs 0-15"),
        "{stderr}"
    );
}

#[test]
fn request_of_zero_allocates_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let file = eight_node_file(scratch.path());
    let file = file.to_str().unwrap();
    let (code, stdout, stderr) = cpu_alloc(&["--topology", file, "--request", "0"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr, "");
}
