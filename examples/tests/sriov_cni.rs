//! `telco-sriov` as a CNI runtime runs it: the binary run with `CNI_*` variables and SR-IOV
//! CNI's configuration on stdin. Invalid configurations fail on any machine; ADD and DEL run
//! in the vm tier on a VF of QEMU's igb NIC.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

const PLUGIN: &str = env!("CARGO_BIN_EXE_telco-sriov");

/// Exit status and stdout of one plugin run.
struct Run {
    code: i32,
    stdout: String,
}

impl Run {
    fn error(&self) -> Value {
        assert_eq!(
            self.code, 1,
            "expected exit status 1, stdout: {}",
            self.stdout
        );
        serde_json::from_str(&self.stdout).expect("stdout is one JSON document")
    }

    fn result(&self) -> Value {
        assert_eq!(self.code, 0, "plugin failed: {}", self.stdout);
        serde_json::from_str(&self.stdout).expect("stdout is one JSON document")
    }

    fn success(&self) {
        assert_eq!(self.code, 0, "plugin failed: {}", self.stdout);
    }
}

fn run_plugin(env: &[(&str, &str)], stdin: &Value) -> Run {
    let mut child = Command::new(PLUGIN)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start telco-sriov");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
    }
}

fn env_for<'a>(
    command: &'a str,
    netns: &'a str,
    container_id: &'a str,
    state_dir: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", container_id),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", "net1"),
        ("CNI_PATH", "/usr/lib/cni"),
        ("CNI_NETNS_OVERRIDE", "1"),
        ("TELCO_SRIOV_STATE_DIR", state_dir),
    ]
}

fn config(extra: Value) -> Value {
    let mut config = json!({"cniVersion": "1.1.0", "name": "sriov-net", "type": "telco-sriov", "deviceID": "0000:3b:02.1"});
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

#[test]
fn version_lists_supported_versions() {
    let run = run_plugin(
        &[("CNI_COMMAND", "VERSION")],
        &json!({"cniVersion": "1.1.0"}),
    );
    let result = run.result();
    let versions: Vec<&str> = result["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        versions.contains(&"1.1.0") && versions.contains(&"0.4.0"),
        "{result}"
    );
}

#[test]
fn invalid_values_fail_naming_field() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let env = env_for("ADD", "/proc/self/ns/net", "c1", state);
    let cases = [
        (json!({"vlan": 4095}), "vlan"),
        (json!({"vlanQoS": 3}), "vlanQoS"),
        (json!({"vlan": 10, "vlanProto": "802.1xx"}), "vlanProto"),
        (
            json!({"min_tx_rate": 500, "max_tx_rate": 100}),
            "min_tx_rate",
        ),
        (json!({"spoofchk": "maybe"}), "spoofchk"),
        (json!({"link_state": "up"}), "link_state"),
        (json!({"deviceID": "not-a-pci-address"}), "deviceID"),
    ];
    for (extra, field) in cases {
        let error = run_plugin(&env, &config(extra.clone())).error();
        assert_eq!(error["code"], 7, "{extra}: {error}");
        assert!(
            error["msg"].as_str().unwrap().contains(field),
            "{extra}: {error}"
        );
    }
}

#[test]
fn unknown_pci_address_fails_naming_device_id() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(
        "ADD",
        "/proc/self/ns/net",
        "c1",
        dir.path().to_str().unwrap(),
    );
    let error = run_plugin(&env, &config(json!({"deviceID": "0000:ff:1f.7"}))).error();
    assert_eq!(error["code"], 7, "{error}");
    let msg = error["msg"].as_str().unwrap();
    assert!(
        msg.contains("deviceID") && msg.contains("0000:ff:1f.7"),
        "{error}"
    );
}

#[test]
fn del_without_saved_attachment_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(
        "DEL",
        "/run/netns/telco-test-missing",
        "c1",
        dir.path().to_str().unwrap(),
    );
    run_plugin(&env, &config(json!({}))).success();
}

mod vm_tier {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use telco_core::{HostRoot, MacAddr};
    use telco_net::netns::{Netlink, Netns};
    use telco_net::sriov::{PhysicalFunction, VirtualFunction, read_vf_state};

    use super::*;

