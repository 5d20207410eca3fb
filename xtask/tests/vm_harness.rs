//! Proves the VM tier guest has what the build kernel lacks: SCTP, 802.1Q VLAN links, an SR-IOV
//! PF with VFs, and a KVM that runs 64-bit guest code.

mod vm_tier {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn ip(args: &[&str]) -> String {
        let output = Command::new("ip")
            .args(args)
            .output()
            .expect("failed to run ip");
        assert!(
            output.status.success(),
            "ip {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A network namespace made with `ip netns add`, deleted on drop.
    struct Namespace(String);

    impl Namespace {
        fn new(tag: &str) -> Self {
            let name = format!("telco-harness-{tag}-{}", std::process::id());
            ip(&["netns", "add", &name]);
            Namespace(name)
        }
    }

    impl Drop for Namespace {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn sctp_socket_binds_and_listens() {
        // SAFETY: socket takes no pointers; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_SCTP) };
        assert!(
            fd >= 0,
            "SCTP socket failed: {}",
            std::io::Error::last_os_error()
        );
        let address = libc::sockaddr_in {
            sin_family: libc::sa_family_t::try_from(libc::AF_INET).unwrap(),
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: address is a valid sockaddr_in and the length matches it.
        let bound = unsafe {
            libc::bind(
                fd,
                (&address as *const libc::sockaddr_in).cast(),
                libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_in>()).unwrap(),
            )
        };
        assert_eq!(bound, 0, "bind failed: {}", std::io::Error::last_os_error());
        // SAFETY: fd is the socket made above.
        assert_eq!(unsafe { libc::listen(fd, 4) }, 0);
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(fd) };
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn vlan_link_is_created_in_namespace() {
        let namespace = Namespace::new("vlan");
        let ns = namespace.0.as_str();
        ip(&[
            "-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ]);
        ip(&[
            "-n",
            ns,
            "link",
            "add",
            "link",
            "veth0",
            "name",
            "veth0.100",
            "type",
            "vlan",
            "id",
            "100",
        ]);
        let details = ip(&["-n", ns, "-d", "link", "show", "veth0.100"]);
        assert!(details.contains("vlan protocol 802.1Q id 100"), "{details}");
    }

    fn igb_pf() -> PathBuf {
        let devices = std::fs::read_dir("/sys/bus/pci/devices").expect("no PCI devices");
        for entry in devices.flatten() {
            let path = entry.path();
            let driver = std::fs::read_link(path.join("driver")).unwrap_or_default();
            if driver.file_name() == Some("igb".as_ref()) && path.join("sriov_totalvfs").exists() {
                return path;
            }
        }
        panic!(
            "no PCI device bound to igb with sriov_totalvfs; the guest should have QEMU's igb NIC"
        );
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
            .trim()
            .to_owned()
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn igb_pf_creates_two_vfs() {
        let pf = igb_pf();
        assert_eq!(read(&pf.join("sriov_totalvfs")), "7");
        // The kernel rejects a change between two non-zero counts with EBUSY, so start from 0.
        std::fs::write(pf.join("sriov_numvfs"), "0").expect("resetting sriov_numvfs failed");
        std::fs::write(pf.join("sriov_numvfs"), "2").expect("writing sriov_numvfs failed");
        let created = (0..2).all(|index| pf.join(format!("virtfn{index}")).exists());
        let numvfs = read(&pf.join("sriov_numvfs"));
        std::fs::write(pf.join("sriov_numvfs"), "0").expect("resetting sriov_numvfs failed");
        assert!(
            created,
            "virtfn0 and virtfn1 should exist under {}",
            pf.display()
        );
        assert_eq!(numvfs, "2");
        assert!(
            !pf.join("virtfn0").exists(),
            "VFs should be gone after writing 0"
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn kvm_runs_long_mode_code_to_hlt() {
        use kvm_ioctls::{Kvm, VcpuExit};

        const CODE: u64 = 0x4000;
        const MEMORY: usize = 0x20_0000;
        // mov rax, 0x1122334455667788; add rax, rax; hlt. The 64-bit immediate only exists in
        // long mode, so the result proves the vCPU ran 64-bit code.
        let code = [
            0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x48, 0x01, 0xc0, 0xf4,
        ];

        let kvm = Kvm::new().expect("opening /dev/kvm failed");
        let vm = kvm.create_vm().expect("KVM_CREATE_VM failed");
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let host = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEMORY,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(host, libc::MAP_FAILED);
        let memory = host.cast::<u8>();
        let write_u64 = |offset: usize, value: u64| {
            // SAFETY: every offset used below plus 8 lies inside the MEMORY-byte mapping.
            unsafe { memory.add(offset).cast::<u64>().write_unaligned(value) }
        };
        // Identity map the first 2 MiB with one large page: PML4 at 0x1000, PDPT at 0x2000,
        // PD at 0x3000.
        write_u64(0x1000, 0x2000 | 0x3);
        write_u64(0x2000, 0x3000 | 0x3);
        write_u64(0x3000, 0x83);
        // SAFETY: CODE plus the code length lies inside the mapping, which nothing else uses.
        unsafe {
            std::ptr::copy_nonoverlapping(
                code.as_ptr(),
                memory.add(usize::try_from(CODE).unwrap()),
                code.len(),
            )
        };

        let region = kvm_bindings::kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: MEMORY as u64,
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live mapping of MEMORY bytes that outlives the VM.
        unsafe { vm.set_user_memory_region(region) }.expect("KVM_SET_USER_MEMORY_REGION failed");

        let mut vcpu = vm.create_vcpu(0).expect("KVM_CREATE_VCPU failed");
        let mut sregs = vcpu.get_sregs().expect("KVM_GET_SREGS failed");
        let code_segment = kvm_bindings::kvm_segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0x8,
            type_: 0xb,
            present: 1,
            dpl: 0,
            db: 0,
            s: 1,
            l: 1,
            g: 1,
            ..Default::default()
        };
        let data_segment = kvm_bindings::kvm_segment {
            selector: 0x10,
            type_: 0x3,
            l: 0,
            db: 1,
            ..code_segment
        };
        sregs.cs = code_segment;
        sregs.ds = data_segment;
        sregs.es = data_segment;
        sregs.ss = data_segment;
        sregs.fs = data_segment;
        sregs.gs = data_segment;
        sregs.cr3 = 0x1000;
        sregs.cr4 |= 1 << 5; // PAE
        sregs.cr0 |= 1 | (1 << 31); // PE and PG
        sregs.efer |= (1 << 8) | (1 << 10); // LME and LMA
        vcpu.set_sregs(&sregs).expect("KVM_SET_SREGS failed");
        let regs = kvm_bindings::kvm_regs {
            rip: CODE,
            rflags: 0x2,
            rsp: 0x1f_0000,
            ..Default::default()
        };
        vcpu.set_regs(&regs).expect("KVM_SET_REGS failed");

        let exit = vcpu.run().expect("KVM_RUN failed");
        assert!(
            matches!(exit, VcpuExit::Hlt),
            "expected a hlt exit, got {exit:?}"
        );
        let regs = vcpu.get_regs().expect("KVM_GET_REGS failed");
        assert_eq!(regs.rax, 0x1122334455667788u64.wrapping_mul(2));
        assert_eq!(regs.rip, CODE + code.len() as u64);
        drop(vcpu);
        drop(vm);
        // SAFETY: the VM that used the mapping is gone, and the mapping is unmapped once.
        unsafe { libc::munmap(host, MEMORY) };
    }
}
