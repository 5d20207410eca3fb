//! Merge vectors from the kubelet's topology-manager tests (`topologymanager/policy_test.go`),
//! and the policies, scopes and providers around the merge.

use std::collections::BTreeMap;
use std::time::Instant;

use telco_core::{NodeMask, ResourceHints, ResourceRequest, TopologyHint};
use telco_topo::cpumanager::fixtures;
use telco_topo::topomanager::{NumaDistances, TopologyManagerOptions, merge_hints};
use telco_topo::{
    CpuManager, HugepageProvider, Policy, Reserved, Scope, StaticPolicyOptions, TopologyManager,
};

/// Parses `"0p,1p,0-1"`-style hint lists: `;` separates hints, a trailing `p` marks preferred.
fn hints(text: &str) -> ResourceHints {
    ResourceHints::Hints(
        text.split(';')
            .filter(|item| !item.is_empty())
            .map(|item| {
                let preferred = item.ends_with('p');
                TopologyHint::new(
                    item.trim_end_matches(['p', 'n']).parse().unwrap(),
                    preferred,
                )
            })
            .collect(),
    )
}

fn provider(resource: &str, list: ResourceHints) -> BTreeMap<String, ResourceHints> {
    BTreeMap::from([(resource.to_owned(), list)])
}

fn merged(
    policy: Policy,
    nodes: &str,
    providers: &[BTreeMap<String, ResourceHints>],
) -> (String, bool, bool) {
    let (best, admit) = merge_hints(policy, &nodes.parse().unwrap(), providers, None);
    (best.affinity.to_string(), best.preferred, admit)
}

#[test]
fn best_effort_vectors_match_kubelet() {
    let cases = [
        ("T1", "0p", "0p", "0-1", "0", true),
        ("T2", "0p;1p", "0p", "0-1", "0", true),
        ("T3", "0p;1p", "0p;0-1n", "0-1", "0", true),
        ("T4", "1p;0-1n", "0p;1p;0-1n", "0-1", "1", true),
        ("T5", "0p", "1p", "0-1", "0-1", false),
        ("T6", "0p", "0n", "0-1", "0", false),
        ("T7", "0p", "0-1p", "0-1", "0", false),
        ("T8", "0p;1p", "0-1n", "0-1", "0", false),
        ("T9", "0-3n;0-1n", "0-1n", "0-3", "0-1", false),
        ("T10", "0-3n;0-1n", "0,3n", "0-3", "0,3", false),
        ("T11", "0-1p;0,2p", "0-1p;0,2p", "0-3", "0-1", true),
    ];
    for (name, first, second, nodes, affinity, preferred) in cases {
        let providers = [provider("a", hints(first)), provider("b", hints(second))];
        let (got, got_preferred, admit) = merged(Policy::BestEffort, nodes, &providers);
        assert_eq!(
            (got.as_str(), got_preferred, admit),
            (affinity, preferred, true),
            "{name}"
        );
    }
}

#[test]
fn missing_and_empty_hint_lists() {
    assert_eq!(
        merged(Policy::BestEffort, "0-1", &[]),
        ("0-1".to_owned(), true, true),
        "T12 no providers"
    );
    assert_eq!(
        merged(Policy::BestEffort, "0-1", &[BTreeMap::new()]),
        ("0-1".to_owned(), true, true),
        "T12 empty map"
    );
    assert_eq!(
        merged(
            Policy::BestEffort,
            "0-1",
            &[provider("a", ResourceHints::NoPreference)]
        ),
        ("0-1".to_owned(), true, true),
        "T12 nil list"
    );
    assert_eq!(
        merged(
            Policy::BestEffort,
            "0-1",
            &[provider("a", ResourceHints::Hints(Vec::new()))]
        ),
        ("0-1".to_owned(), false, true),
        "T13"
    );
    assert_eq!(
        merged(
            Policy::Restricted,
            "0-1",
            &[provider("a", ResourceHints::Hints(Vec::new()))]
        ),
        ("0-1".to_owned(), false, false),
        "T13 restricted refuses"
    );
}

#[test]
fn restricted_needs_preferred_result() {
    let providers = [provider("a", hints("0p")), provider("b", hints("1p"))];
    assert!(!merged(Policy::Restricted, "0-1", &providers).2);
    let providers = [provider("a", hints("0p;1p")), provider("b", hints("1p"))];
    assert_eq!(
        merged(Policy::Restricted, "0-1", &providers),
        ("1".to_owned(), true, true)
    );
}

#[test]
fn single_numa_node_drops_wide_hints() {
    let providers = [provider("a", hints("0-1p")), provider("b", hints("0-1p"))];
    assert_eq!(
        merged(Policy::SingleNumaNode, "0-1", &providers),
        (String::new(), false, false)
    );
    let providers = [
        provider("a", hints("0p;1p;0-1n")),
        provider("b", hints("1p;0-1n")),
    ];
    assert_eq!(
        merged(Policy::SingleNumaNode, "0-1", &providers),
        ("1".to_owned(), true, true)
    );
    let providers = [provider("a", ResourceHints::NoPreference)];
    assert_eq!(
        merged(Policy::SingleNumaNode, "0-1", &providers),
        (String::new(), true, true)
    );
}

#[test]
fn none_policy_admits_all() {
    let providers = [provider("a", hints("0p")), provider("b", hints("1p"))];
    assert_eq!(
        merged(Policy::None, "0-1", &providers),
        (String::new(), true, true)
    );
}

