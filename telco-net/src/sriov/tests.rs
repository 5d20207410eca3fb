//! Discovery and control on fixture sysfs trees.

use telco_core::PciAddress;

use super::fixture::{FixtureHost, FixturePf};
use super::*;

fn pci(text: &str) -> PciAddress {
    text.parse().unwrap()
}

fn standard() -> (tempfile::TempDir, FixtureHost) {
    let dir = tempfile::tempdir().unwrap();
    let host = FixtureHost::standard(dir.path()).unwrap();
    (dir, host)
}

#[test]
fn reads_x710_pf_attributes() {
    let (_dir, fixture) = standard();
    let pf = PhysicalFunction::read(&fixture.host(), pci("0000:3b:00.0")).unwrap();
    assert_eq!((pf.vendor, pf.device), (0x8086, 0x1572));
    assert_eq!(pf.driver.as_deref(), Some("i40e"));
    assert_eq!(pf.numa_node, Some(0));
    assert_eq!(pf.netdev.as_deref(), Some("ens1f0"));
    assert_eq!((pf.total_vfs, pf.num_vfs), (64, 4));
}

#[test]
fn lists_pfs_and_skips_partial_one() {
    let (_dir, fixture) = standard();
    let pfs = PhysicalFunction::list(&fixture.host()).unwrap();
    let addresses: Vec<String> = pfs.iter().map(|pf| pf.pci.to_string()).collect();
    assert_eq!(
        addresses,
        [
            "0000:3b:00.0",
            "0000:3b:00.1",
            "0000:5e:00.0",
            "0000:af:00.0",
            "0000:d8:00.0"
        ]
    );
    let mellanox = &pfs[3];
    assert_eq!(mellanox.numa_node, Some(1));
    assert_eq!(mellanox.driver.as_deref(), Some("mlx5_core"));
}

#[test]
fn partial_pf_error_names_missing_attribute() {
    let (_dir, fixture) = standard();
    let error = PhysicalFunction::read(&fixture.host(), pci("0000:d8:00.1")).unwrap_err();
    match &error {
        SriovError::ReadAttribute { attribute, .. } => assert_eq!(attribute, "sriov_numvfs"),
        other => panic!("expected ReadAttribute, got {other:?}"),
    }
}

#[test]
fn lists_vfs_in_index_order() {
    let (_dir, fixture) = standard();
    let host = fixture.host();
    let pf = PhysicalFunction::from_netdev(&host, "ens1f0").unwrap();
    let vfs = pf.virtual_functions(&host).unwrap();
    assert_eq!(vfs.len(), 4);
    for (expected, vf) in vfs.iter().enumerate() {
        assert_eq!(vf.index as usize, expected);
        assert_eq!(vf.pf, pf.pci);
        assert_eq!(vf.device, 0x154c);
    }
    assert_eq!(vfs[1].netdev.as_deref(), Some("ens1f0v1"));
    assert_eq!(vfs[1].driver.as_deref(), Some("iavf"));
    assert_eq!(vfs[1].iommu_group, Some(61));
    assert_eq!(vfs[3].netdev, None);
}

#[test]
fn vf_finds_its_pf_and_index() {
    let (_dir, fixture) = standard();
    let host = fixture.host();
    let vf = VirtualFunction::read(&host, pci("0000:af:00.3")).unwrap();
    assert_eq!(vf.pf, pci("0000:af:00.0"));
    assert_eq!(vf.index, 1);
    assert_eq!(vf.numa_node, Some(1));
    let pf = vf.physical_function(&host).unwrap();
    assert_eq!(pf.netdev.as_deref(), Some("ens2f0"));
}

#[test]
fn vf_by_pf_netdev_and_index() {
    let (_dir, fixture) = standard();
    let vf = VirtualFunction::from_pf_netdev(&fixture.host(), "ens3f0", 1).unwrap();
    assert_eq!(vf.pci, pci("0000:5e:01.1"));
    let missing = VirtualFunction::from_pf_netdev(&fixture.host(), "ens3f0", 5).unwrap_err();
    assert!(missing.to_string().contains("virtfn5"), "{missing}");
}

