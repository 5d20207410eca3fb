//! Links against the real kernel, inside namespaces the tests create. Kinds the build kernel
//! lacks (dummy, VLAN, ipvlan) are in the `vm_tier` module.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use telco_net::netns::{Netlink, Netns};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "host and vm tier tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
    );
}

/// Creates a namespace with a unique name (deleted on drop) and a netlink session inside it.
fn namespace() -> (Netns, Netlink) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "telco-test-{}-l{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let ns = Netns::create(&name).unwrap();
    let netlink = ns.netlink().unwrap();
    (ns, netlink)
}

/// `ip -d link show NAME` inside `ns`.
fn ip_link_details(ns: &Netns, name: &str) -> String {
    let output = Command::new("ip")
        .args(["-n", ns.name().unwrap(), "-d", "link", "show", name])
        .output()
        .expect("run ip");
    assert!(
        output.status.success(),
        "ip -d link show {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

mod host_tier {
    use telco_core::MacAddr;
    use telco_net::link::{Bridge, LinkError, Macvlan, MacvlanMode, Tap, Veth};

    use super::*;

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn veth_peer_in_other_namespace() {
        require_root();
        let (_host, host) = namespace();
        let (pod, pod_nl) = namespace();
        let mac: MacAddr = "02:00:00:00:00:42".parse().unwrap();
        host.links()
            .add(
                Veth::new("veth-a", "eth0")
                    .peer_netns(&pod)
                    .peer_mac(mac)
                    .mtu(1400)
                    .up(),
            )
            .unwrap();
        let here = host.links().get("veth-a").unwrap();
        assert_eq!(here.kind.as_deref(), Some("veth"));
        assert_eq!(here.mtu, Some(1400));
        assert!(here.up);
        assert!(host.links().find("eth0").unwrap().is_none());
        let peer = pod_nl.links().get("eth0").unwrap();
        assert_eq!(peer.mac, Some(mac));
        assert_eq!(peer.kind.as_deref(), Some("veth"));
        pod_nl.links().delete("eth0").unwrap();
        assert!(
            host.links().find("veth-a").unwrap().is_none(),
            "deleting one end removes both"
        );
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn delete_many_spares_other_groups() {
        require_root();
        let (_host_ns, host) = namespace();
        let (pod, pod_nl) = namespace();
        host.links()
            .add(Veth::new("veth-a", "eth0").peer_netns(&pod))
            .unwrap();
        pod_nl.links().add(Veth::new("p1", "q1")).unwrap();
        pod_nl.links().add(Veth::new("p2", "q2")).unwrap();
        pod_nl.links().add(Veth::new("keep0", "keep1")).unwrap();
        // A bystander already in the group the batch would try first must survive.
        let status = Command::new("ip")
            .args(["-n", pod.name().unwrap(), "link", "set", "keep0", "group"])
            .arg(0x7465_6c00_u32.to_string())
            .status()
            .unwrap();
        assert!(status.success());

        let missing = pod_nl
            .links()
            .delete_many(&["eth0", "p1", "absent0"])
            .unwrap();

        assert_eq!(missing, ["absent0"]);
        for name in ["eth0", "p1", "q1"] {
            assert!(pod_nl.links().find(name).unwrap().is_none(), "{name} left");
        }
        assert!(
            host.links().find("veth-a").unwrap().is_none(),
            "the host end goes with the pod end"
        );
        for name in ["p2", "q2", "keep0", "keep1"] {
            assert!(
                pod_nl.links().find(name).unwrap().is_some(),
                "{name} deleted"
            );
        }
        assert!(ip_link_details(&pod, "keep0").contains(&format!("group {}", 0x7465_6c00_u32)));
        assert_eq!(
            pod_nl.links().delete_many(&["p2"]).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(pod_nl.links().delete_many(&["p2"]).unwrap(), ["p2"]);
        assert!(pod_nl.links().delete_many(&[]).unwrap().is_empty());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn delete_many_failure_keeps_links() {
        require_root();
        let (ns, nl) = namespace();
        nl.links().add(Veth::new("r1", "r2")).unwrap();

        // The kernel has no netlink delete for the loopback link, so it refuses the group.
        let error = nl.links().delete_many(&["r1", "lo"]).unwrap_err();

        let text = error.to_string();
        assert!(text.contains("RTM_DELLINK group"), "{text}");
        assert!(text.contains("r1,lo"), "{text}");
        for name in ["r1", "r2", "lo"] {
            assert!(nl.links().find(name).unwrap().is_some(), "{name} deleted");
        }
        for name in ["r1", "lo"] {
            let details = ip_link_details(&ns, name);
            assert!(details.contains("group default"), "{name}: {details}");
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn bridge_ports_join_and_leave() {
        require_root();
        let (_ns, nl) = namespace();
        let links = nl.links();
        links.add(Bridge::new("br0").stp(false).up()).unwrap();
        links.add(Veth::new("p0", "p0-peer")).unwrap();
        links.add(Veth::new("p1", "p1-peer")).unwrap();
        let bridge = links.get("br0").unwrap();
        assert_eq!(bridge.kind.as_deref(), Some("bridge"));
        links.set("p0").master("br0").up().apply().unwrap();
        links.set("p1").master("br0").apply().unwrap();
        assert_eq!(links.get("p0").unwrap().master, Some(bridge.index));
        assert_eq!(links.get("p1").unwrap().master, Some(bridge.index));
        links.set("p1").nomaster().apply().unwrap();
        assert_eq!(links.get("p1").unwrap().master, None);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn macvlan_every_mode() {
        require_root();
        let (ns, nl) = namespace();
        let links = nl.links();
        links
            .add(Veth::new("parent0", "parent0-peer").up())
            .unwrap();
        let modes = [
            (MacvlanMode::Private, "private"),
            (MacvlanMode::Vepa, "vepa"),
            (MacvlanMode::Bridge, "bridge"),
            (MacvlanMode::Source, "source"),
        ];
        for (index, (mode, word)) in modes.iter().enumerate() {
            let name = format!("mv{index}");
            links
                .add(Macvlan::new(&name, "parent0").mode(*mode))
                .unwrap();
            let link = links.get(&name).unwrap();
            assert_eq!(link.kind.as_deref(), Some("macvlan"));
            assert_eq!(link.parent, Some(links.get("parent0").unwrap().index));
            let details = ip_link_details(&ns, &name);
            assert!(
                details.contains(&format!("macvlan mode {word}")),
                "{details}"
            );
            links.delete(&name).unwrap();
        }
        // passthru takes the parent over, so it must be the only child.
        links
            .add(Macvlan::new("mvpt", "parent0").mode(MacvlanMode::Passthru))
            .unwrap();
        assert!(ip_link_details(&ns, "mvpt").contains("macvlan mode passthru"));
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn macvlan_missing_parent_not_found() {
        require_root();
        let (ns, nl) = namespace();
        let error = nl
            .links()
            .add(Macvlan::new("mv0", "no-such-parent"))
            .unwrap_err();
        match &error {
            LinkError::NotFound { link, netns } => {
                assert_eq!(link, "no-such-parent");
                assert_eq!(netns, ns.name().unwrap());
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn link_set_state_mtu_mac_names() {
        require_root();
        let (_ns, nl) = namespace();
        let links = nl.links();
        links.add(Veth::new("v0", "v0-peer")).unwrap();
        let mac: MacAddr = "02:11:22:33:44:55".parse().unwrap();
        links.set("v0").mtu(9000).mac(mac).up().apply().unwrap();
        let link = links.get("v0").unwrap();
        assert_eq!((link.mtu, link.mac, link.up), (Some(9000), Some(mac), true));
        links.set("v0").down().apply().unwrap();
        assert!(!links.get("v0").unwrap().up);
        links.set("v0").rename("data0").apply().unwrap();
        assert!(links.find("v0").unwrap().is_none());
        assert_eq!(links.get("data0").unwrap().index, link.index);
        links
            .add_altname("data0", "telco-long-alternative-name")
            .unwrap();
        assert_eq!(
            links.get("data0").unwrap().altnames,
            ["telco-long-alternative-name"]
        );
        assert_eq!(
            links.get("telco-long-alternative-name").unwrap().index,
            link.index
        );
        links
            .delete_altname("data0", "telco-long-alternative-name")
            .unwrap();
        assert!(links.get("data0").unwrap().altnames.is_empty());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn link_add_existing_name_fails() {
        require_root();
        let (_ns, nl) = namespace();
        nl.links().add(Bridge::new("br0")).unwrap();
        let error = nl.links().add(Bridge::new("br0")).unwrap_err();
        assert!(
            matches!(error, LinkError::AlreadyExists { ref link, .. } if link == "br0"),
            "{error:?}"
        );
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn tap_persistent_multi_queue_owner() {
        require_root();
        let (ns, nl) = namespace();
        let queues = Tap::new("tap0")
            .owner(1234)
            .group(4321)
            .multi_queue(2)
            .vnet_hdr(true)
            .create(&nl)
            .unwrap();
        assert_eq!(queues.len(), 2);
        drop(queues);
        let details = ip_link_details(&ns, "tap0");
        for expected in [
            "tun type tap",
            "vnet_hdr on",
            "multi_queue",
            "persist on",
            "user 1234",
            "group 4321",
        ] {
            assert!(
                details.contains(expected),
                "missing {expected:?} in {details}"
            );
        }
        assert_eq!(nl.links().get("tap0").unwrap().kind.as_deref(), Some("tun"));
        Tap::delete(&nl, "tap0").unwrap();
        assert!(nl.links().find("tap0").unwrap().is_none());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn add_with_alias_master_and_up() {
        require_root();
        let (ns, nl) = namespace();
        let links = nl.links();
        links.add(Bridge::new("br0").up()).unwrap();
        links
            .add(
                Veth::new("port0", "port0-peer")
                    .alias("telco: test port")
                    .master("br0")
                    .up(),
            )
            .unwrap();
        let bridge = links.get("br0").unwrap();
        let port = links.get("port0").unwrap();
        assert_eq!(port.alias.as_deref(), Some("telco: test port"));
        assert_eq!(port.master, Some(bridge.index));
        assert!(port.up);
        assert!(
            ip_link_details(&ns, "port0").contains("alias telco: test port"),
            "ip link show prints the alias"
        );
        assert_eq!(links.get("port0-peer").unwrap().alias, None);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn add_with_missing_master_leaves_nothing() {
        require_root();
        let (_ns, nl) = namespace();
        let error = nl
            .links()
            .add(Veth::new("port0", "port0-peer").master("no-such-br"))
            .unwrap_err();
        assert!(
            matches!(&error, LinkError::NotFound { link, .. } if link == "no-such-br"),
            "{error:?}"
        );
        assert!(nl.links().find("port0").unwrap().is_none());
        assert!(nl.links().find("port0-peer").unwrap().is_none());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn add_with_too_long_alias_leaves_nothing() {
        require_root();
        let (_ns, nl) = namespace();
        let error = nl
            .links()
            .add(Veth::new("port0", "port0-peer").alias("a".repeat(300)))
            .unwrap_err();
        assert!(matches!(error, LinkError::Request { .. }), "{error:?}");
        assert!(nl.links().find("port0").unwrap().is_none());
        assert!(nl.links().find("port0-peer").unwrap().is_none());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn add_alias_into_other_netns_rejected() {
        require_root();
        let (_host, host) = namespace();
        let (pod, pod_nl) = namespace();
        let error = host
            .links()
            .add(Veth::new("veth-a", "eth0").netns(&pod).alias("text"))
            .unwrap_err();
        assert!(matches!(error, LinkError::Unsupported { .. }), "{error:?}");
        assert!(pod_nl.links().find("veth-a").unwrap().is_none());
        assert!(host.links().find("eth0").unwrap().is_none());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn netdev_moves_renamed_and_back() {
        require_root();
        let (host_ns, host) = namespace();
        let (pod, pod_nl) = namespace();
        host.links().add(Veth::new("dev0", "dev0-peer")).unwrap();
        let index = host.links().get("dev0").unwrap().index;
        host.links()
            .set("dev0")
            .rename("net1")
            .netns(&pod)
            .apply()
            .unwrap();
        assert!(host.links().find("dev0").unwrap().is_none());
        let moved = pod_nl.links().get("net1").unwrap();
        assert_eq!(moved.kind.as_deref(), Some("veth"));
        pod_nl
            .links()
            .set("net1")
            .rename("dev0")
            .netns(&host_ns)
            .apply()
            .unwrap();
        assert!(pod_nl.links().find("net1").unwrap().is_none());
        let back = host.links().get("dev0").unwrap();
        assert_eq!(back.kind.as_deref(), Some("veth"));
        let _ = index;
    }
}

mod vm_tier {
    use telco_net::link::{Dummy, Ipvlan, IpvlanMode, Veth, Vlan, VlanTagProtocol};

    use super::*;

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn dummy_add_and_delete() {
        require_root();
        let (_ns, nl) = namespace();
        nl.links().add(Dummy::new("dummy0").mtu(1280).up()).unwrap();
        let link = nl.links().get("dummy0").unwrap();
        assert_eq!(
            (link.kind.as_deref(), link.mtu),
            (Some("dummy"), Some(1280))
        );
        nl.links().delete("dummy0").unwrap();
        assert!(nl.links().find("dummy0").unwrap().is_none());
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn ipvlan_l2_l3_l3s_modes() {
        require_root();
        let (ns, nl) = namespace();
        nl.links()
            .add(Veth::new("parent0", "parent0-peer").up())
            .unwrap();
        for (index, (mode, word)) in [
            (IpvlanMode::L2, "l2"),
            (IpvlanMode::L3, "l3"),
            (IpvlanMode::L3s, "l3s"),
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("ipv{index}");
            nl.links()
                .add(Ipvlan::new(&name, "parent0").mode(mode))
                .unwrap();
            let details = ip_link_details(&ns, &name);
            assert!(
                details.contains(&format!("ipvlan  mode {word} "))
                    || details.contains(&format!("ipvlan mode {word} ")),
                "{details}"
            );
            nl.links().delete(&name).unwrap();
        }
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn vlan_802_1q_and_802_1ad() {
        require_root();
        let (ns, nl) = namespace();
        nl.links()
            .add(Veth::new("trunk0", "trunk0-peer").up())
            .unwrap();
        nl.links()
            .add(Vlan::new("trunk0.100", "trunk0", 100))
            .unwrap();
        nl.links()
            .add(Vlan::new("trunk0.200", "trunk0", 200).protocol(VlanTagProtocol::Ieee8021Ad))
            .unwrap();
        let q = ip_link_details(&ns, "trunk0.100");
        assert!(q.contains("vlan protocol 802.1Q id 100"), "{q}");
        let ad = ip_link_details(&ns, "trunk0.200");
        assert!(ad.contains("vlan protocol 802.1ad id 200"), "{ad}");
    }
}