    /// Enables two VFs on the igb PF and waits for their igbvf netdevs.
    fn igb_vfs() -> (PhysicalFunction, Vec<VirtualFunction>) {
        assert!(nix::unistd::geteuid().is_root(), "vm tier tests need root");
        let host = HostRoot::system();
        let mut pf = PhysicalFunction::list(&host)
            .unwrap()
            .into_iter()
            .find(|pf| pf.driver.as_deref() == Some("igb"))
            .expect(
                "no igb SR-IOV PF: the vm tier guest has QEMU's igb NIC with the igb driver loaded",
            );
        pf.set_num_vfs(&host, 2).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let vfs = pf.virtual_functions(&host).unwrap();
            if vfs.len() == 2 && vfs.iter().all(|vf| vf.netdev.is_some()) {
                return (pf, vfs);
            }
            assert!(
                Instant::now() < deadline,
                "VF netdevs did not appear: {vfs:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn add_del_cycles_leave_nothing_behind() {
        let (pf, vfs) = igb_vfs();
        let vf = &vfs[0];
        let pci = vf.pci.to_string();
        let host_name = vf.netdev.clone().unwrap();
        let pf_netdev = pf.netdev.clone().unwrap();
        let host = Netlink::current().unwrap();
        let before = read_vf_state(&host, &pf_netdev, vf.index).unwrap();
        let host_link = host.links().get(&host_name).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_str().unwrap().to_owned();
        let device_info = dir.path().join("devinfo.json");
        let pod_name = format!("telco-test-{}-c", std::process::id());
        let pod = Netns::create(&pod_name).unwrap();
        let pod_nl = pod.netlink().unwrap();
        let netns = format!("/run/netns/{pod_name}");
        let conf = config(json!({
            "deviceID": pci, "vlan": 100, "vlanQoS": 2, "spoofchk": "off", "trust": "on",
            "mac": "02:00:00:00:40:01",
            "runtimeConfig": {"CNIDeviceInfoFile": device_info.to_str().unwrap()}
        }));

        for cycle in 0..20 {
            let container = format!("cycle{cycle}");
            let result = run_plugin(&env_for("ADD", &netns, &container, &state), &conf).result();
            let interface = &result["interfaces"][0];
            assert_eq!(interface["name"], "net1", "{result}");
            assert_eq!(interface["pciID"], pci.as_str(), "{result}");
            assert_eq!(interface["sandbox"], netns.as_str(), "{result}");
            assert_eq!(interface["mac"], "02:00:00:00:40:01", "{result}");
            let inside = pod_nl.links().get("net1").unwrap();
            assert_eq!(
                inside.mac,
                Some("02:00:00:00:40:01".parse::<MacAddr>().unwrap())
            );
            let applied = read_vf_state(&host, &pf_netdev, vf.index).unwrap();
            assert_eq!(
                (
                    applied.vlan,
                    applied.vlan_qos,
                    applied.spoof_check,
                    applied.trust
                ),
                (100, 2, false, true)
            );
            let info: Value =
                serde_json::from_slice(&std::fs::read(&device_info).unwrap()).unwrap();
            assert_eq!(info["type"], "pci");
            assert_eq!(info["pci"]["pci-address"], pci.as_str());
            run_plugin(&env_for("CHECK", &netns, &container, &state), &conf).success();

            run_plugin(&env_for("DEL", &netns, &container, &state), &conf).success();
            run_plugin(&env_for("DEL", &netns, &container, &state), &conf).success();
            assert!(
                pod_nl.links().find("net1").unwrap().is_none(),
                "cycle {cycle}: net1 left in the pod"
            );
            let back = host.links().get(&host_name).unwrap();
            assert_eq!(
                (back.mac, back.mtu),
                (host_link.mac, host_link.mtu),
                "cycle {cycle}"
            );
            let restored = read_vf_state(&host, &pf_netdev, vf.index).unwrap();
            assert_eq!(
                restored, before,
                "cycle {cycle}: PF-side VF state not restored"
            );
        }
        let left: Vec<String> = pod_nl
            .links()
            .list()
            .unwrap()
            .into_iter()
            .map(|link| link.name)
            .collect();
        assert_eq!(left, ["lo"]);
        assert!(
            !Path::new(&state).join("pci").join(&pci).exists(),
            "allocation marker left behind"
        );
        assert!(
            !Path::new(&state).join("cycle19-net1").exists(),
            "saved attachment left behind"
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn taken_vf_fails_naming_device_id() {
        let (_pf, vfs) = igb_vfs();
        let pci = vfs[1].pci.to_string();
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_str().unwrap().to_owned();
        let first = Netns::create(&format!("telco-test-{}-t1", std::process::id())).unwrap();
        let second = Netns::create(&format!("telco-test-{}-t2", std::process::id())).unwrap();
        let first_path = first.path().display().to_string();
        let second_path = second.path().display().to_string();
        let conf = config(json!({"deviceID": pci}));

        run_plugin(&env_for("ADD", &first_path, "owner1", &state), &conf).result();
        let error = run_plugin(&env_for("ADD", &second_path, "owner2", &state), &conf).error();
        assert_eq!(error["code"], 11, "{error}");
        assert!(
            error["msg"].as_str().unwrap().contains("deviceID"),
            "{error}"
        );
        run_plugin(&env_for("DEL", &first_path, "owner1", &state), &conf).success();
        run_plugin(&env_for("ADD", &second_path, "owner2", &state), &conf).result();
        run_plugin(&env_for("DEL", &second_path, "owner2", &state), &conf).success();
    }
}
