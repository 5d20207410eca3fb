//! A real container runtime as the client of `telco-multinet`: Debian's podman with its CNI
//! backend runs a busybox rootfs on a network whose conflist is `telco-multinet` with two
//! delegates (bridge with host-local, macvlan with static IPAM).
//!
//! podman runs with the calling thread inside a namespace the test creates, so the delegates
//! build their host side (bridge, macvlan master) there and not on the host. It needs podman,
//! runc, busybox-static and containernetworking-plugins; crun refuses the hybrid cgroup layout
//! of the build machines, hence `--runtime runc --cgroup-manager cgroupfs`.

mod host_tier {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use serde_json::json;
    use telco_net::netns::Netns;

    const PLUGIN: &str = env!("CARGO_BIN_EXE_telco-multinet");
    const PLUGIN_DIR: &str = "/usr/lib/cni";

    /// A busybox root file system with the applets the container command uses.
    fn busybox_rootfs(root: &Path) {
        let busybox = Path::new("/bin/busybox");
        assert!(busybox.exists(), "install busybox-static for /bin/busybox");
        for dir in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for applet in ["sh", "ip", "cat"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }

    fn require_tool(name: &str) {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .unwrap();
        assert!(
            found.status.success(),
            "{name} not found: install the {name} package"
        );
    }

    struct Podman {
        dir: PathBuf,
    }

    impl Podman {
        /// podman with every directory it writes (storage, run root, tmp, CNI config and plugin
        /// dirs) inside `dir`, configured by a containers.conf of its own.
        fn new(dir: &Path) -> Podman {
            let bin = dir.join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::create_dir_all(dir.join("net.d")).unwrap();
            std::fs::copy(PLUGIN, bin.join("telco-multinet")).unwrap();
            let conf = format!(
                "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"{PLUGIN_DIR}\"]\nnetwork_config_dir = \"{}\"\n",
                bin.display(),
                dir.join("net.d").display()
            );
            std::fs::write(dir.join("containers.conf"), conf).unwrap();
            Podman {
                dir: dir.to_owned(),
            }
        }

        fn run(&self, network: &str, rootfs: &Path, command: &[&str]) -> std::process::Output {
            let path = |name: &str| self.dir.join(name).display().to_string();
            Command::new("podman")
                .env("CONTAINERS_CONF", path("containers.conf"))
                .args([
                    "--root",
                    &path("storage"),
                    "--runroot",
                    &path("runroot"),
                    "--tmpdir",
                    &path("tmp"),
                ])
                .args(["--storage-driver", "vfs", "--events-backend", "none"])
                .args([
                    "--runtime",
                    "runc",
                    "--cgroup-manager",
                    "cgroupfs",
                    "--network-backend",
                    "cni",
                ])
                .args(["--cni-config-dir", &path("net.d")])
                .args([
                    "run",
                    "--rm",
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=1024:1024",
                ])
                .args([
                    "--network",
                    network,
                    "--rootfs",
                    &rootfs.display().to_string(),
                ])
                .args(command)
                .output()
                .expect("start podman")
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn podman_container_sees_both_delegate_interfaces() {
        assert!(nix::unistd::geteuid().is_root(), "host tier needs root");
        for tool in ["podman", "runc"] {
            require_tool(tool);
        }
        assert!(
            Path::new(PLUGIN_DIR).join("macvlan").exists(),
            "install containernetworking-plugins"
        );

        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let podman = Podman::new(dir.path());
        let host = Netns::create(&format!("telco-podman-{}", std::process::id())).unwrap();
        for args in [
            &["link", "add", "up0", "type", "veth", "peer", "name", "up0p"][..],
            &["link", "set", "up0", "up"],
        ] {
            let status = Command::new("ip")
                .args(["-n", host.name().unwrap()])
                .args(args)
                .status()
                .unwrap();
            assert!(status.success(), "ip {args:?}");
        }

        let network = format!("telco-mn-{}", std::process::id());
        let state = dir.path().join("state");
        let ipam = dir.path().join("ipam");
        let conflist = json!({"cniVersion": "1.0.0", "name": network, "plugins": [
            {"type": "telco-multinet", "stateDir": state, "delegates": [
                {"cniVersion": "1.0.0", "name": "mgmt", "plugins": [
                    {"type": "bridge", "bridge": "pmbr0", "isGateway": true,
                     "ipam": {"type": "host-local", "dataDir": ipam, "ranges": [[{"subnet": "10.95.0.0/24"}]]}}]},
                {"cniVersion": "1.0.0", "name": "data", "plugins": [
                    {"type": "macvlan", "master": "up0",
                     "ipam": {"type": "static", "addresses": [{"address": "10.96.0.5/24"}]}}]}]}]});
        std::fs::write(
            dir.path().join("net.d").join(format!("{network}.conflist")),
            conflist.to_string(),
        )
        .unwrap();

        let command = ["/bin/sh", "-c", "ip addr show eth0 && ip addr show net1"];
        let output = host
            .run(|| podman.run(&network, &rootfs, &command))
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "podman failed: {}\nstdout: {stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        let eth0 = stdout.split("net1:").next().unwrap();
        let net1 = stdout.split("net1:").nth(1).unwrap_or_default();
        assert!(
            eth0.contains("inet 10.95.0."),
            "eth0 has no mgmt address:\n{stdout}"
        );
        assert!(
            net1.contains("inet 10.96.0.5/24"),
            "net1 has no data address:\n{stdout}"
        );

        // `run --rm` removed the container, so podman called DEL: nothing of it may remain.
        let leases: Vec<_> = std::fs::read_dir(ipam.join("mgmt"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("10."))
            .collect();
        assert!(leases.is_empty(), "IPAM leases left: {leases:?}");
        let status_files: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .collect();
        assert!(
            status_files.is_empty(),
            "status files left: {status_files:?}"
        );
        let links = Command::new("ip")
            .args([
                "-n",
                host.name().unwrap(),
                "-o",
                "link",
                "show",
                "type",
                "veth",
            ])
            .output()
            .unwrap();
        let veths = String::from_utf8_lossy(&links.stdout);
        assert_eq!(
            veths.lines().count(),
            2,
            "only up0 and up0p may remain:\n{veths}"
        );
    }
}
