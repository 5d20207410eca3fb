//! `memif-pkt` end to end: one process echoes, another sends and counts the intact echoes.

use std::process::{Command, Stdio};

fn memif_pkt(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_memif-pkt"));
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

fn summary(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "memif-pkt failed: {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[test]
fn tx_counts_frames_echoed_by_a_server() {
    let socket = format!("@telco-memif-pkt-test-{}", std::process::id());
    let server = memif_pkt(&[
        "--socket", &socket, "--role", "server", "--mode", "echo", "--count", "3000", "--size",
        "128",
    ])
    .spawn()
    .unwrap();
    let client = memif_pkt(&[
        "--socket", &socket, "--role", "client", "--mode", "tx", "--count", "3000", "--size", "128",
    ])
    .output()
    .unwrap();
    let server = server.wait_with_output().unwrap();

    let sent = summary(&client);
    assert_eq!(sent["packets"], 3000, "{sent}");
    assert_eq!(sent["bytes"], 3000 * 128, "{sent}");
    assert_eq!(sent["errors"], 0, "{sent}");
    assert_eq!(sent["echoed"], 3000, "{sent}");
    assert!(sent["mpps"].as_f64().unwrap() > 0.0, "{sent}");
    let echoed = summary(&server);
    assert_eq!(echoed["packets"], 3000, "{echoed}");
}

#[test]
fn rx_receives_what_a_client_sends() {
    let socket = format!("@telco-memif-pkt-test-{}-rx", std::process::id());
    let client = memif_pkt(&[
        "--socket", &socket, "--role", "client", "--mode", "rx", "--count", "500",
    ])
    .spawn()
    .unwrap();
    // The client retries until the server listens.
    let server = memif_pkt(&[
        "--socket", &socket, "--role", "server", "--mode", "tx", "--count", "500",
    ])
    .output()
    .unwrap();
    let received = summary(&client.wait_with_output().unwrap());
    assert_eq!(received["packets"], 500, "{received}");
    assert_eq!(received["bytes"], 500 * 64, "{received}");
    let sent = summary(&server);
    assert_eq!(
        sent["packets"], 500,
        "frames sent, since rx does not echo: {sent}"
    );
    assert_eq!(sent["echoed"], 0, "{sent}");
}

fn network_status(socket: &std::path::Path, role: &str) -> String {
    serde_json::json!([
        {"name": "mgmt", "interface": "eth0", "ips": ["10.0.0.2"]},
        {"name": "data", "interface": "memif0", "device-info": {
            "type": "memif", "version": "1.1.0",
            "memif": {"role": role, "path": socket, "mode": "ethernet"}}}
    ])
    .to_string()
}

#[test]
fn network_option_reads_socket_from_status() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("data.sock");
    let server = memif_pkt(&[
        "--socket",
        socket.to_str().unwrap(),
        "--role",
        "server",
        "--mode",
        "echo",
        "--count",
        "200",
    ])
    .spawn()
    .unwrap();
    let client = memif_pkt(&["--network", "data", "--mode", "tx", "--count", "200"])
        .env("TELCO_NETWORK_STATUS", network_status(&socket, "slave"))
        .output()
        .unwrap();
    let server = server.wait_with_output().unwrap();

    let sent = summary(&client);
    assert_eq!(sent["echoed"], 200, "{sent}");
    assert_eq!(sent["errors"], 0, "{sent}");
    assert_eq!(summary(&server)["packets"], 200);
}

#[test]
fn network_option_reads_status_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("network-status.json");
    std::fs::write(&file, network_status(&dir.path().join("s.sock"), "slave")).unwrap();
    let output = memif_pkt(&["--network", "mgmt", "--mode", "rx", "--count", "1"])
        .env_remove("TELCO_NETWORK_STATUS")
        .env("TELCO_NETWORK_STATUS_FILE", &file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("network \"mgmt\" has no memif device-info"),
        "{stderr}"
    );
}

#[test]
fn network_option_without_status_fails() {
    let output = memif_pkt(&["--network", "data", "--mode", "rx", "--count", "1"])
        .env_remove("TELCO_NETWORK_STATUS")
        .env_remove("TELCO_NETWORK_STATUS_FILE")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("$TELCO_NETWORK_STATUS"), "{stderr}");
}
