//! The microVM lifecycle on the host's KVM with tiny 64-bit guests. On build machines KVM only
//! emulates, which is fast enough for a few instructions but not for Linux.

mod host_tier {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use telco_vmm::{Console, ExitReason, MicroVm, MicroVmBuilder, VmState, VmmError};

    /// Port I/O helpers for hand-assembled 64-bit guest code.
    fn out_serial(text: &[u8]) -> Vec<u8> {
        let mut code = vec![0x66, 0xba, 0xf8, 0x03]; // mov dx, 0x3f8
        for &byte in text {
            code.extend_from_slice(&[0xb0, byte, 0xee]); // mov al, byte; out dx, al
        }
        code
    }

    /// `mov al, 0xfe; out 0x64, al`: the i8042 reset, then `hlt; jmp $-1` in case it returns.
    const RESET: [u8; 7] = [0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd];
    /// `jmp $`.
    const SPIN: [u8; 2] = [0xeb, 0xfe];

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
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

    fn build(code: Vec<u8>, vcpus: u8, console: Captured) -> MicroVm {
        MicroVmBuilder::new()
            .memory_mib(16)
            .vcpus(vcpus)
            .flat_binary(code)
            .serial_marker("OK")
            .console(Console::Writer(Box::new(console)))
            .build()
            .unwrap_or_else(|e| panic!("building the microVM failed (is /dev/kvm usable?): {e}"))
    }

    fn wait_exit(vm: &mut MicroVm) -> &ExitReason {
        vm.wait_timeout(Duration::from_secs(60))
            .unwrap()
            .expect("guest did not exit within 60 s")
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn guest_prints_then_resets() {
        let console = Captured::default();
        let mut code = out_serial(b"OK\n");
        code.extend_from_slice(&RESET);
        let mut vm = build(code, 1, console.clone());
        assert_eq!(vm.state(), VmState::Created);
        vm.start().unwrap();

        let reason = wait_exit(&mut vm);
        assert!(matches!(reason, ExitReason::Reboot), "{reason:?}");
        assert_eq!(reason.exit_code(), 1);
        assert_eq!(console.text(), "OK\n");
        let times = vm.boot_times();
        let first_entry = times.to_first_entry.expect("first entry recorded");
        let marker = times.to_marker.expect("marker recorded");
        assert!(first_entry <= marker, "{times:?}");
        assert_eq!(vm.state(), VmState::Exited);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn panic_line_is_reported_as_panic() {
        let mut code = out_serial(b"Kernel panic - not syncing: test\n");
        code.extend_from_slice(&RESET);
        let mut vm = build(code, 1, Captured::default());
        vm.start().unwrap();
        match wait_exit(&mut vm) {
            ExitReason::Panic(line) => assert_eq!(line, "Kernel panic - not syncing: test"),
            other => panic!("expected a panic, got {other:?}"),
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn power_down_line_ends_vm_as_power_off() {
        let mut code = out_serial(b"reboot: Power down\n");
        code.extend_from_slice(&SPIN);
        let mut vm = build(code, 1, Captured::default());
        vm.start().unwrap();
        let reason = wait_exit(&mut vm);
        assert!(matches!(reason, ExitReason::PowerOff), "{reason:?}");
        assert_eq!(reason.exit_code(), 0);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn pause_resume_and_stop_spinning_guest() {
        let mut vm = build(SPIN.to_vec(), 2, Captured::default());
        vm.start().unwrap();
        assert_eq!(vm.state(), VmState::Running);
        vm.pause().unwrap();
        assert_eq!(vm.state(), VmState::Paused);
        assert!(matches!(vm.pause(), Err(VmmError::InvalidState { .. })));
        vm.resume().unwrap();
        assert_eq!(vm.state(), VmState::Running);
        assert!(
            vm.wait_timeout(Duration::from_millis(50))
                .unwrap()
                .is_none()
        );
        let reason = vm.stop().unwrap();
        assert!(matches!(reason, ExitReason::Stopped), "{reason:?}");
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn vcpu_thread_runs_on_given_cpu() {
        let cpu = 1.min(std::thread::available_parallelism().map_or(1, |n| n.get()) - 1);
        let mut vm = MicroVmBuilder::new()
            .memory_mib(16)
            .vcpus(1)
            .vcpu_cpus(0, std::iter::once(cpu).collect())
            .flat_binary(SPIN.to_vec())
            .build()
            .unwrap();
        vm.start().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let allowed = vcpu_thread_cpus("vcpu0").expect("vcpu0 thread found");
        vm.stop().unwrap();
        assert_eq!(allowed, cpu.to_string());
    }

    /// `Cpus_allowed_list` of this process's thread named `name`.
    fn vcpu_thread_cpus(name: &str) -> Option<String> {
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let path = task.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?;
            if comm.trim() == name {
                let status = std::fs::read_to_string(path.join("status")).ok()?;
                return status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .map(|v| v.trim().to_string());
            }
        }
        None
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn debian_kernel_and_initrd_load() {
        let kernel = super::debian_kernel();
        let initrd = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(initrd.path(), vec![0u8; 1 << 20]).unwrap();
        let vm = MicroVmBuilder::new()
            .memory_mib(256)
            .vcpus(2)
            .kernel(&kernel)
            .initrd(initrd.path())
            .build();
        let vm = vm.unwrap_or_else(|e| panic!("loading {} failed: {e}", kernel.display()));
        assert_eq!(vm.state(), VmState::Created);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn memfd_backed_vm_builds() {
        let vm = MicroVmBuilder::new()
            .memory_mib(32)
            .memory_backend(telco_vmm::MemoryBackend::Memfd)
            .flat_binary(RESET.to_vec())
            .build()
            .unwrap();
        assert_eq!(vm.state(), VmState::Created);
    }
}

/// Debian's installed kernel, `/boot/vmlinuz-*`; panics with the reason when there is none.
fn debian_kernel() -> std::path::PathBuf {
    let mut kernels: Vec<_> = std::fs::read_dir("/boot")
        .expect("/boot is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels
        .pop()
        .expect("no /boot/vmlinuz-*: install linux-image-amd64")
}

#[test]
fn builder_rejects_missing_kernel() {
    let err = telco_vmm::MicroVmBuilder::new().build().unwrap_err();
    assert!(err.to_string().contains("no kernel"), "{err}");
}

#[test]
fn builder_rejects_pinning_of_absent_vcpu() {
    let err = telco_vmm::MicroVmBuilder::new()
        .vcpus(2)
        .vcpu_cpus(2, "0".parse().unwrap())
        .flat_binary(vec![0xf4])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("vCPU 2"), "{err}");
}

#[test]
fn builder_rejects_too_many_vcpus() {
    let err = telco_vmm::MicroVmBuilder::new()
        .vcpus(telco_vmm::MAX_VCPUS + 1)
        .flat_binary(vec![0xf4])
        .build()
        .unwrap_err();
    assert!(
        matches!(err, telco_vmm::VmmError::InvalidConfig(_)),
        "{err}"
    );
}

#[test]
fn builder_rejects_odd_hugetlbfs_size() {
    let err = telco_vmm::MicroVmBuilder::new()
        .memory_mib(33)
        .memory_backend(telco_vmm::MemoryBackend::Hugetlbfs("/dev/hugepages".into()))
        .flat_binary(vec![0xf4])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("2 MiB"), "{err}");
}

#[test]
fn debian_bzimage_is_detected() {
    let kernel = debian_kernel();
    assert_eq!(
        telco_vmm::detect_kernel_format(&kernel).unwrap(),
        Some(telco_vmm::KernelFormat::BzImage)
    );
}
