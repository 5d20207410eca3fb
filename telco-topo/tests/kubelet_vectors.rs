//! Vectors from the kubelet's CPU-manager tests (`cpu_assignment_test.go`,
//! `policy_static_test.go`), expected values as the kubelet gives them.

use telco_core::{CpuSet, NodeMask};
use telco_topo::cpumanager::{fixtures, take_by_topology};
use telco_topo::error::CpuManagerError;
use telco_topo::{CpuManager, CpuTopology, Reserved, StaticPolicyOptions};

fn set(text: &str) -> CpuSet {
    text.parse().unwrap()
}

fn take(
    topology: &CpuTopology,
    options: &str,
    free: &str,
    count: usize,
) -> Result<CpuSet, CpuManagerError> {
    let options = StaticPolicyOptions::parse(options).unwrap();
    take_by_topology(topology, &set(free), count, &options)
}

#[test]
fn packed_vectors_match_the_kubelet() {
    let f1 = fixtures::single_socket_ht();
    let f2 = fixtures::dual_socket_ht();
    let f5 = fixtures::dual_socket_multi_numa_ht();
    let cases: [(&str, &CpuTopology, &str, usize, &str); 10] = [
        ("V4", &f1, "1,3,5,6,7", 1, "6"),
        ("V5", &f1, "0-7", 2, "0,4"),
        ("V6", &f1, "0,1,2,3,6", 2, "2,6"),
        ("V8", &f2, "0-11", 6, "0,2,4,6,8,10"),
        ("V10", &f5, "0-79", 40, "0-19,40-59"),
        ("V11", &f5, "0-79", 20, "0-9,40-49"),
        ("V12", &f5, "10-39,50-79", 20, "10-19,50-59"),
        ("V13", &f5, "0-79", 60, "0-29,40-69"),
        ("V14", &f5, "1-39,41-79", 60, "10-39,50-79"),
        ("V15", &f5, "0-79", 64, "0-31,40-71"),
    ];
    for (name, topology, free, count, expected) in cases {
        let got = take(topology, "", free, count).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, set(expected), "{name}");
    }
}

#[test]
fn oversized_request_reports_counts() {
    let error = take(&fixtures::single_socket_ht(), "", "0,2,4,6", 5).unwrap_err();
    assert_eq!(
        error,
        CpuManagerError::NotEnoughCpus {
            requested: 5,
            available: 4
        }
    );
    assert_eq!(
        error.to_string(),
        "not enough cpus available to satisfy request: requested=5, available=4"
    );
}

#[test]
fn spread_vectors_match_the_kubelet() {
    let got = take(
        &fixtures::dual_socket_ht(),
        "distribute-cpus-across-cores",
        "0-11",
        8,
    )
    .unwrap();
    assert_eq!(got, set("0,2,4,6,8,10,1,3"), "S4");
    let got = take(
        &fixtures::quad_socket_four_way_ht(),
        "distribute-cpus-across-cores",
        "0-287",
        12,
    )
    .unwrap();
    assert_eq!(got, set("0-2,9-10,13-14,21-22,25-26,33"), "S7");
}

#[test]
fn uncore_vector_matches_the_kubelet() {
    let got = take(
        &fixtures::uncore_single_socket_smt(),
        "prefer-align-cpus-by-uncorecache",
        "2-3,4-7,10-11,12-15",
        6,
    )
    .unwrap();
    assert_eq!(got, set("4,5,6,12,13,14"), "U7");
}

#[test]
fn distributed_vectors_match_the_kubelet() {
    let f5 = fixtures::dual_socket_multi_numa_ht();
    let cases = [
        (
            "D2",
            "0-79",
            64,
            "0-7,10-17,20-27,30-37,40-47,50-57,60-67,70-77",
        ),
        (
            "D4",
            "2-29,31-39,42-69,71-79",
            48,
            "10-17,20-27,31-38,50-57,60-67,71-78",
        ),
        (
            "D10",
            "0-8,10-18,20-39,40-48,50-58,60-79",
            62,
            "0-7,10-17,20-27,30-37,40-46,50-56,60-67,70-77",
        ),
    ];
    for (name, free, count, expected) in cases {
        let got = take(&f5, "distribute-cpus-across-numa", free, count).unwrap();
        assert_eq!(got, set(expected), "{name}");
    }
}

#[test]
fn full_pcpus_rejects_partial_core() {
    let options = StaticPolicyOptions::parse("full-pcpus-only").unwrap();
    let manager =
        CpuManager::new(fixtures::single_socket_ht(), Reserved::Count(1), options).unwrap();
    let error = manager.pick(1, None).unwrap_err();
    assert_eq!(
        error,
        CpuManagerError::SmtAlignment {
            requested: 1,
            cpus_per_core: 2,
            available_physical_cpus: None,
            caused_by_physical_cpus: false
        },
        "P2"
    );
}

#[test]
fn full_pcpus_skips_reserved_cores() {
    let options = StaticPolicyOptions::parse("full-pcpus-only").unwrap();
    let mut manager = CpuManager::new(
        fixtures::dual_socket_ht(),
        Reserved::List(set("1,6")),
        options,
    )
    .unwrap();
    manager.set_shared_pool(set("0,2,3,4,5,7,8,9,10,11"));
    let error = manager.pick(10, None).unwrap_err();
    assert_eq!(
        error,
        CpuManagerError::SmtAlignment {
            requested: 10,
            cpus_per_core: 2,
            available_physical_cpus: Some(8),
            caused_by_physical_cpus: true
        },
        "P10"
    );
}

