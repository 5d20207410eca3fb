//! Network namespaces against the real kernel and iproute2.

mod host_tier {
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use telco_net::netns::{self, Netlink, Netns, NetnsError};

    fn require_root() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "host tier tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
        );
    }

    fn unique_name() -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        format!(
            "telco-test-{}-ns{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn ip_netns_list() -> String {
        let output = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("run ip netns list");
        assert!(output.status.success(), "ip netns list failed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn named_netns_listed_by_ip_netns() {
        require_root();
        let name = unique_name();
        let ns = Netns::create(&name).unwrap();
        assert!(
            ip_netns_list()
                .lines()
                .any(|line| line.split_whitespace().next() == Some(&name))
        );
        assert!(netns::list_named().unwrap().contains(&name));
        let output = Command::new("ip")
            .args(["netns", "exec", &name, "ip", "-o", "link", "show"])
            .output()
            .unwrap();
        let links = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            links.lines().count(),
            1,
            "a new namespace holds only lo: {links}"
        );
        ns.delete().unwrap();
        assert!(!ip_netns_list().contains(&name));
        assert!(!std::path::Path::new("/run/netns").join(&name).exists());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn drop_deletes_unless_persisted() {
        require_root();
        let name = unique_name();
        drop(Netns::create(&name).unwrap());
        assert!(!netns::list_named().unwrap().contains(&name));
        let mut kept = Netns::create(&name).unwrap();
        kept.persist();
        drop(kept);
        assert!(netns::list_named().unwrap().contains(&name));
        netns::delete_named(&name).unwrap();
        assert!(!netns::list_named().unwrap().contains(&name));
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn run_enters_namespace_on_own_thread() {
        require_root();
        let ns = Netns::create(&unique_name()).unwrap();
        let before = Netns::current().unwrap().id().unwrap();
        let inside = ns.run(|| Netns::current().unwrap().id().unwrap()).unwrap();
        assert_eq!(inside, ns.id().unwrap());
        assert_ne!(inside, before);
        assert_eq!(Netns::current().unwrap().id().unwrap(), before);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn open_by_name_path_and_pid() {
        require_root();
        let name = unique_name();
        let ns = Netns::create(&name).unwrap();
        assert_eq!(Netns::open(&name).unwrap().id().unwrap(), ns.id().unwrap());
        let by_path = Netns::open_path(format!("/run/netns/{name}")).unwrap();
        assert_eq!(by_path.id().unwrap(), ns.id().unwrap());
        let own = Netns::from_pid(i32::try_from(std::process::id()).unwrap()).unwrap();
        assert_eq!(own.id().unwrap(), Netns::current().unwrap().id().unwrap());
        drop(by_path);
        assert!(
            netns::list_named().unwrap().contains(&name),
            "opened handles do not delete"
        );
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn anonymous_netns_has_only_loopback() {
        require_root();
        let ns = Netns::anonymous().unwrap();
        assert_ne!(ns.id().unwrap(), Netns::current().unwrap().id().unwrap());
        let links = Netlink::in_netns(&ns).unwrap().links().list().unwrap();
        let names: Vec<_> = links.iter().map(|link| link.name.as_str()).collect();
        assert_eq!(names, ["lo"]);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn session_opens_its_own_netns() {
        require_root();
        let ns = Netns::create(&unique_name()).unwrap();
        let inside = ns.netlink().unwrap();
        assert_eq!(inside.open_netns().unwrap().id().unwrap(), ns.id().unwrap());
        let current = Netlink::current().unwrap();
        let current_id = Netns::current().unwrap().id().unwrap();
        assert_eq!(current.open_netns().unwrap().id().unwrap(), current_id);
        assert_ne!(current_id, ns.id().unwrap());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn duplicate_and_missing_names_reported() {
        require_root();
        let name = unique_name();
        let _ns = Netns::create(&name).unwrap();
        match Netns::create(&name) {
            Err(NetnsError::AlreadyExists { name: reported, .. }) => assert_eq!(reported, name),
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        let missing = unique_name();
        let error = netns::delete_named(&missing).unwrap_err();
        assert!(matches!(error, NetnsError::NotFound { .. }));
        assert!(error.to_string().contains(&missing));
    }
}

#[test]
fn open_rejects_name_with_slash() {
    let error = telco_net::netns::Netns::open("a/b").unwrap_err();
    assert!(matches!(
        error,
        telco_net::netns::NetnsError::InvalidName { .. }
    ));
}
