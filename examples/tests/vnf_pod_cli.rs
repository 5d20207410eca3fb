//! `vnf-pod` command line: spec errors reach the user with the field they are about, before
//! anything needs root.

use std::process::Command;

fn vnf_pod() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vnf-pod"))
}

fn run_with_spec(spec: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.json");
    std::fs::write(&path, spec).unwrap();
    let output = vnf_pod()
        .args(["run", "--spec"])
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_macvlan_mode_names_the_field() {
    let (success, stderr) = run_with_spec(
        r#"{"name": "p", "cpus": {"count": 1}, "networks": [
            {"name": "a", "kind": "veth"},
            {"name": "b", "kind": "macvlan", "master": "eth0", "mode": "foo"}],
            "command": ["/bin/true"]}"#,
    );
    assert!(!success);
    assert!(
        stderr.contains(r#"networks[1].mode: unknown macvlan mode "foo""#),
        "{stderr}"
    );
}

#[test]
fn unknown_field_names_the_field() {
    let (success, stderr) = run_with_spec(
        r#"{"name": "p", "cpus": {"count": 1, "shared": true}, "command": ["/bin/true"]}"#,
    );
    assert!(!success);
    assert!(
        stderr.contains("cpus.shared: unknown field `shared`"),
        "{stderr}"
    );
}

#[test]
fn missing_spec_file_names_the_path() {
    let output = vnf_pod()
        .args(["run", "--spec", "/nonexistent/vnf-pod.json"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/vnf-pod.json"), "{stderr}");
}

#[test]
fn spec_without_command_is_rejected() {
    let (success, stderr) = run_with_spec(r#"{"name": "p", "cpus": {"count": 1}}"#);
    assert!(!success);
    assert!(stderr.contains("no command"), "{stderr}");
}

#[test]
fn up_requires_spec_argument() {
    let output = vnf_pod().arg("up").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--spec"));
}

#[test]
fn up_rejects_slave_memif_before_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.json");
    std::fs::write(
        &path,
        r#"{"name": "p", "cpus": {"count": 1}, "networks": [
            {"name": "fast", "kind": "memif", "role": "slave"}],
            "command": ["/bin/true"]}"#,
    )
    .unwrap();
    let output = vnf_pod()
        .args(["up", "--spec"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("networks[0].role"), "{stderr}");
    assert!(stderr.contains("use `vnf-pod run`"), "{stderr}");
    assert!(!stderr.contains("must run as root"), "{stderr}");
}
