//! Multi-network attach against the real kernel, in a stand-in host namespace and a pod
//! namespace that the tests create, and IPAM shared with Debian's host-local plugin.

mod host_tier {
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::net::IpAddr;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use telco_net::attach::kinds::{HostDeviceKind, MacvlanKind, TapKind, VethKind};
    use telco_net::attach::{
        AttachError, Attacher, AttachmentSpec, HostLocalIpam, IpConfig, StaticAddress, Step,
    };
    use telco_net::ipam::{HostLocal, IpRange};
    use telco_net::link::{Bridge, Veth};
    use telco_net::netns::{self, Netlink, Netns};

    /// A stand-in host namespace with a bridge and an uplink, and an empty pod namespace.
    struct Setup {
        host_ns: Netns,
        host: Netlink,
        pod: Netns,
        pod_nl: Netlink,
        ipam_dir: tempfile::TempDir,
    }

    fn setup() -> Setup {
        assert!(
            nix::unistd::geteuid().is_root(),
            "host tier tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
        );
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let host_ns = Netns::create(&format!("telco-test-{}-h{n}", std::process::id())).unwrap();
        let pod = Netns::create(&format!("telco-test-{}-p{n}", std::process::id())).unwrap();
        let host = host_ns.netlink().unwrap();
        host.links().add(Bridge::new("br-test").up()).unwrap();
        host.links()
            .add(Veth::new("uplink0", "uplink0-peer").up())
            .unwrap();
        host.links().set("uplink0-peer").up().apply().unwrap();
        let pod_nl = pod.netlink().unwrap();
        Setup {
            host_ns,
            host,
            pod,
            pod_nl,
            ipam_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The named namespaces not made by tests (tests of this and other crates run in
    /// parallel and name theirs `telco-...`).
    fn other_namespaces() -> Vec<String> {
        let mut names = netns::list_named().unwrap();
        names.retain(|name| !name.starts_with("telco-"));
        names
    }

    fn link_names(netlink: &Netlink) -> BTreeSet<String> {
        netlink
            .links()
            .list()
            .unwrap()
            .into_iter()
            .map(|link| link.name)
            .collect()
    }

    fn three_networks(third: AttachmentSpec) -> Vec<AttachmentSpec> {
        let ranges = vec![vec![IpRange::new("10.77.0.0/24".parse().unwrap())]];
        vec![
            AttachmentSpec::new(
                "default/mgmt",
                "eth0".parse().unwrap(),
                VethKind::new().bridge("br-test"),
            )
            .ip(IpConfig::HostLocal(HostLocalIpam::new("mgmt", ranges)))
            .default_route()
            .mtu(1400),
            AttachmentSpec::new(
                "default/data",
                "net1".parse().unwrap(),
                MacvlanKind::new("uplink0"),
            )
            .ip(IpConfig::Static(vec![StaticAddress::new(
                "10.78.0.5/24".parse().unwrap(),
                None,
            )])),
            third,
        ]
    }

    fn tap_spec() -> AttachmentSpec {
        AttachmentSpec::new(
            "default/vm",
            "net2".parse().unwrap(),
            TapKind::new().multi_queue(2),
        )
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn three_networks_attach_detach_clean() {
        let s = setup();
        let host_before = link_names(&s.host);
        let namespaces_before = other_namespaces();
        let specs = three_networks(tap_spec());
        let attacher = Attacher::with_host(&s.pod, &s.host_ns, "cid-three")
            .unwrap()
            .ipam_data_dir(s.ipam_dir.path());
        let status = attacher.attach(&specs).unwrap();

        let names: Vec<_> = status.iter().map(|entry| entry.name.as_str()).collect();
        assert_eq!(names, ["default/mgmt", "default/data", "default/vm"]);
        let interfaces: Vec<_> = status
            .iter()
            .map(|entry| entry.interface.as_deref().unwrap())
            .collect();
        assert_eq!(interfaces, ["eth0", "net1", "net2"]);
        assert_eq!(status[0].ips, ["10.77.0.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(status[0].gateway, ["10.77.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(status[0].mtu, Some(1400));
        assert!(status[0].default);
        assert!(!status[1].default);
        assert!(!status[2].default);
        assert_eq!(status[1].ips, ["10.78.0.5".parse::<IpAddr>().unwrap()]);
        for entry in &status {
            let mac = entry
                .mac
                .as_deref()
                .expect("kernel interfaces report a MAC");
            let live = s
                .pod_nl
                .links()
                .get(entry.interface.as_deref().unwrap())
                .unwrap();
            assert_eq!(live.mac.unwrap().to_string(), mac);
            assert!(live.up);
        }
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json[0]["interface"], "eth0");
        assert_eq!(json[0]["default"], true);
        let routes = s.pod_nl.routes().list(false, None).unwrap();
        assert!(
            routes
                .iter()
                .any(|route| route.is_default()
                    && route.gateway == Some("10.77.0.1".parse().unwrap()))
        );
        let bridge_index = s.host.links().get("br-test").unwrap().index;
        let host_ports = s
            .host
            .links()
            .list()
            .unwrap()
            .into_iter()
            .filter(|link| link.master == Some(bridge_index))
            .count();
        assert_eq!(host_ports, 1, "the host end of eth0 is on the bridge");
        let host_end = s
            .host
            .links()
            .list()
            .unwrap()
            .into_iter()
            .find(|link| link.master == Some(bridge_index))
            .unwrap();
        assert!(host_end.name.starts_with("veth"), "{}", host_end.name);
        assert_eq!(
            host_end.alias.as_deref(),
            Some("telco: container cid-three eth0")
        );
        assert!(host_end.up);
        let store = HostLocal::open(s.ipam_dir.path(), "mgmt").unwrap();
        assert_eq!(store.leases().unwrap().len(), 1);

        attacher.detach(&specs).unwrap();
        assert_eq!(link_names(&s.pod_nl), BTreeSet::from(["lo".to_owned()]));
        assert_eq!(link_names(&s.host), host_before);
        assert!(store.leases().unwrap().is_empty());
        assert!(s.pod_nl.addresses().list(None).unwrap().is_empty());
        assert_eq!(other_namespaces(), namespaces_before);
        attacher
            .detach(&specs)
            .expect("a second detach finds nothing and succeeds");
    }

    /// Detach deletes the veth and macvlan pod ends in one batch. An interface removed by hand
    /// is left to the kind's own detach, which still deletes a leftover host end.
    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn detach_after_interfaces_removed_by_hand() {
        let s = setup();
        let host_before = link_names(&s.host);
        let specs = three_networks(tap_spec());
        let attacher = Attacher::with_host(&s.pod, &s.host_ns, "cid-by-hand")
            .unwrap()
            .ipam_data_dir(s.ipam_dir.path());
        attacher.attach(&specs).unwrap();
        s.pod_nl.links().delete("net1").unwrap();
        // Moving the pod end of the veth out of the pod hides it from the batch. The host end
        // stays, so the veth kind's own detach must find and delete it.
        s.pod_nl
            .links()
            .set("eth0")
            .rename("moved0")
            .netns(&s.host_ns)
            .apply()
            .unwrap();

        attacher.detach(&specs).unwrap();

        assert_eq!(link_names(&s.pod_nl), BTreeSet::from(["lo".to_owned()]));
        assert_eq!(link_names(&s.host), host_before);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn third_failure_rolls_back_all() {
        let s = setup();
        let host_before = link_names(&s.host);
        let namespaces_before = other_namespaces();
        let broken = AttachmentSpec::new(
            "default/broken",
            "net2".parse().unwrap(),
            MacvlanKind::new("no-such-uplink"),
        );
        let specs = three_networks(broken);
        let attacher = Attacher::with_host(&s.pod, &s.host_ns, "cid-fail")
            .unwrap()
            .ipam_data_dir(s.ipam_dir.path());
        match attacher.attach(&specs).unwrap_err() {
            AttachError::Attachment {
                index,
                error,
                rollback,
            } => {
                assert_eq!(index, 2);
                assert_eq!(error.step, Step::Kind);
                assert_eq!(error.network, "default/broken");
                assert!(rollback.is_empty(), "rollback failures: {rollback:?}");
            }
            other => panic!("expected an attachment error, got {other:?}"),
        }
        assert_eq!(link_names(&s.pod_nl), BTreeSet::from(["lo".to_owned()]));
        assert_eq!(link_names(&s.host), host_before);
        assert!(
            HostLocal::open(s.ipam_dir.path(), "mgmt")
                .unwrap()
                .leases()
                .unwrap()
                .is_empty()
        );
        assert_eq!(other_namespaces(), namespaces_before);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn host_device_in_and_back() {
        let s = setup();
        s.host
            .links()
            .add(Veth::new("hostdev0", "hostdev0-peer"))
            .unwrap();
        let index = s.host.links().get("hostdev0").unwrap().index;
        let specs = vec![
            AttachmentSpec::new(
                "default/hd",
                "net5".parse().unwrap(),
                HostDeviceKind::new("hostdev0"),
            )
            .ip(IpConfig::Static(vec![StaticAddress::new(
                "10.79.0.5/24".parse().unwrap(),
                None,
            )])),
        ];
        let attacher = Attacher::with_host(&s.pod, &s.host_ns, "cid-hd").unwrap();
        let status = attacher.attach(&specs).unwrap();
        assert_eq!(status[0].interface.as_deref(), Some("net5"));
        let inside = s.pod_nl.links().get("net5").unwrap();
        assert_eq!(inside.alias.as_deref(), Some("hostdev0"));
        assert!(s.host.links().find("hostdev0").unwrap().is_none());
        attacher.detach(&specs).unwrap();
        assert!(s.pod_nl.links().find("net5").unwrap().is_none());
        let back = s.host.links().get("hostdev0").unwrap();
        assert_eq!(back.kind.as_deref(), Some("veth"));
        assert!(!back.up, "the move back closes the device");
        attacher
            .detach(&specs)
            .expect("a second detach finds nothing and succeeds");
        assert!(s.host.links().find("hostdev0").unwrap().is_some());
        let _ = index;
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn veth_creates_missing_bridge() {
        let s = setup();
        let specs = vec![
            AttachmentSpec::new(
                "default/new-bridge",
                "eth0".parse().unwrap(),
                VethKind::new().bridge("br-new"),
            ),
            AttachmentSpec::new("default/p2p", "eth1".parse().unwrap(), VethKind::new()),
        ];
        assert!(s.host.links().find("br-new").unwrap().is_none());
        let attacher = Attacher::with_host(&s.pod, &s.host_ns, "cid-bridge").unwrap();
        attacher.attach(&specs).unwrap();

        let bridge = s.host.links().get("br-new").unwrap();
        assert_eq!(bridge.kind.as_deref(), Some("bridge"));
        assert!(bridge.up);
        let host_ends: Vec<_> = s
            .host
            .links()
            .list()
            .unwrap()
            .into_iter()
            .filter(|link| {
                link.alias
                    .as_deref()
                    .is_some_and(|alias| alias.starts_with("telco:"))
            })
            .collect();
        assert_eq!(host_ends.len(), 2, "{host_ends:?}");
        let on_bridge = host_ends
            .iter()
            .find(|link| link.master == Some(bridge.index))
            .expect("the host end of eth0 is on br-new");
        assert_eq!(
            on_bridge.alias.as_deref(),
            Some("telco: container cid-bridge eth0")
        );
        let p2p = host_ends
            .iter()
            .find(|link| link.master.is_none())
            .expect("the host end of eth1 is on no bridge");
        assert_eq!(
            p2p.alias.as_deref(),
            Some("telco: container cid-bridge eth1")
        );
        assert!(s.pod_nl.links().get("eth0").unwrap().up);
        assert!(s.pod_nl.links().get("eth1").unwrap().up);

        attacher.detach(&specs).unwrap();
        assert_eq!(link_names(&s.pod_nl), BTreeSet::from(["lo".to_owned()]));
        assert!(s.host.links().find(&on_bridge.name).unwrap().is_none());
        assert!(s.host.links().find(&p2p.name).unwrap().is_none());
        assert!(
            s.host.links().find("br-new").unwrap().is_some(),
            "detach leaves the bridge"
        );
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn duplicate_interface_rejected() {
        let s = setup();
        let specs = vec![
            AttachmentSpec::new("a", "net1".parse().unwrap(), VethKind::new()),
            AttachmentSpec::new("b", "net1".parse().unwrap(), VethKind::new()),
        ];
        let attacher = Attacher::with_host(&s.pod, &s.host_ns, "cid-dup").unwrap();
        assert!(matches!(
            attacher.attach(&specs),
            Err(AttachError::InvalidSpec { .. })
        ));
        assert_eq!(link_names(&s.pod_nl), BTreeSet::from(["lo".to_owned()]));
    }

    /// Runs Debian's host-local plugin with `command` for `container_id` on the network `net`.
    fn host_local_plugin(
        command: &str,
        container_id: &str,
        data_dir: &Path,
        pod: &Netns,
    ) -> String {
        let config = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "shared",
            "ipam": {
                "type": "host-local",
                "dataDir": data_dir,
                "ranges": [[{"subnet": "10.80.0.0/24"}]]
            }
        });
        let mut child = Command::new("/usr/lib/cni/host-local")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", pod.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", "/usr/lib/cni")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect(
                "Debian's containernetworking-plugins must be installed (/usr/lib/cni/host-local)",
            );
        child
            .stdin
            .take()
            .unwrap()
            .write_all(config.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "host-local {command}: {stdout}");
        stdout
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn host_local_store_shared_with_plugin() {
        let s = setup();
        let data_dir = s.ipam_dir.path();
        let plugin_result = host_local_plugin("ADD", "plugin-c1", data_dir, &s.pod);
        let plugin_ip: serde_json::Value = serde_json::from_str(&plugin_result).unwrap();
        assert_eq!(plugin_ip["ips"][0]["address"], "10.80.0.2/24");

        let store = HostLocal::open(data_dir, "shared").unwrap();
        let ranges = [vec![IpRange::new("10.80.0.0/24".parse().unwrap())]];
        let ours = store.allocate("ours-c2", "eth0", &ranges).unwrap();
        assert_eq!(
            ours[0].address.to_string(),
            "10.80.0.3/24",
            "round robin after the plugin's lease"
        );

        let plugin_second: serde_json::Value =
            serde_json::from_str(&host_local_plugin("ADD", "plugin-c3", data_dir, &s.pod)).unwrap();
        assert_eq!(
            plugin_second["ips"][0]["address"], "10.80.0.4/24",
            "the plugin continues after ours"
        );

        host_local_plugin("DEL", "ours-c2", data_dir, &s.pod);
        assert!(
            store
                .leases()
                .unwrap()
                .iter()
                .all(|(_, id, _)| id != "ours-c2"),
            "the plugin releases our lease"
        );
        assert_eq!(
            store.release("plugin-c1", "eth0").unwrap(),
            ["10.80.0.2".parse::<IpAddr>().unwrap()]
        );
        host_local_plugin("DEL", "plugin-c3", data_dir, &s.pod);
        assert!(store.leases().unwrap().is_empty());
    }

    mod cni {
        use std::collections::BTreeSet;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use telco_net::attach::kinds::{CniKind, VethKind};
        use telco_net::attach::{Attacher, AttachmentSpec};
        use telco_net::cni::{CniRuntime, NetConfList};
        use telco_net::link::Veth;
        use telco_net::netns::Netns;

        #[test]
        #[ignore = "host tier: run by cargo xtask test"]
        fn cni_conflist_attach_detach() {
            assert!(
                nix::unistd::geteuid().is_root(),
                "host tier tests need root"
            );
            assert!(
                std::path::Path::new("/usr/lib/cni/macvlan").exists(),
                "needs Debian's containernetworking-plugins"
            );
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let host_ns =
                Netns::create(&format!("telco-test-{}-ch{n}", std::process::id())).unwrap();
            let pod = Netns::create(&format!("telco-test-{}-cp{n}", std::process::id())).unwrap();
            let host = host_ns.netlink().unwrap();
            host.links()
                .add(Veth::new("uplink0", "uplink0-peer").up())
                .unwrap();
            let state = tempfile::tempdir().unwrap();
            let conflist = serde_json::json!({
                "cniVersion": "1.0.0",
                "name": "cni-data",
                "plugins": [{
                    "type": "macvlan",
                    "master": "uplink0",
                    "ipam": {"type": "host-local", "dataDir": state.path().join("ipam"),
                             "ranges": [[{"subnet": "10.81.0.0/24"}]]}
                }]
            });
            let list = NetConfList::from_slice(conflist.to_string().as_bytes()).unwrap();
            let runtime = CniRuntime::new(vec!["/usr/lib/cni".into()])
                .with_cache_dir(state.path().join("cache"));
            let specs = vec![
                AttachmentSpec::new("default/mgmt", "eth0".parse().unwrap(), VethKind::new()),
                AttachmentSpec::new(
                    "default/cni-data",
                    "net1".parse().unwrap(),
                    CniKind::new(list).runtime(runtime),
                ),
            ];
            let attacher = Attacher::with_host(&pod, &host_ns, "cid-cni").unwrap();
            let status = attacher.attach(&specs).unwrap();
            assert_eq!(status[1].interface.as_deref(), Some("net1"));
            assert_eq!(
                status[1].ips,
                ["10.81.0.2".parse::<std::net::IpAddr>().unwrap()]
            );
            let pod_nl = pod.netlink().unwrap();
            let net1 = pod_nl.links().get("net1").unwrap();
            assert_eq!(net1.kind.as_deref(), Some("macvlan"));
            assert_eq!(
                status[1].mac.as_deref(),
                Some(net1.mac.unwrap().to_string().as_str())
            );
            attacher.detach(&specs).unwrap();
            let left: BTreeSet<String> = pod_nl
                .links()
                .list()
                .unwrap()
                .into_iter()
                .map(|l| l.name)
                .collect();
            assert_eq!(left, BTreeSet::from(["lo".to_owned()]));
            let leases: Vec<_> = std::fs::read_dir(state.path().join("ipam/cni-data"))
                .unwrap()
                .filter_map(Result::ok)
                .filter(|entry| {
                    entry
                        .file_name()
                        .to_string_lossy()
                        .parse::<std::net::IpAddr>()
                        .is_ok()
                })
                .collect();
            assert!(leases.is_empty(), "the plugin's lease is gone");
        }
    }
}

mod vm_tier {
    use std::collections::BTreeSet;

    use telco_net::attach::kinds::{IpvlanKind, VlanKind};
    use telco_net::attach::{Attacher, AttachmentSpec, IpConfig, StaticAddress};
    use telco_net::link::{IpvlanMode, Veth};
    use telco_net::netns::Netns;

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn ipvlan_and_vlan_attach_and_detach() {
        assert!(nix::unistd::geteuid().is_root(), "vm tier tests need root");
        let host_ns = Netns::create(&format!("telco-test-{}-vh", std::process::id())).unwrap();
        let pod = Netns::create(&format!("telco-test-{}-vp", std::process::id())).unwrap();
        let host = host_ns.netlink().unwrap();
        host.links()
            .add(Veth::new("uplink0", "uplink0-peer").up())
            .unwrap();
        let fixed =
            |text: &str| IpConfig::Static(vec![StaticAddress::new(text.parse().unwrap(), None)]);
        let specs = vec![
            AttachmentSpec::new(
                "ipv",
                "net1".parse().unwrap(),
                IpvlanKind::new("uplink0").mode(IpvlanMode::L3),
            )
            .ip(fixed("10.82.0.5/24")),
            AttachmentSpec::new(
                "vlan100",
                "net2".parse().unwrap(),
                VlanKind::new("uplink0", 100),
            )
            .ip(fixed("10.83.0.5/24")),
        ];
        let attacher = Attacher::with_host(&pod, &host_ns, "cid-vm").unwrap();
        let status = attacher.attach(&specs).unwrap();
        assert_eq!(status.len(), 2);
        let pod_nl = pod.netlink().unwrap();
        assert_eq!(
            pod_nl.links().get("net1").unwrap().kind.as_deref(),
            Some("ipvlan")
        );
        assert_eq!(
            pod_nl.links().get("net2").unwrap().kind.as_deref(),
            Some("vlan")
        );
        attacher.detach(&specs).unwrap();
        let left: BTreeSet<String> = pod_nl
            .links()
            .list()
            .unwrap()
            .into_iter()
            .map(|link| link.name)
            .collect();
        assert_eq!(left, BTreeSet::from(["lo".to_owned()]));
    }
}
