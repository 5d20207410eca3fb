//! Host-tier tests: pinning, memory policy, cpuset cgroups and hugepages on this machine.

mod host_tier {
    use std::process::{Child, Command};

    use telco_core::{CpuSet, HostRoot, NodeMask};
    use telco_topo::Topology;
    use telco_topo::cgroup::CpusetCgroup;
    use telco_topo::hugepages::{hugepage_counts, reserve_hugepages};
    use telco_topo::pin::{
        MemoryPolicy, pin_current_thread, pin_process, reset_memory_policy, set_memory_policy,
        thread_affinity,
    };

    /// Reads a line of `/proc/PID/status`, such as `Cpus_allowed_list`.
    fn status_field(pid: &str, field: &str) -> String {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
            .trim()
            .to_owned()
    }

    fn require_root() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "host tier tests need root"
        );
    }

    struct Sleeper(Child);

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn last_online_cpu() -> usize {
        Topology::discover(&HostRoot::system())
            .unwrap()
            .online
            .last()
            .unwrap()
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn pinning_a_thread_shows_in_proc_status() {
        let cpu = last_online_cpu();
        let handle = std::thread::spawn(move || {
            let target: CpuSet = std::iter::once(cpu).collect();
            pin_current_thread(&target).unwrap();
            let tid = nix::unistd::gettid().as_raw();
            let listed = status_field(&format!("self/task/{tid}"), "Cpus_allowed_list");
            (listed, thread_affinity(0).unwrap())
        });
        let (listed, read_back) = handle.join().unwrap();
        assert_eq!(listed, cpu.to_string());
        assert_eq!(read_back.to_string(), cpu.to_string());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn pinning_a_process_pins_all_its_threads() {
        let child = Sleeper(
            Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("sleep must be installed"),
        );
        let pid = i32::try_from(child.0.id()).unwrap();
        let target: CpuSet = "0".parse().unwrap();
        pin_process(pid, &target).unwrap();
        assert_eq!(status_field(&pid.to_string(), "Cpus_allowed_list"), "0");
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn binding_memory_shows_in_proc_status() {
        let handle = std::thread::spawn(|| {
            let nodes: NodeMask = "0".parse().unwrap();
            set_memory_policy(MemoryPolicy::Bind, &nodes).unwrap();
            let tid = nix::unistd::gettid().as_raw();
            let allowed = status_field(&format!("self/task/{tid}"), "Mems_allowed_list");
            set_memory_policy(MemoryPolicy::Preferred, &nodes).unwrap();
            reset_memory_policy().unwrap();
            allowed
        });
        // Mems_allowed_list is the cpuset's list; the policy must at least allow node 0.
        let allowed: NodeMask = handle.join().unwrap().parse().unwrap();
        assert!(allowed.contains(0));
        let missing: NodeMask = "1000".parse().unwrap();
        assert!(set_memory_policy(MemoryPolicy::Bind, &missing).is_err());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn a_cpuset_cgroup_confines_a_process_and_is_removed() {
        require_root();
        let host = HostRoot::system();
        let name = format!("telco-test-{}", std::process::id());
        let cgroup =
            CpusetCgroup::create(&host, &name, &"0".parse().unwrap(), &"0".parse().unwrap())
                .unwrap();
        let path = cgroup.path().to_owned();
        assert!(path.exists());
        {
            let child = Sleeper(Command::new("sleep").arg("30").spawn().unwrap());
            let pid = i32::try_from(child.0.id()).unwrap();
            cgroup.add_process(pid).unwrap();
            assert_eq!(status_field(&pid.to_string(), "Cpus_allowed_list"), "0");
            assert_eq!(status_field(&pid.to_string(), "Mems_allowed_list"), "0");
            let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            assert!(membership.contains(&name), "{membership}");
        }
        assert_eq!(cgroup.effective_cpus().unwrap().to_string(), "0");
        cgroup.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn discovery_reads_this_process_cgroup() {
        let topology = Topology::discover_with(
            &HostRoot::system(),
            &telco_topo::DiscoverOptions::default().with_cgroup(),
        )
        .unwrap();
        let cgroup = topology
            .cgroup
            .expect("a cpuset controller is mounted on this machine");
        assert_eq!(
            cgroup.cpus.to_string(),
            status_field("self", "Cpus_allowed_list")
        );
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn hugepages_are_reserved_on_node_zero_and_given_back() {
        require_root();
        let host = HostRoot::system();
        let (before, _) = hugepage_counts(&host, 0, 2048).unwrap();
        let result = reserve_hugepages(&host, 0, 2048, before + 4);
        let (during, _) = hugepage_counts(&host, 0, 2048).unwrap();
        reserve_hugepages(&host, 0, 2048, before).unwrap();
        assert_eq!(result.unwrap(), before + 4);
        assert_eq!(during, before + 4);
        assert_eq!(hugepage_counts(&host, 0, 2048).unwrap().0, before);
    }
}
