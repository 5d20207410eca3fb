//! VM-tier tests: the cpuset cgroup writer on the guest's cgroup v2 hierarchy (the build
//! machine has cgroup v1, so the v2 paths only run here).

mod vm_tier {
    use std::process::{Child, Command};

    use telco_core::{CpuSet, HostRoot, NodeMask};
    use telco_topo::cgroup::{CgroupVersion, CpusetCgroup};
    use telco_topo::{CgroupError, Topology};

    /// Reads a field of `/proc/PID/status`, such as `Cpus_allowed_list`.
    fn status_field(pid: i32, field: &str) -> String {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
            .trim()
            .to_owned()
    }

    fn require_root_on_cgroup2() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "vm tier tests need root (run them with cargo xtask test or cargo xtask vm-run)"
        );
        let filesystem =
            nix::sys::statfs::statfs("/sys/fs/cgroup").expect("/sys/fs/cgroup must be mounted");
        assert_eq!(
            filesystem.filesystem_type(),
            nix::sys::statfs::CGROUP2_SUPER_MAGIC,
            "/sys/fs/cgroup must be the cgroup2 hierarchy"
        );
    }

    /// A child process killed and reaped on drop, so the cgroup is empty before `rmdir`.
    struct Sleeper(Child);

    impl Sleeper {
        fn spawn() -> Sleeper {
            Sleeper(Command::new("sleep").arg("60").spawn().unwrap())
        }

        fn pid(&self) -> i32 {
            i32::try_from(self.0.id()).unwrap()
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn read(path: &std::path::Path) -> String {
        std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
            .trim()
            .to_owned()
    }

    fn root_effective_cpus() -> CpuSet {
        read(std::path::Path::new("/sys/fs/cgroup/cpuset.cpus.effective"))
            .parse()
            .unwrap()
    }

    /// Kernel release as `(major, minor)` (`6.1.0-28-amd64` gives (6, 1)).
    fn kernel_release() -> (u32, u32) {
        let release = read(std::path::Path::new("/proc/sys/kernel/osrelease"));
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|part| part.parse::<u32>().unwrap_or(0));
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn cpuset_cgroup_v2_confines_a_process() {
        require_root_on_cgroup2();
        let host = HostRoot::system();
        let topology = Topology::discover(&host).unwrap();
        let cpu = topology.online.last().unwrap();
        let cpus: CpuSet = std::iter::once(cpu).collect();
        let mems: NodeMask = std::iter::once(topology.numa_nodes[0].id).collect();
        let name = format!("telco-vm-test-{}", std::process::id());

        let cgroup = CpusetCgroup::create(&host, &name, &cpus, &mems).unwrap();
        let path = cgroup.path().to_owned();
        assert_eq!(cgroup.version(), CgroupVersion::V2);
        assert_eq!(path, std::path::Path::new("/sys/fs/cgroup").join(&name));
        assert_eq!(read(&path.join("cpuset.cpus")), cpus.to_string());
        assert_eq!(read(&path.join("cpuset.mems")), mems.to_string());

        {
            let child = Sleeper::spawn();
            cgroup.add_process(child.pid()).unwrap();
            assert_eq!(
                status_field(child.pid(), "Cpus_allowed_list"),
                cpus.to_string()
            );
            assert_eq!(
                status_field(child.pid(), "Mems_allowed_list"),
                mems.to_string()
            );
            let membership = read(std::path::Path::new(&format!(
                "/proc/{}/cgroup",
                child.pid()
            )));
            assert_eq!(membership, format!("0::/{name}"));
            assert_eq!(read(&path.join("cgroup.procs")), child.pid().to_string());
        }
        assert_eq!(cgroup.effective_cpus().unwrap(), cpus);

        cgroup.remove().unwrap();
        assert!(!path.exists(), "{} is still there", path.display());
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn isolated_partition_outcome_matches_the_kernel() {
        require_root_on_cgroup2();
        let host = HostRoot::system();
        let topology = Topology::discover(&host).unwrap();
        assert!(
            topology.online.len() >= 2,
            "an isolated partition needs a CPU left for the root cgroup; the guest has {}",
            topology.online
        );
        let cpu = topology.online.last().unwrap();
        let cpus: CpuSet = std::iter::once(cpu).collect();
        let mems: NodeMask = std::iter::once(topology.numa_nodes[0].id).collect();
        let name = format!("telco-vm-partition-{}", std::process::id());
        let cgroup = CpusetCgroup::create(&host, &name, &cpus, &mems).unwrap();
        let partition_file = cgroup.path().join("cpuset.cpus.partition");
        let child = Sleeper::spawn();
        cgroup.add_process(child.pid()).unwrap();

        let outcome = cgroup.set_isolated_partition();
        let state = read(&partition_file);
        match &outcome {
            Ok(()) => assert_eq!(state, "isolated"),
            Err(CgroupError::PartitionRefused { path }) => {
                assert_eq!(path, cgroup.path());
                assert_ne!(state, "isolated");
            }
            Err(error) => panic!("unexpected error: {error}"),
        }
        // The `isolated` type exists since Linux 5.15; the Debian 6.1 guest accepts it.
        let release = kernel_release();
        if release >= (5, 15) {
            assert!(outcome.is_ok(), "Linux {release:?}: {outcome:?}");
            assert_eq!(
                status_field(child.pid(), "Cpus_allowed_list"),
                cpus.to_string()
            );
            assert_eq!(
                read(&cgroup.path().join("cpuset.cpus.effective")),
                cpus.to_string()
            );
            let root_cpus = root_effective_cpus();
            assert!(
                !root_cpus.contains(cpu),
                "CPU {cpu} is still in the root's effective CPUs {root_cpus}"
            );
        } else {
            assert!(
                outcome.is_err(),
                "Linux {release:?}: {outcome:?}, state {state}"
            );
        }

        drop(child);
        let path = cgroup.path().to_owned();
        cgroup.remove().unwrap();
        assert!(!path.exists(), "{} is still there", path.display());
        // The kernel takes the cgroup offline after `rmdir` returns, and gives the partition's
        // CPUs back to the root then.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let root_cpus = loop {
            let root_cpus = root_effective_cpus();
            if root_cpus.contains(cpu) || std::time::Instant::now() > deadline {
                break root_cpus;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(
            root_cpus.contains(cpu),
            "CPU {cpu} did not return to the root within 10 s: {root_cpus}"
        );
    }
}
