//! Boots Debian's kernel as a nested microVM. Needs a KVM that runs guests at useful speed,
//! which the build machines lack: these run in the QEMU guest of the vm tier, which has
//! nested KVM, the kernel at `/boot/vmlinuz` and a static `/bin/busybox`.

mod vm_tier {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use telco_vmm::initramfs::NewcWriter;
    use telco_vmm::{Console, ExitReason, MicroVm, MicroVmBuilder};

    const KERNEL: &str = "/boot/vmlinuz";
    const BUSYBOX: &str = "/bin/busybox";
    const MARKER: &str = "TELCO-VMM-INIT-UP";
    /// Nested boots take about 20 s at TCG speed; this leaves room for a loaded machine.
    const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
    const CMDLINE: &str = "console=ttyS0 reboot=k panic=1 pci=off quiet";

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            std::io::stderr().write_all(buf)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn require(path: &str) -> PathBuf {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "{} is missing: the vm tier guest must provide it",
            path.display()
        );
        path
    }

    /// Writes an initramfs with the static busybox and `init_body` as the `/init` script.
    fn initramfs(dir: &Path, init_body: &str) -> PathBuf {
        let busybox = std::fs::read(require(BUSYBOX)).expect("reading busybox");
        let init = format!(
            "#!/bin/busybox sh\n\
             /bin/busybox mkdir -p /proc /sys\n\
             /bin/busybox mount -t proc proc /proc\n\
             /bin/busybox mount -t sysfs sysfs /sys\n\
             {init_body}\n"
        );
        let mut archive = NewcWriter::new(Vec::new());
        archive.directory("bin", 0o755).unwrap();
        archive.directory("dev", 0o755).unwrap();
        archive.char_device("dev/console", 0o600, 5, 1).unwrap();
        archive.file("bin/busybox", 0o755, &busybox).unwrap();
        archive.file("init", 0o755, init.as_bytes()).unwrap();
        let path = dir.join("initramfs.cpio");
        std::fs::write(&path, archive.finish().unwrap()).unwrap();
        path
    }

    fn boot(init_body: &str, vcpus: u8) -> (MicroVm, Captured, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let initrd = initramfs(dir.path(), init_body);
        let console = Captured::default();
        let mut vm = MicroVmBuilder::new()
            .memory_mib(256)
            .vcpus(vcpus)
            .kernel(require(KERNEL))
            .initrd(initrd)
            .cmdline(CMDLINE)
            .serial_marker(MARKER)
            .console(Console::Writer(Box::new(console.clone())))
            .build()
            .unwrap_or_else(|e| panic!("building the microVM failed: {e}"));
        vm.start().unwrap();
        (vm, console, dir)
    }

    fn wait(vm: &mut MicroVm) -> &ExitReason {
        vm.wait_timeout(BOOT_TIMEOUT)
            .unwrap()
            .unwrap_or_else(|| panic!("the guest did not exit within {BOOT_TIMEOUT:?}"))
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn debian_kernel_boots_to_marker_with_two_vcpus() {
        let (mut vm, console, _dir) = boot(
            &format!(
                "echo {MARKER}\n\
                 echo CPUS-ONLINE=$(/bin/busybox cat /sys/devices/system/cpu/online)\n\
                 /bin/busybox reboot -f"
            ),
            2,
        );
        let reason = wait(&mut vm);
        assert!(matches!(reason, ExitReason::Reboot), "{reason:?}");
        let text = console.text();
        assert!(
            text.contains(MARKER),
            "marker missing from console:\n{text}"
        );
        assert!(
            text.contains("CPUS-ONLINE=0-1"),
            "both vCPUs not online:\n{text}"
        );
        let times = vm.boot_times();
        let to_marker = times.to_marker.expect("marker time recorded");
        let to_entry = times.to_first_entry.expect("first entry recorded");
        assert!(to_entry < to_marker, "{times:?}");
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn panicking_guest_is_reported_as_panic() {
        // /init exits, so the kernel panics with "Attempted to kill init!".
        let (mut vm, _console, _dir) = boot(&format!("echo {MARKER}\nexit 1"), 1);
        match wait(&mut vm) {
            ExitReason::Panic(line) => {
                assert!(line.contains("Attempted to kill init"), "{line}");
            }
            other => panic!("expected a panic, got {other:?}"),
        }
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn poweroff_in_guest_is_reported_as_power_off() {
        let (mut vm, _console, _dir) = boot(&format!("echo {MARKER}\n/bin/busybox poweroff -f"), 1);
        let reason = wait(&mut vm);
        assert!(matches!(reason, ExitReason::PowerOff), "{reason:?}");
    }
}
