//! `microvm --netns NS --tap TAP`: a nested guest brings up its virtio-net interface and pings
//! the tap's address in a namespace the test creates. Needs nested KVM: vm tier.

mod vm_tier {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use telco_vmm::initramfs::NewcWriter;

    const HOST_ADDRESS: &str = "10.213.0.1";
    const GUEST_ADDRESS: &str = "10.213.0.2";
    const GUEST_MAC: &str = "02:00:0a:d5:00:02";
    /// Modules for virtio-mmio and virtio-net, in load order (Debian builds them as modules).
    const MODULES: [&str; 6] = [
        "kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/virtio/virtio.ko",
        "kernel/drivers/virtio/virtio_mmio.ko",
        "kernel/net/core/failover.ko",
        "kernel/drivers/net/net_failover.ko",
        "kernel/drivers/net/virtio_net.ko",
    ];

    /// A network namespace with a tap, removed on drop.
    struct Namespace(String);

    impl Namespace {
        fn with_tap(tap: &str) -> Namespace {
            let name = format!("telco-test-{}-vmnet", std::process::id());
            ip(&["netns", "add", &name]);
            let namespace = Namespace(name);
            ip(&[
                "-n",
                &namespace.0,
                "tuntap",
                "add",
                "dev",
                tap,
                "mode",
                "tap",
            ]);
            ip(&[
                "-n",
                &namespace.0,
                "addr",
                "add",
                &format!("{HOST_ADDRESS}/24"),
                "dev",
                tap,
            ]);
            ip(&["-n", &namespace.0, "link", "set", tap, "up"]);
            namespace
        }
    }

    impl Drop for Namespace {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }

    fn ip(args: &[&str]) {
        let output = Command::new("ip")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running ip (iproute2) failed: {e}"));
        assert!(
            output.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn kernel_release() -> String {
        let output = Command::new("uname").arg("-r").output().unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn initramfs(dir: &Path) -> PathBuf {
        let busybox = std::fs::read("/bin/busybox")
            .unwrap_or_else(|e| panic!("/bin/busybox is needed in the vm tier guest: {e}"));
        let modules_dir = PathBuf::from("/lib/modules").join(kernel_release());
        let mut archive = NewcWriter::new(Vec::new());
        archive.directory("bin", 0o755).unwrap();
        archive.directory("dev", 0o755).unwrap();
        archive.directory("modules", 0o755).unwrap();
        archive.char_device("dev/console", 0o600, 5, 1).unwrap();
        archive.file("bin/busybox", 0o755, &busybox).unwrap();
        let mut insmod = String::new();
        for module in MODULES {
            let path = modules_dir.join(module);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{} is needed for the guest's virtio-net: {e}",
                    path.display()
                )
            });
            let name = Path::new(module)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            archive
                .file(&format!("modules/{name}"), 0o644, &bytes)
                .unwrap();
            insmod.push_str(&format!("/bin/busybox insmod /modules/{name}\n"));
        }
        let init = format!(
            "#!/bin/busybox sh\n\
             /bin/busybox mkdir -p /proc /sys\n\
             /bin/busybox mount -t proc proc /proc\n\
             /bin/busybox mount -t sysfs sysfs /sys\n\
             {insmod}\
             /bin/busybox ip link set eth0 up\n\
             /bin/busybox ip addr add {GUEST_ADDRESS}/24 dev eth0\n\
             /bin/busybox ip link show eth0\n\
             if /bin/busybox ping -c 3 -W 5 {HOST_ADDRESS}; then echo PING-OK; else echo PING-FAILED; fi\n\
             /bin/busybox reboot -f\n"
        );
        archive.file("init", 0o755, init.as_bytes()).unwrap();
        let path = dir.join("initramfs.cpio");
        std::fs::write(&path, archive.finish().unwrap()).unwrap();
        path
    }

    /// Waits for `child`, killing it after `timeout` so a hung guest fails the test.
    fn wait_with_timeout(
        mut child: std::process::Child,
        timeout: std::time::Duration,
    ) -> std::process::Output {
        let deadline = std::time::Instant::now() + timeout;
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        child.wait_with_output().unwrap()
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn guest_pings_tap_in_namespace() {
        assert!(
            Path::new("/boot/vmlinuz").exists(),
            "/boot/vmlinuz is missing in the vm tier guest"
        );
        let dir = tempfile::tempdir().unwrap();
        let initrd = initramfs(dir.path());
        let namespace = Namespace::with_tap("tap0");
        let child = Command::new(env!("CARGO_BIN_EXE_microvm"))
            .args(["--kernel", "/boot/vmlinuz", "--mem", "256"])
            .arg("--initrd")
            .arg(&initrd)
            .args(["--cmdline", "console=ttyS0 reboot=k panic=1 pci=off"])
            .args(["--netns", &namespace.0, "--tap", "tap0", "--mac", GUEST_MAC])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let output = wait_with_timeout(child, std::time::Duration::from_secs(300));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stdout.contains("PING-OK"),
            "guest ping failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stdout.contains(GUEST_MAC),
            "eth0 lacks the configured MAC:\n{stdout}"
        );
        assert_eq!(output.status.code(), Some(1), "{stderr}");
    }
}
