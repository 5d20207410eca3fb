//! `vnf-pod` in the QEMU guest: an SR-IOV VF of the emulated igb NIC as the data network,
//! CPUs aligned with its NUMA node, and SCTP over the control network.

mod vm_tier {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};
    use std::time::{Duration, Instant};

    use serde_json::Value;

    fn vnf_pod() -> Command {
        Command::new(env!("CARGO_BIN_EXE_vnf-pod"))
    }

    /// Finds the first netdev whose PCI device offers SR-IOV, with its sysfs directory.
    fn find_pf() -> (String, PathBuf) {
        let entries = std::fs::read_dir("/sys/class/net").expect("read /sys/class/net");
        for entry in entries.filter_map(Result::ok) {
            let device = entry.path().join("device");
            let total = std::fs::read_to_string(device.join("sriov_totalvfs")).unwrap_or_default();
            if total.trim().parse::<u32>().is_ok_and(|total| total > 0) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let dir = std::fs::canonicalize(&device).expect("resolve the PF's device link");
                return (name, dir);
            }
        }
        panic!("no SR-IOV PF netdev: the guest needs the igb NIC behind a pcie-root-port");
    }

    /// Sets the PF's VF count back to 0 when the test ends.
    struct VfReset(PathBuf);

    impl Drop for VfReset {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join("sriov_numvfs"), "0");
        }
    }

    /// Creates one VF and waits for its netdev; returns the VF's PCI address.
    fn enable_one_vf(pf_dir: &Path) -> String {
        std::fs::write(pf_dir.join("sriov_numvfs"), "0").expect("reset sriov_numvfs");
        std::fs::write(pf_dir.join("sriov_numvfs"), "1").expect("write sriov_numvfs");
        let vf = std::fs::canonicalize(pf_dir.join("virtfn0")).expect("virtfn0 link");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_dir(vf.join("net")).map_or(true, |mut dir| dir.next().is_none()) {
            assert!(
                Instant::now() < deadline,
                "the VF got no netdev: is igbvf loaded?"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        vf.file_name().unwrap().to_string_lossy().into_owned()
    }

    fn assert_success(output: &Output, what: &str) {
        assert!(
            output.status.success(),
            "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn sriov_vf_aligned_with_sctp_control() {
        assert!(nix::unistd::geteuid().is_root(), "the vm tier runs as root");
        let (pf, pf_dir) = find_pf();
        let _reset = VfReset(pf_dir.clone());
        let vf_pci = enable_one_vf(&pf_dir);
        let pf_node = std::fs::read_to_string(pf_dir.join("numa_node"))
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok());
        let pod = format!("vpvm-{}", std::process::id());
        let sctp_echo = env!("CARGO_BIN_EXE_sctp-echo");
        let probe = format!(
            "echo \"NET1=$(ip address show dev net1 | tr '\\n' ' ')\"; \
             echo \"CPUS=$(grep Cpus_allowed_list /proc/self/status | cut -f2)\"; \
             {sctp_echo} server --bind 10.247.0.2 --port 38412 & server=$!; \
             sleep 1; \
             {sctp_echo} client --connect 10.247.0.2 --port 38412 --ppid 60 --count 10; \
             status=$?; kill $server; exit $status"
        );
        let spec = serde_json::json!({
            "name": pod,
            "cpus": {"count": 1, "align_with": "data", "policy": "single-numa-node"},
            "networks": [
                {"name": "ctrl", "ifname": "eth0", "kind": "veth", "ips": ["10.247.0.2/24"]},
                {"name": "data", "ifname": "net1", "kind": "sriov", "pf": pf, "vlan": 100,
                 "spoofchk": false, "ips": ["10.246.0.2/24"]}
            ],
            "command": ["sh", "-c", probe]
        });
        let spec_path = std::env::temp_dir().join(format!("{pod}.json"));
        std::fs::write(&spec_path, spec.to_string()).unwrap();

        let output = vnf_pod()
            .args(["run", "--spec"])
            .arg(&spec_path)
            .output()
            .unwrap();
        assert_success(&output, "vnf-pod run (SR-IOV and SCTP)");

        let stdout = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        let placed: Value = serde_json::from_str(lines[0]).unwrap();
        let data = &placed["networks"][1];
        assert_eq!(data["interface"], "net1");
        assert_eq!(data["ips"][0], "10.246.0.2");
        assert_eq!(data["device-info"]["type"], "pci");
        assert_eq!(data["device-info"]["pci"]["pci-address"], vf_pci.as_str());
        if let Some(node) = pf_node {
            assert_eq!(placed["numa_node"], node, "CPUs not on the VF's NUMA node");
        }
        let net1 = lines
            .iter()
            .find_map(|line| line.strip_prefix("NET1="))
            .expect("the probe printed net1");
        assert!(
            net1.contains("inet 10.246.0.2/24"),
            "net1 lacks its address: {net1}"
        );
        let cpus = lines
            .iter()
            .find_map(|line| line.strip_prefix("CPUS="))
            .unwrap();
        assert_eq!(cpus, placed["cpus"].as_str().unwrap());
        let echo: Value = lines
            .iter()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .expect("sctp-echo client summary");
        assert_eq!(
            echo["received"], 10,
            "SCTP echoes over the control network: {echo}"
        );
        assert_eq!(echo["mismatches"], 0);

        assert!(
            !Path::new("/run/netns").join(&pod).exists(),
            "namespace left"
        );
        let vf_net = std::fs::read_dir(pf_dir.join("virtfn0/net"))
            .unwrap()
            .count();
        assert_eq!(vf_net, 1, "the VF netdev did not come back to the host");
    }
}
