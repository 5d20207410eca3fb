//! Addresses, routes and sysctls against the real kernel, inside namespaces the tests create.

mod host_tier {
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use telco_net::addr::{AddrError, IpPrefix};
    use telco_net::link::Veth;
    use telco_net::netns::{Netlink, Netns};
    use telco_net::route::Route;

    fn namespace() -> (Netns, Netlink) {
        assert!(
            nix::unistd::geteuid().is_root(),
            "host tier tests need root (CAP_NET_ADMIN)"
        );
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "telco-test-{}-a{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ns = Netns::create(&name).unwrap();
        let netlink = ns.netlink().unwrap();
        (ns, netlink)
    }

    fn prefix(text: &str) -> IpPrefix {
        text.parse().unwrap()
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn addresses_v4_v6_add_list_delete() {
        let (_ns, nl) = namespace();
        nl.links().add(Veth::new("v0", "v0-peer").up()).unwrap();
        nl.addresses().add("v0", prefix("10.9.0.5/24")).unwrap();
        nl.addresses().add("v0", prefix("fd00:9::5/64")).unwrap();
        let index = nl.links().get("v0").unwrap().index;
        let listed: Vec<IpPrefix> = nl
            .addresses()
            .list(Some("v0"))
            .unwrap()
            .iter()
            .map(|a| a.prefix)
            .collect();
        assert!(listed.contains(&prefix("10.9.0.5/24")), "{listed:?}");
        assert!(listed.contains(&prefix("fd00:9::5/64")), "{listed:?}");
        assert!(
            nl.addresses()
                .list(None)
                .unwrap()
                .iter()
                .any(|a| a.link_index == index)
        );
        let error = nl.addresses().add("v0", prefix("10.9.0.5/24")).unwrap_err();
        assert!(
            matches!(error, AddrError::AlreadyExists { .. }),
            "{error:?}"
        );
        nl.addresses().delete("v0", prefix("10.9.0.5/24")).unwrap();
        let listed: Vec<IpPrefix> = nl
            .addresses()
            .list(Some("v0"))
            .unwrap()
            .iter()
            .map(|a| a.prefix)
            .collect();
        assert!(!listed.contains(&prefix("10.9.0.5/24")));
        nl.addresses().flush("v0").unwrap();
        assert!(nl.addresses().list(Some("v0")).unwrap().is_empty());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn address_missing_link_error_names() {
        let (ns, nl) = namespace();
        let error = nl
            .addresses()
            .add("nope0", prefix("10.9.0.5/24"))
            .unwrap_err();
        let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
        assert!(
            text.contains("nope0") && text.contains(ns.name().unwrap()),
            "{text}"
        );
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn routes_default_and_other_table() {
        let (_ns, nl) = namespace();
        nl.links().add(Veth::new("v0", "v0-peer").up()).unwrap();
        nl.links().set("v0-peer").up().apply().unwrap();
        nl.addresses().add("v0", prefix("10.9.0.5/24")).unwrap();
        let gateway: IpAddr = "10.9.0.1".parse().unwrap();
        nl.routes()
            .add(&Route::default_via(gateway).dev("v0"))
            .unwrap();
        nl.routes()
            .add(
                &Route::to(prefix("192.0.2.0/24"))
                    .via(gateway)
                    .table(100)
                    .metric(7),
            )
            .unwrap();
        let main = nl
            .routes()
            .list(false, Some(telco_net::route::MAIN_TABLE))
            .unwrap();
        let default = main
            .iter()
            .find(|route| route.is_default())
            .expect("default route in main table");
        assert_eq!(default.gateway, Some(gateway));
        assert_eq!(default.dev.as_deref(), Some("v0"));
        let table = nl.routes().list(false, Some(100)).unwrap();
        assert_eq!(table.len(), 1, "{table:?}");
        assert_eq!(
            (table[0].destination, table[0].metric),
            (prefix("192.0.2.0/24"), Some(7))
        );
        nl.routes()
            .delete(
                &Route::to(prefix("192.0.2.0/24"))
                    .via(gateway)
                    .table(100)
                    .metric(7),
            )
            .unwrap();
        assert!(nl.routes().list(false, Some(100)).unwrap().is_empty());
    }

    #[test]
    #[ignore = "host tier: run by cargo xtask test"]
    fn sysctl_per_namespace() {
        let (_a, a) = namespace();
        let (_b, b) = namespace();
        a.sysctl().set("net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(a.sysctl().get("net.ipv4.ip_forward").unwrap(), "1");
        assert_eq!(b.sysctl().get("net.ipv4.ip_forward").unwrap(), "0");
        a.links().add(Veth::new("v0", "v0-peer")).unwrap();
        a.sysctl()
            .set("net/ipv6/conf/v0/disable_ipv6", "1")
            .unwrap();
        assert_eq!(
            a.sysctl().get("net.ipv6.conf.v0.disable_ipv6").unwrap(),
            "1"
        );
        assert!(
            b.sysctl().get("net.ipv6.conf.v0.disable_ipv6").is_err(),
            "v0 exists only in a"
        );
    }
}