#[test]
fn prefer_closest_uses_distances() {
    let nodes: NodeMask = "0-3".parse().unwrap();
    let distances = NumaDistances::new(
        &[0, 1, 2, 3],
        &[
            vec![10, 30, 12, 30],
            vec![30, 10, 30, 12],
            vec![12, 30, 10, 30],
            vec![30, 12, 30, 10],
        ],
    );
    let providers = [provider("cpu", hints("0-1p;0,2p"))];
    let (plain, _) = merge_hints(Policy::BestEffort, &nodes, &providers, None);
    assert_eq!(plain.affinity.to_string(), "0-1");
    let (closest, _) = merge_hints(Policy::BestEffort, &nodes, &providers, Some(&distances));
    assert_eq!(closest.affinity.to_string(), "0,2");
}

#[test]
fn cpu_and_hugepages_share_node() {
    let mut cpus = CpuManager::new(
        fixtures::dual_socket_ht(),
        Reserved::Count(1),
        StaticPolicyOptions::default(),
    )
    .unwrap();
    let mut pages = HugepageProvider::default();
    pages.set_pool(0, 2048, 0, 0);
    pages.set_pool(1, 2048, 512, 512);
    let mut manager = TopologyManager::new(
        Policy::SingleNumaNode,
        Scope::Container,
        "0-1".parse().unwrap(),
        None,
        &TopologyManagerOptions::default(),
    )
    .unwrap();
    manager.add_provider(&cpus);
    manager.add_provider(&pages);
    let request = ResourceRequest::new("pod/dp")
        .with("cpu", 4)
        .with("hugepages-2Mi", 256 * 2 * 1024 * 1024);
    let hint = manager.admit(&request).unwrap();
    assert_eq!(hint.affinity.to_string(), "1");
    drop(manager);
    let allocated = cpus.allocate("pod/dp", 4, Some(&hint.affinity)).unwrap();
    assert!(allocated.iter().all(|cpu| cpu % 2 == 1), "{allocated}");

    let too_many = ResourceRequest::new("pod/big").with("hugepages-2Mi", 1024 * 2 * 1024 * 1024);
    let mut manager = TopologyManager::new(
        Policy::Restricted,
        Scope::Container,
        "0-1".parse().unwrap(),
        None,
        &TopologyManagerOptions::default(),
    )
    .unwrap();
    manager.add_provider(&pages);
    let error = manager.admit(&too_many).unwrap_err();
    assert!(error.to_string().contains("pod/big"), "{error}");
}

#[test]
fn pod_scope_sums_container_requests() {
    let cpus = CpuManager::new(
        fixtures::dual_socket_ht(),
        Reserved::List("0".parse().unwrap()),
        StaticPolicyOptions::default(),
    )
    .unwrap();
    let containers = [
        ResourceRequest::new("a").with("cpu", 3),
        ResourceRequest::new("b").with("cpu", 3),
    ];
    let mut pod = TopologyManager::new(
        Policy::Restricted,
        Scope::Pod,
        "0-1".parse().unwrap(),
        None,
        &TopologyManagerOptions::default(),
    )
    .unwrap();
    pod.add_provider(&cpus);
    // Six CPUs fit only node 1 (node 0 lost CPU 0 to the reservation).
    let hints = pod.admit_pod("pod", &containers).unwrap();
    assert_eq!(hints.len(), 2);
    assert!(
        hints.iter().all(|hint| hint.affinity.to_string() == "1"),
        "{hints:?}"
    );
    let mut per_container = TopologyManager::new(
        Policy::Restricted,
        Scope::Container,
        "0-1".parse().unwrap(),
        None,
        &TopologyManagerOptions::default(),
    )
    .unwrap();
    per_container.add_provider(&cpus);
    let hints = per_container.admit_pod("pod", &containers).unwrap();
    assert!(
        hints.iter().all(|hint| hint.affinity.to_string() == "0"),
        "{hints:?}"
    );
}

#[test]
fn admits_on_64_nodes_quickly() {
    let topology = fixtures::numa_grid(64, 4);
    let cpus =
        CpuManager::new(topology, Reserved::Count(2), StaticPolicyOptions::default()).unwrap();
    let mut pages = HugepageProvider::default();
    for node in 0..64 {
        pages.set_pool(node, 2048, 64, 64);
    }
    let mut manager = TopologyManager::new(
        Policy::SingleNumaNode,
        Scope::Container,
        "0-63".parse().unwrap(),
        None,
        &TopologyManagerOptions::default(),
    )
    .unwrap();
    manager.add_provider(&cpus);
    manager.add_provider(&pages);
    let request = ResourceRequest::new("w")
        .with("cpu", 4)
        .with("hugepages-2Mi", 32 * 2 * 1024 * 1024);
    let started = Instant::now();
    let hint = manager.admit(&request).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(hint.affinity.len(), 1);
    // Debug build on a shared machine: generous bound; the bench measures the release build.
    assert!(elapsed.as_millis() < 200, "{elapsed:?}");
}

#[test]
fn node_ids_past_63_merge_too() {
    let providers = [
        provider("a", hints("100p")),
        provider("b", hints("0p;100p")),
    ];
    assert_eq!(
        merged(Policy::Restricted, "0,100", &providers),
        ("100".to_owned(), true, true)
    );
    let providers = [provider("a", hints("0p")), provider("b", hints("100p"))];
    assert_eq!(
        merged(Policy::BestEffort, "0,100", &providers),
        ("0,100".to_owned(), false, true)
    );
}
