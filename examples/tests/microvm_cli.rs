//! The `microvm` command line: argument errors, and in the vm tier a real boot whose exit
//! status is the guest's exit reason.

use std::process::Command;

fn microvm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_microvm"))
}

#[test]
fn missing_initrd_is_a_usage_error() {
    let output = microvm()
        .args(["--kernel", "/boot/vmlinuz"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--initrd"));
}

#[test]
fn netns_without_tap_is_a_usage_error() {
    let output = microvm()
        .args(["--kernel", "k", "--initrd", "i", "--netns", "pod1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tap"));
}

#[test]
fn invalid_cpu_list_is_a_usage_error() {
    let output = microvm()
        .args(["--kernel", "k", "--initrd", "i", "--cpus", "3-1"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn missing_kernel_file_fails_before_start() {
    let output = microvm()
        .args([
            "--kernel",
            "/nonexistent/vmlinuz",
            "--initrd",
            "/nonexistent/initrd",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/vmlinuz") || stderr.contains("KVM"),
        "{stderr}"
    );
}

mod vm_tier {
    use std::path::{Path, PathBuf};

    use telco_vmm::initramfs::NewcWriter;

    const MARKER: &str = "TELCO-CLI-MARKER";

    fn initramfs(dir: &Path, last_command: &str) -> PathBuf {
        let busybox = std::fs::read("/bin/busybox")
            .unwrap_or_else(|e| panic!("/bin/busybox is needed in the vm tier guest: {e}"));
        let init = format!("#!/bin/busybox sh\necho {MARKER}\n/bin/busybox {last_command}\n");
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

    fn boot(last_command: &str) -> std::process::Output {
        assert!(
            Path::new("/boot/vmlinuz").exists(),
            "/boot/vmlinuz is missing in the vm tier guest"
        );
        let dir = tempfile::tempdir().unwrap();
        let initrd = initramfs(dir.path(), last_command);
        super::microvm()
            .args([
                "--kernel",
                "/boot/vmlinuz",
                "--vcpus",
                "2",
                "--mem",
                "256",
                "--cpus",
                "0-1",
            ])
            .arg("--initrd")
            .arg(&initrd)
            .args([
                "--cmdline",
                "console=ttyS0 reboot=k panic=1 pci=off quiet",
                "--marker",
                MARKER,
            ])
            .output()
            .unwrap()
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn reboot_in_guest_exits_with_status_one() {
        let output = boot("reboot -f");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(stdout.contains(MARKER), "{stdout}");
        assert!(stderr.contains("guest rebooted"), "{stderr}");
        assert!(
            !stderr.contains("marker after -"),
            "marker time missing: {stderr}"
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn poweroff_in_guest_exits_with_status_zero() {
        let output = boot("poweroff -f");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
