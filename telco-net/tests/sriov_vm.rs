//! SR-IOV against real kernels: the netdev move and restore on veth links (host tier), and
//! VFs of QEMU's emulated igb NIC with the real igb and igbvf drivers (vm tier).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use telco_core::MacAddr;
use telco_net::netns::{Netlink, Netns};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "host and vm tier tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
    );
}

/// Creates a namespace with a unique name, deleted on drop, and a netlink session inside it.
fn namespace() -> (Netns, Netlink) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "telco-test-{}-s{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let ns = Netns::create(&name).unwrap();
    let netlink = ns.netlink().unwrap();
    (ns, netlink)
}

fn mac(text: &str) -> MacAddr {
    text.parse().unwrap()
}

mod host_tier {
    use telco_net::link::Veth;
    use telco_net::sriov::{SriovError, move_netdev, restore_netdev};

    use super::*;

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn netdev_moves_under_new_name_and_returns() {
        require_root();
        let (_host_ns, host) = namespace();
        let (pod, pod_nl) = namespace();
        let original = mac("02:00:00:00:10:01");
        host.links()
            .add(Veth::new("vf0", "vf0-peer").mac(original).mtu(1400))
            .unwrap();

        let wanted = mac("02:00:00:00:10:02");
        let saved = move_netdev(&host, "vf0", &pod, "net1", Some(wanted)).unwrap();
        assert_eq!(saved.name, "vf0");
        assert_eq!(saved.mtu, Some(1400));
        assert_eq!(saved.mac, Some(original));
        assert!(host.links().find("vf0").unwrap().is_none());
        let inside = pod_nl.links().get("net1").unwrap();
        assert_eq!(inside.mac, Some(wanted));
        assert!(inside.up);

        pod_nl.links().set("net1").mtu(1300).apply().unwrap();
        restore_netdev(&pod, "net1", &saved, &host).unwrap();
        assert!(pod_nl.links().find("net1").unwrap().is_none());
        let back = host.links().get("vf0").unwrap();
        assert_eq!(back.mac, Some(original));
        assert_eq!(back.mtu, Some(1400));
        assert!(!back.up);
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn failed_move_returns_netdev_to_host() {
        require_root();
        let (_host_ns, host) = namespace();
        let (pod, pod_nl) = namespace();
        host.links().add(Veth::new("vf1", "vf1-peer")).unwrap();
        pod_nl.links().add(Veth::new("net1", "net1-peer")).unwrap();

        let error = move_netdev(&host, "vf1", &pod, "net1", None).unwrap_err();
        assert!(
            matches!(
                error,
                SriovError::Link {
                    step: "move into the target namespace",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            host.links().find("vf1").unwrap().is_some(),
            "the netdev is back under its host name"
        );
        let kinds: Vec<String> = pod_nl
            .links()
            .list()
            .unwrap()
            .into_iter()
            .map(|link| link.name)
            .collect();
        assert!(!kinds.contains(&"vf1".to_owned()), "{kinds:?}");
    }
}

mod vm_tier {
    use std::sync::{Mutex, MutexGuard};

    use telco_core::HostRoot;
    use telco_net::sriov::{
        PhysicalFunction, SriovError, VfAttribute, VfConfig, VfLinkMode, VfMode, VirtualFunction,
        VlanProto, apply_vf_config, bind_driver, move_netdev, read_vf_state, restore_netdev,
    };

    use super::*;

    /// Returns the guest's igb PF and a guard, so tests that change it run one at a time.
    fn igb_pf() -> (MutexGuard<'static, ()>, PhysicalFunction) {
        static PF: Mutex<()> = Mutex::new(());
        let guard = PF.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        require_root();
        let pf = PhysicalFunction::list(&HostRoot::system())
            .unwrap()
            .into_iter()
            .find(|pf| pf.driver.as_deref() == Some("igb"))
            .expect(
                "no igb SR-IOV PF: the vm tier guest has QEMU's igb NIC with the igb driver loaded",
            );
        (guard, pf)
    }

    /// Sets the VF count and waits until every VF has its igbvf netdev.
    fn with_vfs(pf: &mut PhysicalFunction, count: u32) -> Vec<VirtualFunction> {
        let host = HostRoot::system();
        pf.set_num_vfs(&host, count).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let vfs = pf.virtual_functions(&host).unwrap();
            if vfs.len() == count as usize && vfs.iter().all(|vf| vf.netdev.is_some()) {
                return vfs;
            }
            assert!(
                Instant::now() < deadline,
                "VF netdevs did not appear: {vfs:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for_netdev(pci: telco_core::PciAddress) -> VirtualFunction {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let vf = VirtualFunction::read(&HostRoot::system(), pci).unwrap();
            if vf.netdev.is_some() {
                return vf;
            }
            assert!(Instant::now() < deadline, "VF {pci} has no netdev: {vf:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn igb_creates_and_changes_vfs() {
        let (_guard, mut pf) = igb_pf();
        assert_eq!(pf.total_vfs, 7);
        let error = pf.set_num_vfs(&HostRoot::system(), 8).unwrap_err();
        assert!(
            matches!(error, SriovError::TooManyVfs { total: 7, .. }),
            "{error:?}"
        );

        let vfs = with_vfs(&mut pf, 3);
        for (index, vf) in vfs.iter().enumerate() {
            assert_eq!(vf.index as usize, index);
            assert_eq!(vf.pf, pf.pci);
            assert_eq!(vf.driver.as_deref(), Some("igbvf"));
            let back = VirtualFunction::read(&HostRoot::system(), vf.pci).unwrap();
            assert_eq!(back.index as usize, index);
            assert!(matches!(back.mode().unwrap(), VfMode::Kernel { .. }));
        }
        let vfs = with_vfs(&mut pf, 2);
        assert_eq!(vfs.len(), 2);
        assert_eq!(
            PhysicalFunction::read(&HostRoot::system(), pf.pci)
                .unwrap()
                .num_vfs,
            2
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn igb_vf_attributes_read_back() {
        let (_guard, mut pf) = igb_pf();
        with_vfs(&mut pf, 2);
        let host = Netlink::current().unwrap();
        let pf_netdev = pf.netdev.clone().expect("igb PF has a netdev");
        let mut config = VfConfig::default();
        config.mac = Some(mac("02:00:00:00:20:01"));
        config.vlan = Some(100);
        config.vlan_qos = Some(3);
        config.spoof_check = Some(false);
        config.trust = Some(true);
        apply_vf_config(&host, &pf_netdev, "igb", 1, &config).unwrap();

        let state = read_vf_state(&host, &pf_netdev, 1).unwrap();
        assert_eq!(state.mac, mac("02:00:00:00:20:01"));
        assert_eq!(
            (state.vlan, state.vlan_qos, state.vlan_proto),
            (100, 3, VlanProto::Dot1Q)
        );
        assert!(!state.spoof_check);
        assert!(state.trust);

        let mut reset = VfConfig::default();
        reset.mac = Some(MacAddr::ZERO);
        reset.vlan = Some(0);
        reset.vlan_qos = Some(0);
        reset.spoof_check = Some(true);
        reset.trust = Some(false);
        apply_vf_config(&host, &pf_netdev, "igb", 1, &reset).unwrap();
        let state = read_vf_state(&host, &pf_netdev, 1).unwrap();
        assert_eq!(
            (state.mac, state.vlan, state.vlan_qos),
            (MacAddr::ZERO, 0, 0)
        );
        assert!(state.spoof_check);
        assert!(!state.trust);
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn igb_rejects_link_state_and_qinq_naming_attribute() {
        let (_guard, mut pf) = igb_pf();
        with_vfs(&mut pf, 1);
        let host = Netlink::current().unwrap();
        let pf_netdev = pf.netdev.clone().expect("igb PF has a netdev");

        let mut link_state = VfConfig::default();
        link_state.link_state = Some(VfLinkMode::Enable);
        let error = apply_vf_config(&host, &pf_netdev, "igb", 0, &link_state).unwrap_err();
        assert!(
            matches!(&error, SriovError::AttributeUnsupported { attribute: VfAttribute::LinkState, driver, .. } if driver == "igb"),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("link_state") && error.to_string().contains("igb"),
            "{error}"
        );

        let mut qinq = VfConfig::default();
        qinq.vlan = Some(10);
        qinq.vlan_proto = Some(VlanProto::Dot1Ad);
        let error = apply_vf_config(&host, &pf_netdev, "igb", 0, &qinq).unwrap_err();
        assert!(
            matches!(
                &error,
                SriovError::AttributeUnsupported {
                    attribute: VfAttribute::Vlan,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn igb_max_tx_rate_is_set_or_rejected_by_name() {
        let (_guard, mut pf) = igb_pf();
        with_vfs(&mut pf, 1);
        let host = Netlink::current().unwrap();
        let pf_netdev = pf.netdev.clone().expect("igb PF has a netdev");
        let mut rate = VfConfig::default();
        rate.max_tx_rate = Some(100);
        // igb limits TX rate only while the PF link runs at 1000 Mbit/s and rejects a minimum
        // rate: the request either takes effect or fails naming the attribute.
        match apply_vf_config(&host, &pf_netdev, "igb", 0, &rate) {
            Ok(()) => {
                let state = read_vf_state(&host, &pf_netdev, 0).unwrap();
                assert_eq!(state.max_tx_rate, 100);
                rate.max_tx_rate = Some(0);
                apply_vf_config(&host, &pf_netdev, "igb", 0, &rate).unwrap();
            }
            Err(error) => assert!(
                matches!(
                    &error,
                    SriovError::AttributeRejected {
                        attribute: VfAttribute::TxRate,
                        ..
                    } | SriovError::AttributeUnsupported {
                        attribute: VfAttribute::TxRate,
                        ..
                    }
                ),
                "{error:?}"
            ),
        }
        let mut min_rate = VfConfig::default();
        min_rate.min_tx_rate = Some(10);
        min_rate.max_tx_rate = Some(100);
        let error = apply_vf_config(&host, &pf_netdev, "igb", 0, &min_rate).unwrap_err();
        assert!(error.to_string().contains("min_tx_rate"), "{error}");
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn igb_vf_netdev_moves_into_namespace_and_back() {
        let (_guard, mut pf) = igb_pf();
        let vfs = with_vfs(&mut pf, 1);
        let netdev = vfs[0].netdev.clone().unwrap();
        let host = Netlink::current().unwrap();
        let before = host.links().get(&netdev).unwrap();
        let (pod, pod_nl) = namespace();

        let saved =
            move_netdev(&host, &netdev, &pod, "net1", Some(mac("02:00:00:00:30:01"))).unwrap();
        assert!(host.links().find(&netdev).unwrap().is_none());
        let inside = pod_nl.links().get("net1").unwrap();
        assert_eq!(inside.mac, Some(mac("02:00:00:00:30:01")));
        assert!(
            VirtualFunction::read(&HostRoot::system(), vfs[0].pci)
                .unwrap()
                .netdev
                .is_none(),
            "sysfs of the host no longer lists it"
        );

        restore_netdev(&pod, "net1", &saved, &host).unwrap();
        let after = host.links().get(&netdev).unwrap();
        assert_eq!(after.mac, before.mac);
        assert_eq!(after.mtu, before.mtu);
        assert_eq!(wait_for_netdev(vfs[0].pci).netdev, Some(netdev));
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn igb_vf_binds_to_vfio_pci_and_back() {
        let (_guard, mut pf) = igb_pf();
        let vfs = with_vfs(&mut pf, 1);
        let system = HostRoot::system();
        bind_driver(&system, vfs[0].pci, "vfio-pci").unwrap();
        let vf = VirtualFunction::read(&system, vfs[0].pci).unwrap();
        assert_eq!(vf.driver.as_deref(), Some("vfio-pci"));
        assert_eq!(
            vf.mode().unwrap(),
            VfMode::Dpdk {
                driver: "vfio-pci".to_owned()
            }
        );
        let device = vf
            .vfio_device()
            .expect("a VF on vfio-pci has an IOMMU group");
        assert!(device.exists(), "{} is missing", device.display());

        bind_driver(&system, vfs[0].pci, "igbvf").unwrap();
        let vf = wait_for_netdev(vfs[0].pci);
        assert_eq!(vf.driver.as_deref(), Some("igbvf"));
    }
}