#[test]
fn pf_is_not_a_vf() {
    let (_dir, fixture) = standard();
    let error = VirtualFunction::read(&fixture.host(), pci("0000:3b:00.0")).unwrap_err();
    assert!(
        matches!(error, SriovError::NotVirtualFunction { .. }),
        "{error:?}"
    );
}

#[test]
fn vf_is_not_a_pf() {
    let (_dir, fixture) = standard();
    let error = PhysicalFunction::read(&fixture.host(), pci("0000:3b:02.0")).unwrap_err();
    assert!(
        matches!(error, SriovError::NotPhysicalFunction { .. }),
        "{error:?}"
    );
}

#[test]
fn unknown_device_is_not_found() {
    let (_dir, fixture) = standard();
    let error = VirtualFunction::read(&fixture.host(), pci("0000:01:00.0")).unwrap_err();
    assert!(
        matches!(error, SriovError::DeviceNotFound { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("0000:01:00.0"));
    let error = PhysicalFunction::from_netdev(&fixture.host(), "nosuch0").unwrap_err();
    assert!(
        matches!(error, SriovError::InterfaceNotFound { .. }),
        "{error:?}"
    );
}

#[test]
fn dangling_virtfn_link_is_an_error() {
    let (_dir, fixture) = standard();
    let host = fixture.host();
    let pf = PhysicalFunction::read(&host, pci("0000:d8:00.0")).unwrap();
    let error = pf.virtual_functions(&host).unwrap_err();
    assert!(
        matches!(error, SriovError::DeviceNotFound { pci: missing } if missing == pci("0000:d8:02.0")),
        "{error:?}"
    );
}

#[test]
fn mode_detection_follows_sriov_cni() {
    let (_dir, fixture) = standard();
    let host = fixture.host();
    let kernel = VirtualFunction::read(&host, pci("0000:3b:02.0")).unwrap();
    assert_eq!(
        kernel.mode().unwrap(),
        VfMode::Kernel {
            netdev: "ens1f0v0".into()
        }
    );
    let dpdk = VirtualFunction::read(&host, pci("0000:3b:02.3")).unwrap();
    assert_eq!(
        dpdk.mode().unwrap(),
        VfMode::Dpdk {
            driver: "vfio-pci".into()
        }
    );
    assert_eq!(dpdk.vfio_device().unwrap().to_str(), Some("/dev/vfio/63"));
    assert_eq!(kernel.vfio_device(), None);
}

#[test]
fn unbound_vf_without_netdev_has_no_mode() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = FixtureHost::empty(dir.path()).unwrap();
    fixture
        .add(
            &FixturePf::new(
                "0000:02:00.0",
                0x8086,
                0x10c9,
                0x10ca,
                "igb",
                -1,
                "enp2s0",
                7,
            )
            .vf("0000:02:10.0", None, None, None),
        )
        .unwrap();
    let vf = VirtualFunction::read(&fixture.host(), pci("0000:02:10.0")).unwrap();
    assert_eq!(vf.numa_node, None);
    let error = vf.mode().unwrap_err();
    assert!(
        matches!(error, SriovError::UnknownVfMode { driver: None, .. }),
        "{error:?}"
    );
}

#[test]
fn set_num_vfs_rejects_more_than_total() {
    let (_dir, fixture) = standard();
    let host = fixture.host();
    let mut pf = PhysicalFunction::read(&host, pci("0000:af:00.0")).unwrap();
    let error = pf.set_num_vfs(&host, 9).unwrap_err();
    assert!(
        matches!(
            error,
            SriovError::TooManyVfs {
                requested: 9,
                total: 8,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        fixture.read("/sys/bus/pci/devices/0000:af:00.0/sriov_numvfs"),
        "2\n"
    );
}

#[test]
fn set_num_vfs_writes_count() {
    let (_dir, fixture) = standard();
    let host = fixture.host();
    let mut pf = PhysicalFunction::read(&host, pci("0000:3b:00.1")).unwrap();
    pf.set_num_vfs(&host, 8).unwrap();
    assert_eq!(pf.num_vfs, 8);
    assert_eq!(
        fixture.read("/sys/bus/pci/devices/0000:3b:00.1/sriov_numvfs"),
        "8"
    );
}

#[test]
fn set_num_vfs_without_driver_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = FixtureHost::empty(dir.path()).unwrap();
    let mut unbound = FixturePf::new(
        "0000:02:00.0",
        0x8086,
        0x10c9,
        0x10ca,
        "igb",
        0,
        "enp2s0",
        7,
    );
    unbound.driver = None;
    fixture.add(&unbound).unwrap();
    let host = fixture.host();
    let mut pf = PhysicalFunction::read(&host, pci("0000:02:00.0")).unwrap();
    let error = pf.set_num_vfs(&host, 2).unwrap_err();
    assert!(
        matches!(error, SriovError::PfWithoutDriver { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("bind the PF"), "{error}");
}

#[test]
fn set_num_vfs_read_only_file() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, fixture) = standard();
    let host = fixture.host();
    let path = host.path("/sys/bus/pci/devices/0000:3b:00.1/sriov_numvfs");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut pf = PhysicalFunction::read(&host, pci("0000:3b:00.1")).unwrap();
    let error = pf.set_num_vfs(&host, 2);
    // Root ignores the file mode, so only an unprivileged run gets the failure.
    if nix::unistd::geteuid().is_root() {
        error.unwrap();
    } else {
        let error = error.unwrap_err();
        assert!(
            matches!(error, SriovError::PermissionDenied { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("sriov_numvfs"), "{error}");
    }
}

#[test]
fn bind_writes_override_unbind_and_probe() {
    let (_dir, fixture) = standard();
    let host = fixture.host();
    let vf = pci("0000:3b:02.1");
    let error = bind_driver(&host, vf, "vfio-pci").unwrap_err();
    // The fixture does not rebind, so the check after the probe reads the old driver.
    assert!(
        matches!(&error, SriovError::BindFailed { bound: Some(bound), .. } if bound == "iavf"),
        "{error:?}"
    );
    assert_eq!(
        fixture.read("/sys/bus/pci/drivers/iavf/unbind"),
        "0000:3b:02.1"
    );
    assert_eq!(fixture.read("/sys/bus/pci/drivers_probe"), "0000:3b:02.1");
    assert_eq!(
        fixture.read("/sys/bus/pci/devices/0000:3b:02.1/driver_override"),
        "\n"
    );
}

#[test]
fn bind_to_current_driver_changes_nothing() {
    let (_dir, fixture) = standard();
    let host = fixture.host();
    bind_driver(&host, pci("0000:3b:02.3"), "vfio-pci").unwrap();
    assert_eq!(fixture.read("/sys/bus/pci/drivers_probe"), "");
}

#[test]
fn bind_to_missing_driver_says_modprobe() {
    let (_dir, fixture) = standard();
    let error = bind_driver(&fixture.host(), pci("0000:3b:02.0"), "igb_uio").unwrap_err();
    assert!(
        matches!(error, SriovError::DriverNotLoaded { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("modprobe igb_uio"), "{error}");
}

#[test]
fn unbind_writes_driver_unbind() {
    let (_dir, fixture) = standard();
    unbind_driver(&fixture.host(), pci("0000:af:00.2")).unwrap();
    assert_eq!(
        fixture.read("/sys/bus/pci/drivers/mlx5_core/unbind"),
        "0000:af:00.2"
    );
}

const POOLS: &str = r#"{
  "resourceList": [
    {"resourceName": "x710_kernel",
     "selectors": [{"vendors": ["8086"], "devices": ["154c"], "drivers": ["iavf"], "pfNames": ["ens1f0#0-1"]}]},
    {"resourceName": "x710_dpdk", "selectors": {"drivers": ["vfio-pci"]},
     "additionalInfo": {"*": {"token": "abc"}}},
    {"resourceName": "all_intel", "selectors": [{"vendors": ["8086"]}]},
    {"resourceName": "cx5", "resourcePrefix": "mellanox.com",
     "selectors": [{"rootDevices": ["0000:af:00.0#1"], "linkTypes": ["ether"]}]}
  ]
}"#;

fn pool_addresses(pool: &VfPool) -> Vec<String> {
    pool.devices().iter().map(|vf| vf.pci.to_string()).collect()
}

#[test]
fn each_vf_joins_first_matching_pool() {
    let (_dir, fixture) = standard();
    let config = DevicePluginConfig::from_json(POOLS).unwrap();
    let pools = config.build_pools(&fixture.host()).unwrap();
    let names: Vec<&str> = pools.iter().map(VfPool::name).collect();
    assert_eq!(
        names,
        [
            "intel.com/x710_kernel",
            "intel.com/x710_dpdk",
            "intel.com/all_intel",
            "mellanox.com/cx5"
        ]
    );
    assert_eq!(pool_addresses(&pools[0]), ["0000:3b:02.0", "0000:3b:02.1"]);
    assert_eq!(pool_addresses(&pools[1]), ["0000:3b:02.3"]);
    assert_eq!(
        pool_addresses(&pools[2]),
        ["0000:3b:02.2", "0000:5e:01.0", "0000:5e:01.1"]
    );
    assert_eq!(pool_addresses(&pools[3]), ["0000:af:00.3"]);
}

#[test]
fn link_type_selector_excludes_other_types() {
    let (_dir, fixture) = standard();
    let config = DevicePluginConfig::from_json(r#"{"resourceList": [{"resourceName": "ib", "selectors": [{"linkTypes": ["infiniband"]}]}]}"#).unwrap();
    let pools = config.build_pools(&fixture.host()).unwrap();
    assert!(pools[0].devices().is_empty());
}

#[test]
fn numa_selector_picks_node() {
    let (_dir, fixture) = standard();
    let config = DevicePluginConfig::from_json(
        r#"{"resourceList": [{"resourceName": "node1", "selectors": [{"numaNodes": [1]}]}]}"#,
    )
    .unwrap();
    let pools = config.build_pools(&fixture.host()).unwrap();
    assert_eq!(pool_addresses(&pools[0]), ["0000:af:00.2", "0000:af:00.3"]);
}

#[test]
fn invalid_pool_config_names_field() {
    let error = DevicePluginConfig::from_json(
        r#"{"resourceList": [{"resourceName": "a", "selectors": [{"pfNames": ["ens1f0#2-1"]}]}]}"#,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SriovError::InvalidConfig {
                field: "pfNames",
                ..
            }
        ),
        "{error:?}"
    );
    let error = DevicePluginConfig::from_json(
        r#"{"resourceList": [{"resourceName": "a", "deviceType": "accelerator"}]}"#,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SriovError::InvalidConfig {
                field: "deviceType",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn container_env_matches_device_plugin_format() {
    let (_dir, fixture) = standard();
    let pools = DevicePluginConfig::from_json(POOLS)
        .unwrap()
        .build_pools(&fixture.host())
        .unwrap();
    let dpdk = &pools[1];
    let devices: Vec<&VirtualFunction> = dpdk.devices().iter().collect();
    let env = dpdk.container_env(&devices);
    assert_eq!(
        env[0],
        (
            "PCIDEVICE_INTEL_COM_X710_DPDK".to_owned(),
            "0000:3b:02.3".to_owned()
        )
    );
    assert_eq!(env[1].0, "PCIDEVICE_INTEL_COM_X710_DPDK_INFO");
    let info: serde_json::Value = serde_json::from_str(&env[1].1).unwrap();
    assert_eq!(
        info["0000:3b:02.3"]["vfio"]["vfio-dev-mount"],
        "/dev/vfio/63"
    );
    assert_eq!(info["0000:3b:02.3"]["vfio"]["vfio-mount"], "/dev/vfio/vfio");
    assert_eq!(info["0000:3b:02.3"]["extraInfo"]["token"], "abc");
    let kernel = &pools[0];
    let devices: Vec<&VirtualFunction> = kernel.devices().iter().collect();
    let env = kernel.container_env(&devices);
    assert_eq!(env[0].1, "0000:3b:02.0,0000:3b:02.1");
}

fn two_node_pool(fixture: &FixtureHost) -> VfPool {
    let config = DevicePluginConfig::from_json(r#"{"resourceList": [{"resourceName": "vfs", "selectors": [{"drivers": ["iavf", "mlx5_core"]}]}]}"#).unwrap();
    config.build_pools(&fixture.host()).unwrap().remove(0)
}

fn hints(provider: &dyn telco_core::TopologyHintProvider, count: u64) -> Vec<(String, bool)> {
    let request = telco_core::ResourceRequest::new("pod").with("intel.com/vfs", count);
    match provider.topology_hints(&request).remove("intel.com/vfs") {
        Some(telco_core::ResourceHints::Hints(hints)) => hints
            .into_iter()
            .map(|hint| (hint.affinity.to_string(), hint.preferred))
            .collect(),
        other => panic!("expected hints, got {other:?}"),
    }
}

#[test]
fn pool_hints_prefer_single_node() {
    let (_dir, fixture) = standard();
    let pool = two_node_pool(&fixture);
    assert_eq!(pool.devices().len(), 7);
    assert_eq!(
        hints(&pool, 2),
        [
            ("0".into(), true),
            ("1".into(), true),
            ("0-1".into(), false)
        ]
    );
    assert_eq!(hints(&pool, 6), [("0-1".into(), true)]);
    assert!(hints(&pool, 8).is_empty());
}

#[test]
fn pool_hints_leave_out_allocated_vfs() {
    let (dir, fixture) = standard();
    let pool = two_node_pool(&fixture);
    let store = AllocationStore::new(dir.path().join("state"));
    for index in 0..4 {
        let (vf, _lock) = pool
            .allocate(&store, &format!("pod-{index}"), Some(0))
            .unwrap();
        assert_eq!(vf.numa_node, Some(0));
    }
    let provider = PoolHints {
        pool: &pool,
        store: &store,
    };
    assert_eq!(
        hints(&provider, 2),
        [("1".into(), true), ("0-1".into(), false)]
    );
}

#[test]
fn pool_ignores_request_for_other_resource() {
    let (_dir, fixture) = standard();
    let pool = two_node_pool(&fixture);
    let request = telco_core::ResourceRequest::new("pod").with("cpu", 2);
    assert!(telco_core::TopologyHintProvider::topology_hints(&pool, &request).is_empty());
}

#[test]
fn excluded_topology_gives_no_preference() {
    let (_dir, fixture) = standard();
    let config = DevicePluginConfig::from_json(r#"{"resourceList": [{"resourceName": "vfs", "excludeTopology": true, "selectors": [{"drivers": ["iavf"]}]}]}"#).unwrap();
    let pool = config.build_pools(&fixture.host()).unwrap().remove(0);
    let request = telco_core::ResourceRequest::new("pod").with("intel.com/vfs", 1);
    let hints = telco_core::TopologyHintProvider::topology_hints(&pool, &request);
    assert_eq!(
        hints["intel.com/vfs"],
        telco_core::ResourceHints::NoPreference
    );
}

#[test]
fn pool_allocation_skips_taken_and_exhausts() {
    let (dir, fixture) = standard();
    let pools = DevicePluginConfig::from_json(POOLS)
        .unwrap()
        .build_pools(&fixture.host())
        .unwrap();
    let pool = &pools[0];
    let store = AllocationStore::new(dir.path().join("state"));
    let (first, first_lock) = pool.allocate(&store, "pod-a", None).unwrap();
    drop(first_lock);
    let (second, _lock) = pool.allocate(&store, "pod-b", None).unwrap();
    assert_ne!(first.pci, second.pci);
    let error = pool.allocate(&store, "pod-c", None).unwrap_err();
    assert!(
        matches!(error, SriovError::PoolExhausted { .. }),
        "{error:?}"
    );
    assert_eq!(pool.free_devices(&store).unwrap().len(), 0);
}