#[test]
fn align_by_socket_widens_affinity() {
    let hint: NodeMask = "0,2".parse().unwrap();
    for (name, options, expected) in [
        ("P12", "align-by-socket=true", "2,11"),
        ("P13", "align-by-socket=false", "2,21"),
    ] {
        let options = StaticPolicyOptions::parse(options).unwrap();
        let mut manager = CpuManager::new(
            fixtures::dual_socket_multi_numa_ht(),
            Reserved::Count(1),
            options,
        )
        .unwrap();
        assert_eq!(
            manager.reserved(),
            &set("0"),
            "{name}: one reserved CPU is CPU 0"
        );
        manager.set_shared_pool(set("2,11,21,22"));
        let got = manager.allocate("pod/ctr", 2, Some(&hint)).unwrap();
        assert_eq!(got, set(expected), "{name}");
        assert_eq!(manager.shared_pool(), &set("2,11,21,22").difference(&got));
    }
}

#[test]
fn strict_reservation_shrinks_pool() {
    let plain = CpuManager::new(
        fixtures::dual_socket_ht(),
        Reserved::List(set("0,1")),
        StaticPolicyOptions::default(),
    )
    .unwrap();
    assert_eq!(plain.shared_pool(), &set("0-11"), "R1");
    let strict = CpuManager::new(
        fixtures::dual_socket_ht(),
        Reserved::List(set("0,1")),
        StaticPolicyOptions::parse("strict-cpu-reservation").unwrap(),
    )
    .unwrap();
    assert_eq!(strict.shared_pool(), &set("2-11"), "R2");
}

#[test]
fn incompatible_options_are_rejected() {
    for (text, first, second) in [
        (
            "full-pcpus-only,distribute-cpus-across-cores",
            "full-pcpus-only",
            "distribute-cpus-across-cores",
        ),
        (
            "distribute-cpus-across-numa,distribute-cpus-across-cores",
            "distribute-cpus-across-cores",
            "distribute-cpus-across-numa",
        ),
        (
            "prefer-align-cpus-by-uncorecache,distribute-cpus-across-numa",
            "prefer-align-cpus-by-uncorecache",
            "distribute-cpus-across-numa",
        ),
        (
            "prefer-align-cpus-by-uncorecache=true,distribute-cpus-across-cores=1",
            "prefer-align-cpus-by-uncorecache",
            "distribute-cpus-across-cores",
        ),
    ] {
        assert_eq!(
            StaticPolicyOptions::parse(text).unwrap_err(),
            CpuManagerError::IncompatibleOptions { first, second },
            "{text}"
        );
    }
    assert!(
        StaticPolicyOptions::parse("full-pcpus-only=false,distribute-cpus-across-cores").is_ok()
    );
    assert!(matches!(
        StaticPolicyOptions::parse("no-such-option").unwrap_err(),
        CpuManagerError::UnknownOption { .. }
    ));
    assert!(matches!(
        StaticPolicyOptions::parse("full-pcpus-only=yes").unwrap_err(),
        CpuManagerError::InvalidOptionValue { .. }
    ));
    // align-by-socket needs no more sockets than NUMA nodes (F6 has 4 sockets on 2 nodes).
    let f6 = CpuTopology::from_places((0..80).map(|cpu| {
        let core = cpu % 40;
        (
            cpu,
            telco_topo::cpumanager::CpuPlace {
                core,
                socket: core / 10,
                numa_node: core / 20,
                uncore: 0,
            },
        )
    }));
    assert!(matches!(
        CpuManager::new(
            f6,
            Reserved::Count(1),
            StaticPolicyOptions::parse("align-by-socket").unwrap()
        )
        .unwrap_err(),
        CpuManagerError::AlignBySocketUnsupported { .. }
    ));
}

#[test]
fn allocate_and_release_update_pool() {
    let mut manager = CpuManager::new(
        fixtures::dual_socket_ht(),
        Reserved::Count(1),
        StaticPolicyOptions::default(),
    )
    .unwrap();
    let cpus = manager.allocate("a", 4, None).unwrap();
    assert_eq!(cpus.len(), 4);
    assert!(cpus.intersection(manager.shared_pool()).is_empty());
    assert!(matches!(
        manager.allocate("a", 1, None),
        Err(CpuManagerError::AlreadyAllocated { .. })
    ));
    assert_eq!(manager.release("a"), Some(cpus));
    assert_eq!(manager.shared_pool(), &set("0-11"));
}

#[test]
fn handles_a_machine_of_1024_cpus() {
    let topology = fixtures::numa_grid(8, 64);
    assert_eq!(topology.num_cpus(), 1024);
    let mut manager =
        CpuManager::new(topology, Reserved::Count(2), StaticPolicyOptions::default()).unwrap();
    let cpus = manager.allocate("big", 200, None).unwrap();
    assert_eq!(cpus.len(), 200);
    let last = manager
        .allocate("tail", 1, Some(&"7".parse().unwrap()))
        .unwrap();
    assert!(last.first().unwrap() >= 448, "{last}");
    assert!(
        manager
            .hints(8)
            .iter()
            .any(|hint| hint.preferred && hint.affinity.len() == 1)
    );
}

#[test]
fn cpu_hints_prefer_narrowest_nodes() {
    let manager = CpuManager::new(
        fixtures::dual_socket_ht(),
        Reserved::List(set("0")),
        StaticPolicyOptions::default(),
    )
    .unwrap();
    let hints = manager.hints(4);
    let text: Vec<String> = hints
        .iter()
        .map(|h| format!("{}{}", h.affinity, if h.preferred { "p" } else { "" }))
        .collect();
    assert_eq!(text, ["0p", "1p", "0-1"]);
    let hints = manager.hints(8);
    let text: Vec<String> = hints
        .iter()
        .map(|h| format!("{}{}", h.affinity, if h.preferred { "p" } else { "" }))
        .collect();
    assert_eq!(text, ["0-1p"]);
}
